"""Colour maths, the one owner: sRGB <-> CIE L*a*b* (D65) on tensors, normalisation, saturation.

Every other module converts colours through these functions, so the network's input scaling and
the ab output scale live here and nowhere else.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

#: L* is centred and scaled to about [-0.5, 0.5] before it enters the network.
L_CENTER = 50.0
L_SCALE = 100.0
#: The network's tanh output is multiplied by this to give a*, b* (the paper divides by 128).
AB_SCALE = 128.0


def _check_channels(image: torch.Tensor, what: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"{what} must have shape (*, 3, H, W), got {tuple(image.shape)}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (*, 3, H, W) -> L* in [0, 100], a*, b* in about [-128, 127]."""
    _check_channels(rgb, "rgb")
    return _kornia_rgb_to_lab(rgb.float().clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b*, shape (*, 3, H, W) -> sRGB in [0, 1]; out-of-gamut colours are clipped."""
    _check_channels(lab, "lab")
    return _kornia_lab_to_rgb(lab.float(), clip=True)


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] -> the network's input scale."""
    return (lightness - L_CENTER) / L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a*b* -> the network's [-1, 1] output scale."""
    return ab / AB_SCALE


def denormalize_ab(ab_normalized: torch.Tensor) -> torch.Tensor:
    """The network's [-1, 1] output -> a*b*."""
    return ab_normalized * AB_SCALE


def join_lab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(*, 1, H, W) L* and (*, 2, H, W) a*b* -> (*, 3, H, W) sRGB in [0, 1]."""
    return lab_to_rgb(torch.cat([lightness, ab], dim=-3))


def mean_saturation(rgb: torch.Tensor) -> torch.Tensor:
    """Mean HSV saturation of sRGB images (*, 3, H, W) in [0, 1] -> shape (*,).

    This is the scalar "how colourful" global hint: 0 for a gray photo, 1 for pure primaries.
    """
    _check_channels(rgb, "rgb")
    high = rgb.amax(dim=-3)
    low = rgb.amin(dim=-3)
    saturation = torch.where(high > 1e-6, (high - low) / high.clamp_min(1e-6), torch.zeros_like(high))
    return saturation.mean(dim=(-2, -1))


def chroma(ab: torch.Tensor) -> torch.Tensor:
    """Chroma sqrt(a*^2 + b*^2) of (*, 2, H, W) -> (*, H, W)."""
    return torch.linalg.vector_norm(ab, dim=-3)
