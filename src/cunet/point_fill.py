"""Points that reach their colour and fill their region: an edge-aware correction after the network.

The network takes a colour point as a hint and may follow it only partly (a thin pink band for a
red point) or let it leak. Here, after the network, each point's miss (asked a*b* minus predicted
a*b* on its patch) is spread over the photo by normalised convolution with the domain transform
(`cunet.propagation`) and added, weighted by how much of the point's mass reaches each pixel
compared with what an open flat region would give: inside the point's region the correction is
full, across a strong L* edge it is gone. On the patch itself (at the working size) the output is
exactly the point's colour as given here (the colorizer gives the gamut-fitted one), times its strength.

The transform is guided by the L* smoothed over `FillSettings.texture_radius` working pixels: stripes and plaids
finer than that are one region (the smoothing keeps the total L* step of a region's outline, which
is what the domain transform's distance adds up), while the outline of a region still stops the
colour.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cunet.errors import CunetError
from cunet.hints import PointHint, _patch_bounds
from cunet.propagation import DomainTransform


@dataclass(frozen=True)
class FillSettings:
    """How far a point's correction reaches and what stops it (working pixels, L* units).

    sigma_space and sigma_range: the domain transform's spatial and L* sigmas — their ratio sets how
    much an L* step counts as distance, so sigma_range is the L* step that stops the correction (in an
    open flat region the correction reaches until the point's spread mass vanishes); texture_radius:
    L* texture finer than this does not stop it; the correction is full where a point's mass is at
    least full_share of what reaches the same spot in an open flat photo, none below none_share,
    log-linear in between. The same reach decides where the automatic palette and the chroma gain
    give way to the points (`hint_reach`)."""

    sigma_space: float = 64.0
    sigma_range: float = 6.0
    texture_radius: int = 2
    full_share: float = 0.25
    none_share: float = 0.01

    def __post_init__(self) -> None:
        def real(value) -> bool:
            return isinstance(value, numbers.Real) and not isinstance(value, bool)

        if not (real(self.sigma_space) and real(self.sigma_range) and self.sigma_space > 0 and self.sigma_range > 0):
            raise CunetError(f"fill sigmas must be positive numbers, got {self.sigma_space!r} and {self.sigma_range!r}")
        radius = self.texture_radius
        if isinstance(radius, bool) or not isinstance(radius, numbers.Integral) or radius < 0:
            raise CunetError(f"fill texture radius must be a whole number of pixels, 0 or more; got {radius!r}")
        if not (real(self.none_share) and real(self.full_share) and 0 < self.none_share < self.full_share <= 1):
            raise CunetError(f"fill shares must satisfy 0 < none share < full share <= 1, got "
                             f"{self.none_share!r} and {self.full_share!r}")

    @property
    def transform_key(self) -> tuple:
        """What the fill's domain transforms depend on (the shares only weigh their output)."""
        return self.sigma_space, self.sigma_range, self.texture_radius


DEFAULT_FILL = FillSettings()


def fill_transform(lightness: torch.Tensor, settings: FillSettings = DEFAULT_FILL) -> DomainTransform:
    """The correction's domain transform for L* (1, 1, h, w) at the working size (made once per photo)."""
    smooth, radius = lightness.float(), settings.texture_radius
    # A box twice: a tent, which leaves far less ripple of a stripe pattern than one box (radius 0: none).
    for _ in range(2 if radius else 0):
        smooth = F.avg_pool2d(F.pad(smooth, [radius] * 4, mode="replicate"), 2 * radius + 1, stride=1)
    return DomainTransform(smooth, settings.sigma_space, settings.sigma_range)


def point_maps(points: list[PointHint], shape: tuple[int, int]) -> torch.Tensor:
    """(1, 4, h, w): asked a*, asked b* (unnormalised), strength and mask, for points already in
    working-size pixels; later points overwrite earlier ones, as in `cunet.hints.encode_point_hints`."""
    height, width = shape
    maps = torch.zeros(1, 4, height, width)
    for point in points:
        y0, y1 = _patch_bounds(point.y, point.size, height)
        x0, x1 = _patch_bounds(point.x, point.size, width)
        maps[0, :, y0:y1, x0:x1] = torch.tensor([point.a, point.b, point.strength, 1.0])[:, None, None]
    return maps


def _share_weight(mass: torch.Tensor, mask: torch.Tensor, flat: DomainTransform | None,
                  settings: FillSettings) -> torch.Tensor:
    """0..1 per pixel from a spread mask's mass against an open flat photo's (`FillSettings` shares)."""
    reference = (flat or fill_transform(torch.zeros(1, 1, *mask.shape[-2:]), settings))(mask)[:, :1].clamp_min(1e-12)
    share = (mass / reference).clamp_min(1e-12)
    low, high = torch.log10(torch.tensor(settings.none_share)), torch.log10(torch.tensor(settings.full_share))
    return ((share.log10() - low) / (high - low)).clamp(0, 1)


def hint_reach(points: list[PointHint], shape: tuple[int, int], transform: DomainTransform,
               flat: DomainTransform | None = None, settings: FillSettings = DEFAULT_FILL) -> torch.Tensor:
    """(1, 1, h, w) in 0..1: how much the points (in working-size pixels) speak for each pixel, the
    weight `fill_points` gives their correction there: 1 on their patches and in their regions,
    0 across strong L* edges and far away. What the automatic palette and the chroma gain give way to."""
    mask = point_maps(points, shape)[:, 3:4]
    if not points:
        return mask
    mass = transform(mask)[:, :1].clamp_min(0)
    return torch.where(mask > 0, torch.ones_like(mask), _share_weight(mass, mask, flat, settings))


def fill_points(ab: torch.Tensor, points: list[PointHint], transform: DomainTransform,
                flat: DomainTransform | None = None, settings: FillSettings = DEFAULT_FILL) -> torch.Tensor:
    """The network's a*b* (1, 2, h, w) corrected towards `points` (in working-size pixels).

    `transform` is `fill_transform` of the photo's working L*; `flat` the same for a flat photo of
    that size (made here if not given; it depends on the size alone; a caller keeps both per photo).
    """
    if not points:
        return ab
    shape = tuple(ab.shape[-2:])
    maps = point_maps(points, shape)
    asked, strength, mask = maps[:, :2], maps[:, 2:3], maps[:, 3:4]
    miss = (asked - ab.float()) * strength * mask
    spread = transform(torch.cat([miss, mask], dim=1))
    mass = spread[:, 2:3].clamp_min(0)
    weight = _share_weight(mass, mask, flat, settings)
    correction = torch.where(mass > 1e-12, spread[:, :2] / mass.clamp_min(1e-12), torch.zeros_like(miss))
    corrected = ab.float() + weight * correction
    on_patch = ab.float() + miss  # exactly the asked colour, times the strength
    return torch.where(mask > 0, on_patch, corrected)
