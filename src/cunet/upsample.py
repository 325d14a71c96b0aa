"""Edge-aware up-sampling of the network's a*b*: the fast guided filter (He & Sun 2015).

The network's a*b* is made at the working size (128 px short side); a scan is 10-30 times larger.
Bilinear up-sampling smears that colour across every edge of the full-resolution photo. The guided
filter models a*b* in each small window of the working-size map as a linear function of L*
(a* = A L* + B), averages the coefficients, and evaluates them with the photo's *own*
full-resolution L*: wherever colour changes with lightness inside a window, the change lands on
the photo's edge, not half a working pixel beside it. The windows and the coefficient maps are at a
guide size (the photo's, at most GUIDE_FACTOR x the working size), and the maps are up-sampled
bilinearly tile by tile in the join (`cunet.join`): the full-resolution cost is one multiply-add per
channel and pixel, and memory grows with the tile (plus the 4-channel maps widened to the photo's width).

Radius and regulariser were measured (benchmarks/upsampling.py: val photos, their true a*b* shrunk
4x / 8x / 16x and brought back guided by the true L*).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from cunet.errors import CunetError

UPSAMPLERS = ("bilinear", "guided")
DEFAULT_UPSAMPLER = "guided"
#: Window radius in guide-size pixels (at 4x, half a working pixel), and the regulariser in (L* units)^2: a window whose L* varies
#: by less than about sqrt(EPSILON) gets its plain mean colour (A near 0), as bilinear would.
RADIUS = 2
EPSILON = 16.0
#: The slopes are estimated at most this many times the working size (cost stays bounded on big scans).
GUIDE_FACTOR = 4
#: Back-projection of the small map is computed at this up-sampling (any factor from 4 on is alike).
COMPENSATION_FACTOR = 4
#: The a*b* range of the output: coefficients extrapolated at an extreme L* stay inside it.
AB_LIMIT = 127.0


def check_upsampler(name: str) -> str:
    """The one rule for the `upsample` setting (CLI, API, evaluation)."""
    if name not in UPSAMPLERS:
        raise CunetError(f"upsample must be one of {', '.join(UPSAMPLERS)}, got {name!r}")
    return name


def _window_sums(values: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Sums over windows of 2r+1 along `dim` (zero beyond the borders): one cumulative sum and one
    difference of two shifted slices, a constant cost per pixel."""
    side = 2 * radius + 1
    padding = [0, 0] * (values.dim() - 1 - (dim % values.dim())) + [radius + 1, radius]
    running = F.pad(values, padding).cumsum(dim)
    size = values.shape[dim]
    return running.narrow(dim, side, size) - running.narrow(dim, 0, size)


def _box(values: torch.Tensor, radius: int) -> torch.Tensor:
    """The mean over a (2r+1)^2 window, over the pixels inside the map at its borders (as
    `F.avg_pool2d(..., count_include_pad=False)`). On the CPU by OpenCV's box filter, channel by
    channel (window sums with zeros beyond the borders, divided by the window's pixel count there):
    faster than the separable cumulative sums, which other devices keep, and closer to avg_pool2d
    (their float32 running sums drift by about 0.1 along a 512-px row of centred L*^2 <= 2500, a few
    thousandths of a unit in a window's mean: nothing beside EPSILON either way)."""
    height, width = values.shape[-2:]
    if values.device.type != "cpu":
        sums = _window_sums(_window_sums(values.float(), radius, -1), radius, -2)
        counts = _window_sums(_window_sums(torch.ones(1, 1, height, width, device=values.device), radius, -1), radius, -2)
        return sums / counts
    side = (2 * radius + 1,) * 2
    planes = np.ascontiguousarray(values.detach().float().reshape(-1, height, width).numpy())
    means = np.stack([cv2.boxFilter(plane, -1, side, normalize=False, borderType=cv2.BORDER_CONSTANT) for plane in planes])
    means *= _inverse_window_counts(height, width, radius)
    return torch.from_numpy(means).reshape(values.shape)


@lru_cache(maxsize=16)
def _inverse_window_counts(height: int, width: int, radius: int) -> np.ndarray:
    """1 / the number of a (2r+1)^2 window's pixels inside an (h, w) map, per pixel: the same for every
    call of a photo's guide size (the studio's every update), so it is computed once."""
    side = (2 * radius + 1,) * 2
    counts = cv2.boxFilter(np.ones((height, width), np.float32), -1, side, normalize=False, borderType=cv2.BORDER_CONSTANT)
    inverse = 1 / counts
    inverse.flags.writeable = False
    return inverse


