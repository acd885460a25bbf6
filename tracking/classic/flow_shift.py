"""Dense flow past DIS's reach (``ClassicTrackerConfig.flow_shift_px``, off by default).

A follow camera that turns 10–15° a step moves the picture further than DIS's pyramid reaches, and
DIS locks onto the subject the camera follows, which stays put in the image. :func:`global_shift`
finds the background's shift by counting the textured pixels each shift explains (a count, so the
subject's own pixels at shift 0 lose to the larger background), and :func:`shifted_flow` takes
DIS again from that start where it explains the frame better. Used by :func:`~recon4d.tracking.
classic.motion.pair_motion`.
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.tracking.classic.background import sample_along_flow

__all__ = ["global_shift", "shifted_flow"]


def global_shift(gray_a: np.ndarray, gray_b: np.ndarray, scale: int = 8, reach: float = 0.3,
                 tolerance: float = 12.0, least_px: float = 0.0) -> tuple[float, float]:
    """(dx, dy) px the picture moves from ``gray_a`` to ``gray_b`` (h, w) uint8, by exhaustive search at 1/``scale``.

    Every shift up to ``reach`` × the width (and half that × the height) is scored by the share of the textured
    pixels of a (Sobel magnitude ≥ 8 there) that b matches within ``tolerance`` grey levels (shifts of at least
    ``least_px`` only): a count, not a sum of
    differences, so a subject that stays put in the image (a camera following it) holds its own pixels at shift 0
    but not the rest of the frame's, which the background's shift takes when it covers more of the texture."""
    size = (max(gray_a.shape[1] // scale, 8), max(gray_a.shape[0] // scale, 8))
    small_a = cv2.resize(gray_a, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    small_b = cv2.resize(gray_b, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    textured_a = np.hypot(cv2.Sobel(small_a, cv2.CV_32F, 1, 0), cv2.Sobel(small_a, cv2.CV_32F, 0, 1)) >= 8.0
    width, height = size
    reach_x, reach_y = max(1, round(reach * width)), max(1, round(0.5 * reach * height))
    total = max(int(textured_a.sum()), 1)
    best, best_score = (0, 0), -1.0
    for dy in range(-reach_y, reach_y + 1):
        rows_a, rows_b = slice(max(0, -dy), min(height, height - dy)), slice(max(0, dy), min(height, height + dy))
        for dx in range(-reach_x, reach_x + 1):
            cols_a, cols_b = slice(max(0, -dx), min(width, width - dx)), slice(max(0, dx), min(width, width + dx))
            close = np.abs(small_a[rows_a, cols_a] - small_b[rows_b, cols_b]) < tolerance
            score = np.count_nonzero(close & textured_a[rows_a, cols_a]) / total
            if score > best_score and np.hypot(dx, dy) * scale >= least_px:
                best, best_score = (dx, dy), score
    return float(best[0] * scale), float(best[1] * scale)


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
