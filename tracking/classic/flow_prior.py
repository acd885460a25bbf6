"""Dense flow started from a feature homography (``ClassicTrackerConfig.flow_prior_features``, off by default).

A follow camera turns 8–15° between sampled frames (pipeline_fidelity's follow scenes: 60 frames at
12 fps sampled to 32), so the background moves 40–80 px at the working size, and on 24 of the 31
frame pairs of follow scene 115 (26 of 31 on 120) DIS converges on the subject the camera keeps
still in the image: the static pixels' flow misses the true one by about the whole displacement
(median 26–80 px), the background model is fitted to that wrong flow and the subject shows no
residual. Corner matches tracked with LK fail alike (brick walls repeat within its window).
ORB features matched by their binary descriptors (no search window) and a MAGSAC++ homography
find the turn on every pair there with 1500 features (median error against the true static flow 0.5–14 px); DIS
started from that homography's flow then finds the background within 0.5–3.3 px.

:func:`feature_homography` fits the homography, :func:`flow_misses` says how far the plain flow
is from the matches it explains, and :func:`prior_flow` takes DIS again from the homography's
flow where that explains frame a better than the plain flow by a margin: what stays put in the
image (the followed subject, which plain DIS does find) keeps its own flow. Used by
:func:`~recon4d.tracking.classic.motion.pair_motion` only where the plain flow misses the
matches, so a still, panning or slowly moving camera (whose plain flow is right) is unchanged.

Limit: DIS, plain or started, drags the ground beside a subject that stays put with it, so a halo
around the subject is flagged too and joins subjects that walk side by side into one detection.
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.tracking.classic.background import flow_at, homography_flow, sample_along_flow

__all__ = ["feature_homography", "flow_misses", "prior_flow", "warp_error"]

MIN_INLIERS = 20
"""Fewest feature matches a homography must explain to be used."""


def feature_homography(gray_a: np.ndarray, gray_b: np.ndarray, n_features: int,
                       inlier_px: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(homography (3, 3) a → b, its inlier matches (M, 2) float32 in a and in b) of the ORB features of
    two (h, w) uint8 frames (at most ``n_features`` each, cross-checked Hamming matches, MAGSAC++ within
    ``inlier_px``), or None with fewer than :data:`MIN_INLIERS` inliers."""
    orb = cv2.ORB_create(n_features, fastThreshold=10, edgeThreshold=15, patchSize=15)
    keys_a, descriptors_a = orb.detectAndCompute(gray_a, None)
    keys_b, descriptors_b = orb.detectAndCompute(gray_b, None)
    if descriptors_a is None or descriptors_b is None:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(descriptors_a, descriptors_b)
    if len(matches) < MIN_INLIERS:
        return None
    points_a = np.float32([keys_a[match.queryIdx].pt for match in matches])
    points_b = np.float32([keys_b[match.trainIdx].pt for match in matches])
    homography, mask = cv2.findHomography(points_a, points_b, cv2.USAC_MAGSAC, inlier_px, maxIters=2000,
                                          confidence=0.995)
    if homography is None or mask is None or int(mask.sum()) < MIN_INLIERS:
        return None
    inliers = mask.ravel() > 0
    return homography, points_a[inliers], points_b[inliers]


def flow_misses(flow: np.ndarray, points_a: np.ndarray, points_b: np.ndarray) -> float:
    """Median distance (px) between ``flow`` (h, w, 2) at the (N, 2) ``points_a`` (nearest pixel) and their
    matches' displacement ``points_b`` − ``points_a``."""
    return float(np.median(np.linalg.norm(flow_at(flow, points_a) - (points_b - points_a), axis=1)))


def warp_error(gray_a: np.ndarray, gray_b: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(h, w) float32 5 × 5 mean |b(p + flow(p)) − a(p)| (grey levels): how well ``flow`` explains a from b."""
    warped = sample_along_flow(gray_b.astype(np.float32), flow)
    return cv2.blur(np.abs(warped - gray_a.astype(np.float32)), (5, 5))


def prior_flow(gray_a: np.ndarray, gray_b: np.ndarray, dis: cv2.DISOpticalFlow, flow: np.ndarray,
               homography: np.ndarray, margin: float) -> np.ndarray:
    """(h, w, 2) float32 ``flow`` a → b where DIS started from ``homography``'s flow explains a better
    (:func:`warp_error`) by more than ``margin`` grey levels; the other pixels as they were.

    ``dis`` should serve only such started calls: OpenCV's DIS keeps state from a call given a starting
    flow into its next call without one (a different flow), so a shared object would make the plain flow
    depend on which pairs a worker ran before. A ``margin`` keeps the plain flow where both explain the
    frame nearly alike (the blank body of a followed subject, which the started flow drags with the
    background), but also on the ground beside the subject, which plain DIS drags with it: at 2 grey levels
    the followed subjects of 115 and 120 were flagged as much as at 0 (benchmarks/motion_evidence.py, pixels
    .67/.60 against .66/.62) with more of the rest (false .095/.156 against .057/.131), so 0 is the default.
    """
    start = homography_flow(homography, (gray_a.shape[1], gray_a.shape[0]))
    other = dis.calc(gray_a, gray_b, start)
    better = warp_error(gray_a, gray_b, other) + np.float32(margin) < warp_error(gray_a, gray_b, flow)
    return np.where(better[..., None], other, flow)
