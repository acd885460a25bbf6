"""``classic``: a weights-free reconstruction backend (DESIGN §4).

    frames --KLT--> background / object tracks --init pair, PnP, bundle adjustment--> poses, sparse map
           --ground plane (RANSAC)--> metric scale --contact / size / triangulation--> object depths
           --ray ∩ ground, backdrop, splats, object fill--> local_points, conf

1. Features: Shi–Tomasi corners tracked by pyramidal Lucas–Kanade with a forward–backward
   check (:mod:`recon4d._features`). Tracked objects (masks, or boxes when there are no
   masks), grown by ``mask_margin_frac``, are kept out of the background tracks.
2. Camera motion, world = camera of frame 0. The first frame pair (a, b) whose background
   tracks move, are not explained by a pure rotation (``min_parallax_px``) and whose
   essential matrix (``findEssentialMat`` RANSAC + ``recoverPose``, known intrinsics)
   triangulates points under a median angle of ``min_parallax_deg`` starts the map. Every
   other frame is placed by PnP-RANSAC against the map, which keeps one scale for the whole
   clip, and adds the points it can triangulate under a wide enough angle. The points are
   re-triangulated from all their views and a robust bundle adjustment (Levenberg–Marquardt,
   Schur complement) refines poses and points. Without such a pair (a static camera, a
   camera that only turns) the translation is zero and frame-to-frame rotations (2-point
   RANSAC + Kabsch on the bearings) are chained; a pair whose tracks move less than
   ``static_px`` is the identity, so static footage gives an exactly static camera.
3. Scale: a plane fitted by RANSAC to map points seen in the lower half of the image, with
   every camera above it, is the ground; the clip is scaled so that the median camera height
   above it is ``camera_height_m``. Without parallax there is nothing to fit: the ground is
   a prior under camera 0 (world), tilted and raised as the boxes of people (1.7 m tall)
   say (:func:`tilt_and_height_from_people`), else level at ``camera_height_m``.
4. Geometry per frame (OpenCV camera frame, clip resolution): ground pixels from the ray ∩
   ground, a fronto-parallel backdrop at the 90th percentile depth of the map points seen
   (conf 0.05, below the lifting threshold), map points splatted over 3×3 pixels
   (conf 0.9), then each object's pixels at the object's depth, far objects first. An
   object's depth comes from its ground contact (the ray through the bottom centre of its
   box ∩ ground) when the box bottom is inside the image and not hidden behind another
   object; else bridged between such frames (linear in inverse depth); else from its
   apparent size (depth × box height, or width when the height is cut by the border,
   constant, calibrated on the contact frames); else from triangulated points on the object
   (a static object, checked against the contact depth when there is one). Objects with no
   depth get NaN points and conf 0, so they are not lifted.

Assumptions and limits
----------------------
- Pinhole camera, no lens distortion, fixed focal length, square pixels and principal point
  at the image centre unless ``intrinsics`` are given. The default focal length comes from
  ``fov_deg`` = 60° across the longer side (phone main cameras film ~65–70° and crop a little
  for stabilisation; webcams ~60–78°); a wrong guess bends the trajectory and scales far
  depths.
- A rigid, textured background: moving things must be in ``tracks`` or stay a minority of
  the features (RANSAC and the robust bundle adjustment reject them; shadows of people are
  such a minority). Blank, dark or blurred footage leaves too few features: the camera is
  then static, with a warning.
- Metric scale rests on the ground: a flat floor visible in the lower half of the frame and a
  camera ``camera_height_m`` (1.6 m, a phone at eye level) above it. A different real height
  scales everything by the same factor. With a moving camera and no plane found, the map
  keeps the arbitrary scale of its first baseline (a warning says so) and only static
  objects with triangulated points get a depth. Without parallax, depth comes from the
  prior ground described above (a warning says which), so absolute depths are rough.
- Objects stand on the ground and keep their size; objects in the air, hidden at the bottom
  at the ends of the clip, or changing shape (a person bending) break these cues. All pixels
  of an object get one depth (a fronto-parallel cut-out): its lifted centre lies about on its
  front surface, and its extent along the view ray is lost. With box-only tracks an object's
  box also takes in the background and parts of its neighbours.
- Background depth is a plane, a backdrop and sparse points: walls, furniture and slopes
  below the horizon land on the ground plane and come out too far.
- The whole clip is held in memory; bundle adjustment costs (6T)³/3 per iteration, fine for
  clips of a few hundred frames; pure-rotation clips drift slowly (no loop closure).
- A one-frame clip gives the identity camera and the prior ground, with a warning. A clip
  with no frames, bad options, or tracks whose frame count or mask size do not match the
  clip raise :class:`ClassicReconstructionError` / :class:`~recon4d.errors.ShapeError`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import cv2
import numba
import numpy as np

from recon4d._features import BACKGROUND, NO_FEATURES, FeatureTracks, TrackerConfig, track_features
from recon4d.errors import Recon4dError, ShapeError
from recon4d.types import Clip, Reconstruction, Tracks2D

ProgressFn = Callable[[int, int], None]

CONF_POINT = 0.9
"""Confidence of pixels under a splatted map point."""
CONF_GROUND = 0.5
"""Confidence of ray ∩ fitted ground plane (halved when the plane is the prior)."""
CONF_BACKDROP = 0.05
"""Confidence of the backdrop: below the lifting threshold (0.1), so it never feeds a centre."""
CONF_OBJECT = {"contact": 0.8, "bridged": 0.7, "triangulated": 0.7, "size": 0.6}
"""Confidence of object pixels by the cue that gave the object's depth."""


class ClassicReconstructionError(Recon4dError):
    """The classic backend cannot reconstruct this input (no frames, mismatched tracks, bad options)."""


class ReconstructionWarning(UserWarning):
    """The reconstruction went ahead with a fallback (static camera, prior ground plane...)."""


