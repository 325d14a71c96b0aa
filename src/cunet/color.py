"""Colour maths, the one owner: sRGB <-> CIE L*a*b* (D65) on tensors, normalisation, saturation.

Every other module converts colours through these functions, so the network's input scaling and
the ab output scale live here and nowhere else.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

#: L* is centred and scaled to about [-0.5, 0.5] before it enters the network.
L_CENTER = 50.0
L_SCALE = 100.0
#: The network's tanh output is multiplied by this to give a*, b* (the paper divides by 128).
AB_SCALE = 128.0

# sRGB / CIE XYZ (D65) constants, the same as kornia's, for the functions written here (tests
# compare them all with scikit-image).
_RGB_TO_Y = (0.212671, 0.715160, 0.072169)
_WHITE_X, _WHITE_Z = 0.950456, 1.088754
_XYZ_TO_RGB = np.array([[3.2404813432005266, -1.5371515162713185, -0.4985363261688878],
                        [-0.9692549499965682, 1.8759900014898907, 0.0415559265582928],
                        [0.0556466391351772, -0.2040413383665112, 1.0573110696453443]], dtype=np.float32)
#: kornia's D65 white for its Lab -> XYZ (the gamut test follows kornia's conversion exactly).
_KORNIA_WHITE = np.array([0.95047, 1.0, 1.08883])
_LAB_EPSILON = 216 / 24389  # below this Y the L* curve is linear
_LAB_DELTA = 6 / 29


def _check_channels(image: torch.Tensor, what: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"{what} must have shape (*, 3, H, W), got {tuple(image.shape)}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (*, 3, H, W) -> L* in [0, 100], a*, b* in about [-128, 127]."""
    from kornia.color import rgb_to_lab as kornia_rgb_to_lab  # here, not at import: it costs ~0.15 s

    _check_channels(rgb, "rgb")
    return kornia_rgb_to_lab(rgb.float().clamp(0.0, 1.0))


def srgb_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (*, 3, H, W) -> L* (*, 1, H, W) in [0, 100]: all the network needs of a
    photo, without the a*b* work (or kornia's import) of a full conversion."""
    _check_channels(rgb, "rgb")
    rgb = rgb.float().clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)
    weights = torch.tensor(_RGB_TO_Y, dtype=linear.dtype).view(3, 1, 1)
    y = (linear * weights).sum(dim=-3, keepdim=True)
    return torch.where(y > _LAB_EPSILON, 116 * y.pow(1 / 3) - 16, y * (24389 / 27))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b*, shape (*, 3, H, W) -> sRGB in [0, 1]; out-of-gamut colours are clipped."""
    from kornia.color import lab_to_rgb as kornia_lab_to_rgb

    _check_channels(lab, "lab")
    return kornia_lab_to_rgb(lab.float(), clip=True)


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


# The fused full-resolution path: numpy on small tiles, in place, no full-size temporaries.


def _fix_where(values: np.ndarray, mask: np.ndarray, linear) -> None:
    """Replace `values` by linear(...) where `mask` holds: the straight segment of a piecewise curve."""
    if mask.any():
        np.copyto(values, linear(), where=mask)


#: Linear light in [0, 1] is looked up, not raised to 1/2.4, on the way to 8-bit sRGB: a table of this
#: many steps (0.05 of an 8-bit level apart at the steepest, near black) gives each level within one
#: of the exact curve and every gray level exactly. It replaced the power and its straight-segment
#: fix-up (commit 191fbdf) for speed: the join's time is in benchmarks/results/speed.json.
_SRGB8_STEPS = 65535


@lru_cache(maxsize=1)
def _srgb8_table() -> np.ndarray:
    """8-bit sRGB of linear light i / _SRGB8_STEPS, i = 0 .. _SRGB8_STEPS (the sRGB curve, rounded)."""
    linear = np.arange(_SRGB8_STEPS + 1, dtype=np.float64) / _SRGB8_STEPS
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.rint(srgb * 255).astype(np.uint8)


def srgb_luminance(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n, 3) of float sRGB in [0, 1] -> their luminance Y and f(Y) = (L* + 16) / 116, (n,) each:
    all of the join that depends on the photo alone (a preview re-coloured on every click keeps it)."""
    n = len(rgb)
    mask = np.empty(n, dtype=bool)
    channel = np.empty(n, dtype=np.float32)
    y = np.zeros(n, dtype=np.float32)
    for c in range(3):  # sRGB -> linear, weighted into Y
        x = rgb[:, c]
        np.add(x, np.float32(0.055), out=channel)
        channel *= np.float32(1 / 1.055)
        np.power(channel, np.float32(2.4), out=channel)
        np.less_equal(x, np.float32(0.04045), out=mask)
        _fix_where(channel, mask, lambda: x * np.float32(1 / 12.92))
        channel *= np.float32(_RGB_TO_Y[c])
        y += channel
    fy = np.cbrt(y)
    np.less_equal(y, np.float32(_LAB_EPSILON), out=mask)
    _fix_where(fy, mask, lambda: y * np.float32(24389 / 27 / 116) + np.float32(16 / 116))
    return y, fy


