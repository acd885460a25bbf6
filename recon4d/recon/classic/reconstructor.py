"""``classic``: a weights-free reconstruction backend (DESIGN §4).

    frames --KLT--> background / object tracks --init pair, PnP, bundle adjustment--> poses, sparse map
           --ground plane (RANSAC)--> metric scale --contact / size / triangulation--> object depths
           --ray ∩ ground, backdrop, splats, object fill--> local_points, conf

1. Features: Shi–Tomasi corners tracked by pyramidal Lucas–Kanade with a forward–backward
   check (:mod:`recon4d.recon.classic.features`). Tracked objects (masks, or boxes when there are no
   masks), grown by ``mask_margin_frac``, are kept out of the background tracks. With
   ``feature_shift_px`` set (8 px by default; None: off), where the frame moves by that much between frames
   (a camera that turns fast), the points start from the frame's global shift.
2. Camera motion (:mod:`recon4d.recon.classic.camera_motion`), world = camera of frame 0. With
   ``still_track_px`` set (15 px by default; None: off), background tracks that stay put in the image while
   the frame moves by that much (a followed subject no tracker masked out) are left out. The first frame
   pair (a, b) whose background tracks move, are not explained by a pure rotation
   (``min_parallax_px``) and whose essential matrix (``findEssentialMat`` RANSAC +
   ``recoverPose``, known intrinsics) triangulates points under a median angle of
   ``min_parallax_deg`` starts the map (with ``refined_start``: of the first six such pairs, each
   refined by a two-view bundle adjustment, the one with the most points). Every other frame is
   placed by PnP-RANSAC against the map, which keeps one scale for the whole clip, and adds the points it can triangulate
   under a wide enough angle. The points are re-triangulated from all their views and a
   robust bundle adjustment (Levenberg–Marquardt, Schur complement;
   :mod:`recon4d.recon.classic.bundle_adjust`) refines poses and points. Without such a pair (a static
   camera, a camera that only turns) the translation is zero and frame-to-frame rotations
   (2-point RANSAC + Kabsch on the bearings) are chained; a pair whose tracks move less than
   ``static_px`` is the identity, so static footage gives an exactly static camera.
3. Scale (:mod:`recon4d.recon.classic.object_depth`): a plane fitted by RANSAC to map points seen in the
   lower half of the image, with every camera above it, is the ground; the clip is scaled so
   that the median camera height above it is ``camera_height_m`` — or, where at least 8 whole,
   unhidden boxes of people agree (``scale_from_people``), so that they stand 1.7 m tall on it
   (:func:`~recon4d.recon.classic.object_depth.people_heights`; scale source ``people-height``).
   Without parallax there is
   nothing to fit: the ground is a prior under camera 0 (world), tilted as the clip's vertical
   lines say where they agree (:func:`~recon4d.recon.classic.vertical.vertical_tilt`; raised as
   the boxes of people 1.7 m tall say, else ``camera_height_m`` up; scale source ``vertical-prior``),
   else tilted and raised as the boxes of people (1.7 m tall) say
   (:func:`~recon4d.recon.classic.object_depth.tilt_and_height_from_people`), else tilted so
   that objects of any kind moving nearer or farther keep one size
   (:func:`~recon4d.recon.classic.object_depth.tilt_from_object_sizes`, ``camera_height_m``
   up; scale source ``size-prior``), else level at ``camera_height_m``.
4. Geometry per frame (OpenCV camera frame, clip resolution; :func:`render_depth`, here):
   ground pixels from the ray ∩ ground, a fronto-parallel backdrop at the 90th percentile
   depth of the map points seen (conf 0.05, below the lifting threshold), map points
   splatted over 3×3 pixels (conf 0.9), then each object's pixels at the object's depth, far
   objects first. An object's depth (:func:`~recon4d.recon.classic.object_depth.object_depths`) comes from
   its ground contact (the ray through the bottom centre of its box ∩ ground) when the box
   bottom is inside the image, not hidden behind another object or a prop
   (:func:`~recon4d.recon.classic.object_depth.hidden_bottoms`) and, with ``depth_outlier_rel``
   set (off by default), not contradicted by the neighbouring frames' contacts
   (:func:`~recon4d.recon.classic.object_depth.depth_outliers`: a box on something else for a
   frame or two) and, with ``height_misfit_log`` set, not implying a height off the track's own
   with its top on its path (:mod:`~recon4d.recon.classic.cut_bottoms`: then placed from the
   box top at the track's height where the top says enough); else bridged between
   such frames (linear in inverse depth); else from its apparent size (depth × box height,
   or width when the height is cut by the border, constant, calibrated on the contact
   frames; not in a contradicted frame, whose box is as wrong); else from triangulated points
   on the object (a static object, checked against the contact depth when there is one); else,
   where the bottom is hidden behind a prop or the contact contradicted to the end of the
   track, the depth of its nearest placed frame (held). Objects with no depth get
   NaN points and conf 0, so they are not lifted.

The settings are :class:`~recon4d.recon.classic.config.ClassicConfig` (importable from here too);
:class:`ClassicReconstructor` below runs the steps in this order.

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
- Metric scale rests on the ground: a flat floor visible in the lower half of the frame and
  people seen whole standing 1.7 m tall on it (±10 % for adults; children or a crowd of
  misnamed objects whose heights agree would scale it wrongly), else a camera
  ``camera_height_m`` (1.6 m, a phone at eye level) above it. A different real height
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
- The frames and feature tracks of the whole clip are held in memory (point maps are rendered
  per frame when read); bundle adjustment costs (6T)³/3 per iteration, fine for clips of a
  few hundred frames; pure-rotation clips drift slowly (no loop closure).
- A one-frame clip gives the identity camera and the prior ground, with a warning. A clip
  with no frames, bad options, or tracks whose frame count or mask size do not match the
  clip raise :class:`ClassicReconstructionError` / :class:`~recon4d.errors.ShapeError`.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Callable

import cv2
import numpy as np

from recon4d.recon.classic.bundle_adjust import MIN_MAP_POINTS
from recon4d.recon.classic.features import BACKGROUND, NO_FEATURES, FeatureTracks, TrackerConfig, track_features
from recon4d.recon.classic.camera_motion import CameraMotion, estimate_motion, project_points, two_view_disagreement
from recon4d.recon.classic.camera_quality import build_camera_quality, height_drift, path_kinks
from recon4d.recon.classic.config import ClassicConfig, ClassicReconstructionError
from recon4d.recon.classic.cut_bottoms import misfit_depths
from recon4d.recon.classic.vertical import vertical_tilt
from recon4d.errors import ShapeError
from recon4d.recon.classic.object_depth import (
    CUE_BRIDGED,
    CUE_CONTACT,
    CUE_HELD,
    CUE_NONE,
    CUE_SIZE,
    CUE_TRIANGULATED,
    PERSON_HEIGHT_M,
    ground_candidates,
    object_point_depths,
    bottom_occluded,
    bottom_occluded_masks,
    contact_depth,
    depth_outliers,
    fit_ground_plane,
    hidden_bottoms,
    level_up,
    object_depths,
    people_scale,
    plane_in_cameras,
    size_depth,
    tilt_and_height_from_people,
    tilt_from_object_sizes,
)
from recon4d.types import FRAME_BATCH, Clip, FrameSequence, ProgressFn, Reconstruction, Tracks2D

CONF_POINT = 0.9
"""Confidence of pixels under a splatted map point."""
CONF_GROUND = 0.5
"""Confidence of ray ∩ fitted ground plane (halved when the plane is the prior)."""
CONF_BACKDROP = 0.05
"""Confidence of the backdrop: below the lifting threshold (0.1), so it never feeds a centre."""
CONF_OBJECT = {"contact": 0.8, "bridged": 0.7, "triangulated": 0.7, "size": 0.6, "held": 0.5}
"""Confidence of object pixels by the cue that gave the object's depth."""


