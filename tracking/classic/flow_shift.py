"""Dense flow past DIS's reach (``ClassicTrackerConfig.flow_shift_px``, off by default).

A follow camera that turns 10–15° a step moves the picture further than DIS's pyramid reaches, and
DIS locks onto the subject the camera follows, which stays put in the image. :func:`global_shift`
(:mod:`recon4d.shift_search`, shared with the classic reconstruction's feature tracks) finds the
background's shift by counting the textured pixels each shift explains (a count, so the subject's own
pixels at shift 0 lose to the larger background), and :func:`shifted_flow` takes
DIS again from that start where it explains the frame better. Used by :func:`~recon4d.tracking.
classic.motion.pair_motion`.
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.shift_search import global_shift
from recon4d.tracking.classic.background import sample_along_flow

__all__ = ["global_shift", "shifted_flow"]


def _warp_error(gray_a: np.ndarray, gray_b: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(h, w) float32 5 × 5 mean |b(p + flow(p)) − a(p)|: how well ``flow`` explains a from b."""
    warped = sample_along_flow(gray_b.astype(np.float32), flow)
    return cv2.blur(np.abs(warped - gray_a.astype(np.float32)), (5, 5))


def shifted_flow(gray_a: np.ndarray, gray_b: np.ndarray, dis: cv2.DISOpticalFlow, flow: np.ndarray,
                 shift: tuple[float, float]) -> np.ndarray:
    """(h, w, 2) float32 ``flow`` a → b where DIS started from the global ``shift`` explains a better
    (:func:`_warp_error`), the other pixels as they were: a picture that moves further than DIS's pyramid
    reaches (a follow camera turning 10-15° a step) is found from the right start, and what stays put (the
    subject it follows) keeps its own flow."""
    start = np.empty_like(flow)
    start[..., 0], start[..., 1] = shift
    other = dis.calc(gray_a, gray_b, start)
    better = _warp_error(gray_a, gray_b, other) < _warp_error(gray_a, gray_b, flow)
    return np.where(better[..., None], other, flow)