def compensated(ab: torch.Tensor, factor: int = COMPENSATION_FACTOR) -> torch.Tensor:
    """a*b* (1, 2, h, w) made consistent with its own up-sampling: bilinear up-sampling blurs (a tent
    over two source pixels), so the area average of the up-sampled map is softer than the map. One
    back-projection step, 2 ab - area(bilinear(ab)), computed at `factor` x, restores it."""
    h, w = ab.shape[-2:]
    up = F.interpolate(ab.float(), size=(h * factor, w * factor), mode="bilinear", align_corners=False)
    return 2 * ab.float() - F.avg_pool2d(up, factor)


def guide_shape(working: tuple[int, int], full: tuple[int, int]) -> tuple[int, int]:
    """The size the slopes are estimated at: the photo's, but at most GUIDE_FACTOR x the working size."""
    scale = min(1.0, GUIDE_FACTOR * working[0] / full[0], GUIDE_FACTOR * working[1] / full[1])
    return max(1, round(full[0] * scale)), max(1, round(full[1] * scale))


def guided_coefficients(ab: torch.Tensor, lightness_small: torch.Tensor, lightness_guide: torch.Tensor,
                        radius: int = RADIUS, epsilon: float = EPSILON, compensation: float = 1.0) -> torch.Tensor:
    """The network's a*b* (1, 2, h, w), its L* at that size (1, 1, h, w) and the photo's L* at the
    guide size (1, 1, H', W', `guide_shape`) -> (1, 4, H', W'): slopes A (for a*, b*) and offsets B
    such that a*b* = A L* + B with the full-resolution L* (the join evaluates them tile by tile).

    a*b* = up(compensated a*b*) + A (L* - up(L*_small)): the smooth colour where L* is smooth, plus
    the colour change that goes with each lightness change the small map could not see, with
    the local slope of a*b* on L* (a guided filter's, windows of `radius` at the guide size).
    `compensation` weighs the back-projection (1: full, 0: the plain map): full restores the most of
    a true area-averaged map, none costs the network's hedged colour the least (benchmarks/upsampling.py
    sweeps it both ways; the default keeps full).
    """
    size = lightness_guide.shape[-2:]
    if compensation:
        ab = compensation * compensated(ab) + (1 - compensation) * ab.float()
    up = F.interpolate(ab.float(), size=size, mode="bilinear", align_corners=False)
    up_lightness = F.interpolate(lightness_small.float(), size=size, mode="bilinear", align_corners=False)
    guide = lightness_guide.float() - lightness_guide.float().mean()
    mean_guide = _box(guide, radius)
    variance = _box(guide * guide, radius) - mean_guide * mean_guide
    covariance = _box(guide * up, radius) - mean_guide * _box(up, radius)
    slope = _box(covariance / (variance.clamp_min(0) + epsilon), radius)
    return torch.cat([slope, up - slope * up_lightness], dim=1)


def apply_coefficients(coefficients: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
    """(.., 4, ...) coefficients at the guide's size and L* (.., 1, ...) -> a*b* (.., 2, ...):
    A L* + B, clamped to the a*b* range. Works on any layout whose channel axis is -3 or 0."""
    axis = -3 if coefficients.dim() >= 3 else 0
    slope, offset = coefficients.split(2, dim=axis)
    return torch.clamp(slope * lightness + offset, -AB_LIMIT, AB_LIMIT)


def guided_upsample(ab: torch.Tensor, lightness_small: torch.Tensor, lightness_full: torch.Tensor,
                    radius: int = RADIUS, epsilon: float = EPSILON, compensation: float = 1.0) -> torch.Tensor:
    """a*b* (1, 2, h, w) guided by L* at its size (1, 1, h, w) -> a*b* at the size of `lightness_full`
    (1, 1, H, W), whole-image (the join does the same tile by tile)."""
    shape = guide_shape(tuple(ab.shape[-2:]), tuple(lightness_full.shape[-2:]))
    guide = lightness_full.float()
    if shape != tuple(guide.shape[-2:]):
        guide = F.interpolate(guide, size=shape, mode="area")
    coefficients = guided_coefficients(ab, lightness_small, guide, radius, epsilon, compensation)
    wide = F.interpolate(coefficients, size=lightness_full.shape[-2:], mode="bilinear", align_corners=False)
    return apply_coefficients(wide, lightness_full.float())