def luminance_with_ab_uint8(y: np.ndarray, fy: np.ndarray, a: np.ndarray, b: np.ndarray,
                            out: np.ndarray) -> np.ndarray:
    """Pixels of luminance Y and f(Y) (`srgb_luminance`) take a*, b* (n,) -> `out` (n, 3) uint8 sRGB.

    X and Z follow from a*, b* and f(Y); f(Z) is clamped at 0 as scikit-image and kornia do, and
    out-of-gamut colours are clipped.
    """
    n = len(a)
    mask = np.empty(n, dtype=bool)
    channel = np.empty(n, dtype=np.float32)
    fx = a * np.float32(1 / 500)
    fx += fy
    fz = b * np.float32(-1 / 200)
    fz += fy
    np.maximum(fz, 0, out=fz)
    for f, white in ((fx, _WHITE_X), (fz, _WHITE_Z)):  # f -> X / white, Z / white, in place
        cube = f * f
        cube *= f
        np.less_equal(f, np.float32(_LAB_DELTA), out=mask)
        _fix_where(cube, mask, lambda: (f - np.float32(4 / 29)) * np.float32(3 * _LAB_DELTA**2))
        np.multiply(cube, np.float32(white), out=f)
    table = _srgb8_table()
    index = np.empty(n, dtype=np.uint16)
    for c in range(3):  # XYZ -> linear sRGB -> 8 bits by the table
        np.multiply(fx, _XYZ_TO_RGB[c, 0] * _SRGB8_STEPS, out=channel)
        channel += (_XYZ_TO_RGB[c, 1] * _SRGB8_STEPS) * y
        channel += (_XYZ_TO_RGB[c, 2] * _SRGB8_STEPS) * fz
        np.clip(channel, 0, _SRGB8_STEPS, out=channel)
        np.add(channel, np.float32(0.5), out=channel)
        index[:] = channel  # truncation of value + 0.5 rounds to the nearest step
        out[:, c] = table[index]
    return out


def srgb_with_ab_uint8(rgb: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Pixels (n, 3) of float sRGB in [0, 1] keep their own L* and take a*, b* (n,) -> `out` (n, 3) uint8.

    The same result as lab_to_rgb(cat(rgb_to_lab(rgb)[L*], ab)) rounded to 8 bits (within one level),
    fused: the photo's Y gives f(Y) directly (L* itself is never formed), and X, Z follow from a*, b*.
    """
    return luminance_with_ab_uint8(*srgb_luminance(rgb), a, b, out)


def _shows_in_srgb(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each L*a*b* (n,) converts to sRGB inside [0, 1] without clipping (kornia's conversion:
    f(Z) clamped at 0, its D65 white and matrix; the sRGB curve is monotone, so linear RGB decides)."""
    fy = (lightness + 16) / 116
    fxyz = np.stack([fy + a / 500, fy, np.maximum(fy - b / 200, 0)])
    xyz = np.where(fxyz > 0.2068966, fxyz ** 3, (fxyz - 4 / 29) / 7.787) * _KORNIA_WHITE[:, None]
    linear = _XYZ_TO_RGB.astype(np.float64) @ xyz
    # sRGB's curve maps [-1e-4 / 12.92, ((1 + 1e-4 + 0.055) / 1.055) ** 2.4] onto [-1e-4, 1 + 1e-4].
    return ((linear >= -1e-4 / 12.92) & (linear <= ((1.0001 + 0.055) / 1.055) ** 2.4)).all(axis=0)


def fit_in_gamut(lightness: torch.Tensor, ab: torch.Tensor, steps: int = 24) -> torch.Tensor:
    """The a*b* (n, 2) each colour can show at its L* (n,): the same hue, its chroma cut to the most
    that sRGB has at that lightness (a pale dress can be pink, not crimson). In-gamut colours are kept.

    Bisection on the chroma scale (sRGB's gamut at a fixed L* is convex along each hue ray from gray),
    in NumPy on the (n,) vectors: the studio fits its points on every update, and a tensor library's
    per-call cost on 24 tiny conversions was a tenth of the round trip.
    """
    values = ab.detach().double().reshape(-1, 2).numpy()
    lightness = lightness.detach().double().reshape(-1).numpy()
    a, b = values[:, 0], values[:, 1]
    low, high = np.zeros(len(values)), np.ones(len(values))
    keep = _shows_in_srgb(lightness, a, b)
    for _ in range(steps):
        middle = (low + high) / 2
        fits = _shows_in_srgb(lightness, a * middle, b * middle)
        low, high = np.where(fits, middle, low), np.where(fits, high, middle)
    scale = np.where(keep, 1.0, low)
    return ab.float().reshape(-1, 2) * torch.from_numpy(scale).float()[:, None]
