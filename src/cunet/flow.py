"""Optical flow between frames, shared by the video pipeline (`cunet.video`) and the flicker measures
(`cunet.flicker`): warping by a flow field and the forward-backward occlusion check.

Flow fields follow OpenCV's convention: flow f from image a to image b means a(x) ~ b(x + f(x)).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Forward-backward check (Sundaram et al. 2010, as Lai et al. 2018 use it): a pixel is occluded
#: where |f + b|^2 > 0.01 (|f|^2 + |b|^2) + 0.5 px^2.
OCCLUSION_SLACK = 0.5


def dis_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense optical flow (h, w, 2) float32 from one uint8 image to another (OpenCV's DIS, fast preset)."""
    solver = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return solver.calc(source, target, None)


def warp(image: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """`image` (h, w[, c]) sampled at x + motion(x), bilinear, edges repeated."""
    height, width = motion.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + motion[..., 0], grid_y + motion[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Where the flow to the previous frame (`backward`, on this frame's pixels) and the flow from it
    (`forward`, on the previous frame's pixels) undo each other: (h, w) bool, False where occluded."""
    returned = warp(forward, backward)
    error = ((backward + returned) ** 2).sum(-1)
    return error <= 0.01 * ((backward ** 2).sum(-1) + (returned ** 2).sum(-1)) + OCCLUSION_SLACK
