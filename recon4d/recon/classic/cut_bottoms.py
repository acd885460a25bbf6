"""Box bottoms that are not the feet, found by the height they imply (step 4 of the classic reconstructor).

A box's bottom is taken for the object's ground contact (:func:`~recon4d.recon.classic.object_depth.contact_depth`).
Where it is not — a prop hides the feet and the box stops at its edge (a track that starts hidden and
comes out gradually has no sudden rise for :func:`~recon4d.recon.classic.object_depth.hidden_bottoms`
to see), a shadow or something below joins the box — the contact is wrong by metres, and so is the
object's height that the contact and the box top imply: a rigid object keeps its height, so frames
whose implied height strays from the track's own typical height are suspect (:func:`height_misfits`).
There the object is placed from its box top instead: the depth at which the top ray is the track's
height above the ground (:func:`top_depth`), where that ray is far enough from the horizon to say so.

    height_misfits(boxes, usable, plane_camera, intrinsics, log_tol) -> misfit (K, T), height (K,), log_ratio (K, T)
    top_depth(boxes, plane_camera, intrinsics, height, min_px)       -> depth (K, T)
    misfit_depths(boxes, usable, plane_camera, intrinsics, log_tol)  -> misfit (K, T), depth (K, T)
    tops_moved(boxes, misfit, usable)                                -> (K, T) bool
"""

from __future__ import annotations

import warnings

import numpy as np

from recon4d.recon.classic.object_depth import implied_heights

MIN_TRUSTED_FRAMES = 5
"""Frames with a usable contact a track needs before its typical height is believed."""
MAX_HEIGHT_SPREAD = 0.1
"""A track's implied heights must have a median |log| deviation from their median below this for the
track to have a height at all: a box that flickers (a false track on a walking camera's clutter,
dev seeds 119 and 124) says nothing by its height, and re-placing it moved the QA answers about it."""
MAX_TOP_LOG = 0.5
"""A frame whose implied height is more than this |log| off the track's (a factor 1.65) has a box
that is a fragment or a merge at either end: its top is not trusted either (:func:`misfit_depths`)."""
MIN_HEIGHT_GAP = 0.3
"""The track's height must differ from the camera's by this fraction of itself for :func:`top_depth`:
the depth moves by (height error) / (height − camera height), so a 5 % error in the height then
moves it by at most 17 %."""
TOP_MIN_PX = 8.0
"""The box top must be this many pixels off the horizon of the track's height (the row where a
point at that height is at infinity) for :func:`top_depth`: a pixel of top error then moves the
depth by at most 1/8."""


