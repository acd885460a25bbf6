"""The data model of recon4d: small frozen dataclasses passed between pipeline stages.

    video --decode--> Clip --track--> Tracks2D --reconstruct--> Reconstruction --lift--> LiftResult
                                                                  --orient--> Orientations --> Scene (store)

Conventions (DESIGN §2): camera frame is OpenCV (x right, y down, z forward); world frame is
whatever the reconstruction's ``cam_to_world`` poses define; boxes are in pixels of the
*source* video; orientations are (azimuth, polar, rotation) in degrees relative to the
camera of the frame they were seen in. Arrays that are not known are NaN, never zero.

Heavy arrays (point maps, confidences, masks) may be lazy array-likes (a ``zarr.Array``,
bit-packed :class:`PackedMasks`, or a :class:`FrameSequence` computed frame by frame):
anything with ``shape``, ``dtype`` and numpy indexing on the leading axes. Consumers read them
one frame at a time (STYLE §9), so memory does not grow with the clip's length.
Every class checks shapes at construction and raises :class:`recon4d.errors.ShapeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Callable

import numpy as np

from recon4d.checks import check_shape
from recon4d.errors import ShapeError


ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: called by long-running stages as work completes (the CLI draws bars)."""

FRAME_BATCH = 8
"""Frames a consumer reads at once from a lazy per-frame array (lifting's batch); producers of
:class:`FrameSequence` may cache that many rendered frames."""

UNITS = ("metric", "arbitrary", "unknown")
"""Units of a reconstruction's geometry: metres, one unknown scale for the clip, or not stated."""


def _coerce(obj, name: str, dtype) -> np.ndarray:
    """Store ``obj.name`` as a numpy array of ``dtype`` on a frozen dataclass."""
    value = np.asarray(getattr(obj, name), dtype=dtype)
    object.__setattr__(obj, name, value)
    return value


def _check_categories(categories, n_objects: int) -> tuple[str, ...]:
    categories = tuple(str(c) for c in categories)
    if len(categories) != n_objects:
        raise ShapeError(
            f"categories has {len(categories)} entries but there are {n_objects} objects; "
            "give one category string per object id."
        )
    return categories


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ShapeError(f"unit must be one of {UNITS}, got {unit!r}.")


def _check_ids(ids: np.ndarray) -> None:
    if len(np.unique(ids)) != len(ids):
        raise ShapeError(f"object ids must be unique, got {ids.tolist()}.")


class FrameSequence:
    """A (T, *frame_shape) array whose frames are computed when they are read (STYLE §9).

    Reconstructors return point maps and confidences this way so that a clip's dense
    geometry is never held whole: lifting and the store read frame t, use it and drop it.
    ``seq[t]`` is ``frame(t)`` checked against ``frame_shape`` and cast to ``dtype``;
    ``seq[t, ...]`` indexes into it; ``seq[a:b]`` stacks a range; iterating yields the frames
    in order; ``np.asarray(seq)`` computes them all (tests, small clips). ``frame`` must be
    deterministic: a frame may be asked for more than once (lifting, then the store).
    """

    def __init__(self, n_frames: int, frame_shape: tuple[int, ...], dtype, frame: Callable[[int], np.ndarray]):
        self.shape = (int(n_frames), *(int(s) for s in frame_shape))
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._frame = frame

    def __len__(self) -> int:
        return self.shape[0]

    def _get(self, t: int) -> np.ndarray:
        n_frames = self.shape[0]
        if not -n_frames <= t < n_frames:
            raise IndexError(f"frame {t} is out of range for a sequence of {n_frames} frames")
        value = np.asarray(self._frame(t % n_frames), dtype=self.dtype)
        if value.shape != self.shape[1:]:
            raise ShapeError(f"frame {t} of a sequence of shape {self.shape} has shape {value.shape}, "
                             f"expected {self.shape[1:]}.")
        return value

    def __getitem__(self, index) -> np.ndarray:
        head, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        if isinstance(head, (int, np.integer)):
            frame = self._get(int(head))
            return frame[rest] if rest else frame
        if head is Ellipsis or head is None:
            return self[:][index]
        frames = range(self.shape[0])[head] if isinstance(head, slice) else np.arange(self.shape[0])[head]
        stacked = np.empty((len(frames), *self.shape[1:]), self.dtype)
        for i, t in enumerate(frames):
            stacked[i] = self._get(int(t))
        return stacked[(slice(None), *rest)] if rest else stacked

    def __iter__(self):
        for t in range(self.shape[0]):
            yield self._get(t)

    def __array__(self, dtype=None, copy=None):
        frames = self[:]
        return frames if dtype is None else frames.astype(dtype)


