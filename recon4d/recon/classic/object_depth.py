"""Ground plane, metric scale cues and object depths (steps 3–4 of :mod:`recon4d.recon.classic.reconstructor`).

The ground is a RANSAC plane under the cameras (:func:`fit_ground_plane`), scaled so people
standing on it are 1.7 m tall where enough are seen whole (:func:`people_heights`), or without
parallax a prior tilted and raised as people's boxes say (:func:`tilt_and_height_from_people`). Each
object's depth per frame comes from its ground contact (not where the bottom is hidden behind
another track or a prop: :func:`bottom_occluded_masks`, :func:`hidden_bottoms`), bridged over
gaps, its apparent size or triangulated points on it (:func:`object_depths`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Callable

import numpy as np

from recon4d.recon.classic.camera_motion import project_points, retriangulate
from recon4d.recon.classic.config import ClassicConfig

_MIN_GROUND_POINTS = 20
_MAX_GROUND_TILT_DEG = 50.0  # ground normal vs the mean camera "up" (−y)


def fit_ground_plane(points: np.ndarray, world_to_cam: np.ndarray, tolerance: float,
                     rng: np.random.Generator, n_iter: int = 400) -> tuple[np.ndarray, float] | None:
    """RANSAC plane under the cameras: (normal (3,), offset) with normal · X + offset = 0, or None.

    points: (n, 3) candidate ground points (world); world_to_cam: (T, 3, 4). The normal points
    up, towards the cameras, and must lie within 50° of the cameras' mean up axis (−y); every
    camera must be above the plane. Inliers lie within ``tolerance`` (world units); the plane
    is refitted to them by least squares and needs at least 20 and 15 % of the points.
    """
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < _MIN_GROUND_POINTS:
        return None
    centres = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3])
    up = -world_to_cam[:, 1, :3].mean(axis=0)
    up /= np.linalg.norm(up)
    triples = points[rng.integers(0, len(points), size=(n_iter, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    length = np.linalg.norm(normals, axis=1)
    normals = normals / np.maximum(length, 1e-12)[:, None]
    normals *= np.where(normals @ up < 0, -1.0, 1.0)[:, None]
    offsets = -(normals * triples[:, 0]).sum(axis=1)
    heights = normals @ centres.T + offsets[:, None]  # (n_iter, T)
    upright = normals @ up > math.cos(math.radians(_MAX_GROUND_TILT_DEG))
    valid = (length > 1e-12) & upright & (heights > tolerance).all(axis=1)
    if not valid.any():
        return None
    counts = np.where(valid, (np.abs(normals @ points.T + offsets[:, None]) < tolerance).sum(axis=1), -1)
    best = np.argmax(counts)
    inliers = np.abs(points @ normals[best] + offsets[best]) < tolerance
    if inliers.sum() < max(_MIN_GROUND_POINTS, 0.15 * len(points)):
        return None
    centroid = points[inliers].mean(axis=0)
    spread = points[inliers] - centroid
    normal = np.linalg.eigh(spread.T @ spread)[1][:, 0]  # least-variance direction
    normal *= 1.0 if normal @ up > 0 else -1.0
    offset = -float(normal @ centroid)
    if not (normal @ centres.T + offset > 0).all():
        return None
    return normal, offset


def ground_candidates(points: np.ndarray, xy_px: np.ndarray, height: int) -> np.ndarray:
    """Map points whose track stays, on average, in the lower half of the image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_row = np.nanmean(xy_px[..., 1], axis=1)
    return points[np.isfinite(points[:, 0]) & (mean_row > 0.5 * height)]


CUE_NONE, CUE_CONTACT, CUE_BRIDGED, CUE_SIZE, CUE_TRIANGULATED, CUE_HELD = 0, 1, 2, 3, 4, 5


def bottom_occluded(boxes: np.ndarray) -> np.ndarray:
    """(K, T) bool: the bottom centre of box k lies inside a box whose bottom is lower.

    Such an object stands behind the other one, so its lowest visible pixel is not where it
    touches the ground and its box height is cut. boxes: (K, T, 4) xyxy, NaN when hidden.
    A coarse test for box-only tracks (loose boxes overlap more than the objects do);
    :func:`bottom_occluded_masks` is the one used when masks are known.
    """
    u = 0.5 * (boxes[..., 0] + boxes[..., 2])
    v = boxes[..., 3] - 0.5
    other = boxes[None]  # (1, K, T, 4) against (K, 1, T)
    with np.errstate(invalid="ignore"):
        inside = ((other[..., 0] <= u[:, None]) & (u[:, None] <= other[..., 2]) & (other[..., 1] <= v[:, None])
                  & (v[:, None] <= other[..., 3]) & (other[..., 3] > boxes[:, None, :, 3] + 0.5))
    inside &= ~np.eye(len(boxes), dtype=bool)[..., None]
    return inside.any(axis=1)


