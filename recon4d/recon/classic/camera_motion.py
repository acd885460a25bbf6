"""Camera motion of a clip from its background feature tracks (step 2 of :mod:`recon4d.recon.classic.reconstructor`).

:func:`estimate_motion` first asks whether the background moves at all
(:func:`~recon4d.recon.classic.camera_quality.still_steps`): a still camera gets exactly the
identity everywhere. Otherwise it starts a map from the first frame pair with enough parallax
(essential matrix; with ``refined_start`` the best of the first few, refined by a two-view bundle
adjustment), places every other frame by PnP against it, re-triangulates and bundle
adjusts (:mod:`recon4d.recon.classic.bundle_adjust`); without parallax it chains pure rotations.
A frame PnP cannot place is never silently frozen: it is placed by a pure turn when the
tracks say the camera only turned, by a two-view essential matrix scaled by shared map
points, or by a two-view restart at the recent camera speed (flagged ``restarted``); only a
frame with no usable geometry copies its neighbour (flagged ``frozen``). The small multi-view
geometry helpers (Kabsch, DLT triangulation, projection) live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from recon4d.recon.classic.bundle_adjust import MIN_MAP_POINTS, bundle_adjust
from recon4d.recon.classic.camera_quality import still_steps
from recon4d.recon.classic.config import ClassicConfig


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) with b ≈ R a from unit vectors a, b (..., n, 3)."""
    u, _, vt = np.linalg.svd(np.einsum("...ni,...nj->...ij", b, a))
    fix = np.ones(u.shape[:-1])
    fix[..., 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    return u @ (fix[..., :, None] * vt)


def _unit(normalized: np.ndarray) -> np.ndarray:
    """(..., 2) normalised image coordinates → (..., 3) unit bearings."""
    rays = np.concatenate([normalized, np.ones(normalized.shape[:-1] + (1,))], axis=-1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def _fit_rotation(a: np.ndarray, b: np.ndarray, threshold_rad: float, rng: np.random.Generator,
                  n_iter: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Pure rotation b ≈ R a by 2-point RANSAC then Kabsch on the inliers.

    a, b: (n, 3) unit bearings. Returns R (3, 3) and the residual angles (n,) in radians.
    """
    if len(a) < 2:
        return np.eye(3), np.zeros(len(a))
    samples = rng.integers(0, len(a), size=(n_iter, 2))
    hypotheses = _kabsch(a[samples], b[samples])
    cos = np.einsum("kij,nj,ni->kn", hypotheses, a, b)
    best = hypotheses[np.argmax((cos > math.cos(threshold_rad)).sum(axis=1))]
    inliers = np.einsum("ij,nj,ni->n", best, a, b) > math.cos(threshold_rad)
    rotation = _kabsch(a[inliers], b[inliers]) if inliers.sum() >= 2 else best
    return rotation, np.arccos(np.clip(np.einsum("ij,nj,ni->n", rotation, a, b), -1.0, 1.0))


def _triangulate(world_to_cam: np.ndarray, normalized: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Linear multi-view triangulation (DLT), batched over points.

    world_to_cam: (n, V, 3, 4) or (V, 3, 4) projection matrices in normalised coordinates;
    normalized: (n, V, 2); weight: (n, V) 0/1 which views see the point. Returns (n, 3) world points.
    """
    p = np.broadcast_to(world_to_cam, normalized.shape[:2] + (3, 4))
    rows = np.concatenate([normalized[..., :1] * p[..., 2, :] - p[..., 0, :],
                           normalized[..., 1:] * p[..., 2, :] - p[..., 1, :]], axis=-2)
    rows = np.nan_to_num(rows) * np.concatenate([weight, weight], axis=-1)[..., None]
    _, vectors = np.linalg.eigh(np.einsum("nvi,nvj->nij", rows, rows))
    homogeneous = vectors[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return homogeneous[:, :3] / homogeneous[:, 3:]


def project_points(world_to_cam: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (n, 3) seen by cameras (V, 3, 4) or per point (n, V, 3, 4).

    Returns normalised image coordinates (n, V, 2) and depths (n, V).
    """
    if world_to_cam.ndim == 3:
        world_to_cam = np.broadcast_to(world_to_cam, (len(points),) + world_to_cam.shape)
    camera = np.einsum("nvij,nj->nvi", world_to_cam[..., :3], points) + world_to_cam[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        return camera[..., :2] / camera[..., 2:], camera[..., 2]


def _ray_angle_deg(world_to_cam: np.ndarray, points: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Angle (n,) in degrees at each point between the rays from cameras ``first`` and ``last`` (n,)."""
    centres = -np.einsum("tji,tj->ti", world_to_cam[:, :3, :3], world_to_cam[:, :3, 3])
    ray_a, ray_b = points - centres[first], points - centres[last]
    cos = (ray_a * ray_b).sum(-1) / (np.linalg.norm(ray_a, axis=-1) * np.linalg.norm(ray_b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


_MIN_PNP_POINTS = 12  # 2D–3D matches a frame needs to be placed by PnP
_MAX_INIT_GAP = 40  # frames searched after a for the second frame of the initial pair
_INIT_STEP = 4  # first frames of the initial pair tried: 0, 4, 8...
_INIT_CANDIDATES = 6  # qualifying initial pairs compared before the map starts from the best
_INIT_TRIES = 24  # initial pairs with some parallax compared at most (each costs a two-view bundle adjustment)
_MAX_SAMPLE = 400  # correspondences used to measure the parallax of a frame pair
_CHECK_INLIERS = 0.8  # share of a step's tracks its two-view geometry must explain to overrule PnP
_CHUNK_OBSERVATIONS = 400_000  # (track, frame) slots triangulated at once, to bound memory


@dataclass(frozen=True, eq=False)
class CameraMotion:
    """Camera poses and sparse map, world = camera of frame 0, arbitrary (unit-baseline) scale.

    world_to_cam: (T, 3, 4) float64 [R | t] acting on world points.
    points:       (N, 3) float64 map point of each feature track, NaN where none.
    mode:         "parallax" (map + PnP), "rotation" (turning only) or "static".
    frozen:       (T,) bool frames whose pose could not be measured and copies (the turn of) a neighbour.
    restarted:    (T,) bool frames placed by a new two-view start whose scale is a guess (the
                  recent camera speed): the map goes on from them, but no span may cross them.
    """

    world_to_cam: np.ndarray
    points: np.ndarray
    mode: str
    frozen: np.ndarray
    restarted: np.ndarray

    @property
    def n_lost(self) -> int:
        """Frames whose pose was not measured."""
        return int(self.frozen.sum())


def held_still(xy: np.ndarray, bg_seen: np.ndarray, focal: float, min_shift_px: float,
               ratio: float = 0.3) -> np.ndarray:
    """(N,) bool tracks that stay put in the image while the frame moves: a thing that moves with
    the camera (a followed subject no tracker masked out, its shadow), not a static point.

    xy: (N, T, 2) normalised coordinates; bg_seen: (N, T) bool. A step t → t + 1 is judged when
    the median displacement of the tracks seen at both is at least ``min_shift_px`` pixels
    (``focal`` converts); a track's step is still when it moves less than ``ratio`` of that median.
    A track still in at least half of its judged steps is flagged. A static point moves with the
    camera's turn wherever it is in the image (a point at the focus of expansion by exactly the
    turn), so it is never still while the frame moves; the subject at the focus of expansion
    agrees with every essential matrix, and no RANSAC rejects it.
    """
    # One step at a time: (N, T − 1) temporaries of a long clip's tracks (tens of thousands of
    # tracks over 300 frames) took ~300 MiB at once (benchmarks/memory.py).
    n_judged = np.zeros(len(xy), np.int64)
    n_still = np.zeros(len(xy), np.int64)
    for t in range(xy.shape[1] - 1):  # T − 1 steps, each vectorised over the tracks seen at both ends
        rows = np.flatnonzero(bg_seen[:, t] & bg_seen[:, t + 1])
        if len(rows) < MIN_MAP_POINTS:
            continue
        step = xy[rows, t + 1] - xy[rows, t]
        median = np.linalg.norm(np.median(step, axis=0)) * focal
        if not median >= min_shift_px:
            continue
        n_judged[rows] += 1
        n_still[rows] += np.linalg.norm(step, axis=-1) * focal < ratio * median
    return (n_judged > 0) & (2 * n_still >= n_judged)


def _median_motion_px(xy_a: np.ndarray, xy_b: np.ndarray, focal: float) -> float:
    return float(np.median(np.linalg.norm(xy_b - xy_a, axis=-1)) * focal) if len(xy_a) else 0.0


def _rotation_residual_px(xy_a, xy_b, config: ClassicConfig, focal: float, rng) -> float:
    """Median angle (in pixels) left between the bearings of a pair once the best pure rotation is removed."""
    if _median_motion_px(xy_a, xy_b, focal) < config.static_px:
        return 0.0
    if len(xy_a) > _MAX_SAMPLE:
        pick = rng.choice(len(xy_a), _MAX_SAMPLE, replace=False)
        xy_a, xy_b = xy_a[pick], xy_b[pick]
    _, residual = _fit_rotation(_unit(xy_a), _unit(xy_b), 2.0 * config.ransac_px / focal, rng)
    return float(np.median(residual) * focal)


def _two_view(xy_a, xy_b, config: ClassicConfig, focal: float):
    """Essential matrix + chirality: (R, t, inlier mask) of camera b relative to a, or None."""
    threshold = config.ransac_px / focal
    try:
        essential, mask = cv2.findEssentialMat(xy_a, xy_b, np.eye(3), cv2.RANSAC, 0.999, threshold)
        if essential is None or essential.shape[0] < 3:
            return None
        _, rotation, translation, mask = cv2.recoverPose(essential[:3], xy_a, xy_b, np.eye(3), mask=mask)
    except cv2.error:
        return None
    return rotation, translation.ravel(), mask.ravel().astype(bool)


def _refined_two_view(xy_a, xy_b, config: ClassicConfig, focal: float):
    """:func:`_two_view` refined by a two-view bundle adjustment over all its RANSAC inliers.

    The 5-point RANSAC keeps the best minimal sample's essential matrix, and recoverPose drops
    the points farther than 50 baselines from its mask; on a turn with a small baseline both
    leave the rotation off by about a degree, which the parallax (a degree or two) cannot
    afford: the map's depths and every later step inherit it. Far points pin the rotation, so
    all inliers in front of both cameras take part. Returns (R, t (unit), inlier mask) or None.
    """
    threshold = config.ransac_px / focal
    try:
        essential, mask = cv2.findEssentialMat(xy_a, xy_b, np.eye(3), cv2.RANSAC, 0.999, threshold)
        if essential is None or essential.shape[0] < 3:
            return None
        _, rotation, translation, mask, _ = cv2.recoverPose(essential[:3], xy_a, xy_b, np.eye(3),
                                                            distanceThresh=1e6, mask=mask)
    except cv2.error:
        return None
    inliers = mask.ravel().astype(bool)
    poses = np.stack([np.eye(3, 4), np.concatenate([rotation, translation.reshape(3, 1)], axis=1)])
    pair_xy = np.stack([xy_a, xy_b], axis=1)[inliers]
    points = _triangulate(poses, pair_xy, np.ones(pair_xy.shape[:2]))
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(points).all(axis=1) & (project_points(poses, np.nan_to_num(points))[1] > 0).all(axis=1)
    points[~usable] = np.nan
    # one thread: a pool started for two frames cost more wall time than the solve (same result to the bit)
    refined, _ = bundle_adjust(poses, points, pair_xy, np.ones(pair_xy.shape[:2], bool), focal, threads=1)
    baseline = np.linalg.norm(refined[1, :, 3])
    if not (np.isfinite(refined).all() and baseline > 0):
        return None
    return refined[1, :, :3], refined[1, :, 3] / baseline, inliers


def _checked_points(world_to_cam, points, xy, seen, first, last, config: ClassicConfig, focal: float) -> np.ndarray:
    """(n,) bool: points (n, 3) finite, in front of and reprojecting within ``reprojection_px``
    into every camera (V, 3, 4) that sees them (``seen`` (n, V), observations ``xy`` (n, V, 2)),
    with at least ``min_triangulation_deg`` between the rays of views ``first`` and ``last`` (n,)."""
    projected, depth = project_points(world_to_cam, points)
    with np.errstate(invalid="ignore"):
        error_px = np.linalg.norm(projected - xy, axis=-1) * focal
        bad = seen & ~((depth > 0) & (error_px < config.reprojection_px))
        angle_ok = _ray_angle_deg(world_to_cam, points, first, last) >= config.min_triangulation_deg
    return np.isfinite(points).all(axis=1) & ~bad.any(axis=1) & angle_ok


def _initial_pair(xy, bg_seen, config: ClassicConfig, focal: float, rng):
    """The frame pair (a, b) that starts the map, or None: the first with parallax, or with
    ``refined_start`` the widest of the first few.

    A pair qualifies when its background tracks move (``static_px``), a pure rotation leaves
    a median residual of at least ``min_parallax_px``, and the points triangulated from its
    essential matrix (with ``refined_start`` refined by a two-view bundle adjustment,
    :func:`_refined_two_view`) see each other under a median angle of at least
    ``min_parallax_deg`` (a turning camera gives a near-arbitrary essential matrix whose points
    have rays close to parallel). With ``refined_start``, of the first ``_INIT_CANDIDATES`` that qualify, the one with the most such points starts the map: the
    first alone was often a pair whose tracks the tracker got wrong (a follow camera's first
    step) or whose unrefined essential matrix only seemed to have parallax (follow seed 105 of
    pipeline_fidelity: 2.2° where the truth had 1.4°). Where none qualifies within
    ``_INIT_TRIES`` pairs, the pair with the widest median angle of at least half
    ``min_parallax_deg`` starts it (a slow walk whose tracks are short: a map of little
    parallax that the bundle adjustment refines beats no translation at all). Returns (a, b,
    world_to_cam_b (3, 4), track indices (m,), points (m, 3)) in camera a's frame.
    """
    n_frames = xy.shape[1]
    best = None
    n_wide = n_tried = 0
    for a in range(0, n_frames - 1, _INIT_STEP):
        for b in range(a + 1, min(n_frames, a + 1 + _MAX_INIT_GAP)):
            common = np.flatnonzero(bg_seen[:, a] & bg_seen[:, b])
            if len(common) < MIN_MAP_POINTS:
                break  # tracks seen at a only get fewer as b moves on
            xy_a, xy_b = xy[common, a], xy[common, b]
            if _rotation_residual_px(xy_a, xy_b, config, focal, rng) < config.min_parallax_px:
                continue
            found = (_refined_two_view if config.refined_start else _two_view)(xy_a, xy_b, config, focal)
            if found is None:
                continue
            rotation, translation, inliers = found
            poses = np.stack([np.eye(3, 4), np.concatenate([rotation, translation[:, None]], axis=1)])
            pair_xy = np.stack([xy_a, xy_b], axis=1)[inliers]
            points = _triangulate(poses, pair_xy, np.ones(pair_xy.shape[:2]))
            first, last = np.zeros(len(points), np.int64), np.ones(len(points), np.int64)
            ok = _checked_points(poses, points, pair_xy, np.ones(pair_xy.shape[:2], bool), first, last, config, focal)
            if ok.sum() < MIN_MAP_POINTS:
                continue
            angle_deg = float(np.median(_ray_angle_deg(poses, points[ok], first[ok], last[ok])))
            if not config.refined_start:  # the first pair that qualifies
                if angle_deg >= config.min_parallax_deg:
                    return a, b, poses[1], common[inliers][ok], points[ok]
                continue
            if angle_deg < 0.5 * config.min_parallax_deg:
                continue
            wide = angle_deg >= config.min_parallax_deg
            rank = (wide, int(ok.sum()) if wide else angle_deg)
            if best is None or rank > best[0]:
                best = rank, (a, b, poses[1], common[inliers][ok], points[ok])
            n_wide += wide
            n_tried += 1
            if n_wide == _INIT_CANDIDATES or n_tried == _INIT_TRIES:
                return best[1]
    return None if best is None else best[1]


def _pnp(points, xy_t, seen_t, guess: np.ndarray, config: ClassicConfig, focal: float) -> np.ndarray | None:
    """Pose (3, 4) of one frame from map points seen in it, by PnP-RANSAC + LM refinement.

    With ``refined_start`` the final solve on the inliers starts from RANSAC's model, not from
    ``guess`` (the neighbour's pose): from a guess 6° off (a turning camera) OpenCV's iterative
    solve ended 17° off on exact points with 293 of 300 inliers."""
    have = seen_t & np.isfinite(points[:, 0])
    if have.sum() < _MIN_PNP_POINTS:
        return None
    world, image = points[have], xy_t[have].astype(np.float64)
    rvec, tvec = cv2.Rodrigues(guess[:, :3])[0], guess[:, 3:].copy()
    try:
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            world, image, np.eye(3), None, rvec, tvec, useExtrinsicGuess=not config.refined_start, iterationsCount=200,
            reprojectionError=2.0 * config.ransac_px / focal, confidence=0.999, flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok or inliers is None or len(inliers) < _MIN_PNP_POINTS:
            return None
        inliers = inliers.ravel()
        rvec, tvec = cv2.solvePnPRefineLM(world[inliers], image[inliers], np.eye(3), None, rvec, tvec)
    except cv2.error:
        return None
    return np.concatenate([cv2.Rodrigues(rvec)[0], tvec.reshape(3, 1)], axis=1)


def _extend_map(points, xy, bg_seen, world_to_cam, posed, t: int, config: ClassicConfig, focal: float) -> None:
    """Triangulate tracks seen at t (and in some placed frame) that have no map point yet, in place.

    Each is paired with the placed frame it was seen in farthest from t, for the widest angle.
    """
    candidates = np.flatnonzero(bg_seen[:, t] & ~np.isfinite(points[:, 0]))
    if len(candidates) == 0:
        return
    frames = np.arange(xy.shape[1])
    distance = np.where(bg_seen[candidates] & posed, np.abs(frames - t), -1)
    other = distance.argmax(axis=1)
    keep = (distance.max(axis=1) > 0)
    candidates, other = candidates[keep], other[keep]
    pair = np.stack([other, np.full_like(other, t)], axis=1)  # (m, 2) frame of each view
    cams = world_to_cam[pair]  # (m, 2, 3, 4)
    pair_xy = xy[candidates[:, None], pair]
    new = _triangulate(cams, pair_xy, np.ones(pair_xy.shape[:2]))
    projected, depth = project_points(cams, new)
    error_px = np.linalg.norm(projected - pair_xy, axis=-1) * focal
    ok = np.isfinite(new).all(axis=1) & (depth > 0).all(axis=1) & (error_px < config.reprojection_px).all(axis=1)
    ok &= _ray_angle_deg(world_to_cam, new, other, np.full_like(other, t)) >= config.min_triangulation_deg
    points[candidates[ok]] = new[ok]


def retriangulate(xy, seen, world_to_cam, config: ClassicConfig, focal: float) -> np.ndarray:
    """Map points (n, 3) of tracks from all the views that see them; NaN where they do not hold up."""
    n_tracks, n_frames = seen.shape
    points = np.full((n_tracks, 3), np.nan)
    candidates = np.flatnonzero(seen.sum(axis=1) >= 2)
    if len(candidates) == 0:
        return points
    for chunk in np.array_split(candidates, max(1, len(candidates) * n_frames // _CHUNK_OBSERVATIONS)):
        sub_seen = seen[chunk]
        new = _triangulate(world_to_cam, np.nan_to_num(xy[chunk]), sub_seen.astype(np.float64))
        first = sub_seen.argmax(axis=1)
        last = n_frames - 1 - sub_seen[:, ::-1].argmax(axis=1)
        ok = _checked_points(world_to_cam, new, xy[chunk], sub_seen, first, last, config, focal)
        points[chunk[ok]] = new[ok]
    return points


def _chain_rotations(xy, bg_seen, still, config: ClassicConfig, focal: float, rng) -> CameraMotion:
    """Turning-only camera: frame-to-frame rotations chained from frame 0, zero translation.

    still: (T,) bool steps t − 1 → t that :func:`still_steps` found still (identity).
    """
    n_tracks, n_frames = bg_seen.shape
    world_to_cam = np.tile(np.eye(3, 4), (n_frames, 1, 1))
    frozen = np.zeros(n_frames, bool)
    moved = False
    for t in range(1, n_frames):
        common = np.flatnonzero(bg_seen[:, t - 1] & bg_seen[:, t])
        relative = np.eye(3)
        if len(common) < 8:
            frozen[t] = True
        elif not still[t] and _median_motion_px(xy[common, t - 1], xy[common, t], focal) >= config.static_px:
            relative, _ = _fit_rotation(_unit(xy[common, t - 1]), _unit(xy[common, t]),
                                        2.0 * config.ransac_px / focal, rng)
            moved = True
        world_to_cam[t, :, :3] = relative @ world_to_cam[t - 1, :, :3]
    return CameraMotion(world_to_cam, np.full((n_tracks, 3), np.nan), "rotation" if moved else "static", frozen,
                        np.zeros(n_frames, bool))


def _relocalise(points, xy, bg_seen, world_to_cam, posed, neighbour: int, t: int, config: ClassicConfig,
                focal: float, rng) -> tuple[np.ndarray, str]:
    """Pose (3, 4) of frame t when PnP failed, and how it was found.

    "turned": the tracks shared with the placed ``neighbour`` move as a pure turn explains
    (the centre stays, as measured); "relocalised": a two-view essential matrix against the
    neighbour, scaled by the map points both frames share (at least 3); "restarted": the same
    with the scale of the recent camera steps (a guess: the map restarts here); "lost": too
    few shared tracks or no usable geometry, the neighbour's pose is copied (with its turn
    where one can be fitted).
    """
    common = np.flatnonzero(bg_seen[:, t] & bg_seen[:, neighbour])
    if len(common) < 8:
        return world_to_cam[neighbour].copy(), "lost"
    xy_a, xy_b = xy[common, neighbour], xy[common, t]
    rotation, residual = _fit_rotation(_unit(xy_a), _unit(xy_b), 2.0 * config.ransac_px / focal, rng)
    turned = np.concatenate([rotation @ world_to_cam[neighbour, :, :3], (rotation @ world_to_cam[neighbour, :, 3])[:, None]],
                            axis=1)
    if np.median(residual) * focal < config.min_parallax_px:
        return turned, "turned"
    found = _two_view(xy_a, xy_b, config, focal) if len(common) >= MIN_MAP_POINTS else None
    if found is None:
        return turned, "lost"
    relative_r, direction, inliers = found
    scale, support = _map_scale(points, xy_a, xy_b, common, inliers, relative_r, direction, world_to_cam[neighbour])
    how = "relocalised"
    if support < 3:
        centres = -np.einsum("tji,tj->ti", world_to_cam[posed, :, :3], world_to_cam[posed, :, 3])
        order = np.flatnonzero(posed)
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1) / np.maximum(np.diff(order), 1)
        scale = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0
        scale *= abs(t - neighbour)
        how = "restarted"
    if not (np.isfinite(scale) and scale > 0):
        return turned, "lost"
    rotation_t = relative_r @ world_to_cam[neighbour, :, :3]
    translation_t = relative_r @ world_to_cam[neighbour, :, 3] + scale * direction
    return np.concatenate([rotation_t, translation_t[:, None]], axis=1), how


def _map_scale(points, xy_a, xy_b, common, inliers, relative_r, direction, world_to_cam_a) -> tuple[float, int]:
    """Length of a two-view step (camera a → b, rotation ``relative_r``, unit ``direction``) in the
    map's units, from the map points both frames share: the median ratio of their depth in camera
    a to their depth triangulated from the pair. Returns (scale or NaN, points it rests on).

    points: (N, 3) map; xy_a, xy_b: (m, 2) the shared tracks ``common`` (m,) at a and b;
    inliers: (m,) bool of the two-view fit; world_to_cam_a: (3, 4).
    """
    pair = np.stack([np.eye(3, 4), np.concatenate([relative_r, direction[:, None]], axis=1)])
    pair_points = _triangulate(pair, np.stack([xy_a, xy_b], axis=1), np.ones((len(common), 2)))
    with np.errstate(invalid="ignore"):
        mapped = inliers & np.isfinite(points[common, 0]) & (pair_points[:, 2] > 0)
    if not mapped.any():
        return float("nan"), 0
    map_depth = project_points(world_to_cam_a[None], np.nan_to_num(points[common[mapped]]))[1][:, 0]
    return float(np.median(map_depth / pair_points[mapped, 2])), int(mapped.sum())


def _step_two_view(xy, bg_seen, a: int, b: int, config: ClassicConfig, focal: float):
    """The refined two-view geometry of frames a → b on the background tracks both see
    (:func:`_refined_two_view`), trusted only when it explains at least ``_CHECK_INLIERS`` of them:
    (common (m,) track indices, (rotation, direction, inliers)), or None (too few shared tracks,
    no geometry, too few inliers)."""
    common = np.flatnonzero(bg_seen[:, a] & bg_seen[:, b])
    if len(common) < MIN_MAP_POINTS:
        return None
    found = _refined_two_view(xy[common, a], xy[common, b], config, focal)
    if found is None or found[2].mean() < _CHECK_INLIERS:
        return None
    return common, found


def _turn_between_deg(rotation_a: np.ndarray, rotation_b: np.ndarray) -> float:
    """Angle in degrees of the rotation between two (3, 3) rotations."""
    cos = (np.trace(rotation_a @ rotation_b.T) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def _two_view_checked(points, xy, bg_seen, world_to_cam, neighbour: int, t: int, pose: np.ndarray,
                      config: ClassicConfig, focal: float) -> np.ndarray | None:
    """Pose (3, 4) of frame t from its two-view geometry with the placed ``neighbour`` where the
    PnP ``pose`` turns more than ``two_view_check_deg`` away from it; None where PnP stands.

    The step's refined essential matrix (:func:`_refined_two_view`) gives the turn and the
    direction of travel, the map points both frames share its length (:func:`_map_scale`). It
    is trusted only when at least ``_CHECK_INLIERS`` of the shared tracks agree with it and at
    least ``MIN_MAP_POINTS`` map points set the length. A follow camera turning 11–14° a step
    keeps its two-view turn within ~0.5° of the truth, while its PnP chain on a map whose
    points it sees only for a few frames fell 1.6° short a step for 14 steps (pipeline_fidelity
    follow seed 115: the map's points read as far away, the translation collapsed and the turn
    took the parallax, as a pure rotation would).
    """
    step = _step_two_view(xy, bg_seen, neighbour, t, config, focal)
    if step is None:
        return None
    common, (relative_r, direction, inliers) = step
    xy_a, xy_b = xy[common, neighbour], xy[common, t]
    if _turn_between_deg(pose[:, :3] @ world_to_cam[neighbour, :, :3].T, relative_r) <= config.two_view_check_deg:
        return None
    scale, support = _map_scale(points, xy_a, xy_b, common, inliers, relative_r, direction, world_to_cam[neighbour])
    if support < MIN_MAP_POINTS or not (np.isfinite(scale) and scale > 0):
        return None
    rotation_t = relative_r @ world_to_cam[neighbour, :, :3]
    translation_t = relative_r @ world_to_cam[neighbour, :, 3] + scale * direction
    return np.concatenate([rotation_t, translation_t[:, None]], axis=1)


def two_view_disagreement(world_to_cam: np.ndarray, xy: np.ndarray, background: np.ndarray, focal: float,
                          config: ClassicConfig) -> np.ndarray:
    """(T,) degrees between each step's turn in the poses (T, 3, 4) and the turn of the step's refined
    two-view geometry (:func:`_refined_two_view`) on the background tracks (N,) bool of ``xy``
    (N, T, 2); NaN for frame 0 and where the two frames share too few tracks or the geometry
    explains fewer than ``_CHECK_INLIERS`` of them. Tracks :func:`held_still` finds are left out,
    as :func:`estimate_motion` leaves them out. Follow seed 115 of pipeline_fidelity (refined
    start): 1.5–1.7° on steps 21–25, where the chain was 1.6° short a step, 10.7° on the first
    step (10.3° wrong); seed 130, right: at most 1.2°.
    """
    bg_seen = np.isfinite(xy[..., 0]) & background[:, None]
    if config.still_track_px is not None:
        bg_seen &= ~held_still(xy, bg_seen, focal, config.still_track_px)[:, None]
    out = np.full(xy.shape[1], np.nan)
    for t in range(1, xy.shape[1]):
        step = _step_two_view(xy, bg_seen, t - 1, t, config, focal)
        if step is not None:
            out[t] = _turn_between_deg(world_to_cam[t, :, :3] @ world_to_cam[t - 1, :, :3].T, step[1][0])
    return out


def _rebase(world_to_cam: np.ndarray, points: np.ndarray, reference: np.ndarray):
    """Re-express poses (T, 3, 4) and points (N, 3) in the frame of camera ``reference`` (3, 4)."""
    rotation, translation = reference[:, :3], reference[:, 3]
    out = world_to_cam.copy()
    out[:, :, :3] = world_to_cam[:, :, :3] @ rotation.T
    out[:, :, 3] = world_to_cam[:, :, 3] - np.einsum("tij,j->ti", out[:, :, :3], translation)
    return out, points @ rotation.T + translation


def estimate_motion(xy: np.ndarray, background: np.ndarray, focal: float, config: ClassicConfig = ClassicConfig(),
                    rng: np.random.Generator | None = None) -> CameraMotion:
    """Camera poses of a clip from its feature tracks.

    xy: (N, T, 2) normalised image coordinates ((u − cx) / fx, (v − cy) / fy), NaN where not
    seen; background: (N,) bool, which tracks may be used; focal: clip focal length in pixels
    (turns pixel thresholds into normalised ones). Returns :class:`CameraMotion`.
    """
    rng = np.random.default_rng(config.seed) if rng is None else rng
    cv2.setRNGSeed(config.seed)
    bg_seen = np.isfinite(xy[..., 0]) & background[:, None]
    if config.still_track_px is not None:
        bg_seen &= ~held_still(xy, bg_seen, focal, config.still_track_px)[:, None]
    n_tracks, n_frames = bg_seen.shape
    still = still_steps(xy, bg_seen, focal, config.static_px, config.still_fraction)
    if still.all():  # nothing in the background moves: exactly still, whatever else moves
        return CameraMotion(np.tile(np.eye(3, 4), (n_frames, 1, 1)), np.full((n_tracks, 3), np.nan), "static",
                            np.zeros(n_frames, bool), np.zeros(n_frames, bool))
    init = _initial_pair(xy, bg_seen, config, focal, rng) if n_frames > 1 else None
    if init is None:
        return _chain_rotations(xy, bg_seen, still, config, focal, rng)
    a, b, pose_b, tracks, map_points = init
    world_to_cam = np.tile(np.eye(3, 4), (n_frames, 1, 1))
    world_to_cam[b] = pose_b
    posed = np.zeros(n_frames, bool)
    posed[[a, b]] = True
    points = np.full((n_tracks, 3), np.nan)
    points[tracks] = map_points
    frozen, restarted = np.zeros(n_frames, bool), np.zeros(n_frames, bool)
    for t in [*range(b + 1, n_frames), *range(b - 1, a, -1), *range(a - 1, -1, -1)]:
        neighbour = t - 1 if t > b else t + 1
        pose = _pnp(points, xy[:, t], bg_seen[:, t], world_to_cam[neighbour], config, focal)
        if pose is not None and config.two_view_check_deg is not None:
            checked = _two_view_checked(points, xy, bg_seen, world_to_cam, neighbour, t, pose, config, focal)
            pose = pose if checked is None else checked
        if pose is None:
            pose, how = _relocalise(points, xy, bg_seen, world_to_cam, posed, neighbour, t, config, focal, rng)
            frozen[t] = how == "lost"
            restarted[t] = how == "restarted"
        world_to_cam[t] = pose
        posed[t] = True
        if not frozen[t]:
            _extend_map(points, xy, bg_seen, world_to_cam, posed & ~frozen, t, config, focal)
    world_to_cam, points = _rebase(world_to_cam, points, world_to_cam[0].copy())
    points = retriangulate(xy, bg_seen, world_to_cam, config, focal)
    if config.bundle_adjust:
        world_to_cam, points = bundle_adjust(world_to_cam, points, xy, bg_seen, focal)
        points = retriangulate(xy, bg_seen, world_to_cam, config, focal)
    return CameraMotion(world_to_cam, points, "parallax", frozen, restarted)
