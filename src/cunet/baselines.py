"""Classical colourisation baselines, run in the same harness as CU-net.

Each takes the photo's L* (H, W) in [0, 100] and returns a*b* (H, W, 2); the caller joins them with
the same L*, exactly as for the network, so that every method differs only in its colours.

- gray: a*b* = 0 (the paper's "predicted grayscale" row).
- Reinhard et al. 2002: match the reference's per-channel Lab mean and standard deviation.
- Welsh et al. 2002: "transferring colour to greyscale images": luminance-remapped reference
  samples on a jittered grid, matched by luminance and neighbourhood standard deviation.
- Levin et al. 2004: "colorization using optimization": a*b* that vary only where L* varies,
  fixed at the hint pixels; a sparse linear system solved with SciPy's SuperLU.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

from cunet.color import AB_SCALE


def gray_ab(lightness: np.ndarray) -> np.ndarray:
    """a*b* = 0 everywhere."""
    return np.zeros((*lightness.shape, 2))


def reinhard_transfer(source_lab: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab: each channel of `source_lab` (H, W, 3) is shifted and scaled to
    the reference's mean and standard deviation. A flat source channel (a gray photo's a*b*) takes the
    reference's mean."""
    source_mean, source_std = source_lab.mean(axis=(0, 1)), source_lab.std(axis=(0, 1))
    reference_mean, reference_std = reference_lab.mean(axis=(0, 1)), reference_lab.std(axis=(0, 1))
    scale = np.divide(reference_std, source_std, out=np.zeros(3), where=source_std > 1e-6)
    return (source_lab - source_mean) * scale + reference_mean


def reinhard_ab(lightness: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    """Reinhard transfer onto a gray photo (its a*b* are 0), keeping the photo's own L*."""
    source = np.dstack([lightness, np.zeros_like(lightness), np.zeros_like(lightness)])
    return reinhard_transfer(source, reference_lab)[..., 1:]


def _local_std(lightness: np.ndarray, window: int) -> np.ndarray:
    mean = ndimage.uniform_filter(lightness, window, mode="reflect")
    square = ndimage.uniform_filter(lightness**2, window, mode="reflect")
    return np.sqrt(np.maximum(square - mean**2, 0.0))


def welsh_ab(
    lightness: np.ndarray, reference_lab: np.ndarray, samples: int = 200, window: int = 5, seed: int = 0
) -> np.ndarray:
    """Welsh et al. 2002 global matching: each gray pixel takes the a*b* of the reference sample whose
    (remapped luminance, neighbourhood std) is nearest, with the two weighted equally."""
    ref_l = reference_lab[..., 0]
    spread = ref_l.std()
    remapped = (ref_l - ref_l.mean()) * (lightness.std() / spread if spread > 1e-6 else 0.0) + lightness.mean()
    ref_std = _local_std(remapped, window)
    rng = np.random.default_rng(seed)
    side = max(1, int(np.sqrt(samples)))
    cell_y, cell_x = ref_l.shape[0] / side, ref_l.shape[1] / side
    grid_y, grid_x = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    ys = np.minimum(((grid_y + rng.random(grid_y.shape)) * cell_y).astype(int), ref_l.shape[0] - 1).ravel()
    xs = np.minimum(((grid_x + rng.random(grid_x.shape)) * cell_x).astype(int), ref_l.shape[1] - 1).ravel()
    tree = cKDTree(np.column_stack([remapped[ys, xs], ref_std[ys, xs]]))
    query = np.column_stack([lightness.ravel(), _local_std(lightness, window).ravel()])
    _, nearest = tree.query(query)
    return reference_lab[ys[nearest], xs[nearest], 1:].reshape(*lightness.shape, 2)


def levin_ab(lightness: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
    """Levin et al. 2004: minimise sum_r (U(r) - sum_s w_rs U(s))^2 over 3x3 neighbourhoods, with
    w_rs proportional to exp(-(Y(r) - Y(s))^2 / (2 sigma_r^2)), U fixed to the hint at hinted pixels.

    Args:
        lightness: (H, W) L* in [0, 100].
        hint_ab: (H, W, 2) a*b* at the hinted pixels (anything elsewhere).
        hint_mask: (H, W) bool, True where a hint was given.
    """
    height, width = lightness.shape
    if not hint_mask.any():
        return gray_ab(lightness)
    y = lightness / 100.0
    count = height * width
    index = np.arange(count).reshape(height, width)
    padded_y = np.pad(y, 1, mode="edge")
    padded_index = np.pad(index, 1, mode="constant", constant_values=-1)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    neighbours_y = np.stack([padded_y[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in offsets])
    neighbours = np.stack([padded_index[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in offsets])
    valid = neighbours >= 0
    window_values = np.concatenate([y[None], np.where(valid, neighbours_y, y[None])])
    variance = window_values.var(axis=0)
    sigma2 = np.maximum(0.6 * variance, 2e-6)  # a floor keeps flat regions from dividing by zero
    weights = np.where(valid, np.exp(-((neighbours_y - y[None]) ** 2) / (2 * sigma2[None])), 0.0)
    weights /= np.maximum(weights.sum(axis=0, keepdims=True), 1e-12)
    free = ~hint_mask
    rows = np.concatenate([index.ravel(), np.repeat(index[None], len(offsets), 0)[valid & free[None]]])
    cols = np.concatenate([index.ravel(), neighbours[valid & free[None]]])
    values = np.concatenate([np.ones(count), -weights[valid & free[None]]])
    matrix = sparse.csc_matrix((values, (rows, cols)), shape=(count, count))
    # Minimum-degree ordering on A^T + A suits this nearly symmetric 9-point stencil; it factorised
    # 256x256 photos faster than SuperLU's default COLAMD ordering when measured here.
    solver = splu(matrix, permc_spec="MMD_AT_PLUS_A")
    rhs = np.where(hint_mask[..., None], hint_ab, 0.0).reshape(count, 2)
    solution = solver.solve(rhs)
    return np.clip(solution.reshape(height, width, 2), -AB_SCALE, AB_SCALE)
