"""How much a coloured film flickers: the two measures video colourisation papers report.

- **Warping error** (Lai et al. 2018, "Learning Blind Video Temporal Consistency"): optical flow on
  the *input* frames; each output frame is compared with the previous output warped to it, over the
  pixels that are neither occluded (forward-backward check) nor on a motion boundary; the squared
  RGB difference (RGB in [0, 1], summed over the channels) averaged over those pixels and the frames.
  The flow here is OpenCV's Farneback, not the DIS flow `cunet.video` stabilises with, so that the
  stabiliser is not graded by its own flow.
- **CDC**, colour distribution consistency (Lei & Chen 2019; with steps 1, 2 and 4 as Liu et al.
  2021 use it): the Jensen-Shannon divergence (natural log) between the 256-bin histograms of each
  RGB channel of frames t and t + k, averaged over channels, frames and k in (1, 2, 4).
Lower is steadier for both.
"""

from __future__ import annotations

import cv2
import numpy as np

from cunet.flow import consistent, warp

CDC_STEPS = (1, 2, 4)


def farneback_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flow (h, w, 2) from one uint8 gray frame to another: source(x) ~ target(x + flow(x))."""
    return cv2.calcOpticalFlowFarneback(source, target, None, 0.5, 4, 15, 5, 5, 1.1, 0)


def valid_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame t (h, w) bool that are not occluded and not on a motion boundary (Sundaram et
    al.'s criteria, as in Lai et al.'s code). `backward`: flow t -> t-1; `forward`: t-1 -> t."""
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    boundary = du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2 > 0.01 * (backward ** 2).sum(-1) + 0.002
    return consistent(backward, forward) & ~boundary


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _ab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 1:]


def warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    """Mean warping error of coloured frames `outputs` (uint8 RGB) with the flow of `inputs` (the
    frames they were made from, uint8 RGB or gray). At least two frames."""
    return _warping_error([o.astype(np.float32) / 255 for o in outputs], inputs)


def colour_warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    """`warping_error` on the outputs' a*b* (CIE L*a*b*, a*b* units squared): flicker of colour alone."""
    return _warping_error([_ab(o) for o in outputs], inputs)


def _warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    if len(outputs) != len(inputs) or len(outputs) < 2:
        raise ValueError("warping_error needs as many inputs as outputs, at least two")
    errors = []
    for t in range(1, len(outputs)):
        now = inputs[t] if inputs[t].ndim == 2 else _gray(inputs[t])
        before = inputs[t - 1] if inputs[t - 1].ndim == 2 else _gray(inputs[t - 1])
        backward, forward = farneback_flow(now, before), farneback_flow(before, now)
        mask = valid_mask(backward, forward)
        if not mask.any():
            continue
        warped = warp(outputs[t - 1], backward)
        difference = ((outputs[t] - warped) ** 2).sum(-1)
        errors.append(float(difference[mask].mean()))
    return float(np.mean(errors)) if errors else 0.0


def _histograms(frame: np.ndarray) -> np.ndarray:
    """(3, 256) normalised per-channel histograms of a uint8 RGB frame."""
    counts = np.stack([np.bincount(frame[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64)
    return counts / counts.sum(1, keepdims=True)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JS divergence (natural log) between distributions along the last axis."""
    middle = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / middle), 0.0).sum(-1)
        right = np.where(q > 0, q * np.log(q / middle), 0.0).sum(-1)
    return 0.5 * (left + right)


def colour_distribution_consistency(outputs: list[np.ndarray], steps: tuple[int, ...] = CDC_STEPS) -> float:
    """CDC of coloured frames (uint8 RGB): mean JS divergence of channel histograms k frames apart."""
    histograms = [_histograms(frame) for frame in outputs]
    per_step = []
    for k in steps:
        if len(histograms) > k:
            per_step.append(np.mean([jensen_shannon(histograms[t], histograms[t + k]).mean()
                                     for t in range(len(histograms) - k)]))
    if not per_step:
        raise ValueError(f"CDC needs more than {min(steps)} frames")
    return float(np.mean(per_step))