class PackedMasks:
    """(K, T, H, W) bool masks stored bit-packed along W (8 pixels a byte), unpacked when read.

    ``packed`` is any (K, T, H, ⌈W/8⌉) uint8 array-like: a numpy array in memory
    (:meth:`zeros`, :meth:`pack`; a tracker fills one with ``masks[k, t] = mask``) or a Zarr
    array of a store (read lazily, chunk by chunk). Index it like a numpy array on the first two
    axes (``masks[k, t]``, ``masks[:, t]``, ``masks[:, a:b]``); ``np.asarray(masks)`` unpacks all.
    """

    def __init__(self, packed, width: int):
        self._packed = packed
        self.width = int(width)
        k, t, h, _ = packed.shape
        self.shape = (k, t, h, self.width)
        self.dtype = np.dtype(bool)
        self.ndim = 4

    @classmethod
    def zeros(cls, n_objects: int, n_frames: int, height: int, width: int) -> "PackedMasks":
        """All-False masks in memory, (height · ⌈width/8⌉) bytes per object and frame."""
        return cls(np.zeros((n_objects, n_frames, height, (width + 7) // 8), np.uint8), width)

    @classmethod
    def pack(cls, masks) -> "PackedMasks":
        """Pack (K, T, H, W) bool masks (any array-like) into memory, one frame at a time."""
        n_objects, n_frames, height, width = masks.shape
        packed = cls.zeros(n_objects, n_frames, height, width)
        for t in range(n_frames):
            packed._packed[:, t] = np.packbits(np.asarray(masks[:, t], dtype=bool), axis=-1)
        return packed

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if not isinstance(index, tuple):
            index = (index,)
        if any(i is Ellipsis for i in index) or len(index) > 4:
            raise IndexError("PackedMasks takes up to four explicit indices (k, t, y, x), no Ellipsis")
        index = index + (slice(None),) * (4 - len(index))
        packed = np.asarray(self._packed[index[:3] + (slice(None),)])
        bits = np.unpackbits(packed, axis=-1, count=self.width).astype(bool)
        return bits[..., index[3]]

    def __setitem__(self, index: tuple, mask) -> None:
        """``masks[k, t] = (H, W) bool`` (or ``masks[:, t] = (K, H, W)``): packed on the way in."""
        if not isinstance(index, tuple) or len(index) != 2:
            raise IndexError("PackedMasks is written per object and frame: masks[k, t] = (H, W) bool mask")
        self._packed[index] = np.packbits(np.asarray(mask, dtype=bool), axis=-1)

    def __array__(self, dtype=None, copy=None):
        bits = self[:]
        return bits if dtype is None else bits.astype(dtype)


@dataclass(frozen=True, eq=False)
class Clip:
    """Frames sampled from a video.

    frames:       (T, H, W, 3) uint8 RGB, possibly resized from the source.
    timestamps_s: (T,) float64, seconds in the source video.
    frame_index:  (T,) int64, index of each frame in the source video.
    fps:          frame rate of the source video.
    source:       path of the source video.
    source_size:  (width, height) of the source video in pixels (boxes use these pixels).
    """

    frames: np.ndarray
    timestamps_s: np.ndarray
    frame_index: np.ndarray
    fps: float
    source: str
    source_size: tuple[int, int]

    def __post_init__(self) -> None:
        dims = check_shape("frames", self.frames, ("T", "H", "W", 3))
        if np.dtype(self.frames.dtype) != np.uint8:
            raise ShapeError(f"frames must be uint8 RGB, got dtype {self.frames.dtype}.")
        check_shape("timestamps_s", _coerce(self, "timestamps_s", np.float64), ("T",), dims)
        check_shape("frame_index", _coerce(self, "frame_index", np.int64), ("T",), dims)
        object.__setattr__(self, "source_size", tuple(int(s) for s in self.source_size))
        if not self.fps > 0:
            raise ShapeError(f"fps must be positive, got {self.fps}.")

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of ``frames``."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """Camera poses and (optionally dense) geometry of a clip.

    cam_to_world: (T, 4, 4) float64, OpenCV camera → world.
    local_points: (T, H, W, 3) float, camera frame; None when the backend is sparse. May be a
                  :class:`FrameSequence` (computed per frame), which consumers read frame by frame.
    conf:         (T, H, W) float in [0, 1]; None when unknown. May be a FrameSequence.
    intrinsics:   (T, 3, 3) float32 in source-video pixels; None when unknown.
    unit:         what one world unit is: "metric" (metres), "arbitrary" (one unknown scale
                  for the clip, e.g. π³) or "unknown" (not stated); see :data:`UNITS`.
    camera_quality: how far the poses can be trusted (:class:`CameraQuality`); None when the
                  backend does not say.
    """

    cam_to_world: np.ndarray
    local_points: Any = None
    conf: Any = None
    intrinsics: np.ndarray | None = None
    unit: str = "unknown"
    camera_quality: CameraQuality | None = None

    def __post_init__(self) -> None:
        _check_unit(self.unit)
        dims = check_shape("cam_to_world", _coerce(self, "cam_to_world", np.float64), ("T", 4, 4))
        if self.local_points is not None:
            dims = check_shape("local_points", self.local_points, ("T", "H", "W", 3), dims, "f")
        if self.conf is not None:
            check_shape("conf", self.conf, ("T", "H", "W"), dims, "f")
        if self.intrinsics is not None:
            check_shape("intrinsics", _coerce(self, "intrinsics", np.float32), ("T", 3, 3), dims)
        if self.camera_quality is not None:
            check_shape("camera_quality.frame_ok", self.camera_quality.frame_ok, ("T",), dims)

    @property
    def n_frames(self) -> int:
        return int(self.cam_to_world.shape[0])


@dataclass(frozen=True)
class LiftResult:
    """Per-object, per-frame 3D centres from lifting masks (DESIGN §5); every entry is NaN
    where ``visible`` is False.

    center_camera: (K, T, 3) float64, camera frame (OpenCV) of frame t.
    center_world:  (K, T, 3) float64, ``cam_to_world[t]`` applied to ``center_camera``.
    visible:       (K, T) bool, at least ``min_points`` valid points under the mask.
    extent:        (K, T, 3) float32, per-axis quantile range of the points (camera frame).
    n_points:      (K, T) int64, valid points under the mask (also where not visible).
    """

    center_camera: np.ndarray
    center_world: np.ndarray
    visible: np.ndarray
    extent: np.ndarray
    n_points: np.ndarray

    @classmethod
    def empty(cls, n_objects: int, n_frames: int) -> "LiftResult":
        """Nothing lifted: every object invisible in every frame."""
        return cls(center_camera=np.full((n_objects, n_frames, 3), np.nan),
                   center_world=np.full((n_objects, n_frames, 3), np.nan),
                   visible=np.zeros((n_objects, n_frames), bool),
                   extent=np.full((n_objects, n_frames, 3), np.nan, np.float32),
                   n_points=np.zeros((n_objects, n_frames), np.int64))


@dataclass(frozen=True, eq=False)
class Tracks2D:
    """Objects found in a clip and where they are in each frame.

    ids:        (K,) int32, unique object ids.
    categories: K category names ("person", "dog", ...).
    is_agent:   (K,) bool, whether the object has an orientation (people, animals...).
    boxes_xyxy: (K, T, 4) float32, source-video pixels, NaN when not visible.
    visible:    (K, T) bool.
    masks:      (K, T, H, W) bool at the clip's frame size, or None.
    scores:     (K, T) float32 detection confidence in [0, 1], NaN where not visible or not
                known; None when the tracker gives no scores.
    dropped:    how many candidate tracks the tracker found and dropped as no object, by reason
                (the classic tracker's ``cleanup.drop_reason``: {"scene_share": 2, ...}); empty when
                it dropped none or does not say. Evidence of how confused the tracker was by the
                clip (``RefineConfig.clip_dropped``); not stored in the scene store.
    observed:   (K, T) bool, visible frames where the tracker found the object itself (a detection),
                not a box it carried there (coasted over a gap, carried back before the first
                detection); None when every visible frame was observed (or the tracker does not say).
    """

    ids: np.ndarray
    categories: tuple[str, ...]
    is_agent: np.ndarray
    boxes_xyxy: np.ndarray
    visible: np.ndarray
    masks: Any = None
    scores: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    observed: np.ndarray | None = None

    def __post_init__(self) -> None:
        dims = check_shape("ids", _coerce(self, "ids", np.int32), ("K",))
        _check_ids(self.ids)
        object.__setattr__(self, "categories", _check_categories(self.categories, dims["K"]))
        check_shape("is_agent", _coerce(self, "is_agent", bool), ("K",), dims)
        dims = check_shape("boxes_xyxy", _coerce(self, "boxes_xyxy", np.float32), ("K", "T", 4), dims)
        check_shape("visible", _coerce(self, "visible", bool), ("K", "T"), dims)
        if self.masks is not None:
            check_shape("masks", self.masks, ("K", "T", None, None), dims, "b")
        if self.scores is not None:
            check_shape("scores", _coerce(self, "scores", np.float32), ("K", "T"), dims)
        if self.observed is not None:
            check_shape("observed", _coerce(self, "observed", bool), ("K", "T"), dims)
        if any(not isinstance(n, int) or n < 0 for n in self.dropped.values()):
            raise ValueError(f"Tracks2D.dropped must count tracks (integers >= 0); got {self.dropped!r}.")

    @property
    def n_objects(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True, eq=False)
class Orientations:
    """Per-object per-frame orientation, camera-relative (DESIGN §2).

    angles_deg: (K, T, 3) float32 azimuth, polar, rotation; NaN when unknown or not an agent.
    conf:       (K, T) float32 in [0, 1]; NaN when unknown.
    """

    angles_deg: np.ndarray
    conf: np.ndarray

    def __post_init__(self) -> None:
        dims = check_shape("angles_deg", _coerce(self, "angles_deg", np.float32), ("K", "T", 3))
        check_shape("conf", _coerce(self, "conf", np.float32), ("K", "T"), dims)


@dataclass(frozen=True)
class SourceInfo:
    """The video a scene was reconstructed from.

    path:     the video file as it was given.
    sha256:   hex digest of the file's bytes.
    fps:      its frame rate.
    n_frames: its number of frames.
    size:     (width, height) in pixels.
    video_id: the clip's id in QA seeds and exports; default :func:`video_id_for` (file stem
              plus the first 8 hex digits of the sha256), so two ``video.mp4`` files in
              different folders, or two synthetic scenes, never share one.
    """

    path: str
    sha256: str
    fps: float
    n_frames: int
    size: tuple[int, int]
    video_id: str = ""

    def __post_init__(self) -> None:
        if not self.video_id:
            object.__setattr__(self, "video_id", video_id_for(self.path, self.sha256))

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "fps": float(self.fps),
                "n_frames": int(self.n_frames), "size": [int(s) for s in self.size], "video_id": self.video_id}

    @classmethod
    def from_json(cls, data: dict) -> "SourceInfo":
        """Stores written before ids were recorded get the default id of their path and sha256."""
        return cls(path=str(data["path"]), sha256=str(data["sha256"]), fps=float(data["fps"]),
                   n_frames=int(data["n_frames"]), size=tuple(int(s) for s in data["size"]),
                   video_id=str(data.get("video_id") or ""))


def video_id_for(path: str, sha256: str) -> str:
    """A stable, readable, unique id of a video file: ``STEM-xxxxxxxx`` (stem + 8 hex of its sha256)."""
    stem = PurePath(str(path)).stem or "video"
    return f"{stem}-{sha256[:8]}" if sha256 else stem



CAMERA_MOTIONS = ("static", "rotation", "parallax", "unknown")
"""How a reconstruction saw the camera move: still, turning in place, translating, or not said."""
SCALE_SOURCES = ("ground-plane", "people-prior", "size-prior", "level-prior", "arbitrary", "learned", "unknown",
                 "people-height", "vertical-prior")
"""Where the world scale comes from: a fitted floor under a camera of known height, a fitted
floor on which people stand 1.7 m tall (``people-height``), a floor
prior from people's boxes, objects' sizes, vertical lines (the tilt; ``vertical-prior``, the height
assumed) or a level camera (static cameras), none (the first baseline), a learned model, or not said."""


@dataclass(frozen=True, eq=False)
class CameraQuality:
    """How far a clip's camera poses can be trusted, per frame and overall.

    inlier_ratio:    (T,) float32, fraction of the frame's background feature tracks that agree
                     with its pose (RANSAC inliers); NaN when not measured.
    reprojection_px: (T,) float32, median reprojection error of the map points the frame sees,
                     pixels of the reconstructed frames; NaN when not measured.
    frozen:          (T,) bool, the pose could not be measured and was carried over from a
                     neighbour (a lost frame).
    frame_ok:        (T,) bool, frames whose pose may be used (not frozen, enough inliers).
    motion:          one of ``CAMERA_MOTIONS``.
    scale_source:    one of ``SCALE_SOURCES``.
    score:           overall trust in [0, 1] (the fraction of usable frames, lowered for a
                     prior or arbitrary scale); NaN when not said.
    """

    inlier_ratio: np.ndarray
    reprojection_px: np.ndarray
    frozen: np.ndarray
    frame_ok: np.ndarray
    motion: str = "unknown"
    scale_source: str = "unknown"
    score: float = float("nan")

    def __post_init__(self) -> None:
        dims = check_shape("inlier_ratio", _coerce(self, "inlier_ratio", np.float32), ("T",))
        check_shape("reprojection_px", _coerce(self, "reprojection_px", np.float32), ("T",), dims)
        check_shape("frozen", _coerce(self, "frozen", bool), ("T",), dims)
        check_shape("frame_ok", _coerce(self, "frame_ok", bool), ("T",), dims)
        if self.motion not in CAMERA_MOTIONS:
            raise ShapeError(f"camera motion must be one of {CAMERA_MOTIONS}, got {self.motion!r}.")
        if self.scale_source not in SCALE_SOURCES:
            raise ShapeError(f"scale_source must be one of {SCALE_SOURCES}, got {self.scale_source!r}.")
        object.__setattr__(self, "score", float(self.score))

    @classmethod
    def unknown(cls, n_frames: int) -> "CameraQuality":
        """Nothing measured: every frame usable, NaN measurements, motion and scale unknown."""
        return cls(np.full(n_frames, np.nan), np.full(n_frames, np.nan), np.zeros(n_frames, bool),
                   np.ones(n_frames, bool))


@dataclass(frozen=True, eq=False)
class ObjectQuality:
    """How far each object's trajectory can be trusted (:mod:`recon4d.lift.quality` fills it).

    All (K,) unless said. Speeds and depths are in world units (metres when the scale is metric).

    lifted_fraction:  float32, visible frames that got a 3D centre / visible frames.
    outlier_fraction: float32, lifted frames the robust smoother rejected as outliers.
    depth_jumps:      int32, consecutive lifted frames whose raw depth (distance from the camera)
                      changed by more than the limit (1 m by default) before smoothing.
    max_depth_jump_m: float32, largest change of the distance from the camera between
                      consecutive frames of the stored trajectory.
    max_speed_mps:    float32, largest speed between consecutive frames of the stored trajectory.
    speed_limit_mps:  float32, the physical speed limit of the object's category.
    id_switch_steps:  int32, frame steps whose box jump suggests the track changed object.
    detection_score:  float32, mean detection confidence; NaN when the tracker gives none.
    size_ok_fraction: float32, lifted frames whose implied metric size suits the category; NaN
                      when not checked (unknown category size or arbitrary scale).
    noise_m:          float32, measurement noise of the lifted centres (per axis RMS): the
                      frame-to-frame jitter, or, where larger, the error that lasts several
                      frames (``RefineConfig.drift_window_frames``); NaN when unknown.
    smooth_lambda_s3: float32, λ of the smoother that made the stored trajectory (s³; 0 when not
                      smoothed): with ``noise_m`` it says how much error the stored trajectory keeps.
    score:            float32 in [0, 1], combined from the fields above (see
                      :func:`recon4d.quality.object_score`; :mod:`recon4d.lift.quality` also
                      weighs in the clip's median and the jitter against the distance).
    issues:           K strings, the checks the object failed ("" when none), for people.
    frame_ok:         (K, T) bool, frames whose centre passed the per-frame checks (lifted, not
                      an outlier, within the speed and depth-jump limits, not at a suspected
                      identity switch, box consistent with its neighbours).
    track_fraction:   float32, frames the object is visible in / frames of the clip (how
                      persistent the track is); NaN when not recorded (older stores).
    box_stable_fraction: float32, visible frames whose box agrees in size and place with the
                      boxes of the neighbouring frames (the box names the same thing); NaN when
                      not recorded.
    motion_evidence:  float32, how clearly the box moves against the background: the median, over
                      short windows, of how much better moving points than still ones explain the
                      rays through its box centre and the middles of its top and bottom edges
                      (residual ratio, >= 1; about 1 for a patch of the background); NaN when not
                      recorded or too few frames.
    """

    lifted_fraction: np.ndarray
    outlier_fraction: np.ndarray
    depth_jumps: np.ndarray
    max_depth_jump_m: np.ndarray
    max_speed_mps: np.ndarray
    speed_limit_mps: np.ndarray
    id_switch_steps: np.ndarray
    detection_score: np.ndarray
    size_ok_fraction: np.ndarray
    noise_m: np.ndarray
    smooth_lambda_s3: np.ndarray
    score: np.ndarray
    issues: tuple[str, ...]
    frame_ok: np.ndarray
    track_fraction: np.ndarray | None = None
    box_stable_fraction: np.ndarray | None = None
    motion_evidence: np.ndarray | None = None

    FIELDS = ("lifted_fraction", "outlier_fraction", "depth_jumps", "max_depth_jump_m", "max_speed_mps",
              "speed_limit_mps", "id_switch_steps", "detection_score", "size_ok_fraction", "noise_m",
              "smooth_lambda_s3", "score", "track_fraction", "box_stable_fraction", "motion_evidence")
    """The (K,) numeric fields, in order."""
    OPTIONAL = ("track_fraction", "box_stable_fraction", "motion_evidence")
    """Fields added later: None reads as NaN (not recorded)."""

    def __post_init__(self) -> None:
        dims = check_shape("frame_ok", _coerce(self, "frame_ok", bool), ("K", "T"))
        for name in self.OPTIONAL:
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(dims["K"], np.nan, np.float32))
        for name in self.FIELDS:
            dtype = np.int32 if name in ("depth_jumps", "id_switch_steps") else np.float32
            check_shape(name, _coerce(self, name, dtype), ("K",), dims)
        issues = tuple(str(i) for i in self.issues)
        if len(issues) != dims["K"]:
            raise ShapeError(f"issues has {len(issues)} entries but there are {dims['K']} objects; give one "
                             "string per object (\"\" when it has none).")
        object.__setattr__(self, "issues", issues)

    @property
    def n_objects(self) -> int:
        return int(self.frame_ok.shape[0])


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything recon4d knows about one clip: the content of a scene store (DESIGN §3).

    timestamps_s:   (T,) float64 seconds in the source video.
    frame_index:    (T,) int64 source frame indices.
    cam_to_world:   (T, 4, 4) float64 OpenCV camera → world.
    intrinsics:     (T, 3, 3) float32 source-video pixels, NaN when unknown.
    ids:            (K,) int32 object ids.
    categories:     K category names.
    is_agent:       (K,) bool.
    visible:        (K, T) bool.
    box_xyxy:       (K, T, 4) float32 source-video pixels, NaN when not visible.
    center_world:   (K, T, 3) float64, NaN when not visible.
    orientation:    (K, T, 3) float32 azimuth/polar/rotation deg, camera-relative; NaN for non-agents.
    orient_conf:    (K, T) float32.
    extent:         (K, T, 3) float32 robust 3D size, or None.
    local_points:   (T, H, W, 3) float camera-frame point maps (lazy), or None.
    conf:           (T, H, W) float confidences in [0, 1] (lazy), or None.
    masks:          (K, T, H, W) bool instance masks (lazy), or None.
    source:         the video, or None for scenes not made from a file.
    backends:       stage → {"name", "version", "weights_sha256"}.
    config:         the resolved configuration that produced the scene.
    unit:           what one world unit is ("metric", "arbitrary" or "unknown", :data:`UNITS`).
    object_quality: per-object trust record (:class:`ObjectQuality`), or None (ground truth,
                    stores written before version 2).
    camera_quality: per-frame trust in the camera (:class:`CameraQuality`), or None.
    warnings:       what went ahead with a fallback or was found untrustworthy while the scene
                    was made (one line each).
    observed:       (K, T) bool, visible frames where the tracker found the object itself, not a box
                    it carried there (:attr:`Tracks2D.observed`); None: every visible frame (ground
                    truth, stores written before it was recorded). Read it as :attr:`observed_frames`.

    An object is ``visible`` in a frame exactly when it was seen *and* located there: its
    ``center_world`` is finite wherever ``visible`` is True and NaN elsewhere.
    """

    timestamps_s: np.ndarray
    frame_index: np.ndarray
    cam_to_world: np.ndarray
    intrinsics: np.ndarray
    ids: np.ndarray
    categories: tuple[str, ...]
    is_agent: np.ndarray
    visible: np.ndarray
    box_xyxy: np.ndarray
    center_world: np.ndarray
    orientation: np.ndarray
    orient_conf: np.ndarray
    extent: np.ndarray | None = None
    local_points: Any = None
    conf: Any = None
    masks: Any = None
    source: SourceInfo | None = None
    backends: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    unit: str = "unknown"
    object_quality: ObjectQuality | None = None
    camera_quality: CameraQuality | None = None
    warnings: tuple[str, ...] = ()
    observed: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_unit(self.unit)
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        dims = check_shape("timestamps_s", _coerce(self, "timestamps_s", np.float64), ("T",))
        check_shape("frame_index", _coerce(self, "frame_index", np.int64), ("T",), dims)
        check_shape("cam_to_world", _coerce(self, "cam_to_world", np.float64), ("T", 4, 4), dims)
        check_shape("intrinsics", _coerce(self, "intrinsics", np.float32), ("T", 3, 3), dims)
        dims = check_shape("ids", _coerce(self, "ids", np.int32), ("K",), dims)
        _check_ids(self.ids)
        object.__setattr__(self, "categories", _check_categories(self.categories, dims["K"]))
        check_shape("is_agent", _coerce(self, "is_agent", bool), ("K",), dims)
        check_shape("visible", _coerce(self, "visible", bool), ("K", "T"), dims)
        check_shape("box_xyxy", _coerce(self, "box_xyxy", np.float32), ("K", "T", 4), dims)
        check_shape("center_world", _coerce(self, "center_world", np.float64), ("K", "T", 3), dims)
        check_shape("orientation", _coerce(self, "orientation", np.float32), ("K", "T", 3), dims)
        check_shape("orient_conf", _coerce(self, "orient_conf", np.float32), ("K", "T"), dims)
        if self.extent is not None:
            check_shape("extent", _coerce(self, "extent", np.float32), ("K", "T", 3), dims)
        if self.observed is not None:
            check_shape("observed", _coerce(self, "observed", bool), ("K", "T"), dims)
        if self.local_points is not None:
            dims = check_shape("local_points", self.local_points, ("T", "H", "W", 3), dims, "f")
        if self.conf is not None:
            dims = check_shape("conf", self.conf, ("T", "H", "W"), dims, "f")
        if self.masks is not None:
            check_shape("masks", self.masks, ("K", "T", "H", "W"), dims, "b")
        if self.object_quality is not None:
            check_shape("object_quality.frame_ok", self.object_quality.frame_ok, ("K", "T"), dims)
        if self.camera_quality is not None:
            check_shape("camera_quality.frame_ok", self.camera_quality.frame_ok, ("T",), dims)
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        if self.timestamps_s.size > 1 and np.any(np.diff(self.timestamps_s) <= 0):
            raise ShapeError("timestamps_s must be strictly increasing (one entry per sampled frame).")
        hidden_with_center = ~self.visible & np.isfinite(self.center_world).any(axis=-1)
        if hidden_with_center.any():
            k, t = np.argwhere(hidden_with_center)[0]
            raise ShapeError(
                f"object {int(self.ids[k])} has a centre at frame {int(t)} where it is not visible; "
                "center_world must be NaN wherever visible is False."
            )
        visible_without_center = self.visible & ~np.isfinite(self.center_world).all(axis=-1)
        if visible_without_center.any():
            k, t = np.argwhere(visible_without_center)[0]
            raise ShapeError(
                f"object {int(self.ids[k])} is visible at frame {int(t)} but has no finite centre there; "
                "visible must be False wherever center_world is not known."
            )

    @property
    def n_frames(self) -> int:
        return int(self.timestamps_s.shape[0])

    @property
    def n_objects(self) -> int:
        return int(self.ids.shape[0])

    @property
    def observed_frames(self) -> np.ndarray:
        """(K, T) bool: visible frames where the tracker found the object itself (all visible
        frames when the scene does not say, :attr:`observed`)."""
        return self.visible if self.observed is None else self.visible & self.observed

    @property
    def duration_s(self) -> float:
        """Time from the first to the last sampled frame."""
        return float(self.timestamps_s[-1] - self.timestamps_s[0]) if self.n_frames else 0.0

    def object_index(self, object_id: int) -> int:
        """Row of ``object_id`` in the (K, ...) arrays."""
        rows = np.flatnonzero(self.ids == object_id)
        if rows.size == 0:
            raise KeyError(f"no object with id {object_id}; ids are {self.ids.tolist()}")
        return int(rows[0])
