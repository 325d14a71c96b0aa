"""What the page shows of a photo: a region of it (in the photo's own pixels) rendered at the size the
screen needs, so that a 4000-px scan can be edited at 1:1 where it matters.

The region's colour comes from the same colour field as a download (`Colorizer.colour_field`, made
for the whole photo at the view's scale) sampled at the view's pixel centres with PyTorch's bilinear
rule — so a view is pixel for pixel the matching part of the photo coloured at that scale — and its
lightness from the full-resolution photo itself, resampled once per view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cunet.colorizer import Colorizer, PreparedPhoto
from cunet.errors import CunetError
from cunet.join import Luminance, join_full_resolution

#: Largest view rendered: a 2560 x 1600 screen's worth (a 1440 x 900 window at device pixel ratio ~1.8).
MAX_VIEW_PIXELS = 4_096_000
MAX_VIEW_SIDE = 4096


@dataclass(frozen=True)
class View:
    """The region [x0, x1) x [y0, y1) of a photo, in its pixels, shown at width x height."""

    x0: float
    y0: float
    x1: float
    y1: float
    width: int
    height: int

    @classmethod
    def checked(cls, size: tuple[int, int], x0: float, y0: float, x1: float, y1: float, width: int,
                height: int) -> View:
        """A view of a photo of `size` (width, height), or a CunetError saying what is wrong with it."""
        photo_width, photo_height = size
        values = (x0, y0, x1, y1)
        if not all(math.isfinite(v) for v in values):
            raise CunetError("view: the region must be finite numbers")
        if not (0 <= x0 < x1 <= photo_width and 0 <= y0 < y1 <= photo_height):
            raise CunetError(f"view: the region ({x0:g}, {y0:g})-({x1:g}, {y1:g}) must lie inside the "
                             f"{photo_width}x{photo_height} photo, with x0 < x1 and y0 < y1")
        if not (1 <= width <= MAX_VIEW_SIDE and 1 <= height <= MAX_VIEW_SIDE and width * height <= MAX_VIEW_PIXELS):
            raise CunetError(f"view: {width}x{height} is too large; at most {MAX_VIEW_PIXELS / 1e6:.1f} MP and "
                             f"{MAX_VIEW_SIDE} px a side")
        return cls(float(x0), float(y0), float(x1), float(y1), int(width), int(height))

    def centres(self, length: int, start: float, end: float, extent: int) -> torch.Tensor:
        """The view's pixel centres along one axis, as grid_sample's coordinates in [-1, 1] of the photo."""
        positions = start + (torch.arange(length, dtype=torch.float64) + 0.5) * ((end - start) / length)
        return (positions / extent * 2 - 1).float()


def view_lightness_rgb(prepared: PreparedPhoto, view: View) -> np.ndarray:
    """The photo's full-resolution pixels over the view's region, resampled to the view's size
    (PIL's bilinear, which averages when it shrinks): (height, width, 3) float32."""
    channels = []
    for channel in range(3):
        plane = Image.fromarray(np.ascontiguousarray(prepared.photo.rgb[:, :, channel]), mode="F")
        channels.append(np.asarray(plane.resize((view.width, view.height), Image.Resampling.BILINEAR,
                                                box=(view.x0, view.y0, view.x1, view.y1))))
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def render_view(colorizer: Colorizer, prepared: PreparedPhoto, ab: torch.Tensor, view: View) -> np.ndarray:
    """The view of the photo coloured with a*b* (1, 2, h, w): (height, width, 3) uint8 sRGB."""
    photo_width, photo_height = prepared.size
    scale_x, scale_y = view.width / (view.x1 - view.x0), view.height / (view.y1 - view.y0)
    whole = (max(1, round(photo_height * scale_y)), max(1, round(photo_width * scale_x)))
    field = colorizer.colour_field(prepared, ab, whole).float()
    grid_x = view.centres(view.width, view.x0, view.x1, photo_width)
    grid_y = view.centres(view.height, view.y0, view.y1, photo_height)
    grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1)[None]
    sampled = F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return join_full_resolution(Luminance.of(view_lightness_rgb(prepared, view)), sampled, threads=1)


def render_gray(prepared: PreparedPhoto, view: View) -> np.ndarray:
    """The photo itself over the view (the compare control's "before"): (height, width, 3) uint8."""
    return np.clip(np.rint(view_lightness_rgb(prepared, view) * 255), 0, 255).astype(np.uint8)
