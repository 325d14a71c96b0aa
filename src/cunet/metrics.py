"""Image-quality metrics. PSNR follows the paper's eq. 25-26: 8-bit RGB, peak 255."""

from __future__ import annotations

import numpy as np
import torch


def _as_uint8_values(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 as is; floats are taken as [0, 1] and rounded to 8 bits, as a saved photo would be."""
    tensor = torch.as_tensor(image)
    if tensor.dtype == torch.uint8:
        return tensor.double()
    return torch.round(tensor.double().clamp(0.0, 1.0) * 255.0)


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
