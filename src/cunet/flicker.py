"""How much a coloured film flickers: the two measures video colourisation papers report.

- **Warping error** (Lai et al. 2018, "Learning Blind Video Temporal Consistency"): optical flow on
  the *input* frames; each output frame is compared with the previous output warped to it, over the
  pixels that are neither occluded (forward-backward check) nor on a motion boundary; the squared
  RGB difference (RGB in [0, 1], summed over the channels) averaged over those pixels and the frames.
  Two flows measure it (`METRIC_FLOWS`): OpenCV's Farneback, a different method from the DIS flow
  `cunet.video` stabilises with, so that the stabiliser is not graded by its own flow; and a fine DIS
  (medium preset, every pyramid level down to full resolution, patches every 2 px, 10 variational
  refinement steps), which explains the gray DAVIS clips' own frames far better (their warping error
  0.0028 against Farneback's 0.0112; Lai et al. used FlowNet2, not available here). Every colouring
  keeps the input's L*, so the error the flow makes on the lightness is a floor all of them share; the
  finer flow lowers it and lets more of the colour's own flicker show.
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


def fine_dis_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """DIS flow at its finest (see the module's docstring); about 4x Farneback's time."""
    solver = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    solver.setFinestScale(0)
    solver.setPatchStride(2)
    solver.setVariationalRefinementIterations(10)
    return solver.calc(source, target, None)


#: The flows a warping error can be measured with, by name.
METRIC_FLOWS = {"farneback": farneback_flow, "fine-dis": fine_dis_flow}


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


Motion = list[tuple[np.ndarray, np.ndarray]]


def input_motion(inputs: list[np.ndarray], flow: str = "farneback") -> Motion:
    """For each frame t >= 1 of `inputs` (uint8 RGB or gray): its flow to frame t - 1 and the mask of
    its pixels that count (`valid_mask`). Depends on the inputs alone, so one clip's motion can grade
    every colouring of it."""
    if flow not in METRIC_FLOWS:
        raise ValueError(f"flow must be one of {', '.join(METRIC_FLOWS)}, not {flow!r}")
    method = METRIC_FLOWS[flow]
    grays = [frame if frame.ndim == 2 else _gray(frame) for frame in inputs]
    motion = []
    for before, now in zip(grays, grays[1:]):
        backward = method(now, before)
        motion.append((backward, valid_mask(backward, method(before, now))))
    return motion


def warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray] | None = None, flow: str = "farneback",
                  motion: Motion | None = None) -> float:
    """Mean warping error of coloured frames `outputs` (uint8 RGB) with the flow of `inputs` (the
    frames they were made from, uint8 RGB or gray), or with their `input_motion`. At least two frames."""
    return _warping_error([o.astype(np.float32) / 255 for o in outputs], inputs, flow, motion)


def colour_warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray] | None = None, flow: str = "farneback",
                         motion: Motion | None = None) -> float:
    """`warping_error` on the outputs' a*b* (CIE L*a*b*, a*b* units squared): flicker of colour alone."""
    return _warping_error([_ab(o) for o in outputs], inputs, flow, motion)


def _warping_error(outputs: list[np.ndarray], inputs, flow: str, motion: Motion | None) -> float:
    if motion is not None and (inputs is not None or flow != "farneback"):
        raise ValueError("warping_error takes the inputs (and a flow) or their motion, not both")
    if motion is None:
        if inputs is None or len(outputs) != len(inputs):
            raise ValueError("warping_error needs as many inputs as outputs (or their motion)")
        motion = input_motion(inputs, flow) if len(inputs) >= 2 else []
    if len(outputs) < 2 or len(motion) != len(outputs) - 1:
        raise ValueError("warping_error needs at least two frames and one flow between each two")
    errors = []
    for t, (backward, mask) in enumerate(motion, start=1):
        if not mask.any():
            continue
        difference = ((outputs[t] - warp(outputs[t - 1], backward)) ** 2).sum(-1)
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
