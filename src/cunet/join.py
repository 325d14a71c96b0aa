"""The full-resolution join: the photo's own L* + the network's a*b* up-sampled -> 8-bit sRGB.

The colour comes as a small map of either a*b* (2 channels: bilinear up-sampling) or the guided
up-sampler's coefficients (4 channels, `cunet.upsample.guided_coefficients`: a*b* = A L* + B with
each pixel's own full-resolution L*, so colour changes land on the photo's edges).

Done in tiles of rows, on a few threads (numpy releases the GIL): memory grows with the tile and
not the photo (a 96 MP scan needs no 96 MP float Lab image), and each tile's temporaries stay in
the CPU's cache. The colour maths is `cunet.color.srgb_with_ab_uint8`, fused: a 2048 x 2048 join
takes about a quarter of the time of separate sRGB -> Lab -> sRGB passes (benchmarks/speed.py).
The up-sampling is bilinear with half-pixel centres, exactly as `F.interpolate(...,
align_corners=False)` on the whole image: first along the rows of the small a*b* map (it stays
small), then, tile by tile, between the two source rows of each output row.

A photo that is joined again and again (the studio's preview, on every click) is passed as its
`Luminance`, computed once: that skips the part of the colour maths that depends on the photo alone
(about 40 % of it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cunet.color import luminance_with_ab_uint8, srgb_luminance
from cunet.upsample import AB_LIMIT

#: Pixels per tile: about 3 MB of float temporaries, which stay in a core's cache.
TILE_PIXELS = 65_536


@dataclass(frozen=True)
class Luminance:
    """A photo's luminance Y and f(Y), (H, W) float32 each (`cunet.color.srgb_luminance`)."""

    y: np.ndarray
    fy: np.ndarray

    @classmethod
    def of(cls, rgb: np.ndarray) -> Luminance:
        """Of an (H, W, 3) float sRGB photo."""
        height, width = rgb.shape[:2]
        y, fy = srgb_luminance(np.ascontiguousarray(rgb, dtype=np.float32).reshape(height * width, 3))
        return cls(y.reshape(height, width), fy.reshape(height, width))

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape


def source_rows(out_rows: np.ndarray, in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For output rows, the two source rows and the weight of the second: PyTorch's bilinear rule
    (source = (row + 0.5) * in/out - 0.5, clamped at 0; the last row repeats)."""
    position = np.maximum((out_rows.astype(np.float64) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    first = np.minimum(np.floor(position).astype(np.int64), in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    return first, second, (position - first).astype(np.float32)


def join_full_resolution(photo: np.ndarray | Luminance, colour: torch.Tensor, strip_pixels: int = TILE_PIXELS,
                         threads: int | None = None) -> np.ndarray:
    """(H, W, 3) float sRGB photo (or its `Luminance`) and a small colour map -> (H, W, 3) uint8 sRGB
    with the photo's L*. `colour` is (1, 2, h, w) a*b* (up-sampled bilinearly) or (1, 4, h, w) guided
    coefficients (slopes then offsets for a*, b*: a*b* = A L* + B per full-resolution pixel).

    `strip_pixels` sets the tile (whole rows, at least one); `threads` defaults to PyTorch's count.
    """
    height, width = photo.shape[:2]
    if colour.shape[1] not in (2, 4):
        raise ValueError(f"colour must have 2 (a*b*) or 4 (guided) channels, got {tuple(colour.shape)}")
    guided = colour.shape[1] == 4
    wide = colour.float()
    if wide.shape[-1] != width:
        wide = F.interpolate(wide, size=(wide.shape[-2], width), mode="bilinear", align_corners=False)
    wide = wide[0].numpy()
    out = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, strip_pixels // width)

    def join_rows(top: int) -> None:
        bottom = min(height, top + rows)
        if wide.shape[-2] == height:
            tile = wide[:, top:bottom].copy() if guided else wide[:, top:bottom]
        else:
            first, second, weight = source_rows(np.arange(top, bottom), wide.shape[-2], height)
            tile = wide[:, first]
            tile += (wide[:, second] - tile) * weight[None, :, None]
        count = (bottom - top) * width
        tile = tile.reshape(len(tile), count)
        if isinstance(photo, Luminance):
            y, fy = photo.y[top:bottom].reshape(count), photo.fy[top:bottom].reshape(count)
        else:
            y, fy = srgb_luminance(photo[top:bottom].reshape(count, 3))
        if guided:  # a*b* = A L* + B, with L* = 116 f(Y) - 16
            lightness = fy * np.float32(116)
            lightness -= np.float32(16)
            a, b = tile[0], tile[1]
            a *= lightness
            a += tile[2]
            b *= lightness
            b += tile[3]
            np.clip(a, -AB_LIMIT, AB_LIMIT, out=a)
            np.clip(b, -AB_LIMIT, AB_LIMIT, out=b)
        else:
            a, b = tile[0], tile[1]
        luminance_with_ab_uint8(y, fy, a, b, out[top:bottom].reshape(count, 3))

    tops = range(0, height, rows)
    workers = min(len(tops), threads or torch.get_num_threads())
    if workers <= 1:
        for top in tops:
            join_rows(top)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(join_rows, tops))
    return out
