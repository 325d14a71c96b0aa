"""The full-resolution join: the photo's own L* + the network's a*b* up-sampled -> 8-bit sRGB.

Done in strips of rows, so that memory grows with the strip and not the photo (a 96 MP scan needs
no 96 MP float Lab image). The up-sampling is bilinear with half-pixel centres, exactly as
`F.interpolate(..., align_corners=False)` on the whole image: first along the rows of the small
a*b* map (it stays small), then, strip by strip, between the two source rows of each output row.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cunet.color import join_lab, rgb_to_lab

STRIP_PIXELS = 2_000_000  # about 100 MB of float temporaries per strip


def source_rows(out_rows: torch.Tensor, in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For output rows, the two source rows and the weight of the second: PyTorch's bilinear rule
    (source = (row + 0.5) * in/out - 0.5, clamped at 0; the last row repeats)."""
    position = ((out_rows.double() + 0.5) * (in_size / out_size) - 0.5).clamp_min(0)
    first = position.floor().long().clamp_max(in_size - 1)
    second = (first + 1).clamp_max(in_size - 1)
    return first, second, (position - first).float()


def join_full_resolution(rgb: np.ndarray, ab: torch.Tensor, strip_pixels: int = STRIP_PIXELS) -> np.ndarray:
    """(H, W, 3) float sRGB photo and (1, 2, h, w) a*b* -> (H, W, 3) uint8 sRGB with the photo's L*."""
    height, width = rgb.shape[:2]
    wide = ab.float()
    if wide.shape[-1] != width:
        wide = F.interpolate(wide, size=(wide.shape[-2], width), mode="bilinear", align_corners=False)
    wide = wide[0]
    out = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, strip_pixels // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        if wide.shape[-2] == height:
            strip_ab = wide[:, top:bottom]
        else:
            first, second, weight = source_rows(torch.arange(top, bottom), wide.shape[-2], height)
            strip_ab = torch.lerp(wide[:, first], wide[:, second], weight[None, :, None])
        strip = torch.from_numpy(rgb[top:bottom]).permute(2, 0, 1)[None]
        colour = join_lab(rgb_to_lab(strip)[:, :1], strip_ab[None])[0]
        out[top:bottom] = colour.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return out