class ReconstructionWarning(UserWarning):
    """The reconstruction went ahead with a fallback (static camera, prior ground plane...)."""


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


_SHAKE_MPS = 0.3  # a metric camera path slower than this is a hand's shake, no path whose kinks mean anything
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


MAP_ROWS = 4096
"""Map points projected at once into every frame (:func:`_map_depths`)."""


def _map_depths(world_to_cam: np.ndarray, points: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The map points (N, 3) some frame (T, 3, 4) sees (``seen`` (N, T)) with a finite depth:
    their rows (n,) and their (n, T) depth in each frame that sees them, NaN elsewhere.

    Projected ``MAP_ROWS`` points at a time and only those rows kept: all N × T at once held
    about five (N, T) float64 arrays, most of a long clip's peak memory (issue 12; N grows with T).
    """
    kept, depths = [np.zeros(0, np.int64)], [np.zeros((0, seen.shape[1]))]
    finite = np.isfinite(points[:, :1])
    for start in range(0, len(points), MAP_ROWS):
        rows = slice(start, start + MAP_ROWS)
        depth = np.where(seen[rows] & finite[rows], project_points(world_to_cam, np.nan_to_num(points[rows]))[1],
                         np.nan)
        some = np.flatnonzero(np.isfinite(depth).any(axis=1))
        kept.append(start + some)
        depths.append(depth[some])
    return np.concatenate(kept), np.concatenate(depths)


def _box_mask(box: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool of the pixels a clip-pixel xyxy box covers."""
    width, height = image_size
    mask = np.zeros((height, width), bool)
    x1, y1 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x2, y2 = min(width, int(math.ceil(box[2]))), min(height, int(math.ceil(box[3])))
    mask[y1:y2, x1:x2] = True
    return mask


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
        self.tracker = tracker or TrackerConfig(max_corners=config.max_features, shift_guess_px=config.feature_shift_px,
                                                 count_shift=config.feature_count_shift)

    @classmethod
    def from_config(cls, options: dict | None = None, device: str = "cpu") -> "ClassicReconstructor":
        """Build from plain options (:class:`ClassicConfig` fields); ``device`` is ignored (CPU only)."""
        return cls(ClassicConfig.from_options(options))

    def reconstruct(self, clip: Clip, tracks: Tracks2D | None = None,
                    progress: ProgressFn | None = None) -> Reconstruction:
        """Camera poses, point maps and confidences of ``clip``.

        clip: frames (T, H, W, 3). tracks: objects to keep out of the camera estimate and to
        place in depth (boxes in source pixels, masks at the clip size or None), or None.
        ``progress(done, total)`` is called as frames are tracked (T) and after the camera
        solve. Returns a :class:`Reconstruction` with cam_to_world (T, 4, 4) (identity at
        frame 0), intrinsics (T, 3, 3) float32 in source pixels, and local_points (T, H, W, 3)
        float32 and conf (T, H, W) float32 as :class:`~recon4d.types.FrameSequence`: each
        frame is rendered when it is read (a few ms), so no clip-sized point map is held.
        """
        config = self.config
        n_frames = clip.n_frames
        if n_frames == 0:
            raise ClassicReconstructionError("the clip has no frames; sample at least one frame to reconstruct.")
        _check_tracks(clip, tracks)
        width, height = clip.image_size
        total = n_frames + 1
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
        # Bottoms behind a prop are as unusable for the ground contact as bottoms behind a track
        # (placement_diagnose, seeds 101-130: centre error / spread 1.00 -> 0.65). The still-camera
        # ground prior below still sees them: without them its fragile tilt fit moved the wrong way
        # on 3 of the 12 still and panning dev scenes (0.64 -> 0.70 on those).
        hidden = hidden_bottoms(boxes) & ~occluded
        cut = occluded | hidden

        features = track_features(clip.frames, self._regions(object_masks, n_objects, clip.image_size), self.tracker,
                                  progress=lambda t: report(t + 1))
        xy = np.empty(features.xy.shape, np.float64)  # filled per axis: no (N, T, 2) temporaries (issue 12)
        xy[..., 0] = (features.xy[..., 0] - clip_k[0, 2]) / clip_k[0, 0]
        xy[..., 1] = (features.xy[..., 1] - clip_k[1, 2]) / clip_k[1, 1]
        background = features.label == BACKGROUND
        featureless = self._warn_if_featureless(features, background, n_frames)
        motion = estimate_motion(xy, background, focal, config, np.random.default_rng(config.seed))
        people_prior = None
        prior_source = "level-prior"
        if motion.mode != "parallax":
            people_prior, prior_source = self._ground_prior(tracks, boxes, occluded, clip_k, clip.image_size, border,
                                                            motion.world_to_cam, clip.frames)
            self._warn_no_parallax(motion.mode if n_frames > 1 and not featureless else None, people_prior,
                                   prior_source)
        report(n_frames + 1)

        world_to_cam, points, plane, fitted = self._scale(motion, features, height, people_prior)
        by_people = False
        if fitted and config.scale_from_people:
            usable = self._whole_people(tracks, boxes, cut, clip.image_size, border)
            world_to_cam, points, plane, by_people = people_scale(world_to_cam, points, plane, boxes, usable, clip_k)
        scale_source = ("people-height" if by_people else "ground-plane" if fitted else
                        "arbitrary" if motion.mode == "parallax" else
                        prior_source)
        kinks = (path_kinks(world_to_cam, np.asarray(clip.timestamps_s, np.float64), config.max_path_turn_deg,
                            config.max_speed_ratio, _SHAKE_MPS if fitted else 0.0)
                 if motion.mode == "parallax" and config.max_path_turn_deg is not None else None)
        if motion.mode == "parallax" and config.max_two_view_turn_deg is not None:
            with np.errstate(invalid="ignore"):
                off_turn = two_view_disagreement(motion.world_to_cam, xy, background, focal,
                                                 config) > config.max_two_view_turn_deg
            kinks = off_turn if kinks is None else kinks | off_turn
        camera_quality = build_camera_quality(world_to_cam, points, xy, background[:, None] & np.isfinite(xy[..., 0]),
                                              focal, motion.mode, motion.frozen, motion.restarted, scale_source,
                                              2.0 * config.ransac_px, config.reprojection_px, config.min_inlier_ratio,
                                              height_drift(world_to_cam, plane if motion.mode == "parallax" else None),
                                              config.max_height_drift, kinks)
        if not featureless:
            self._warn_untrusted_frames(camera_quality, motion, clip.timestamps_s)
        bg_seen = np.isfinite(xy[..., 0]) & background[:, None]
        # (n, T) depth of each map point that some frame sees in each frame that sees it: the rows
        # of map points seen nowhere are all NaN, which the backdrop's percentiles skip anyway.
        seen_rows, map_depth = _map_depths(world_to_cam, points, bg_seen)
        backdrop = self._backdrop_depths(map_depth)
        plane_camera = None if plane is None else plane_in_cameras(world_to_cam, *plane)  # (T, 4)

        depth_k, cue_k = np.full((n_objects, n_frames), np.nan), np.zeros((n_objects, n_frames), np.int8)
        if n_objects:
            unknown = np.full((n_objects, n_frames), np.nan)
            contact = (unknown if plane_camera is None else
                       contact_depth(boxes, plane_camera, clip_k, backdrop, clip.image_size, border, cut))
            # A box whose bottom lands on something else for a frame or two moves its contact by
            # metres: bridged from the neighbours instead (its size is as wrong; held at the ends).
            jumped = (np.zeros(contact.shape, bool) if config.depth_outlier_rel is None else
                      depth_outliers(contact, np.asarray(clip.timestamps_s, np.float64), config.depth_outlier_rel))
            contact = np.where(jumped, np.nan, contact)
            misfit = np.zeros(contact.shape, bool)
            if config.height_misfit_log is not None and plane_camera is not None:
                # A bottom that is not the feet (a prop's edge, a shadow) implies a wrong height:
                # placed from the box top and the track's height instead, else held or bridged.
                misfit, from_top = misfit_depths(boxes, np.isfinite(contact) & (boxes[..., 1] >= border),
                                                 plane_camera, clip_k, config.height_misfit_log)
                from_top = np.where(from_top <= backdrop[None], from_top, np.nan)
            size = size_depth(boxes, np.where(misfit, np.nan, contact), clip.image_size, border, cut | jumped | misfit)
            if misfit.any():
                contact = np.where(misfit, from_top, contact)
                jumped = jumped | (misfit & ~np.isfinite(contact))
            triangulated = (unknown if motion.mode != "parallax" else
                            object_point_depths(xy, features.label, np.isfinite(xy[..., 0]), world_to_cam,
                                                 n_objects, config, focal))
            depth_k, cue_k = object_depths(contact, size, triangulated, hidden | jumped)

        # Point maps are rendered when read, frame by frame (STYLE §9): nothing T × H × W is held.
        map_xy = features.xy[seen_rows]
        rays = pixel_rays(clip_k, width, height).astype(np.float32)
        ground_conf = CONF_GROUND if fitted else 0.5 * CONF_GROUND

        # Lifting reads a batch of frames' points, then the same frames' confidences: keeping
        # that many frames renders each frame once (8 frames at 630×350 are ~28 MB).
        @functools.lru_cache(maxsize=FRAME_BATCH)
        def frame_geometry(t: int) -> tuple[np.ndarray, np.ndarray]:
            splat = np.flatnonzero(np.isfinite(map_depth[:, t]) & (map_depth[:, t] > 0))
            objects = [(mask, depth_k[k, t], _object_conf(int(cue_k[k, t]), fitted))
                       for k in range(n_objects) if (mask := object_masks(k, t)) is not None]
            depth, conf_t = render_depth(rays, None if plane_camera is None else plane_camera[t], backdrop[t],
                                         ground_conf, map_xy[splat, t], map_depth[splat, t], objects)
            return rays * depth[..., None], conf_t

        local_points = FrameSequence(n_frames, (height, width, 3), np.float32, lambda t: frame_geometry(t)[0])
        conf = FrameSequence(n_frames, (height, width), np.float32, lambda t: frame_geometry(t)[1])
        report(total)
        cam_to_world = np.tile(np.eye(4), (n_frames, 1, 1))
        cam_to_world[:, :3, :3] = np.swapaxes(world_to_cam[:, :, :3], 1, 2)
        cam_to_world[:, :3, 3] = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3]) + 0.0
        # Metres come from the ground plane (fitted, or the prior under a camera without parallax);
        # a moving camera without a plane keeps the arbitrary scale of its first baseline.
        unit = "arbitrary" if motion.mode == "parallax" and plane is None else "metric"
        return Reconstruction(cam_to_world=cam_to_world, local_points=local_points, conf=conf,
                              intrinsics=np.broadcast_to(source_k.astype(np.float32), (n_frames, 3, 3)).copy(),
                              unit=unit, camera_quality=camera_quality)

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

    def _warn_no_parallax(self, mode: str | None, prior: tuple[float, float] | None, source: str) -> None:
        if prior is not None and source == "vertical-prior":
            how = (f"tilted down by {math.degrees(prior[0]):.1f}° (where the vertical lines in view meet) and "
                   f"{prior[1]:.2f} m above a flat ground")
        elif prior is not None and source == "people-prior":
            how = (f"tilted down by {math.degrees(prior[0]):.1f}° and {prior[1]:.2f} m above a flat "
                   f"ground (fitted to the boxes of people {PERSON_HEIGHT_M} m tall)")
        elif prior is not None:
            how = (f"tilted down by {math.degrees(prior[0]):.1f}° (the tilt at which the objects moving nearer "
                   f"or farther keep their size) and {prior[1]:.2f} m above a flat ground")
        else:
            how = f"level and {self.config.camera_height_m} m above a flat ground"
        why = f"the camera shows no usable parallax ({mode} camera)" if mode else "there is no camera motion to measure"
        _warn(f"{why}: translation is set to zero and depth comes from a prior, a camera {how}.")

    @staticmethod
    def _warn_untrusted_frames(quality, motion: CameraMotion, times: np.ndarray) -> None:
        """Say which frames' poses are not trusted, and why, so no one reads them silently."""
        bad = ~quality.frame_ok
        if not bad.any():
            return
        spans = ", ".join(f"{times[a]:.1f}–{times[b]:.1f} s" for a, b in _runs(bad))
        reasons = []
        if motion.frozen.any():
            reasons.append(f"{int(motion.frozen.sum())} could not be placed and copy a neighbour's pose")
        if motion.restarted.any():
            reasons.append(f"{int(motion.restarted.sum())} restart the map at a guessed scale")
        other = int((bad & ~motion.frozen & ~motion.restarted).sum())
        if other:
            reasons.append(f"{other} have poses that too few tracks agree with or whose height above the ground "
                           "drifts")
        _warn(f"the camera pose is not trusted in {int(bad.sum())} of {len(bad)} frames ({spans}): "
              f"{'; '.join(reasons)}. Objects are not placed there for questions; the usable span ends at each.")

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
        candidates = ground_candidates(points, features.xy, height)
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
            # The percentile of the values that are not NaN, as nanpercentile gives it, without its
            # copy of the whole (N, T) array and the index of every NaN (most entries; issue 12).
            overall = np.percentile(map_depth[~np.isnan(map_depth)], 90) if np.isfinite(map_depth).any() else fallback
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
        if np.median(per_frame) >= MIN_MAP_POINTS:
            return False
        _warn(f"too few background features to follow (median {int(np.median(per_frame))} per frame; the video "
              "may be dark, blank or blurred): the camera is taken as static.")
        return True

    @staticmethod
    def _whole_people(tracks, boxes, occluded, image_size, border) -> np.ndarray:
        """(K, T) bool boxes of people inside the image and not hidden at the bottom."""
        if tracks is None or tracks.n_objects == 0:
            return np.zeros(boxes.shape[:2], bool)
        width, height = image_size
        people = np.array([c.lower() in ("person", "people", "pedestrian") for c in tracks.categories])
        with np.errstate(invalid="ignore"):
            whole = ((boxes[..., 0] >= border) & (boxes[..., 1] >= border) & (boxes[..., 2] <= width - border)
                     & (boxes[..., 3] <= height - border))
        return whole & ~occluded & people[:, None]

    def _people_prior(self, tracks, boxes, occluded, intrinsics, image_size, border, rotations,
                      tilt_rad) -> tuple[float, float] | None:
        """Camera tilt (unless ``tilt_rad`` is known) and height from whole, unhidden boxes of people
        (see :func:`tilt_and_height_from_people`)."""
        usable = self._whole_people(tracks, boxes, occluded, image_size, border)
        return tilt_and_height_from_people(boxes, usable, intrinsics, self.config.camera_height_m,
                                           rotations=rotations, tilt_rad=tilt_rad)

    def _ground_prior(self, tracks, boxes, occluded, intrinsics, image_size, border, world_to_cam, frames):
        """((tilt rad, height m) or None, scale source) of the ground under a camera without parallax.

        The tilt comes from the clip's vertical lines where they agree
        (:func:`~recon4d.recon.classic.vertical.vertical_tilt`); people's boxes, 1.7 m tall, then
        fix the height (``people-prior``), else the height is ``camera_height_m``
        (``vertical-prior``). Without such lines people's boxes fix tilt and height
        (``people-prior``); else objects of any kind that move nearer or farther fix the tilt
        (:func:`tilt_from_object_sizes`, scale source ``size-prior``, height ``camera_height_m``);
        else the camera is level. (Still and panning scenes 101–160 of pipeline_fidelity: the
        lines found a tilt on 18 of 24, within 1.4° of the truth (median 0.4°), where
        the boxes missed by 3–11° on 8 of the 12 of 101–130.)
        """
        rotations = world_to_cam[:, :, :3]
        vertical = vertical_tilt(frames, intrinsics, world_to_cam, np.random.default_rng(self.config.seed))
        tilt = None if vertical is None else vertical.tilt_rad
        people = self._people_prior(tracks, boxes, occluded, intrinsics, image_size, border, rotations, tilt)
        if people is not None:
            return people, "people-prior"
        if tilt is not None:
            return (tilt, self.config.camera_height_m), "vertical-prior"
        if tracks is not None and tracks.n_objects:
            width, height = image_size
            with np.errstate(invalid="ignore"):
                whole = ((boxes[..., 0] >= border) & (boxes[..., 1] >= border) & (boxes[..., 2] <= width - border)
                         & (boxes[..., 3] <= height - border)) & ~occluded
            pitch = tilt_from_object_sizes(boxes, whole, intrinsics, world_to_cam, self.config.camera_height_m)
            if pitch is not None:
                return (pitch, self.config.camera_height_m), "size-prior"
        return None, "level-prior"


def _object_conf(cue: int, ground_fitted: bool) -> float:
    """Confidence of an object's pixels: by cue, halved for ground cues when the ground is a prior."""
    name = {CUE_CONTACT: "contact", CUE_BRIDGED: "bridged", CUE_SIZE: "size", CUE_TRIANGULATED: "triangulated",
            CUE_HELD: "held"}
    if cue == CUE_NONE:
        return 0.0
    ground_based = cue in (CUE_CONTACT, CUE_BRIDGED, CUE_SIZE, CUE_HELD)
    return CONF_OBJECT[name[cue]] * (0.5 if ground_based and not ground_fitted else 1.0)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index pairs of the runs of True in a (T,) bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _warn(message: str) -> None:
    warnings.warn(message, ReconstructionWarning, stacklevel=2)
