"""Edge-aware spreading of colour points over the photo, as extra network input.

A point hint is a few pixels; the network must learn to carry it to the edges of its region. Here
the points are spread first by normalised convolution with the domain-transform recursive filter
(Gastal & Oliveira 2011): filtering a*·mask, b*·mask and mask along L*-aware paths and dividing
gives, at every pixel, the colour of the points that reach it without crossing a strong L* edge,
plus how much point mass reaches it (a confidence). Classical propagation (Levin et al.) does this
with a sparse solve; the recursive filter costs a few passes over the image, cheap enough for every
training step and every interactive update.

No maintained PyPI package offers a CPU domain transform on tensors (OpenCV's `dtFilter` needs the
contrib build and works on one image at a time), so the filter is written here, vectorised over the
batch and channels.
"""

from __future__ import annotations

import math

import torch

#: Spatial reach in pixels of the working size, and the L* (0-100) step that halves it twice.
SIGMA_SPACE = 48.0
SIGMA_RANGE = 8.0
ITERATIONS = 3


def _linear_recurrence(coefficients: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """J[i] = coefficients[i] J[i-1] + inputs[i] along the first axis, with coefficients[0] = 0.

    Solved as a Hillis-Steele scan of the affine maps J -> c J + x: log2(N) whole-tensor steps
    instead of N tiny sequential ones (`benchmarks/update_parts.py` times the spread). Composing maps
    only multiplies coefficients in [0, 1], so nothing overflows and nothing is divided, unlike a
    cumulative-product closed form.
    """
    values = inputs
    offset = 1
    while offset < values.shape[0]:
        values = torch.cat([values[:offset], torch.addcmul(values[offset:], coefficients[offset:], values[:-offset])])
        coefficients = torch.cat([coefficients[:offset], coefficients[offset:] * coefficients[:-offset]])
        offset *= 2
    return values


def _recursive_pass(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One causal then one anti-causal pass along the first axis of `values` (N, ...):
    J[i] = (1 - w[i]) x[i] + w[i] J[i-1], then J'[i] = (1 - w[i+1]) J[i] + w[i+1] J'[i+1].

    `weights[i]` (N, ...; broadcast over `values`) couples sample i with i - 1; weights[0] is unused.
    """
    none = torch.zeros_like(weights[:1])
    causal = torch.cat([none, weights[1:]])
    forward = _linear_recurrence(causal, (1 - causal) * values)
    anti_causal = torch.cat([weights[1:], none]).flip(0)  # the same recurrence on the flipped axis
    return _linear_recurrence(anti_causal, (1 - anti_causal) * forward.flip(0)).flip(0)


def domain_transform_filter(
    signal: torch.Tensor, lightness: torch.Tensor, sigma_space: float = SIGMA_SPACE,
    sigma_range: float = SIGMA_RANGE, iterations: int = ITERATIONS,
) -> torch.Tensor:
    """Edge-preserving smoothing of `signal` (B, C, H, W) guided by L* (B, 1, H, W) in 0-100.

    The recursive-filter form of the domain transform: the distance between neighbours grows with
    their L* difference, so smoothing stops at edges. Alternating horizontal and vertical passes,
    with the spatial sigma shrinking each iteration, make the result nearly isotropic.
    """
    guide = lightness.float()
    scale = sigma_space / sigma_range
    # Domain-transform derivative between each pixel and its left / upper neighbour (first is unused).
    dx = 1 + scale * (guide[..., :, 1:] - guide[..., :, :-1]).abs()
    dy = 1 + scale * (guide[..., 1:, :] - guide[..., :-1, :]).abs()
    dx = torch.cat([torch.ones_like(dx[..., :1]), dx], dim=-1)
    dy = torch.cat([torch.ones_like(dy[..., :1, :]), dy], dim=-2)
    # Work with the filtered axis first: the scan slices along it.
    horizontal = signal.float().permute(3, 0, 1, 2).contiguous()
    for k in range(iterations):
        sigma_k = sigma_space * math.sqrt(3) * 2 ** (iterations - k - 1) / math.sqrt(4**iterations - 1)
        feedback = math.exp(-math.sqrt(2) / sigma_k)
        wx = (feedback ** dx).permute(3, 0, 1, 2).contiguous()
        horizontal = _recursive_pass(horizontal, wx)
        vertical = horizontal.permute(3, 1, 2, 0).contiguous()  # (H, B, C, W)
        wy = (feedback ** dy).permute(2, 0, 1, 3).contiguous()
        vertical = _recursive_pass(vertical, wy)
        horizontal = vertical.permute(3, 1, 2, 0).contiguous()
    return horizontal.permute(1, 2, 3, 0)


def propagate_points(lightness: torch.Tensor, point_maps: torch.Tensor) -> torch.Tensor:
    """L* (B, 1, H, W) in 0-100 and point maps (B, 3, H, W: a, b normalised, mask) ->
    (B, 3, H, W): spread a*, spread b* (normalised, 0 where no point reaches) and the reach in [0, 1].

    The reach is log10 of the filtered mask (the share of all point mass that arrives), mapped from
    [1e-6, 1] to [0, 1]: the mass spans orders of magnitude (it drops a hundredfold across a strong
    edge), so a log scale lets the network see both near and far how much to trust the spread colour.
    """
    mask = point_maps[:, 2:3].float()
    if not bool(mask.any()):
        return torch.zeros_like(point_maps, dtype=torch.float32)
    weighted = torch.cat([point_maps[:, :2].float() * mask, mask], dim=1)
    spread = domain_transform_filter(weighted, lightness)
    mass = spread[:, 2:3].clamp_min(0)
    colour = torch.where(mass > 1e-6, spread[:, :2] / mass.clamp_min(1e-6), torch.zeros_like(spread[:, :2]))
    reach = (1 + torch.log10(mass.clamp_min(1e-12)) / 6).clamp(0.0, 1.0)
    return torch.cat([colour.clamp(-1, 1), reach], dim=1)