def bottom_occluded_masks(masks: Callable[[int, int], np.ndarray | None], n_objects: int, n_frames: int) -> np.ndarray:
    """(K, T) bool: another object's mask lies within 2 rows below object k's lowest pixels.

    masks(k, t): (H, W) bool or None when object k is not visible in frame t.
    """
    occluded = np.zeros((n_objects, n_frames), bool)
    for t in range(n_frames):
        frame = [masks(k, t) for k in range(n_objects)]
        present = [k for k in range(n_objects) if frame[k] is not None]
        if len(present) < 2:
            continue
        owner = np.full(frame[present[0]].shape, -1, np.int16)
        for k in present:
            owner[frame[k]] = k
        for k in present:
            rows = np.flatnonzero(frame[k].any(axis=1))
            bottom = rows[-1]
            cols = np.flatnonzero(frame[k][bottom])
            below = owner[bottom + 1 : bottom + 3][:, cols]
            occluded[k, t] = bool(((below >= 0) & (below != k)).any())
    return occluded


BOTTOM_RISE_FRACTION = 0.15
"""A box bottom rising by more than this fraction of the box height in one step, its top not
following, is hidden from then on (:func:`hidden_bottoms`)."""
TOP_SHARE = 0.5
"""... where "not following" is the top moving less than this share of the bottom's move."""
MAX_HIDDEN_GAP = 2
"""Frames a track may go unseen without losing its hidden-bottom state."""


def hidden_bottoms(boxes: np.ndarray, rise_fraction: float = BOTTOM_RISE_FRACTION,
                   top_share: float = TOP_SHARE, max_gap: int = MAX_HIDDEN_GAP) -> np.ndarray:
    """(K, T) bool: frames whose box bottom is hidden by something in front (a prop, a car, a wall).

    boxes: (K, T, 4) xyxy, NaN when not visible. An object walking behind an occluder keeps
    its box top where its motion puts it while its bottom jumps up to the occluder's edge: a
    step between consecutive visible frames whose bottom rises by more than ``rise_fraction``
    of the box height while the top moves less than ``top_share`` of that starts a hidden span;
    a step whose bottom drops back as abruptly (the top again not following) ends it, and so
    does a gap of more than ``max_gap`` unseen frames. Real motion moves a standing object's
    bottom a few per cent of its height per frame, and a camera that tilts or pans moves top and
    bottom together, so neither starts a span. The contact under a hidden bottom is the
    occluder's, farther than the object (near the horizon, tens of metres farther), so it must
    not place the object (:func:`contact_depth`) nor calibrate its size; the depth is then
    bridged between the frames around the span, else unknown. (The box width is no help: an
    occluder that hides the feet often cuts a side too — on dev seed 112 a car's width-size
    depth went to 49 m.) A box whose bottom drops abruptly without a span to end (a merge with
    something below, a track that starts hidden) is left alone.
    """
    n_objects, n_frames = boxes.shape[:2]
    hidden = np.zeros((n_objects, n_frames), bool)
    visible = np.isfinite(boxes).all(axis=-1)
    top, bottom = boxes[..., 1], boxes[..., 3]
    for k in range(n_objects):
        frames = np.flatnonzero(visible[k])
        if len(frames) < 2:
            continue
        s, t = frames[:-1], frames[1:]
        drop = bottom[k, t] - bottom[k, s]  # image rows grow downwards: a rise is negative
        follows = np.abs(top[k, t] - top[k, s])
        size = np.maximum(bottom[k, s] - top[k, s], bottom[k, t] - top[k, t])
        abrupt = (np.abs(drop) > rise_fraction * size) & (follows < top_share * np.abs(drop))
        state = False
        for i in range(len(t)):
            if t[i] - s[i] > max_gap + 1:
                state = False
            if abrupt[i]:
                state = drop[i] < 0
            hidden[k, t[i]] = state
    return hidden


