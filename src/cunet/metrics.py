"""Image-quality metrics, pure functions on 8-bit RGB images.

PSNR follows the paper's eq. 25-26 (8-bit RGB, peak 255). SSIM and CIEDE2000 come from
scikit-image (well-tested reference implementations); colourfulness is Hasler & Suesstrunk 2003.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity


def _as_uint8_values(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 as is; floats are taken as [0, 1] and rounded to 8 bits, as a saved photo would be."""
    tensor = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.array(image))
    if tensor.dtype == torch.uint8:
        return tensor.double()
    return torch.round(tensor.double().clamp(0.0, 1.0) * 255.0)


def _as_hwc_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image, (H, W, 3) or (3, H, W), uint8 or float in [0, 1] -> uint8 (H, W, 3)."""
    values = _as_uint8_values(image).numpy().astype(np.uint8)
    if values.ndim != 3:
        raise ValueError(f"expected one RGB image, got shape {values.shape}")
    if values.shape[0] == 3 and values.shape[-1] != 3:
        values = values.transpose(1, 2, 0)
    if values.shape[-1] != 3:
        raise ValueError(f"expected an RGB image, got shape {values.shape}")
    return values


def _check_same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")


def psnr(prediction: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> torch.Tensor:
    """PSNR in dB of 8-bit RGB images of any matching shape (..., H, W) -> one value per leading image.

    Images of shape (3, H, W) or (H, W, 3) give a scalar; a batch (B, 3, H, W) gives (B,).
    Identical images give +inf.
    """
    pred = _as_uint8_values(prediction)
    true = _as_uint8_values(target)
    if pred.shape != true.shape:
        raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(true.shape)}")
    dims = tuple(range(max(pred.dim() - 3, 0), pred.dim()))
    mse = (pred - true).pow(2).mean(dim=dims)
    return 10.0 * torch.log10(255.0**2 / mse)


def ssim(prediction: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Mean SSIM over the three RGB channels (scikit-image, 7x7 window, data range 255)."""
    pred, true = _as_hwc_uint8(prediction), _as_hwc_uint8(target)
    _check_same_shape(pred, true)
    return float(structural_similarity(pred, true, channel_axis=-1, data_range=255))


def ciede2000(prediction: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (Delta E 00) between two RGB images; 0 for identical ones."""
    pred, true = _as_hwc_uint8(prediction), _as_hwc_uint8(target)
    _check_same_shape(pred, true)
    return float(np.mean(deltaE_ciede2000(rgb2lab(pred), rgb2lab(true))))


def colorfulness(image: torch.Tensor | np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M = sigma_rgyb + 0.3 mu_rgyb on 0-255 RGB; 0 for gray."""
    rgb = _as_hwc_uint8(image).astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
