"""The training objective: a per-pixel regression loss on a*b*, an optional chroma-deficit term, and
the class-rebalanced cross-entropy of the distribution head with the prior it is rebalanced by. Pure functions: the
trainer wraps them, the model knows nothing of them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cunet.color import denormalize_ab, rgb_to_lab
from cunet.gamut import ab_histogram, num_bins, quantize_ab, rebalancing_weights, smoothed_prior

LOSSES = ("huber", "l2")


def ab_loss(predicted: torch.Tensor, target_ab: torch.Tensor, kind: str = "huber", delta: float = 6.0) -> torch.Tensor:
    """Per-pixel loss between the network's normalised a*b* and the true a*b* (in a*b* units, averaged):
    Huber with `delta` (the paper's l_delta) or L2 (eq. 22)."""
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
    predicted_ab = denormalize_ab(predicted.float())
    if kind == "huber":
        return F.huber_loss(predicted_ab, target_ab, delta=delta)
    return F.mse_loss(predicted_ab, target_ab)


def chroma_deficit(predicted: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
    """How much less colourful each photo came out than it is: mean over the batch of
    max(0, mean true chroma - mean predicted chroma), in a*b* units (network a*b* normalised as in
    `ab_loss`). A per-pixel loss is minimised by the average of the plausible colours, and that
    average of a red and a blue shirt is gray; this term only asks each photo for its true amount
    of colour (never less), and leaves where that colour goes to the per-pixel loss."""
    predicted_ab = denormalize_ab(predicted.float())
    predicted_chroma = torch.linalg.vector_norm(predicted_ab, dim=1).flatten(1).mean(1)
    true_chroma = torch.linalg.vector_norm(target_ab.float(), dim=1).flatten(1).mean(1)
    return F.relu(true_chroma - predicted_chroma).mean()


def class_weights(
    photos: list[np.ndarray], probabilities: np.ndarray, sigma: float = 5.0, mix: float = 0.5
) -> torch.Tensor:
    """Per-bin cross-entropy weights (Q,) from the a*b* prior of uint8 (H, W, 3) photos as training
    draws them (each photo's histogram, on every 4th pixel, weighted by its sampling probability),
    smoothed by `sigma` and rebalanced with `mix` (Zhang et al. 2016)."""
    prior = torch.zeros(num_bins(), dtype=torch.float64)
    for photo, probability in zip(photos, probabilities):
        rgb = torch.from_numpy(np.ascontiguousarray(photo[::4, ::4])).permute(2, 0, 1).float() / 255.0
        prior += probability * ab_histogram(rgb_to_lab(rgb)[1:]).double()
    return rebalancing_weights(smoothed_prior(prior.float(), sigma), mix)


def rebalanced_cross_entropy(logits: torch.Tensor, target_ab: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of bin logits (B, Q, *) against the bins of the ground truth a*b* (B, 2, *), each
    pixel weighted by its bin's rarity (Zhang et al. 2016, eq. 2 and 4)."""
    target = quantize_ab(target_ab.float().cpu()).to(logits.device)
    per_pixel = F.cross_entropy(logits.float(), target, reduction="none")
    return (per_pixel * weights.to(logits.device)[target]).mean()