def contact_depth(boxes: np.ndarray, plane_camera: np.ndarray, intrinsics: np.ndarray, max_depth: np.ndarray,
                  image_size: tuple[int, int], border_px: float, occluded: np.ndarray) -> np.ndarray:
    """Depth (K, T) of the ground under each box's bottom centre; NaN where unknown.

    boxes: (K, T, 4) xyxy clip pixels (NaN when hidden); plane_camera: (T, 4) ground as
    (n, h) with n · X + h = 0 in each camera frame (n up, h the camera height); intrinsics
    (3, 3) clip pixels. The bottom edge must be ``border_px`` above the image bottom and not
    hidden behind another object (``occluded`` (K, T) bool; else the contact is cut off), and
    the ray must meet the ground nearer than ``max_depth`` (T,).
    """
    width, height = image_size
    u = 0.5 * (boxes[..., 0] + boxes[..., 2])
    v = boxes[..., 3] - 0.5  # centre of the lowest row
    rays = np.stack([(u - intrinsics[0, 2]) / intrinsics[0, 0], (v - intrinsics[1, 2]) / intrinsics[1, 1],
                     np.ones_like(u)], axis=-1)
    facing = np.einsum("kti,ti->kt", rays, plane_camera[:, :3])
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = -plane_camera[None, :, 3] / facing
        ok = (facing < -1e-6) & (boxes[..., 3] <= height - border_px) & (depth <= max_depth[None])
    return np.where(ok & ~occluded, depth, np.nan)


def size_depth(boxes: np.ndarray, reference_depth: np.ndarray, image_size: tuple[int, int], border_px: float,
               occluded: np.ndarray) -> np.ndarray:
    """Depth (K, T) from apparent size: depth · size is constant for a rigid object.

    The constant is the median of depth · box height over the frames with a ``reference_depth``
    (K, T) (NaN elsewhere); box widths stand in when the height is cut by the top or bottom
    border. Boxes cut on the side used, or by a nearer object (``occluded`` (K, T)), give NaN.
    """
    width, height = image_size
    box_h = boxes[..., 3] - boxes[..., 1]
    box_w = boxes[..., 2] - boxes[..., 0]
    with np.errstate(invalid="ignore"):
        full_h = (boxes[..., 1] >= border_px) & (boxes[..., 3] <= height - border_px) & (box_h > 0)
        full_w = (boxes[..., 0] >= border_px) & (boxes[..., 2] <= width - border_px) & (box_w > 0)
    full_h &= ~occluded
    full_w &= ~occluded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        size_h = np.nanmedian(np.where(full_h, reference_depth * box_h, np.nan), axis=1, keepdims=True)
        size_w = np.nanmedian(np.where(full_w, reference_depth * box_w, np.nan), axis=1, keepdims=True)
        from_h = np.where(full_h, size_h / box_h, np.nan)
        from_w = np.where(full_w, size_w / box_w, np.nan)
    return np.where(np.isfinite(from_h), from_h, from_w)


PERSON_HEIGHT_M = 1.7
"""Height assumed for objects of category "person" when a static camera's tilt is estimated."""
_PITCH_GRID_DEG = np.arange(-30.0, 60.0, 0.25)
_HEIGHT_GRID_M = np.geomspace(0.3, 8.0, 80)
HEIGHT_PRIOR_MRAD = 3.0
"""Cost (mrad of median box-top error) per e-fold of camera height away from the nominal one.
Only a tie-breaker: people 1.55–1.85 m tall put a few mrad of spread on the box tops, and a
heavier pull (15 mrad was tried) dragged cameras at 2.5 m down to 1.7–2 m and, with them,
the tilt by 2–6° (depths bent by 20–30 % across the scene)."""


def level_up(pitch_rad: float) -> np.ndarray:
    """World up (3,) in the OpenCV frame of a camera without roll, tilted down by ``pitch_rad``."""
    return np.array([0.0, -math.cos(pitch_rad), -math.sin(pitch_rad)])


