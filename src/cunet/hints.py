"""User hints -> network inputs, and their simulation from ground truth for training.

Local hints (Zhang et al. 2017): an a*b* map and a mask, both zero except in small square patches
where a colour was given. Global hint: an a*b* histogram over the in-gamut bins and/or a mean
saturation, each with an "is given" flag so that "not given" differs from "gray".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cunet.color import mean_saturation, normalize_ab, normalize_l, rgb_to_lab
from cunet.gamut import ab_histogram, num_bins
from cunet.propagation import propagate_points

MAX_PATCH = 9


@dataclass(frozen=True)
class PointHint:
    """One user colour point: centre (x, y) in pixels, an a*b* colour, a square patch of `size` px."""

    x: float
    y: float
    a: float
    b: float
    size: int = 3

    @classmethod
    def from_rgb(cls, x: float, y: float, rgb: tuple[int, int, int], size: int = 3) -> PointHint:
        """A point whose colour is an 8-bit sRGB triple; only its a*b* is kept (L comes from the photo)."""
        lab = rgb_to_lab(torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1) / 255.0).flatten()
        return cls(x=x, y=y, a=float(lab[1]), b=float(lab[2]), size=size)

    def inside(self, width: int, height: int) -> bool:
        """Whether the pixel nearest to (x, y) lies inside a width x height image."""
        return 0 <= np.floor(self.x + 0.5) < width and 0 <= np.floor(self.y + 0.5) < height

    def scaled(self, scale_x: float, scale_y: float) -> PointHint:
        """The same point on an image resized by (scale_x, scale_y); the patch never shrinks below 1 px."""
        size = max(1, round(self.size * min(scale_x, scale_y)))
        # Pixel centres sit at i + 0.5, so they map through (i + 0.5) * scale - 0.5.
        return PointHint((self.x + 0.5) * scale_x - 0.5, (self.y + 0.5) * scale_y - 0.5, self.a, self.b, size)


def _patch_bounds(center: float, size: int, extent: int) -> tuple[int, int]:
    start = int(np.floor(center + 0.5)) - (size - 1) // 2
    start = min(max(start, 0), max(extent - size, 0))
    return start, min(start + size, extent)


def encode_point_hints(points: list[PointHint], height: int, width: int) -> torch.Tensor:
    """Points -> (3, H, W): normalised a*, normalised b*, mask (1 inside a patch, 0 elsewhere).

    Later points overwrite earlier ones where patches overlap, as a later click would in an editor.
    """
    hints = torch.zeros(3, height, width)
    for point in points:
        if not point.inside(width, height):
            raise ValueError(f"point ({point.x:g}, {point.y:g}) lies outside the {width}x{height} image")
        y0, y1 = _patch_bounds(point.y, point.size, height)
        x0, x1 = _patch_bounds(point.x, point.size, width)
        hints[0, y0:y1, x0:x1] = normalize_ab(torch.tensor(point.a))
        hints[1, y0:y1, x0:x1] = normalize_ab(torch.tensor(point.b))
        hints[2, y0:y1, x0:x1] = 1.0
    return hints


def network_inputs(lightness: torch.Tensor, point_maps: torch.Tensor, propagate: bool = False) -> torch.Tensor:
    """L* (B, 1, H, W) + point-hint maps (B, 3, H, W) -> the network's (B, 4, H, W) input, or
    (B, 7, H, W) with the points' edge-aware spread appended (`propagate`, for models built with
    `propagated_hints`)."""
    channels = [normalize_l(lightness), point_maps]
    if propagate:
        channels.append(propagate_points(lightness, point_maps))
    return torch.cat(channels, dim=1)


def photo_histogram(ab: torch.Tensor) -> torch.Tensor:
    """A photo's global-hint histogram (*, Q) from its a*b* (*, 2, H, W).

    Taken on a 4x average-pooled copy: colour statistics need no fine detail, and the same
    function serves training, references and evaluation so that the network sees one kind of hint.
    """
    if min(ab.shape[-2:]) >= 16:
        pooled = F.avg_pool2d(ab.float().reshape(-1, 2, *ab.shape[-2:]), 4)
        ab = pooled.reshape(*ab.shape[:-3], 2, *pooled.shape[-2:])
    return ab_histogram(ab)


def global_hint_size() -> int:
    """Length of the global-hint vector: histogram + its flag + saturation + its flag."""
    return num_bins() + 3


def encode_global_hint(histogram: torch.Tensor | None = None, saturation: float | None = None) -> torch.Tensor:
    """Histogram over the in-gamut bins (Q,) and/or mean saturation -> the (Q + 3,) global-hint vector."""
    vector = torch.zeros(global_hint_size())
    q = num_bins()
    if histogram is not None:
        histogram = torch.as_tensor(histogram, dtype=torch.float32).flatten()
        if histogram.numel() != q:
            raise ValueError(f"histogram must have {q} bins, got {histogram.numel()}")
        total = float(histogram.sum())
        if total <= 0 or bool((histogram < 0).any()):
            raise ValueError("histogram must be non-negative with a positive sum")
        vector[:q] = histogram / total
        vector[q] = 1.0
    if saturation is not None:
        if not 0.0 <= saturation <= 1.0:
            raise ValueError(f"saturation must lie in [0, 1], got {saturation}")
        vector[q + 1] = saturation
        vector[q + 2] = 1.0
    return vector


@dataclass(frozen=True)
class HintSimulation:
    """How training simulates users from the ground truth (SPEC.md section 3)."""

    point_probability: float = 1 / 8  # geometric: P(n points) = (1 - p)^n p, so 1/8 of images get none
    max_points: int = 64
    # A share of images instead gets a dense count, uniform in [dense_min, dense_max]: the geometric
    # law almost never shows 50 points, where classical propagation is at its best.
    dense_probability: float = 0.0
    dense_min: int = 20
    dense_max: int = 100
    max_patch: int = MAX_PATCH
    histogram_probability: float = 0.5
    saturation_probability: float = 0.25


def simulate_point_hints(ab: torch.Tensor, rng: np.random.Generator, sim: HintSimulation) -> torch.Tensor:
    """Ground-truth a*b* (B, 2, H, W) -> simulated point-hint maps (B, 3, H, W).

    Each image gets a geometric number of points (some get none) with random patch sides.
    """
    batch, _, height, width = ab.shape
    maps = []
    for i in range(batch):
        count = min(int(rng.geometric(sim.point_probability)) - 1, sim.max_points)
        if sim.dense_probability > 0 and rng.random() < sim.dense_probability:
            count = int(rng.integers(sim.dense_min, sim.dense_max + 1))
        sizes = [int(s) for s in rng.integers(1, sim.max_patch + 1, size=count)]
        maps.append(encode_point_hints(ground_truth_points(ab[i], sizes, rng), height, width))
    return torch.stack(maps)


def simulate_global_hints(
    ab: torch.Tensor, rgb: torch.Tensor, rng: np.random.Generator, sim: HintSimulation
) -> torch.Tensor:
    """Ground truth (B, 2, H, W) a*b* and (B, 3, H, W) sRGB -> global-hint vectors (B, Q + 3)."""
    batch = ab.shape[0]
    q = num_bins()
    vectors = torch.zeros(batch, q + 3)
    give_histogram = torch.from_numpy(rng.random(batch) < sim.histogram_probability)
    give_saturation = torch.from_numpy(rng.random(batch) < sim.saturation_probability)
    if give_histogram.any():
        vectors[give_histogram, :q] = photo_histogram(ab[give_histogram])
        vectors[give_histogram, q] = 1.0
    if give_saturation.any():
        vectors[give_saturation, q + 1] = mean_saturation(rgb[give_saturation].float())
        vectors[give_saturation, q + 2] = 1.0
    return vectors


def ground_truth_points(ab: torch.Tensor, sizes: list[int], rng: np.random.Generator) -> list[PointHint]:
    """Points a careful user would give: square patches of the given sides at uniform random
    positions (the whole patch inside the image), each holding the patch's mean ground-truth a*b*.

    `ab` is one image's (2, H, W) a*b*. The evaluation protocol and training simulation both use this.
    """
    height, width = ab.shape[-2:]
    points = []
    for size in sizes:
        y0 = int(rng.integers(0, height - size + 1))
        x0 = int(rng.integers(0, width - size + 1))
        mean = ab[:, y0 : y0 + size, x0 : x0 + size].float().mean(dim=(1, 2))
        points.append(PointHint(x0 + (size - 1) // 2, y0 + (size - 1) // 2, float(mean[0]), float(mean[1]), size))
    return points
