"""Quantised a*b* bins inside the sRGB gamut, and histograms over them.

Rule (stated so it can be recomputed and tested): a*b* is cut into 10x10 cells centred on
multiples of 10 from -110 to 110 (a 23x23 grid). A cell is *in gamut* when at least one of the
16.7 million 8-bit sRGB colours has its a*b* inside it. This gives 261 bins; the paper's 313 is
Zhang et al.'s partly data-derived set, which cannot be recomputed exactly.

Applying the rule converts every 8-bit colour (about 3 s), so its result ships as a constant,
`IN_GAMUT_ROWS`, and a test recomputes it by the rule (`occupied_cells_by_rule`).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from cunet.color import rgb_to_lab

GRID_STEP = 10.0
GRID_MIN = -110.0
GRID_SIZE = 23


def _cell_index(ab: torch.Tensor) -> torch.Tensor:
    """(*, 2, H, W) a*b* -> flat grid-cell index (*, H, W) in [0, GRID_SIZE**2)."""
    cells = torch.floor((ab - (GRID_MIN - GRID_STEP / 2)) / GRID_STEP).long().clamp(0, GRID_SIZE - 1)
    return cells.select(-3, 0) * GRID_SIZE + cells.select(-3, 1)


#: The rule's result: for each grid row a* = -110 + 10 i, the first and last b* column j (b* = -110 + 10 j)
#: of its in-gamut cells, which are contiguous in every row.
IN_GAMUT_ROWS = {
    2: (19, 19), 3: (15, 19), 4: (13, 20), 5: (11, 20), 6: (9, 20), 7: (8, 20), 8: (7, 20), 9: (7, 20),
    10: (6, 20), 11: (5, 20), 12: (4, 19), 13: (4, 19), 14: (3, 19), 15: (2, 19), 16: (2, 18), 17: (1, 18),
    18: (0, 18), 19: (0, 18), 20: (2, 11), 21: (4, 6),
}


@lru_cache(maxsize=1)
def _occupied_cells() -> torch.Tensor:
    occupied = torch.zeros(GRID_SIZE * GRID_SIZE, dtype=torch.bool)
    for row, (first, last) in IN_GAMUT_ROWS.items():
        occupied[row * GRID_SIZE + first: row * GRID_SIZE + last + 1] = True
    return occupied


def occupied_cells_by_rule() -> torch.Tensor:
    """The in-gamut mask recomputed from all 16.7 M 8-bit sRGB colours (slow: for the test of the constant)."""
    values = torch.arange(256, dtype=torch.float32) / 255.0
    green, blue = torch.meshgrid(values, values, indexing="ij")
    occupied = torch.zeros(GRID_SIZE * GRID_SIZE, dtype=torch.bool)
    for red in values:
        rgb = torch.stack([red.expand_as(green), green, blue])
        occupied[_cell_index(rgb_to_lab(rgb)[1:]).flatten()] = True
    return occupied


def _grid_centres() -> torch.Tensor:
    axis = GRID_MIN + GRID_STEP * torch.arange(GRID_SIZE, dtype=torch.float32)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1)


@lru_cache(maxsize=1)
def in_gamut_bins() -> torch.Tensor:
    """The in-gamut bin centres, shape (Q, 2) as (a*, b*), in grid order."""
    return _grid_centres()[_occupied_cells()]


def num_bins() -> int:
    """Q, the number of in-gamut bins (261 under this module's rule)."""
    return int(in_gamut_bins().shape[0])


@lru_cache(maxsize=1)
def _cell_to_bin() -> torch.Tensor:
    """Each grid cell's nearest in-gamut bin, so colours just outside the gamut still count."""
    return torch.cdist(_grid_centres(), in_gamut_bins()).argmin(dim=1)


def quantize_ab(ab: torch.Tensor) -> torch.Tensor:
    """(*, 2, H, W) a*b* -> index of the in-gamut bin each pixel falls in, shape (*, H, W)."""
    return _cell_to_bin()[_cell_index(ab)]


def ab_histogram(ab: torch.Tensor) -> torch.Tensor:
    """(*, 2, H, W) a*b* -> normalised histogram over the in-gamut bins, shape (*, Q), sums to 1."""
    if ab.dim() < 3 or ab.shape[-3] != 2:
        raise ValueError(f"ab must have shape (*, 2, H, W), got {tuple(ab.shape)}")
    index = quantize_ab(ab).flatten(-2)
    counts = torch.zeros(*index.shape[:-1], num_bins(), dtype=torch.float32)
    counts.scatter_add_(-1, index, torch.ones_like(index, dtype=torch.float32))
    return counts / index.shape[-1]


def smoothed_prior(histogram: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """An empirical a*b* distribution (Q,) smoothed by a Gaussian of `sigma` a*b* units over the bin
    centres, renormalised (Zhang et al. 2016 use sigma = 5): a colour's mass reaches its neighbour bins,
    so the rebalancing does not hinge on one bin's count (bins far from any seen colour stay near 0;
    the uniform share of `rebalancing_weights` bounds their weight)."""
    centres = in_gamut_bins()
    kernel = torch.exp(-torch.cdist(centres, centres) ** 2 / (2 * sigma**2))
    prior = kernel @ histogram.float()
    return prior / prior.sum()


def rebalancing_weights(prior: torch.Tensor, mix: float = 0.5) -> torch.Tensor:
    """Per-bin loss weights (Q,) that make rare (saturated) colours count: w ~ 1 / ((1 - mix) p + mix / Q),
    scaled so that the prior's expected weight is 1 (Zhang et al. 2016, eq. 4, lambda = `mix`)."""
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must lie in [0, 1], got {mix}")
    weights = 1.0 / ((1 - mix) * prior + mix / prior.numel())
    return weights / (prior * weights).sum()


def _bin_weights(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(*, Q, H, W) logits -> (*, H, W, Q) exp((logit - max) / T): softmax numerators, bins last.

    Two things made the plain softmax twice as slow at the working size and nearly three times at
    256 (`benchmarks/update_parts.py`): it reduced over the strided bin axis of an NCHW tensor (the
    channels-last runtime's logits are already bins-last, so there the reordering is free), and at
    T = 0.38 most bins' probabilities fall below 1e-38, where floats turn denormal and arithmetic on
    them is far slower. Exponents are clamped at -80 (e^-80 = 2e-35 of the likeliest bin: nothing to
    any sum).
    """
    weights = logits.float().movedim(-3, -1).contiguous() / temperature  # a new tensor: the caller's stays
    weights -= weights.amax(dim=-1, keepdim=True)
    return weights.clamp_(min=-80.0).exp_()


def bin_probabilities(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """(*, Q, H, W) logits over bins -> (*, H, W, Q) probabilities, bins last."""
    weights = _bin_weights(logits, temperature)
    return weights.div_(weights.sum(dim=-1, keepdim=True))


@lru_cache(maxsize=1)
def _bin_moments() -> torch.Tensor:
    """(Q, 3): each bin's (a*, b*, 1). Weights times it sum to (sum w a*, sum w b*, sum w) at once."""
    bins = in_gamut_bins()
    return torch.cat([bins, torch.ones(len(bins), 1)], dim=1)


def decode_distribution(logits: torch.Tensor, temperature: float = 0.38) -> torch.Tensor:
    """(*, Q, H, W) logits over bins -> (*, 2, H, W) a*b* by the annealed mean (Zhang et al. 2016).

    Temperature 1 is the plain mean (safe, desaturated); towards 0 it becomes the mode (vivid).
    """
    sums = _bin_weights(logits, temperature) @ _bin_moments()
    return (sums[..., :2] / sums[..., 2:]).movedim(-1, -3).contiguous()


#: Pixels per chunk of `annealed_mean_of_head`: of 1024-8192, 4096 is the fastest at working size 128
#: and within 3 % of the fastest (8192) at 256 (`benchmarks/update_parts.py --chunks`).
HEAD_CHUNK_PIXELS = 4096


def annealed_mean_of_head(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                          temperature: float = 0.38, chunk_pixels: int = HEAD_CHUNK_PIXELS) -> torch.Tensor:
    """The distribution head (a 1x1 conv: `weight` (Q, C), `bias` (Q,)) on features (B, C, H, W) and
    the annealed mean of its bins -> a*b* (B, 2, H, W): `decode_distribution(conv(features))`, fused.

    The head's full logits are Q = 261 floats a pixel, 17 M at a working size of 256: far larger
    than the cache, so the separate conv, max, exp and weighted sum each stream them through memory.
    Here they are made and consumed a chunk of pixels at a time (the temperature folded into the
    head's weights), and the weighted sum is one small matrix product with the bins' (a*, b*, 1).
    The chunk's buffers are allocated once: a fresh multi-megabyte tensor per chunk may be a fresh
    mmap from glibc, whose pages fault in anew (`cunet.allocator`); `benchmarks/update_parts.py`
    times both.
    """
    batch, channels, height, width = features.shape
    pixels = features.float().permute(0, 2, 3, 1).reshape(batch * height * width, channels)  # free when channels-last
    scaled_weight = (weight.float().reshape(len(bias), channels) / temperature).to(pixels.device)
    scaled_bias = (bias.float() / temperature).to(pixels.device)
    moments = _bin_moments().T.contiguous().to(pixels.device)  # (3, Q): MKL's fast layout for logits @ moments.T
    sums = torch.empty(len(pixels), 3, device=pixels.device)
    chunk = min(chunk_pixels, len(pixels))
    logits_buffer = torch.empty(chunk, len(bias), device=pixels.device)
    peak_buffer = torch.empty(chunk, 1, device=pixels.device)
    for start in range(0, len(pixels), chunk):
        stop = min(len(pixels), start + chunk)
        logits, peak = logits_buffer[:stop - start], peak_buffer[:stop - start]
        torch.addmm(scaled_bias, pixels[start:stop], scaled_weight.T, out=logits)
        torch.amax(logits, dim=1, keepdim=True, out=peak)
        logits.sub_(peak).clamp_(min=-80.0).exp_()  # see _bin_weights on the clamp
        torch.mm(logits, moments.T, out=sums[start:stop])
    ab = sums[:, :2] / sums[:, 2:]
    return ab.reshape(batch, height, width, 2).permute(0, 3, 1, 2).contiguous()