def tilt_and_height_from_people(boxes: np.ndarray, usable: np.ndarray, intrinsics: np.ndarray, camera_height_m: float,
                                person_height_m: float = PERSON_HEIGHT_M, rotations: np.ndarray | None = None,
                                tilt_rad: float | None = None) -> tuple[float, float] | None:
    """Downward tilt (radians) and height (m) of a camera without roll that best explain people's boxes.

    boxes: (K, T, 4) xyxy clip pixels of people; usable: (K, T) bool, boxes whole (inside the
    image, bottom not hidden). For a tilt θ and height h, a person standing where the bottom
    centre's ray meets the ground should have its head ``person_height_m`` higher; the pair
    with the smallest median angular error of the box tops wins, searched on a grid (θ in
    [−30°, 60°) by 0.25°, h from 0.3 to 8 m), plus ``HEIGHT_PRIOR_MRAD`` per e-fold of h away from
    ``camera_height_m`` so that boxes all at one distance (which fix only a mix of θ and h)
    fall back on the nominal height. Needs at least 3 boxes; returns None otherwise (Hoiem et
    al. 2006, "Putting objects in perspective").

    rotations: (T, 3, 3) world-to-camera rotations of a turning camera (world = camera 0; the
    tilt is camera 0's), None for a still one: each box is judged in its own frame's camera,
    where the ground's up is Rₜ · up. (Taking a panning camera as still put the ground of the
    panning dev scenes 117 and 122 off by 3° and 11°.) tilt_rad: a tilt known from elsewhere
    (:mod:`recon4d.recon.classic.vertical`); then only the height is searched.
    """
    frames = np.nonzero(usable)[1]
    boxes = boxes[usable]
    if len(boxes) < 3:
        return None
    u = 0.5 * (boxes[:, 0] + boxes[:, 2])
    bottom = np.stack([(u - intrinsics[0, 2]) / intrinsics[0, 0],
                       (boxes[:, 3] - 0.5 - intrinsics[1, 2]) / intrinsics[1, 1], np.ones(len(boxes))], axis=-1)
    top_row = boxes[:, 1] + 0.5
    angles = _PITCH_GRID_DEG if tilt_rad is None else np.array([math.degrees(tilt_rad)])
    ups = np.stack([level_up(math.radians(angle)) for angle in angles])  # (G, 3) in camera 0
    if rotations is None:
        ups_n = np.broadcast_to(ups[:, None, :], (len(ups), len(boxes), 3))  # (G, n, 3) in each box's camera
    else:
        ups_n = np.einsum("nij,gj->gni", rotations[frames], ups)
    facing = np.einsum("gni,ni->gn", ups_n, bottom)  # (G, n)
    best = (np.inf, 0.0, camera_height_m)
    for height_m in _HEIGHT_GRID_M:
        with np.errstate(divide="ignore", invalid="ignore"):
            feet = (-height_m / facing)[..., None] * bottom  # (G, n, 3)
            head = feet + person_height_m * ups_n
            predicted = intrinsics[1, 1] * head[..., 1] / head[..., 2] + intrinsics[1, 2]
            error = np.where((facing < -1e-6) & (head[..., 2] > 0), np.abs(predicted - top_row), np.inf)
        cost = 1e3 * np.median(error, axis=1) / intrinsics[1, 1] + HEIGHT_PRIOR_MRAD * abs(math.log(height_m / camera_height_m))
        g = int(np.argmin(cost))
        if cost[g] < best[0]:
            best = (float(cost[g]), math.radians(float(angles[g])), float(height_m))
    return None if not np.isfinite(best[0]) else (best[1], best[2])


def plane_in_cameras(world_to_cam: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """(T, 4) the world ground n · X + offset = 0 as (n, h) in each camera frame (T, 3, 4): n up,
    h the camera's height above it."""
    centres = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3])
    return np.concatenate([world_to_cam[:, :, :3] @ normal, (centres @ normal + offset)[:, None]], axis=1)


def people_heights(boxes: np.ndarray, usable: np.ndarray, plane_camera: np.ndarray,
                   intrinsics: np.ndarray) -> np.ndarray:
    """Heights (n,) in world units implied by whole boxes of people standing on the ground.

    boxes: (K, T, 4) xyxy clip pixels; usable: (K, T) bool; plane_camera: (T, 4) as
    :func:`plane_in_cameras`; intrinsics (3, 3) clip pixels. The feet are where the ray through
    the bottom centre meets the ground; the head is on the ray through the top centre at the
    feet's camera depth (a person is thin next to their distance); the height is the head's
    distance above the ground. Boxes whose bottom ray does not meet the ground are left out.
    """
    heights = implied_heights(boxes, usable, plane_camera, intrinsics)
    return heights[np.isfinite(heights)]