@dataclass(frozen=True)
class ClassicConfig:
    """Settings of the classic reconstructor; ``from_options`` builds one from plain CLI options.

    Pixel thresholds are in clip pixels (the frames given to the reconstructor); intrinsics
    in source-video pixels.
    """

    fov_deg: float = 60.0
    """Horizontal field of view across the longer image side, used when no focal length is given."""
    focal_px: float | None = None
    """Focal length in source-video pixels (square pixels); overrides ``fov_deg``."""
    intrinsics: tuple[float, float, float, float] | None = None
    """(fx, fy, cx, cy) in source-video pixels (pixel centres at j + 0.5); overrides both above."""
    camera_height_m: float = 1.6
    """Assumed camera height above the ground, metres: sets the scale."""
    max_features: int = 1200
    """Live feature tracks per frame."""
    mask_margin_frac: float = 0.02
    """Object masks/boxes are grown by this fraction of the longer side before excluding them."""
    min_parallax_px: float = 0.5
    """Median residual of a pure-rotation fit (clip pixels) a frame pair needs to start the map."""
    min_parallax_deg: float = 2.0
    """Median triangulation angle of the points a frame pair needs to start the map."""
    min_triangulation_deg: float = 1.0
    """Smallest angle between the rays of a triangulated point."""
    static_px: float = 0.25
    """Median background displacement (clip pixels) below which two frames count as static."""
    ransac_px: float = 1.0
    """Inlier threshold of essential-matrix and PnP RANSAC, clip pixels."""
    reprojection_px: float = 2.5
    """Largest reprojection error of a kept map point in any of its views, clip pixels."""
    bundle_adjust: bool = True
    """Refine poses and points jointly (Levenberg–Marquardt on the Huber reprojection error)."""
    plane_tolerance: float = 0.02
    """Ground inlier distance, as a fraction of the median depth of the candidate points."""
    seed: int = 0
    """Seed of every RANSAC (OpenCV's and numpy's), for repeatable output."""

    def __post_init__(self) -> None:
        def fail(message: str):
            raise ClassicReconstructionError(f"classic reconstructor option {message}")

        for name in ("fov_deg", "camera_height_m", "min_parallax_px", "min_parallax_deg", "min_triangulation_deg",
                     "ransac_px", "reprojection_px", "plane_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                fail(f"{name} must be a positive number, got {value!r}.")
        if not 1.0 <= self.fov_deg <= 170.0:
            fail(f"fov_deg must be in [1, 170], got {self.fov_deg}.")
        if self.focal_px is not None and not (isinstance(self.focal_px, (int, float)) and self.focal_px > 0
                                              and math.isfinite(self.focal_px)):
            fail(f"focal_px must be positive, got {self.focal_px!r}.")
        if self.intrinsics is not None:
            try:
                values = tuple(float(v) for v in self.intrinsics)
            except (TypeError, ValueError):
                values = ()
            if len(values) != 4 or not all(math.isfinite(v) for v in values) or min(values[:2]) <= 0:
                fail(f"intrinsics must be [fx, fy, cx, cy] in source pixels with fx, fy > 0, got {self.intrinsics!r}.")
            object.__setattr__(self, "intrinsics", values)
        if isinstance(self.max_features, bool) or int(self.max_features) != self.max_features or self.max_features < 50:
            fail(f"max_features must be an integer ≥ 50, got {self.max_features!r}.")
        if not 0.0 <= self.mask_margin_frac < 0.5:
            fail(f"mask_margin_frac must be in [0, 0.5), got {self.mask_margin_frac!r}.")
        if not self.static_px >= 0:
            fail(f"static_px must be ≥ 0, got {self.static_px!r}.")

    @classmethod
    def from_options(cls, options: dict | None) -> "ClassicConfig":
        """Config from a plain dict; unknown keys raise an error that lists the known ones."""
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ClassicReconstructionError(
                f"unknown option(s) for the classic reconstructor: {', '.join(unknown)}; "
                f"known options are {', '.join(sorted(known))}.")
        return cls(**options)


# --- small pure helpers ---------------------------------------------------------------------------


def prior_intrinsics(source_size: tuple[int, int], config: ClassicConfig = ClassicConfig()) -> np.ndarray:
    """(3, 3) float64 intrinsics in source pixels: the user's, else a focal prior, centred.

    source_size: (width, height). The prior focal is ``focal_px`` or
    max(width, height) / (2 tan(fov_deg / 2)); the principal point is (width / 2, height / 2).
    """
    width, height = source_size
    if config.intrinsics is not None:
        fx, fy, cx, cy = config.intrinsics
    else:
        fx = fy = config.focal_px or max(width, height) / (2.0 * math.tan(math.radians(config.fov_deg) / 2.0))
        cx, cy = width / 2.0, height / 2.0
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(intrinsics: np.ndarray, source_size: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Intrinsics (3, 3) of a frame resized from ``source_size`` to ``image_size`` (both (w, h))."""
    scale = np.diag([image_size[0] / source_size[0], image_size[1] / source_size[1], 1.0])
    return scale @ intrinsics


def pixel_rays(intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float64 camera-frame rays through pixel centres (j + 0.5, i + 0.5), z = 1."""
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return np.stack([(cols - intrinsics[0, 2]) / intrinsics[0, 0], (rows - intrinsics[1, 2]) / intrinsics[1, 1],
                     np.ones_like(cols)], axis=-1)


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


def _project(world_to_cam: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


# --- camera motion ----------------------------------------------------------------------------------

_MIN_MAP_POINTS = 30  # triangulated points an initial pair must give
_MIN_PNP_POINTS = 12  # 2D–3D matches a frame needs to be placed by PnP
_MAX_INIT_GAP = 40  # frames searched after a for the second frame of the initial pair
_INIT_STEP = 4  # first frames of the initial pair tried: 0, 4, 8...
_MAX_SAMPLE = 400  # correspondences used to measure the parallax of a frame pair
_CHUNK_OBSERVATIONS = 400_000  # (track, frame) slots triangulated at once, to bound memory


@dataclass(frozen=True, eq=False)
class CameraMotion:
    """Camera poses and sparse map, world = camera of frame 0, arbitrary (unit-baseline) scale.

    world_to_cam: (T, 3, 4) float64 [R | t] acting on world points.
    points:       (N, 3) float64 map point of each feature track, NaN where none.
    mode:         "parallax" (map + PnP), "rotation" (turning only) or "static".
    n_lost:       frames whose pose fell back to the previous one (too few features/points).
    """

    world_to_cam: np.ndarray
    points: np.ndarray
    mode: str
    n_lost: int


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


def _checked_points(world_to_cam, points, xy, seen, first, last, config: ClassicConfig, focal: float) -> np.ndarray:
    """(n,) bool: points (n, 3) finite, in front of and reprojecting within ``reprojection_px``
    into every camera (V, 3, 4) that sees them (``seen`` (n, V), observations ``xy`` (n, V, 2)),
    with at least ``min_triangulation_deg`` between the rays of views ``first`` and ``last`` (n,)."""
    projected, depth = _project(world_to_cam, points)
    with np.errstate(invalid="ignore"):
        error_px = np.linalg.norm(projected - xy, axis=-1) * focal
        bad = seen & ~((depth > 0) & (error_px < config.reprojection_px))
        angle_ok = _ray_angle_deg(world_to_cam, points, first, last) >= config.min_triangulation_deg
    return np.isfinite(points).all(axis=1) & ~bad.any(axis=1) & angle_ok


def _initial_pair(xy, bg_seen, config: ClassicConfig, focal: float, rng):
    """First frame pair (a, b) whose tracks show translation, or None.

    A pair qualifies when its background tracks move (``static_px``), a pure rotation leaves
    a median residual of at least ``min_parallax_px``, and the points triangulated from its
    essential matrix see each other under a median angle of at least ``min_parallax_deg``
    (a turning camera gives a near-arbitrary essential matrix whose points have rays close to
    parallel). Returns (a, b, world_to_cam_b (3, 4), track indices (m,), points (m, 3)) in
    camera a's frame.
    """
    n_frames = xy.shape[1]
    for a in range(0, n_frames - 1, _INIT_STEP):
        for b in range(a + 1, min(n_frames, a + 1 + _MAX_INIT_GAP)):
            common = np.flatnonzero(bg_seen[:, a] & bg_seen[:, b])
            if len(common) < _MIN_MAP_POINTS:
                break  # tracks seen at a only get fewer as b moves on
            xy_a, xy_b = xy[common, a], xy[common, b]
            if _rotation_residual_px(xy_a, xy_b, config, focal, rng) < config.min_parallax_px:
                continue
            found = _two_view(xy_a, xy_b, config, focal)
            if found is None:
                continue
            rotation, translation, inliers = found
            poses = np.stack([np.eye(3, 4), np.concatenate([rotation, translation[:, None]], axis=1)])
            pair_xy = np.stack([xy_a, xy_b], axis=1)[inliers]
            points = _triangulate(poses, pair_xy, np.ones(pair_xy.shape[:2]))
            first, last = np.zeros(len(points), np.int64), np.ones(len(points), np.int64)
            ok = _checked_points(poses, points, pair_xy, np.ones(pair_xy.shape[:2], bool), first, last, config, focal)
            if ok.sum() < _MIN_MAP_POINTS:
                continue
            if np.median(_ray_angle_deg(poses, points[ok], first[ok], last[ok])) >= config.min_parallax_deg:
                return a, b, poses[1], common[inliers][ok], points[ok]
    return None


def _pnp(points, xy_t, seen_t, guess: np.ndarray, config: ClassicConfig, focal: float) -> np.ndarray | None:
    """Pose (3, 4) of one frame from map points seen in it, by PnP-RANSAC + LM refinement."""
    have = seen_t & np.isfinite(points[:, 0])
    if have.sum() < _MIN_PNP_POINTS:
        return None
    world, image = points[have], xy_t[have].astype(np.float64)
    rvec, tvec = cv2.Rodrigues(guess[:, :3])[0], guess[:, 3:].copy()
    try:
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            world, image, np.eye(3), None, rvec, tvec, useExtrinsicGuess=True, iterationsCount=200,
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
    projected, depth = _project(cams, new)
    error_px = np.linalg.norm(projected - pair_xy, axis=-1) * focal
    ok = np.isfinite(new).all(axis=1) & (depth > 0).all(axis=1) & (error_px < config.reprojection_px).all(axis=1)
    ok &= _ray_angle_deg(world_to_cam, new, other, np.full_like(other, t)) >= config.min_triangulation_deg
    points[candidates[ok]] = new[ok]


def _retriangulate(xy, seen, world_to_cam, config: ClassicConfig, focal: float) -> np.ndarray:
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


def _chain_rotations(xy, bg_seen, config: ClassicConfig, focal: float, rng) -> CameraMotion:
    """Turning-only camera: frame-to-frame rotations chained from frame 0, zero translation."""
    n_tracks, n_frames = bg_seen.shape
    world_to_cam = np.tile(np.eye(3, 4), (n_frames, 1, 1))
    moved, n_lost = False, 0
    for t in range(1, n_frames):
        common = np.flatnonzero(bg_seen[:, t - 1] & bg_seen[:, t])
        relative = np.eye(3)
        if len(common) < 8:
            n_lost += 1
        elif _median_motion_px(xy[common, t - 1], xy[common, t], focal) >= config.static_px:
            relative, _ = _fit_rotation(_unit(xy[common, t - 1]), _unit(xy[common, t]),
                                        2.0 * config.ransac_px / focal, rng)
            moved = True
        world_to_cam[t, :, :3] = relative @ world_to_cam[t - 1, :, :3]
    return CameraMotion(world_to_cam, np.full((n_tracks, 3), np.nan), "rotation" if moved else "static", n_lost)


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
    n_tracks, n_frames = bg_seen.shape
    init = _initial_pair(xy, bg_seen, config, focal, rng) if n_frames > 1 else None
    if init is None:
        return _chain_rotations(xy, bg_seen, config, focal, rng)
    a, b, pose_b, tracks, map_points = init
    world_to_cam = np.tile(np.eye(3, 4), (n_frames, 1, 1))
    world_to_cam[b] = pose_b
    posed = np.zeros(n_frames, bool)
    posed[[a, b]] = True
    points = np.full((n_tracks, 3), np.nan)
    points[tracks] = map_points
    n_lost = 0
    for t in [*range(b + 1, n_frames), *range(b - 1, a, -1), *range(a - 1, -1, -1)]:
        neighbour = t - 1 if t > b else t + 1
        pose = _pnp(points, xy[:, t], bg_seen[:, t], world_to_cam[neighbour], config, focal)
        if pose is None:
            n_lost += 1
            common = np.flatnonzero(bg_seen[:, t] & bg_seen[:, neighbour])
            relative = np.eye(3)
            if len(common) >= 8:
                relative, _ = _fit_rotation(_unit(xy[common, neighbour]), _unit(xy[common, t]),
                                            2.0 * config.ransac_px / focal, rng)
            world_to_cam[t] = relative @ world_to_cam[neighbour]  # turn in place: the centre stays
            posed[t] = True
            continue
        world_to_cam[t] = pose
        posed[t] = True
        _extend_map(points, xy, bg_seen, world_to_cam, posed, t, config, focal)
    world_to_cam, points = _rebase(world_to_cam, points, world_to_cam[0].copy())
    points = _retriangulate(xy, bg_seen, world_to_cam, config, focal)
    if config.bundle_adjust:
        world_to_cam, points = bundle_adjust(world_to_cam, points, xy, bg_seen, focal)
        points = _retriangulate(xy, bg_seen, world_to_cam, config, focal)
    return CameraMotion(world_to_cam, points, "parallax", n_lost)


def _skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices (..., 3, 3) of vectors (..., 3)."""
    zero = np.zeros(v.shape[:-1])
    return np.stack([np.stack([zero, -v[..., 2], v[..., 1]], -1), np.stack([v[..., 2], zero, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], zero], -1)], axis=-2)


def _exp_so3(omega: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of rotation vectors (..., 3) (Rodrigues)."""
    angle = np.linalg.norm(omega, axis=-1)[..., None, None]
    k = _skew(omega)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(angle > 1e-12, np.sin(angle) / angle, 1.0)
        b = np.where(angle > 1e-12, (1.0 - np.cos(angle)) / angle**2, 0.5)
    return np.eye(3) + a * k + b * (k @ k)


def _ba_system(world_to_cam, points, obs_frame, obs_point, observed, focal, huber_px):
    """Residuals (M, 2) px, robust weights (M,), camera (M, 2, 6) and point (M, 2, 3) Jacobians."""
    rotation, translation = world_to_cam[obs_frame, :, :3], world_to_cam[obs_frame, :, 3]
    rotated = np.einsum("mij,mj->mi", rotation, points[obs_point])
    camera = rotated + translation
    z = camera[:, 2]
    residual = (camera[:, :2] / z[:, None] - observed) * focal
    d_proj = np.zeros((len(z), 2, 3))
    d_proj[:, 0, 0] = d_proj[:, 1, 1] = focal / z
    d_proj[:, :, 2] = -focal * camera[:, :2] / z[:, None] ** 2
    jac_camera = np.concatenate([-d_proj @ _skew(rotated), d_proj], axis=2)
    jac_point = d_proj @ rotation
    norm = np.linalg.norm(residual, axis=1)
    weight = np.where(norm <= huber_px, 1.0, huber_px / np.maximum(norm, 1e-12))
    return residual, weight, jac_camera, jac_point


def _robust_cost(residual: np.ndarray, huber_px: float) -> float:
    norm = np.linalg.norm(residual, axis=1)
    return float(np.where(norm <= huber_px, 0.5 * norm**2, huber_px * (norm - 0.5 * huber_px)).sum())


def bundle_adjust(world_to_cam: np.ndarray, points: np.ndarray, xy: np.ndarray, seen: np.ndarray, focal: float,
                  n_iterations: int = 30, huber_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Jointly refine poses (T, 3, 4) and points (N, 3) against observations xy (N, T, 2).

    Levenberg–Marquardt on the Huber-robust reprojection error in pixels (iteratively
    reweighted); the points are eliminated by the Schur complement, so each step solves a
    6(T−1) camera system. Camera 0 is held fixed; the remaining scale freedom is held by the
    damping. Rotations are updated on the left, R ← exp(δω) R. Returns refined copies; NaN
    points stay NaN. Cost per iteration: Σ (track length)² small blocks plus a (6T)³/3
    Cholesky (about 1 s for 48 frames in all, tens of seconds for 200).
    """
    have = np.flatnonzero(np.isfinite(points[:, 0]))
    obs_point, obs_frame = np.nonzero(seen[have])  # sorted by point
    n_frames, n_points = world_to_cam.shape[0], len(have)
    if n_points < _MIN_MAP_POINTS or n_frames < 2:
        return world_to_cam, points
    point_start = np.searchsorted(obs_point, np.arange(n_points + 1))
    observed = xy[have[obs_point], obs_frame]
    poses, world = world_to_cam.copy(), points[have].copy()
    damping = 1e-3
    cost = _robust_cost(_ba_system(poses, world, obs_frame, obs_point, observed, focal, huber_px)[0], huber_px)
    for _ in range(n_iterations):
        residual, weight, jac_c, jac_p = _ba_system(poses, world, obs_frame, obs_point, observed, focal, huber_px)
        cam_block, point_block, cross, grad_c, grad_p = _normal_equations(
            obs_frame, point_start, residual, weight, jac_c, jac_p, n_frames)
        improved = False
        while damping <= 1e6:
            damped_c = cam_block + damping * _diagonal(cam_block)
            damped_p = point_block + damping * _diagonal(point_block)
            inv_p = np.linalg.inv(damped_p)
            reduced, reduced_rhs = _schur_complement(obs_frame, point_start, cross, inv_p, grad_p, n_frames)
            schur = _block_diag(damped_c[1:]) - reduced[6:, 6:]
            step_c = _solve_spd(schur, -grad_c[1:].ravel() + reduced_rhs[6:])
            if step_c is None:
                damping *= 10.0
                continue
            step_c = np.concatenate([np.zeros(6), step_c]).reshape(n_frames, 6)
            back = np.add.reduceat(np.einsum("mij,mi->mj", cross, step_c[obs_frame]), point_start[:-1])
            step_p = -np.einsum("pij,pj->pi", inv_p, grad_p + back)
            trial = poses.copy()
            trial[:, :, :3] = _exp_so3(step_c[:, :3]) @ poses[:, :, :3]
            trial[:, :, 3] = poses[:, :, 3] + step_c[:, 3:]
            trial_world = world + step_p
            trial_cost = _robust_cost(
                _ba_system(trial, trial_world, obs_frame, obs_point, observed, focal, huber_px)[0], huber_px)
            if np.isfinite(trial_cost) and trial_cost < cost:
                converged = cost - trial_cost < 1e-6 * cost
                poses, world, cost, improved = trial, trial_world, trial_cost, not converged
                damping = max(damping / 3.0, 1e-7)
                break
            damping *= 4.0
        if not improved:
            break
    out_points = points.copy()
    out_points[have] = world
    return poses, out_points


def _diagonal(blocks: np.ndarray) -> np.ndarray:
    """The diagonal part (plus a floor) of square blocks (..., k, k), for LM damping."""
    k = blocks.shape[-1]
    return (np.diagonal(blocks, axis1=-2, axis2=-1) + 1e-6)[..., None] * np.eye(k)


@numba.njit(fastmath=False, cache=True)
def _normal_equations(obs_frame, point_start, residual, weight, jac_c, jac_p, n_frames):
    """Blocks of JᵀWJ and JᵀWr: cameras (T, 6, 6), points (P, 3, 3), camera–point (M, 6, 3)
    per observation, gradients (T, 6) and (P, 3). Observations are sorted by point."""
    n_points = len(point_start) - 1
    cam_block = np.zeros((n_frames, 6, 6))
    point_block = np.zeros((n_points, 3, 3))
    cross = np.zeros((len(obs_frame), 6, 3))
    grad_c = np.zeros((n_frames, 6))
    grad_p = np.zeros((n_points, 3))
    for p in range(n_points):
        for m in range(point_start[p], point_start[p + 1]):
            t, w = obs_frame[m], weight[m]
            for r in range(2):
                for i in range(6):
                    grad_c[t, i] += w * jac_c[m, r, i] * residual[m, r]
                    for j in range(6):
                        cam_block[t, i, j] += w * jac_c[m, r, i] * jac_c[m, r, j]
                    for j in range(3):
                        cross[m, i, j] += w * jac_c[m, r, i] * jac_p[m, r, j]
                for i in range(3):
                    grad_p[p, i] += w * jac_p[m, r, i] * residual[m, r]
                    for j in range(3):
                        point_block[p, i, j] += w * jac_p[m, r, i] * jac_p[m, r, j]
    return cam_block, point_block, cross, grad_c, grad_p


@numba.njit(fastmath=False, cache=True)
def _schur_complement(obs_frame, point_start, cross, inv_p, grad_p, n_frames):
    """Σ_p W_p V_p⁻¹ W_pᵀ as a (6T, 6T) matrix and Σ_p W_p V_p⁻¹ g_p (6T,), visiting only the
    pairs of frames that see a common point."""
    reduced = np.zeros((6 * n_frames, 6 * n_frames))
    rhs = np.zeros(6 * n_frames)
    scaled = np.zeros((6, 3))
    for p in range(len(point_start) - 1):
        for a in range(point_start[p], point_start[p + 1]):
            ta = obs_frame[a]
            for i in range(6):
                for j in range(3):
                    scaled[i, j] = cross[a, i, 0] * inv_p[p, 0, j] + cross[a, i, 1] * inv_p[p, 1, j] \
                        + cross[a, i, 2] * inv_p[p, 2, j]
                rhs[6 * ta + i] += scaled[i, 0] * grad_p[p, 0] + scaled[i, 1] * grad_p[p, 1] \
                    + scaled[i, 2] * grad_p[p, 2]
            for b in range(point_start[p], point_start[p + 1]):
                tb = obs_frame[b]
                for i in range(6):
                    for j in range(6):
                        reduced[6 * ta + i, 6 * tb + j] += scaled[i, 0] * cross[b, j, 0] \
                            + scaled[i, 1] * cross[b, j, 1] + scaled[i, 2] * cross[b, j, 2]
    return reduced, rhs


@numba.njit(fastmath=False, cache=True)
def _solve_spd(matrix: np.ndarray, rhs: np.ndarray):
    """x with matrix @ x = rhs by Cholesky, or None when ``matrix`` is not positive definite.

    A plain loop on purpose: threaded LAPACK factorisations of these small (≤ a few hundred)
    systems stall for hundreds of milliseconds when the cores are shared.
    """
    n = matrix.shape[0]
    lower = np.zeros((n, n))
    for j in range(n):
        total = matrix[j, j]
        for k in range(j):
            total -= lower[j, k] * lower[j, k]
        if not total > 0.0:
            return None
        lower[j, j] = np.sqrt(total)
        for i in range(j + 1, n):
            total = matrix[i, j]
            for k in range(j):
                total -= lower[i, k] * lower[j, k]
            lower[i, j] = total / lower[j, j]
    y = np.empty(n)
    for i in range(n):
        total = rhs[i]
        for k in range(i):
            total -= lower[i, k] * y[k]
        y[i] = total / lower[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        total = y[i]
        for k in range(i + 1, n):
            total -= lower[k, i] * x[k]
        x[i] = total / lower[i, i]
    return x


def _block_diag(blocks: np.ndarray) -> np.ndarray:
    """(n, k, k) blocks → (n·k, n·k) block-diagonal matrix."""
    n, k, _ = blocks.shape
    out = np.zeros((n * k, n * k))
    index = np.arange(n)[:, None] * k + np.arange(k)
    out[index[:, :, None], index[:, None, :]] = blocks
    return out


# --- ground plane and scale -------------------------------------------------------------------------

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


def _ground_candidates(points: np.ndarray, xy_px: np.ndarray, height: int) -> np.ndarray:
    """Map points whose track stays, on average, in the lower half of the image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_row = np.nanmean(xy_px[..., 1], axis=1)
    return points[np.isfinite(points[:, 0]) & (mean_row > 0.5 * height)]


# --- objects ------------------------------------------------------------------------------------------

CUE_NONE, CUE_CONTACT, CUE_BRIDGED, CUE_SIZE, CUE_TRIANGULATED = 0, 1, 2, 3, 4


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


def level_up(pitch_rad: float) -> np.ndarray:
    """World up (3,) in the OpenCV frame of a camera without roll, tilted down by ``pitch_rad``."""
    return np.array([0.0, -math.cos(pitch_rad), -math.sin(pitch_rad)])


def tilt_and_height_from_people(boxes: np.ndarray, usable: np.ndarray, intrinsics: np.ndarray, camera_height_m: float,
                      person_height_m: float = PERSON_HEIGHT_M) -> tuple[float, float] | None:
    """Downward tilt (radians) and height (m) of a camera without roll that best explain people's boxes.

    boxes: (K, T, 4) xyxy clip pixels of people; usable: (K, T) bool, boxes whole (inside the
    image, bottom not hidden). For a tilt θ and height h, a person standing where the bottom
    centre's ray meets the ground should have its head ``person_height_m`` higher; the pair
    with the smallest median angular error of the box tops wins, searched on a grid (θ in
    [−30°, 60°) by 0.25°, h from 0.3 to 8 m), plus 15 mrad per e-fold of h away from
    ``camera_height_m`` so that boxes all at one distance (which fix only a mix of θ and h)
    fall back on the nominal height. Needs at least 3 boxes; returns None otherwise (Hoiem et
    al. 2006, "Putting objects in perspective").
    """
    boxes = boxes[usable]
    if len(boxes) < 3:
        return None
    u = 0.5 * (boxes[:, 0] + boxes[:, 2])
    bottom = np.stack([(u - intrinsics[0, 2]) / intrinsics[0, 0],
                       (boxes[:, 3] - 0.5 - intrinsics[1, 2]) / intrinsics[1, 1], np.ones(len(boxes))], axis=-1)
    top_row = boxes[:, 1] + 0.5
    ups = np.stack([level_up(math.radians(angle)) for angle in _PITCH_GRID_DEG])  # (G, 3)
    facing = ups @ bottom.T  # (G, n)
    best = (np.inf, 0.0, camera_height_m)
    for height_m in _HEIGHT_GRID_M:
        with np.errstate(divide="ignore", invalid="ignore"):
            feet = (-height_m / facing)[..., None] * bottom  # (G, n, 3)
            head = feet + person_height_m * ups[:, None, :]
            predicted = intrinsics[1, 1] * head[..., 1] / head[..., 2] + intrinsics[1, 2]
            error = np.where((facing < -1e-6) & (head[..., 2] > 0), np.abs(predicted - top_row), np.inf)
        cost = 1e3 * np.median(error, axis=1) / intrinsics[1, 1] + 15.0 * abs(math.log(height_m / camera_height_m))
        g = int(np.argmin(cost))
        if cost[g] < best[0]:
            best = (float(cost[g]), math.radians(float(_PITCH_GRID_DEG[g])), float(height_m))
    return None if not np.isfinite(best[0]) else (best[1], best[2])


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


def object_depths(contact: np.ndarray, size: np.ndarray, triangulated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pick each object's depth per frame by cue priority: contact (measured, then bridged over
    gaps), apparent size, triangulated points.

    All inputs (K, T) with NaN where a cue is unavailable. Triangulated depths of an object are
    dropped when they differ from its contact depths by over 15 % (median over the frames
    with both). Returns depth (K, T) (NaN when no cue) and the cue used (K, T) int8 (CUE_*).
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
    return depth, cue


def _object_point_depths(xy, label, seen, world_to_cam, n_objects, config: ClassicConfig, focal: float) -> np.ndarray:
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
    points = _retriangulate(xy[object_tracks], seen[object_tracks], world_to_cam, strict, focal)
    ok = np.isfinite(points[:, 0])
    if not ok.any():
        return depth
    tracks, points = object_tracks[ok], points[ok]
    _, z = _project(world_to_cam, points)  # (n, T)
    z = np.where(seen[tracks], z, np.nan)
    for k in np.unique(label[tracks]) - 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            depth[k] = np.nanmedian(z[label[tracks] == k + 1], axis=0)
    return depth


# --- dense geometry -----------------------------------------------------------------------------------

_FAR_BACKDROP_HEIGHTS = 25.0  # backdrop distance in camera heights when no map point says better
_SPLAT = np.stack(np.meshgrid(np.arange(-1, 2), np.arange(-1, 2)), axis=-1).reshape(-1, 2)  # 3×3 (dcol, drow)


def render_depth(rays: np.ndarray, plane: np.ndarray | None, backdrop_depth: float, ground_conf: float,
                 splat_px: np.ndarray, splat_depth: np.ndarray,
                 objects: list[tuple[np.ndarray, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Depth (H, W) float32 and confidence (H, W) float32 of one frame.

    rays: (H, W, 3) pixel rays with z = 1. plane: (4,) ground (n, h), n · X + h = 0 in this
    camera, or None. Pixels are, in order of precedence: object pixels (``objects``: (mask
    (H, W) bool, depth, conf) drawn far to near; NaN depth gives NaN with conf 0), map points
    (``splat_px`` (n, 2) pixel coordinates, ``splat_depth`` (n,)) over 3×3 pixels, the ground
    where the ray meets it nearer than the backdrop, and the backdrop.
    """
    height, width = rays.shape[:2]
    depth = np.full((height, width), backdrop_depth, np.float32)
    conf = np.full((height, width), CONF_BACKDROP, np.float32)
    if plane is not None:
        facing = rays @ plane[:3].astype(rays.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            ground = -plane[3] / facing
        on_ground = (facing < -1e-6) & (ground < backdrop_depth)
        depth[on_ground] = ground[on_ground]
        conf[on_ground] = ground_conf
    if len(splat_px):
        cols = (np.floor(splat_px[:, 0]).astype(np.int64)[:, None] + _SPLAT[None, :, 0]).ravel()
        rows = (np.floor(splat_px[:, 1]).astype(np.int64)[:, None] + _SPLAT[None, :, 1]).ravel()
        values = np.repeat(splat_depth, len(_SPLAT))
        inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        depth[rows[inside], cols[inside]] = values[inside]
        conf[rows[inside], cols[inside]] = CONF_POINT
    for mask, object_depth, object_conf in sorted(objects, key=lambda item: -np.nan_to_num(item[1], nan=np.inf)):
        known = np.isfinite(object_depth)
        depth[mask] = object_depth if known else np.nan
        conf[mask] = object_conf if known else 0.0
    return depth, conf


def _box_mask(box: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool of the pixels a clip-pixel xyxy box covers."""
    width, height = image_size
    mask = np.zeros((height, width), bool)
    x1, y1 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x2, y2 = min(width, int(math.ceil(box[2]))), min(height, int(math.ceil(box[3])))
    mask[y1:y2, x1:x2] = True
    return mask


# --- the backend ----------------------------------------------------------------------------------------


def _check_tracks(clip: Clip, tracks: Tracks2D | None) -> None:
    if tracks is None:
        return
    n_frames = tracks.boxes_xyxy.shape[1]
    if n_frames != clip.n_frames:
        raise ShapeError(f"tracks cover {n_frames} frames but the clip has {clip.n_frames}; "
                         "track the same sampled frames that are reconstructed.")
    if tracks.masks is not None:
        width, height = clip.image_size
        if tuple(tracks.masks.shape[2:]) != (height, width):
            raise ShapeError(f"tracks.masks are {tracks.masks.shape[3]}×{tracks.masks.shape[2]} pixels but the clip "
                             f"frames are {width}×{height}; masks must be at the clip's frame size.")


class ClassicReconstructor:
    """Weights-free reconstruction (see the module docstring for the method and its limits).

    >>> recon = ClassicReconstructor.from_config({"camera_height_m": 1.5}, device="cpu")
    >>> result = recon.reconstruct(clip, tracks)  # Reconstruction, world = camera of frame 0
    """

    name = "classic"
    version = "1.0"

    def __init__(self, config: ClassicConfig = ClassicConfig(), tracker: TrackerConfig | None = None) -> None:
        self.config = config
        self.tracker = tracker or TrackerConfig(max_corners=config.max_features)

    @classmethod
    def from_config(cls, options: dict | None = None, device: str = "cpu") -> "ClassicReconstructor":
        """Build from plain options (:class:`ClassicConfig` fields); ``device`` is ignored (CPU only)."""
        return cls(ClassicConfig.from_options(options))

    def reconstruct(self, clip: Clip, tracks: Tracks2D | None = None,
                    progress: ProgressFn | None = None) -> Reconstruction:
        """Camera poses, point maps and confidences of ``clip``.

        clip: frames (T, H, W, 3). tracks: objects to keep out of the camera estimate and to
        place in depth (boxes in source pixels, masks at the clip size or None), or None.
        ``progress(done, total)`` is called as frames are tracked (T), after the camera
        solve, and as point maps are filled (T). Returns a :class:`Reconstruction` with
        cam_to_world (T, 4, 4) (identity at frame 0), local_points (T, H, W, 3) float32,
        conf (T, H, W) float32 and intrinsics (T, 3, 3) float32 in source pixels.
        """
        config = self.config
        n_frames = clip.n_frames
        if n_frames == 0:
            raise ClassicReconstructionError("the clip has no frames; sample at least one frame to reconstruct.")
        _check_tracks(clip, tracks)
        width, height = clip.image_size
        total = 2 * n_frames + 1
        report = (lambda done: progress(done, total)) if progress is not None else (lambda done: None)

        source_k = prior_intrinsics(clip.source_size, config)
        clip_k = scale_intrinsics(source_k, clip.source_size, clip.image_size)
        focal = float(np.sqrt(clip_k[0, 0] * clip_k[1, 1]))
        n_objects = 0 if tracks is None else tracks.n_objects
        boxes = self._clip_boxes(clip, tracks)
        object_masks = self._object_masks(tracks, boxes, clip.image_size)
        border = max(2.0, 0.01 * height)
        occluded = np.zeros((n_objects, n_frames), bool)
        if n_objects:
            occluded = (bottom_occluded_masks(object_masks, n_objects, n_frames) if tracks.masks is not None
                        else bottom_occluded(boxes))

        features = track_features(clip.frames, self._regions(object_masks, n_objects, clip.image_size), self.tracker,
                                  progress=lambda t: report(t + 1))
        xy = np.stack([(features.xy[..., 0] - clip_k[0, 2]) / clip_k[0, 0],
                       (features.xy[..., 1] - clip_k[1, 2]) / clip_k[1, 1]], axis=-1).astype(np.float64)
        background = features.label == BACKGROUND
        featureless = self._warn_if_featureless(features, background, n_frames)
        motion = estimate_motion(xy, background, focal, config, np.random.default_rng(config.seed))
        people_prior = None
        if motion.mode != "parallax":
            people_prior = self._people_prior(tracks, boxes, occluded, clip_k, clip.image_size, border)
            self._warn_no_parallax(motion.mode if n_frames > 1 and not featureless else None, people_prior)
        if motion.n_lost and not featureless:
            _warn(f"{motion.n_lost} of {n_frames} frames had too few tracked features or map points and copy the "
                  "pose (or only the turn) of their neighbour.")
        report(n_frames + 1)

        world_to_cam, points, plane, fitted = self._scale(motion, features, height, people_prior)
        bg_seen = np.isfinite(xy[..., 0]) & background[:, None]
        map_depth = np.where(bg_seen & np.isfinite(points[:, :1]), _project(world_to_cam, np.nan_to_num(points))[1],
                             np.nan)  # (N, T) depth of each map point in each frame that sees it
        backdrop = self._backdrop_depths(map_depth)
        plane_camera = None  # (T, 4): ground (n, h) in each camera frame
        if plane is not None:
            normal, offset = plane
            centres = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3])
            plane_camera = np.concatenate([world_to_cam[:, :, :3] @ normal, (centres @ normal + offset)[:, None]],
                                          axis=1)

        depth_k, cue_k = np.full((n_objects, n_frames), np.nan), np.zeros((n_objects, n_frames), np.int8)
        if n_objects:
            unknown = np.full((n_objects, n_frames), np.nan)
            contact = (unknown if plane_camera is None else
                       contact_depth(boxes, plane_camera, clip_k, backdrop, clip.image_size, border, occluded))
            size = size_depth(boxes, contact, clip.image_size, border, occluded)
            triangulated = (unknown if motion.mode != "parallax" else
                            _object_point_depths(xy, features.label, np.isfinite(xy[..., 0]), world_to_cam,
                                                 n_objects, config, focal))
            depth_k, cue_k = object_depths(contact, size, triangulated)

        rays = pixel_rays(clip_k, width, height).astype(np.float32)
        local_points = np.empty((n_frames, height, width, 3), np.float32)
        conf = np.empty((n_frames, height, width), np.float32)
        for t in range(n_frames):
            splat = np.flatnonzero(np.isfinite(map_depth[:, t]) & (map_depth[:, t] > 0))
            objects = [(mask, depth_k[k, t], _object_conf(int(cue_k[k, t]), fitted))
                       for k in range(n_objects) if (mask := object_masks(k, t)) is not None]
            depth, conf[t] = render_depth(rays, None if plane_camera is None else plane_camera[t], backdrop[t],
                                          CONF_GROUND if fitted else 0.5 * CONF_GROUND,
                                          features.xy[splat, t], map_depth[splat, t], objects)
            local_points[t] = rays * depth[..., None]
            report(n_frames + 2 + t)
        cam_to_world = np.tile(np.eye(4), (n_frames, 1, 1))
        cam_to_world[:, :3, :3] = np.swapaxes(world_to_cam[:, :, :3], 1, 2)
        cam_to_world[:, :3, 3] = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3]) + 0.0
        return Reconstruction(cam_to_world=cam_to_world, local_points=local_points, conf=conf,
                              intrinsics=np.broadcast_to(source_k.astype(np.float32), (n_frames, 3, 3)).copy())

    # -- steps -------------------------------------------------------------------------------------------

    def _regions(self, object_masks, n_objects: int, image_size: tuple[int, int]) -> Callable[[int], np.ndarray]:
        """``regions(t)`` for the feature tracker: objects k + 1, a ring around them −1, background 0."""
        width, height = image_size
        margin = max(1, int(round(self.config.mask_margin_frac * max(width, height))))
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)

        def regions(t: int) -> np.ndarray:
            region = np.full((height, width), BACKGROUND, np.int16)
            masks_t = [(k, mask) for k in range(n_objects) if (mask := object_masks(k, t)) is not None]
            for _, mask in masks_t:
                region[cv2.dilate(mask.view(np.uint8), kernel) > 0] = NO_FEATURES
            for k, mask in masks_t:
                region[mask] = k + 1
            return region

        return regions

    def _warn_no_parallax(self, mode: str | None, people_prior: tuple[float, float] | None) -> None:
        if people_prior is not None:
            how = (f"tilted down by {math.degrees(people_prior[0]):.1f}° and {people_prior[1]:.2f} m above a flat "
                   f"ground (fitted to the boxes of people {PERSON_HEIGHT_M} m tall)")
        else:
            how = f"level and {self.config.camera_height_m} m above a flat ground"
        why = f"the camera shows no usable parallax ({mode} camera)" if mode else "there is no camera motion to measure"
        _warn(f"{why}: translation is set to zero and depth comes from a prior, a camera {how}.")

    def _scale(self, motion: CameraMotion, features: FeatureTracks, height: int,
               pose_prior: tuple[float, float] | None):
        """Metric poses, points and ground plane: (world_to_cam, points, (normal, offset) or None, fitted).

        Without parallax the ground is a prior: the camera of frame 0 (the world frame) without
        roll, tilted down and raised by ``pose_prior`` (tilt rad, height m) from people, else
        level at ``camera_height_m``.
        """
        config = self.config
        world_to_cam, points = motion.world_to_cam.copy(), motion.points.copy()
        if motion.mode != "parallax":
            pitch, camera_height = pose_prior or (0.0, config.camera_height_m)
            return world_to_cam, points, (level_up(pitch), camera_height), False
        candidates = _ground_candidates(points, features.xy, height)
        centre = -world_to_cam[0, :, :3].T @ world_to_cam[0, :, 3]
        spread = float(np.median(np.linalg.norm(candidates - centre, axis=1))) if len(candidates) else 1.0
        plane = fit_ground_plane(candidates, world_to_cam, config.plane_tolerance * spread,
                                 np.random.default_rng(config.seed))
        if plane is None:
            _warn("no ground plane was found among the triangulated points: the reconstruction keeps the "
                  "arbitrary scale of its first baseline (not metres) and objects are placed by triangulated "
                  "points only where they are static.")
            return world_to_cam, points, None, False
        normal, offset = plane
        centres = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3])
        scale = config.camera_height_m / float(np.median(centres @ normal + offset))
        world_to_cam[:, :, 3] *= scale
        return world_to_cam, points * scale, (normal, offset * scale), True

    def _backdrop_depths(self, map_depth: np.ndarray) -> np.ndarray:
        """Per-frame backdrop depth (T,): 90th percentile of the map points seen, else of all."""
        n_frames = map_depth.shape[1]
        fallback = _FAR_BACKDROP_HEIGHTS * self.config.camera_height_m
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_frame = np.nanpercentile(map_depth, 90, axis=0) if map_depth.size else np.full(n_frames, np.nan)
            overall = np.nanpercentile(map_depth, 90) if np.isfinite(map_depth).any() else fallback
        return np.where(np.isfinite(per_frame), per_frame, overall)

    @staticmethod
    def _clip_boxes(clip: Clip, tracks: Tracks2D | None) -> np.ndarray:
        """(K, T, 4) boxes in clip pixels, NaN where not visible."""
        if tracks is None:
            return np.zeros((0, clip.n_frames, 4))
        sx = clip.image_size[0] / clip.source_size[0]
        sy = clip.image_size[1] / clip.source_size[1]
        boxes = tracks.boxes_xyxy.astype(np.float64) * np.array([sx, sy, sx, sy])
        return np.where(tracks.visible[..., None], boxes, np.nan)

    @staticmethod
    def _object_masks(tracks: Tracks2D | None, boxes: np.ndarray, image_size: tuple[int, int]):
        """``mask(k, t)``: (H, W) bool pixels of object k in frame t, or None when not visible."""
        def mask(k: int, t: int) -> np.ndarray | None:
            if tracks is None or not tracks.visible[k, t] or not np.isfinite(boxes[k, t]).all():
                return None
            if tracks.masks is not None:
                pixels = np.asarray(tracks.masks[k, t], bool)
                return pixels if pixels.any() else None
            return _box_mask(boxes[k, t], image_size)
        return mask

    @staticmethod
    def _warn_if_featureless(features: FeatureTracks, background: np.ndarray, n_frames: int) -> bool:
        """Warn (and say so) when too few background features are tracked to see any motion."""
        seen = np.isfinite(features.xy[..., 0]) & background[:, None]
        per_frame = seen.sum(axis=0) if features.n_tracks else np.zeros(n_frames)
        if np.median(per_frame) >= _MIN_MAP_POINTS:
            return False
        _warn(f"too few background features to follow (median {int(np.median(per_frame))} per frame; the video "
              "may be dark, blank or blurred): the camera is taken as static.")
        return True

    def _people_prior(self, tracks, boxes, occluded, intrinsics, image_size, border) -> tuple[float, float] | None:
        """Camera tilt and height from whole, unhidden boxes of people (see :func:`tilt_and_height_from_people`)."""
        if tracks is None or tracks.n_objects == 0:
            return None
        width, height = image_size
        people = np.array([c.lower() in ("person", "people", "pedestrian") for c in tracks.categories])
        with np.errstate(invalid="ignore"):
            whole = ((boxes[..., 0] >= border) & (boxes[..., 1] >= border) & (boxes[..., 2] <= width - border)
                     & (boxes[..., 3] <= height - border))
        usable = whole & ~occluded & people[:, None]
        return tilt_and_height_from_people(boxes, usable, intrinsics, self.config.camera_height_m)


def _object_conf(cue: int, ground_fitted: bool) -> float:
    """Confidence of an object's pixels: by cue, halved for ground cues when the ground is a prior."""
    name = {CUE_CONTACT: "contact", CUE_BRIDGED: "bridged", CUE_SIZE: "size", CUE_TRIANGULATED: "triangulated"}
    if cue == CUE_NONE:
        return 0.0
    ground_based = cue in (CUE_CONTACT, CUE_BRIDGED, CUE_SIZE)
    return CONF_OBJECT[name[cue]] * (0.5 if ground_based and not ground_fitted else 1.0)


def _warn(message: str) -> None:
    warnings.warn(message, ReconstructionWarning, stacklevel=2)