def height_misfits(boxes: np.ndarray, usable: np.ndarray, plane_camera: np.ndarray, intrinsics: np.ndarray,
                   log_tol: float, min_frames: int = MIN_TRUSTED_FRAMES,
                   max_spread: float = MAX_HEIGHT_SPREAD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames whose box bottom is not the object's ground contact, by the height it implies.

    boxes: (K, T, 4) xyxy clip pixels, NaN when unseen; usable: (K, T) bool frames whose contact
    is measured and whose top is inside the image; plane_camera: (T, 4) ground (n, h) per camera
    (n · X + h = 0, n up); intrinsics (3, 3) clip pixels. The height implied in a frame
    (:func:`~recon4d.recon.classic.object_depth.implied_heights`) is compared with the track's
    median over its usable frames (at least ``min_frames``, with a median |log| deviation from it
    up to ``max_spread``: a rigid object): |log ratio| > ``log_tol`` is a misfit.
    Returns misfit (K, T) bool, the track's height (K,) in world units (NaN when too few frames) and
    the log ratio (K, T) of each frame's implied height to it (NaN where unknown).
    """
    heights = implied_heights(boxes, usable, plane_camera, intrinsics)
    good = np.isfinite(heights) & (heights > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(np.where(good, heights, np.nan), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.where(good, np.log(heights / typical[:, None]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmedian(np.abs(log_ratio), axis=1)
    rigid = (good.sum(axis=1) >= min_frames) & (spread <= max_spread)
    typical = np.where(rigid, typical, np.nan)
    log_ratio = np.where(rigid[:, None], log_ratio, np.nan)
    with np.errstate(invalid="ignore"):
        misfit = np.abs(log_ratio) > log_tol
    return misfit, typical, log_ratio


def top_depth(boxes: np.ndarray, plane_camera: np.ndarray, intrinsics: np.ndarray, height: np.ndarray,
              min_px: float = TOP_MIN_PX, min_gap: float = MIN_HEIGHT_GAP) -> np.ndarray:
    """Camera depth (K, T) at which the ray through each box's top centre is ``height`` (K,) above the ground.

    The head X = z · ray is ``height`` above the ground: n · X + h = height, so
    z = (height − h) / (n · ray). NaN where the top row is within ``min_px`` of where that ray
    would meet the height's plane at infinity (then the depth hangs on a pixel), where the height
    is within ``min_gap`` of itself from the camera's (an object as tall as the camera is high
    keeps its top on the horizon at every distance: the top tells nothing), where z <= 0, or
    where a box or height is unknown.
    """
    u = 0.5 * (boxes[..., 0] + boxes[..., 2])
    v = boxes[..., 1] + 0.5
    rays = np.stack([(u - intrinsics[0, 2]) / intrinsics[0, 0], (v - intrinsics[1, 2]) / intrinsics[1, 1],
                     np.ones_like(u)], axis=-1)
    facing = np.einsum("kti,ti->kt", rays, plane_camera[:, :3])
    # Moving the top by one pixel changes n · ray by about n_y / f_y.
    per_px = np.abs(plane_camera[None, :, 1]) / intrinsics[1, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        depth = (height[:, None] - plane_camera[None, :, 3]) / facing
        gap = np.abs(height[:, None] - plane_camera[None, :, 3]) >= min_gap * height[:, None]
        ok = (np.abs(facing) >= min_px * per_px) & gap & (depth > 0)
    return np.where(ok, depth, np.nan)


def misfit_depths(boxes: np.ndarray, usable: np.ndarray, plane_camera: np.ndarray, intrinsics: np.ndarray,
                  log_tol: float, max_top_log: float = MAX_TOP_LOG) -> tuple[np.ndarray, np.ndarray]:
    """Frames whose bottom is not the contact (:func:`height_misfits`) and their depth from the top.

    Arguments as :func:`height_misfits`. A misfit whose top moved more than its bottom since the
    nearest fitting frame (:func:`tops_moved`: a dog lowering its head, an arm raised) keeps its
    contact and is not returned. Returns misfit (K, T) bool and depth (K, T): the top's
    depth at the track's height (:func:`top_depth`) in misfit frames whose implied height is
    within ``max_top_log`` of the track's, NaN elsewhere (the caller bridges or holds those).
    """
    misfit, typical, log_ratio = height_misfits(boxes, usable, plane_camera, intrinsics, log_tol)
    misfit &= ~tops_moved(boxes, misfit, usable)
    placeable = misfit & (np.abs(log_ratio) <= max_top_log)
    return misfit, np.where(placeable, top_depth(boxes, plane_camera, intrinsics, typical), np.nan)


def tops_moved(boxes: np.ndarray, misfit: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(K, T) bool: misfit frames whose box top, not its bottom, is the end that strayed.

    boxes: (K, T, 4) xyxy; misfit, usable: (K, T) bool. Each misfit frame is compared with the
    nearest usable frame that fits (the earlier on a tie): the end that moved more in the image
    is the one that is not where the object is (on dev seed 121 a dog's top dropped 18 px as it
    lowered its head, its bottom 4 px; on 101 a dog coming out from behind a car kept its top
    within 2 px while its bottom came down 14 px).
    """
    out = np.zeros(misfit.shape, bool)
    fitting = usable & ~misfit
    for k in np.flatnonzero(misfit.any(axis=1)):
        known = np.flatnonzero(fitting[k])
        if len(known) == 0:
            continue
        for t in np.flatnonzero(misfit[k]):
            s = known[np.argmin(np.abs(known - t) * 2 + (known > t))]  # nearest; earlier on a tie
            out[k, t] = abs(boxes[k, t, 1] - boxes[k, s, 1]) > abs(boxes[k, t, 3] - boxes[k, s, 3])
    return out