def implied_heights(boxes: np.ndarray, usable: np.ndarray, plane_camera: np.ndarray,
                    intrinsics: np.ndarray) -> np.ndarray:
    """(K, T) heights as :func:`people_heights` computes them, NaN where a box is not usable or
    its bottom ray does not meet the ground."""
    out = np.full(usable.shape, np.nan)
    k, t = np.nonzero(usable)
    b = boxes[k, t]
    x = (0.5 * (b[:, 0] + b[:, 2]) - intrinsics[0, 2]) / intrinsics[0, 0]
    bottom = np.stack([x, (b[:, 3] - 0.5 - intrinsics[1, 2]) / intrinsics[1, 1], np.ones(len(b))], axis=-1)
    top = np.stack([x, (b[:, 1] + 0.5 - intrinsics[1, 2]) / intrinsics[1, 1], np.ones(len(b))], axis=-1)
    normal, height = plane_camera[t, :3], plane_camera[t, 3]
    facing = np.einsum("ni,ni->n", bottom, normal)
    ok = facing < -1e-6
    with np.errstate(divide="ignore", invalid="ignore"):
        feet = bottom * (-height / facing)[:, None]
    head = top * feet[:, 2:]
    out[k[ok], t[ok]] = np.einsum("ni,ni->n", head - feet, normal)[ok]
    return out


MIN_SIZE_SPREAD = 1.2
"""An object's box heights must span this ratio (90th / 10th percentile) before its changing
distance tells the camera's tilt (:func:`tilt_from_object_sizes`)."""
MAX_SIZE_MISFIT = 0.08
"""Largest median |log| deviation of implied heights from each object's own (8 %) for the
tilt fitted from object sizes to be believed."""


