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
#: Samples per block of `_Recurrence`: of 4, 8, 16 and 32, 8 was fastest or level at working sizes 128
#: and 256 and for a training batch (`benchmarks/update_parts.py --blocks`).
BLOCK = 8


def _scan_coefficients(coefficients: torch.Tensor, reverse: bool = False) -> list[torch.Tensor]:
    """The coefficients each step of `_scan` multiplies by, for J[i] = c[i] J[i -/+ 1] + x[i] along
    the first axis (c[0], or c[-1] when `reverse`, is 0).

    A Hillis-Steele scan of the affine maps J -> c J + x: log2(N) whole-tensor steps. Composing the
    maps only multiplies coefficients in [0, 1]: nothing overflows and nothing is divided.
    """
    levels = []
    offset = 1
    while offset < coefficients.shape[0]:
        if reverse:
            levels.append(coefficients[:-offset])
            coefficients = torch.cat([coefficients[:-offset] * coefficients[offset:], coefficients[-offset:]])
        else:
            levels.append(coefficients[offset:])
            coefficients = torch.cat([coefficients[:offset], coefficients[offset:] * coefficients[:-offset]])
        offset *= 2
    return levels


def _scan(levels: list[torch.Tensor], values: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """J along the first axis of `values` (the x of the recurrence) with `_scan_coefficients`' levels."""
    offset = 1
    for coefficients in levels:
        if reverse:
            values = torch.cat([torch.addcmul(values[:-offset], coefficients, values[offset:]), values[-offset:]])
        else:
            values = torch.cat([values[:offset], torch.addcmul(values[offset:], coefficients, values[:-offset])])
        offset *= 2
    return values


class _Recurrence:
    """J[i] = c[i] J[i-1] + x[i] along the first axis (or J[i] = c[i] J[i+1] + x[i] when `reverse`),
    with c[0] (c[-1]) = 0, for any x broadcast against c.

    In blocks of `BLOCK` samples: within each block, step by step, every block at once (BLOCK - 1
    small in-place steps); then the blocks' end values by a log-depth scan over the blocks; then
    one correction of every sample by its block's cumulative coefficient times the previous block's
    end. Everything that depends on c alone (the cumulative products, the scan's coefficients) is
    made here, once per photo, so a new set of points runs only the steps over x.
    """

    def __init__(self, coefficients: torch.Tensor, reverse: bool = False, block: int = BLOCK) -> None:
        self.length, self.block, self.reverse = coefficients.shape[0], block, reverse
        self.blocks = -(-self.length // block)
        blocked = self._blocked(coefficients)  # (blocks, block, ...)
        self.steps = [blocked[:, s] for s in range(block)]
        if reverse:
            self.carry_gain = blocked.flip(1).cumprod(1).flip(1)  # c[s] ... c[block - 1]
            self.ends = _scan_coefficients(self.carry_gain[:, 0].contiguous(), reverse=True)
        else:
            self.carry_gain = blocked.cumprod(1)  # c[0] ... c[s]
            self.ends = _scan_coefficients(self.carry_gain[:, -1].contiguous())

    def _blocked(self, values: torch.Tensor) -> torch.Tensor:
        """`values` (length, ...) zero-padded to whole blocks and viewed as (blocks, block, ...): a
        zero coefficient and input past the end change nothing before it."""
        padding = self.blocks * self.block - self.length
        if padding:
            values = torch.cat([values, values.new_zeros((padding, *values.shape[1:]))])
        return values.reshape(self.blocks, self.block, *values.shape[1:])

    def __call__(self, values: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """J for the inputs x = gain * values (both (length, ...), broadcast)."""
        local = self._blocked(gain * values)
        if self.reverse:
            for s in range(self.block - 2, -1, -1):
                local[:, s].addcmul_(self.steps[s], local[:, s + 1])
            ends = _scan(self.ends, local[:, 0].contiguous(), reverse=True)
            local[:-1].addcmul_(self.carry_gain[:-1], ends[1:].unsqueeze(1))
        else:
            for s in range(1, self.block):
                local[:, s].addcmul_(self.steps[s], local[:, s - 1])
            ends = _scan(self.ends, local[:, -1].contiguous())
            local[1:].addcmul_(self.carry_gain[1:], ends[:-1].unsqueeze(1))
        return local.reshape(-1, *local.shape[2:])[:self.length]


class _RecursivePass:
    """One causal then one anti-causal pass along the first axis of a signal (N, ...):
    J[i] = (1 - w[i]) x[i] + w[i] J[i-1], then J'[i] = (1 - w[i+1]) J[i] + w[i+1] J'[i+1].

    `weights[i]` (N, ...; broadcast over the signal) couples sample i with i - 1; weights[0] is unused.
    """

    def __init__(self, weights: torch.Tensor, block: int = BLOCK) -> None:
        none = torch.zeros_like(weights[:1])
        causal = torch.cat([none, weights[1:]])
        anti_causal = torch.cat([weights[1:], none])
        self.causal_gain, self.causal = 1 - causal, _Recurrence(causal, block=block)
        self.anti_causal_gain, self.anti_causal = 1 - anti_causal, _Recurrence(anti_causal, reverse=True, block=block)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        forward = self.causal(values, self.causal_gain)
        return self.anti_causal(forward, self.anti_causal_gain)


class DomainTransform:
    """Edge-preserving smoothing guided by one L* (B, 1, H, W) in 0-100, ready for any signal.

    The recursive-filter form of the domain transform: the distance between neighbours grows with
    their L* difference, so smoothing stops at edges. Alternating horizontal and vertical passes,
    with the spatial sigma shrinking each iteration, make the result nearly isotropic. Everything
    that depends on L* alone is computed here, once: a photo being edited keeps its transform, and
    each new set of points costs only the passes over the signal.
    """

    def __init__(self, lightness: torch.Tensor, sigma_space: float = SIGMA_SPACE, sigma_range: float = SIGMA_RANGE,
                 iterations: int = ITERATIONS, block: int = BLOCK) -> None:
        guide = lightness.float()
        scale = sigma_space / sigma_range
        # Domain-transform derivative between each pixel and its left / upper neighbour (first is unused).
        dx = 1 + scale * (guide[..., :, 1:] - guide[..., :, :-1]).abs()
        dy = 1 + scale * (guide[..., 1:, :] - guide[..., :-1, :]).abs()
        dx = torch.cat([torch.ones_like(dx[..., :1]), dx], dim=-1)
        dy = torch.cat([torch.ones_like(dy[..., :1, :]), dy], dim=-2)
        self.shape = tuple(guide.shape)
        self.passes = []
        for k in range(iterations):
            sigma_k = sigma_space * math.sqrt(3) * 2 ** (iterations - k - 1) / math.sqrt(4**iterations - 1)
            feedback = math.exp(-math.sqrt(2) / sigma_k)
            # The filtered axis first: the scan slices along it.
            across = _RecursivePass((feedback ** dx).permute(3, 0, 1, 2).contiguous(), block)  # (W, B, 1, H)
            down = _RecursivePass((feedback ** dy).permute(2, 0, 1, 3).contiguous(), block)  # (H, B, 1, W)
            self.passes.append((across, down))

    def __call__(self, signal: torch.Tensor) -> torch.Tensor:
        """The filtered signal (B, C, H, W), for the guide's batch and size."""
        if signal.shape[0] != self.shape[0] or signal.shape[-2:] != self.shape[-2:]:
            raise ValueError(f"signal {tuple(signal.shape)} does not fit the guide {self.shape}")
        horizontal = signal.float().permute(3, 0, 1, 2).contiguous()  # (W, B, C, H)
        for across, down in self.passes:
            vertical = across(horizontal).permute(3, 1, 2, 0).contiguous()  # (H, B, C, W)
            horizontal = down(vertical).permute(3, 1, 2, 0).contiguous()
        return horizontal.permute(1, 2, 3, 0)


def domain_transform_filter(
    signal: torch.Tensor, lightness: torch.Tensor, sigma_space: float = SIGMA_SPACE,
    sigma_range: float = SIGMA_RANGE, iterations: int = ITERATIONS,
) -> torch.Tensor:
    """Edge-preserving smoothing of `signal` (B, C, H, W) guided by L* (B, 1, H, W) in 0-100
    (`DomainTransform`, made for this one signal)."""
    return DomainTransform(lightness, sigma_space, sigma_range, iterations)(signal)


def propagate_points(lightness: torch.Tensor, point_maps: torch.Tensor,
                     transform: DomainTransform | None = None) -> torch.Tensor:
    """L* (B, 1, H, W) in 0-100 and point maps (B, 3, H, W: a, b normalised, mask) ->
    (B, 3, H, W): spread a*, spread b* (normalised, 0 where no point reaches) and the reach in [0, 1].
    `transform`: the L*'s `DomainTransform` when the caller keeps one (made here otherwise).

    The reach is log10 of the filtered mask (the share of all point mass that arrives), mapped from
    [1e-6, 1] to [0, 1]: the mass spans orders of magnitude (it drops a hundredfold across a strong
    edge), so a log scale lets the network see both near and far how much to trust the spread colour.
    """
    mask = point_maps[:, 2:3].float()
    if not bool(mask.any()):
        return torch.zeros_like(point_maps, dtype=torch.float32)
    weighted = torch.cat([point_maps[:, :2].float() * mask, mask], dim=1)
    spread = (DomainTransform(lightness) if transform is None else transform)(weighted)
    mass = spread[:, 2:3].clamp_min(0)
    colour = torch.where(mass > 1e-6, spread[:, :2] / mass.clamp_min(1e-6), torch.zeros_like(spread[:, :2]))
    reach = (1 + torch.log10(mass.clamp_min(1e-12)) / 6).clamp(0.0, 1.0)
    return torch.cat([colour.clamp(-1, 1), reach], dim=1)