def tilt_from_object_sizes(boxes: np.ndarray, usable: np.ndarray, intrinsics: np.ndarray, world_to_cam: np.ndarray,
                           camera_height_m: float, min_frames: int = 4) -> float | None:
    """Downward tilt (radians) of a still or turning camera without roll, from objects of any
    kind moving nearer or farther on a flat ground: the tilt at which each object keeps one
    height in every frame.

    An object on the ground that comes nearer grows in the image and its contact moves down;
    only the right horizon makes both agree with a constant size, whatever that size is (its
    category and true height are not needed, and a box cut at the feet or stretched by a
    shadow by a constant fraction of its height moves the camera height, not the horizon).
    boxes: (K, T, 4) xyxy clip pixels; usable: (K, T) bool whole, unhidden boxes;
    intrinsics (3, 3) clip pixels; world_to_cam (T, 3, 4) the camera rotations (world = camera
    of frame 0); the ground is searched as a level plane ``camera_height_m`` under camera 0,
    tilted on the same grid as :func:`tilt_and_height_from_people`. Objects with at least
    ``min_frames`` usable boxes whose heights span ``MIN_SIZE_SPREAD`` count; the tilt with the
    smallest median over their boxes of |log(height / the object's median height)| wins. Returns None when no
    object qualifies or the best fit misses by more than ``MAX_SIZE_MISFIT``.
    """
    box_h = boxes[..., 3] - boxes[..., 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = (np.nanpercentile(np.where(usable, box_h, np.nan), 90, axis=1)
                  / np.nanpercentile(np.where(usable, box_h, np.nan), 10, axis=1))
    moving = (usable.sum(axis=1) >= min_frames) & (spread >= MIN_SIZE_SPREAD)
    if not moving.any():
        return None
    chosen = usable & moving[:, None]
    best = (np.inf, 0.0)
    for angle in _PITCH_GRID_DEG:
        plane = plane_in_cameras(world_to_cam, level_up(math.radians(angle)), camera_height_m)
        heights = implied_heights(boxes, chosen, plane, intrinsics)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            logs = np.log(np.where(heights > 0, heights, np.nan))
            misfit = np.abs(logs - np.nanmedian(logs, axis=1, keepdims=True))
        misfit = np.where(chosen & ~np.isfinite(misfit), 1.0, np.nan_to_num(misfit, nan=1.0))  # off the ground: a miss
        cost = float(np.median(misfit[chosen]))
        if cost < best[0]:
            best = (cost, math.radians(float(angle)))
    return best[1] if best[0] <= MAX_SIZE_MISFIT else None


MIN_PEOPLE_BOXES = 8
"""Whole boxes of people needed before their heights set a moving camera's scale."""


def people_scale(world_to_cam, points, plane, boxes, usable, intrinsics):
    """Rescale a clip whose ground is fitted so that people stand ``PERSON_HEIGHT_M`` tall on it.

    world_to_cam (T, 3, 4), points (N, 3), plane (normal, offset) in the same units; boxes
    (K, T, 4) and intrinsics (3, 3) in clip pixels; usable (K, T) bool. Returns
    (world_to_cam, points, plane, applied). Not applied — the camera-height scale stays — with
    fewer than ``MIN_PEOPLE_BOXES`` heights, when their quartiles are more than ±15 % from
    the median (boxes cut, people sitting or misnamed), or when the implied camera height is
    outside 0.3–8 m.
    """
    normal, offset = plane
    heights = people_heights(boxes, usable, plane_in_cameras(world_to_cam, normal, offset), intrinsics)
    heights = heights[np.isfinite(heights) & (heights > 0)]
    if len(heights) < MIN_PEOPLE_BOXES:
        return world_to_cam, points, plane, False
    low, median, high = np.percentile(heights, [25, 50, 75])
    factor = PERSON_HEIGHT_M / median
    camera_height = factor * float(np.median(plane_in_cameras(world_to_cam, normal, offset)[:, 3]))
    if low < 0.85 * median or high > 1.15 * median or not 0.3 <= camera_height <= 8.0:
        return world_to_cam, points, plane, False
    world_to_cam = world_to_cam.copy()
    world_to_cam[:, :, 3] *= factor
    return world_to_cam, points * factor, (normal, offset * factor), True


def interpolate_gaps(depth: np.ndarray) -> np.ndarray:
    """Fill NaN gaps of (K, T) depths that lie between known frames, linearly in inverse depth.

    Objects move smoothly, so a contact hidden for a few frames (a bottom behind another
    object) is better bridged than guessed from a cut box; nothing is extrapolated.
    """
    out = depth.copy()
    frames = np.arange(depth.shape[1])
    for k in range(depth.shape[0]):
        known = np.flatnonzero(np.isfinite(depth[k]) & (depth[k] > 0))
        if len(known) < 2:
            continue
        span = frames[known[0] : known[-1] + 1]
        inverse = np.interp(span, known, 1.0 / depth[k, known])
        out[k, span] = np.where(np.isfinite(depth[k, span]), depth[k, span], 1.0 / inverse)
    return out


DEPTH_OUTLIER_REL = 0.10
"""A contact depth more than this fraction off the median of its neighbours' (plus what the
object can move meanwhile, :data:`DEPTH_RATE_MPS`) is not believed (:func:`depth_outliers`;
the classic reconstructor's ``depth_outlier_rel``, off by default)."""
DEPTH_RATE_MPS = 3.0
"""Change of an object's distance from the camera per second that is plausible between
neighbouring frames (a person walking, a camera walking towards it)."""
DEPTH_NEIGHBOURS = 3
"""Measured frames on each side that :func:`depth_outliers` compares a frame with."""


def depth_outliers(depth: np.ndarray, times: np.ndarray, rel_tol: float = DEPTH_OUTLIER_REL,
                   rate_mps: float = DEPTH_RATE_MPS, neighbours: int = DEPTH_NEIGHBOURS,
                   max_gap_s: float = 1.0) -> np.ndarray:
    """(K, T) bool: frames whose depth the object's neighbouring frames contradict.

    depth: (K, T) contact depths, NaN where unmeasured; times: (T,) seconds. Each measured
    frame is compared with the median of up to ``neighbours`` measured frames on each side
    within ``max_gap_s``; it is an outlier when |log(depth / median)| exceeds
    log(1 + ``rel_tol``) + ``rate_mps`` · |Δt| / median, Δt the time from the frame to the
    neighbours' median time (a steady approach moves the median of one-sided neighbours). At
    least three neighbours must be known, else the frame is left alone. One box whose
    bottom lands on something else (a merge with an object below, a shadow, a piece of another
    track) moves the contact by metres in one frame; a rigid object on the ground cannot, and
    the gap is better bridged from its neighbours (:func:`interpolate_gaps`).
    """
    out = np.zeros(depth.shape, bool)
    for k in range(depth.shape[0]):
        known = np.flatnonzero(np.isfinite(depth[k]) & (depth[k] > 0))
        if len(known) < 4:
            continue
        logs = np.log(depth[k, known])
        at = times[known]
        for i in range(len(known)):
            side = np.r_[max(0, i - neighbours):i, i + 1:min(len(known), i + 1 + neighbours)]
            side = side[np.abs(at[side] - at[i]) <= max_gap_s]
            if len(side) < 3:
                continue
            median_log = float(np.median(logs[side]))
            shift = abs(float(np.median(at[side])) - at[i])
            limit = np.log1p(rel_tol) + rate_mps * shift / math.exp(median_log)
            out[k, known[i]] = abs(logs[i] - median_log) > limit
    return out


def hold_nearest(depth: np.ndarray, where: np.ndarray) -> np.ndarray:
    """(K, T) ``depth`` with its NaN frames in ``where`` (K, T) bool set to the depth of the object's
    nearest frame (in frames; the earlier one on a tie) that has one; the rest unchanged."""
    out = depth.copy()
    frames = np.arange(depth.shape[1])
    for k in range(depth.shape[0]):
        known = np.flatnonzero(np.isfinite(depth[k]))
        todo = np.flatnonzero(where[k] & ~np.isfinite(depth[k]))
        if len(known) == 0 or len(todo) == 0:
            continue
        after = np.clip(np.searchsorted(known, frames[todo]), 0, len(known) - 1)
        before = np.clip(after - 1, 0, len(known) - 1)
        nearer = np.where(np.abs(known[before] - todo) <= np.abs(known[after] - todo), known[before], known[after])
        out[k, todo] = depth[k, nearer]
    return out


def object_depths(contact: np.ndarray, size: np.ndarray, triangulated: np.ndarray,
                  hidden: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pick each object's depth per frame by cue priority: contact (measured, then bridged over
    gaps), apparent size, triangulated points.

    All inputs (K, T) with NaN where a cue is unavailable. Triangulated depths of an object are
    dropped when they differ from its contact depths by over 15 % (median over the frames
    with both). Frames whose bottom is ``hidden`` (K, T) (:func:`hidden_bottoms`) and that no cue
    reaches (a span that lasts to the end of the track) hold the depth of the nearest frame that
    has one (``CUE_HELD``): an object whose feet a prop hides stays about where it was, and
    without a depth it would drop out of the scene in those frames. Returns depth (K, T) (NaN
    when no cue) and the cue used (K, T) int8 (CUE_*).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        disagreement = np.nanmedian(np.abs(triangulated / contact - 1.0), axis=1)
    # Points on an object that moves along the epipolar lines triangulate, but at a wrong depth.
    triangulated = np.where((disagreement < 0.15)[:, None] | np.isnan(disagreement)[:, None], triangulated, np.nan)
    depth = np.full(contact.shape, np.nan)
    cue = np.zeros(contact.shape, np.int8)
    cues = ((triangulated, CUE_TRIANGULATED), (size, CUE_SIZE), (interpolate_gaps(contact), CUE_BRIDGED),
            (contact, CUE_CONTACT))
    for value, code in cues:
        usable = np.isfinite(value) & (value > 0)
        depth = np.where(usable, value, depth)
        cue = np.where(usable, code, cue)
    if hidden is not None:
        held = hold_nearest(depth, hidden)
        cue = np.where(np.isfinite(held) & ~np.isfinite(depth), CUE_HELD, cue).astype(np.int8)
        depth = held
    return depth, cue


def object_point_depths(xy, label, seen, world_to_cam, n_objects, config: ClassicConfig, focal: float) -> np.ndarray:
    """Median depth (K, T) of triangulated feature points on each object.

    Only a static object has points that triangulate; a moving one can still fit a wrong
    static point when it moves along the epipolar lines, so these tracks must be seen in at
    least 5 frames, reproject within ``ransac_px`` everywhere and subtend twice the usual angle.
    """
    depth = np.full((n_objects, seen.shape[1]), np.nan)
    object_tracks = np.flatnonzero((label > 0) & (seen.sum(axis=1) >= 5))
    if len(object_tracks) == 0:
        return depth
    strict = dataclasses.replace(config, reprojection_px=config.ransac_px,
                                 min_triangulation_deg=2.0 * config.min_triangulation_deg)
    points = retriangulate(xy[object_tracks], seen[object_tracks], world_to_cam, strict, focal)
    ok = np.isfinite(points[:, 0])
    if not ok.any():
        return depth
    tracks, points = object_tracks[ok], points[ok]
    _, z = project_points(world_to_cam, points)  # (n, T)
    z = np.where(seen[tracks], z, np.nan)
    for k in np.unique(label[tracks]) - 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            depth[k] = np.nanmedian(z[label[tracks] == k + 1], axis=0)
    return depth
