"""Camera-compensated motion of the classic tracker (steps 1–3 of :mod:`recon4d.tracking.classic.tracker`).

Owns the working resolution (:func:`working_size`, :func:`to_working`), LK corner
matches, dense DIS flow with its forward–backward test, the residual motion against the
background model of :mod:`~recon4d.tracking.classic.background` and its robust threshold:
:func:`pair_motion` for one frame pair, :func:`compute_motion` (a :class:`MotionField`) for
a clip.
"""

from __future__ import annotations

import functools
import queue
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

import cv2
import numpy as np

from recon4d.tracking.classic.background import (
    BackgroundMotion,
    aperture,
    background_flow,
    consistent_flow,
    fit_background,
    flow_at,
    inside,
    invert_background,
    relative_residual,
    robust_threshold,
)
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.flow_prior import feature_homography, flow_misses, prior_flow
from recon4d.tracking.classic.flow_shift import global_shift, shifted_flow
from recon4d.tracking.classic.long_baseline import ClipMemory, apart, long_step_moving
from recon4d.tracking.classic.pose import resolve_pose
from recon4d.tracking.classic.segment import moving_components
from recon4d.types import FRAME_BATCH, FrameSequence, ProgressFn
from recon4d.workers import ahead, one_blas_thread, worker_threads

__all__ = [
    "MotionField",
    "PackedFrames",
    "PackedMaskDict",
    "PairMotion",
    "SparseFrames",
    "compute_motion",
    "dense_flow",
    "corner_matches",
    "inside",
    "motion_threads",
    "pair_motion",
    "pair_motions",
    "robust_threshold",
    "stream_motion",
    "textured",
    "to_working",
    "track_points",
    "working_frames",
    "working_size",
]


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(width, height) scaled so the long side is at most ``long_side`` (never enlarged)."""
    scale = min(1.0, long_side / max(width, height))
    return max(8, round(width * scale)), max(8, round(height * scale))


def to_working(frames: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) uint8 RGB → RGB (T, h, w, 3) and grey (T, h, w) uint8 at ``size`` = (w, h)."""
    images = np.empty((len(frames), size[1], size[0], 3), np.uint8)
    gray = np.empty((len(frames), size[1], size[0]), np.uint8)
    for t, frame in enumerate(frames):
        images[t] = frame if frame.shape[1::-1] == size else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        gray[t] = cv2.cvtColor(images[t], cv2.COLOR_RGB2GRAY)
    return images, gray


WORKING_CACHE_BYTES = 8 << 20
"""Bytes of recent working RGB frames :func:`working_frames` keeps (at least ``FRAME_BATCH`` frames)."""


def working_frames(frames, size: tuple[int, int]) -> tuple[FrameSequence, FrameSequence]:
    """Lazy :func:`to_working`: RGB (T, h, w, 3) and grey (T, h, w) uint8 sequences at ``size``,
    each frame resized from ``frames`` (T, H, W, 3) when it is read (the same pixels as
    :func:`to_working`), the last ``FRAME_BATCH`` grey frames and the last
    max(``FRAME_BATCH``, ``WORKING_CACHE_BYTES`` / frame bytes) RGB frames kept, so no
    (T, h, w, 3) copy of a long clip is held. The tracker reads the RGB frames in several passes
    (motion, association, clean-up, masks): with 8 kept each 640×360 → 384×216 frame was
    resized ~4 times; 8 MiB holds the 32 frames ``recon4d process`` samples by default."""
    n_frames = len(frames)
    keep = max(FRAME_BATCH, WORKING_CACHE_BYTES // (size[0] * size[1] * 3))

    @functools.lru_cache(maxsize=keep)
    def image(t: int) -> np.ndarray:
        frame = frames[t]
        return frame if frame.shape[1::-1] == size else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    @functools.lru_cache(maxsize=FRAME_BATCH)
    def grey(t: int) -> np.ndarray:
        return cv2.cvtColor(image(t), cv2.COLOR_RGB2GRAY)

    return (FrameSequence(n_frames, (size[1], size[0], 3), np.uint8, image),
            FrameSequence(n_frames, (size[1], size[0]), np.uint8, grey))


_LK = dict(winSize=(21, 21), maxLevel=3,
           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))


def track_points(gray_a: np.ndarray, gray_b: np.ndarray, points_a: np.ndarray,
                 fb_max_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """LK-track (N, 2) float32 points from ``gray_a`` to ``gray_b``; keep forward–backward consistent ones.

    Returns the kept points in both frames, (M, 2) float32 each.
    """
    if len(points_a) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    start = np.ascontiguousarray(points_a, np.float32).reshape(-1, 1, 2)
    forward, ok_f, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, start, None, **_LK)
    found = np.flatnonzero(ok_f.ravel() == 1)
    if len(found) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    # back only the points found forwards (LK tracks each point on its own: the same result for them)
    start, forward = start[found], forward[found]
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, forward, None, **_LK)
    error = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
    keep = (ok_b.ravel() == 1) & (error < fb_max_px)
    return start.reshape(-1, 2)[keep], forward.reshape(-1, 2)[keep]


def corner_matches(gray_a: np.ndarray, gray_b: np.ndarray, max_corners: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """Shi–Tomasi corners of ``gray_a`` LK-tracked into ``gray_b``: two (M, 2) float32 arrays."""
    min_distance = max(3, round(max(gray_a.shape) / 80))
    corners = cv2.goodFeaturesToTrack(gray_a, max_corners, 0.005, min_distance, blockSize=7)
    if corners is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    return track_points(gray_a, gray_b, corners.reshape(-1, 2))


def dense_flow(config: ClassicTrackerConfig = ClassicTrackerConfig()) -> cv2.DISOpticalFlow:
    """OpenCV's DIS flow (medium preset) with the finest pyramid level, patch stride and iterations of ``config``.

    Level 0 is the working resolution itself, level 1 half of it (four times fewer
    patches; movers smaller than a few pixels there blur into their neighbours)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(config.flow_finest_scale)
    dis.setPatchStride(config.flow_patch_stride)
    dis.setGradientDescentIterations(config.flow_descent_iterations)
    dis.setVariationalRefinementIterations(config.flow_refine_iterations)
    return dis


def _to_half(flow: np.ndarray) -> np.ndarray:
    """(h, w, 2) float32 → float16, the bits of ``flow.astype(np.float16)`` (round to nearest even):
    OpenCV's conversion is ~10× faster than numpy's, which ran twice per frame pair."""
    if not hasattr(cv2, "convertFp16"):
        return flow.astype(np.float16)
    return cv2.convertFp16(np.ascontiguousarray(flow, np.float32)).view(np.float16)


def textured(gray: np.ndarray, min_texture: float) -> np.ndarray:
    """(h, w) bool: pixels whose 5 × 5 mean Sobel gradient magnitude reaches ``min_texture``.

    Flow is not observable on blank surfaces (a white table, a clear sky): dense flow
    fills them in from their surroundings, so a hand moving over a table would paint the
    whole table as moving. Their residual is not trusted; a mover's blank interior is
    recovered by the closing and hole filling of its mask.
    """
    gradient = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    return cv2.blur(gradient, (5, 5)) >= min_texture




@dataclass(frozen=True, eq=False)
class PairMotion:
    """Motion between frames a and b (working resolution).

    flow_ab, flow_ba: (h, w, 2) float32 dense flows.
    background:       :class:`BackgroundMotion` a → b.
    residual:         (2, h, w) float32 relative residual motion (:func:`relative_residual`)
                      of frame a (against b) and of b (against a); 0 near the border and where
                      the background leaves the other frame (:func:`inside`).
    object_flow:      (2, h, w, 2) float32 flow minus the background's, a → b and b → a.
    consistent:       (2, h, w) bool whether those flows pass :func:`consistent_flow`.
    points_a, points_b: (N, 2) float32 LK-tracked corners in a and b.
    point_residual:   (N,) relative residual of each corner's motion against the background.
    """

    flow_ab: np.ndarray
    flow_ba: np.ndarray
    background: BackgroundMotion
    residual: np.ndarray
    object_flow: np.ndarray
    consistent: np.ndarray
    points_a: np.ndarray
    points_b: np.ndarray
    point_residual: np.ndarray

    @property
    def planes(self) -> tuple:
        """Background homographies a → b, dominant first (the dominant one only for an epipolar model)."""
        return self.background.planes


def _side(flow: np.ndarray, model: BackgroundMotion, usable: np.ndarray,
          config: ClassicTrackerConfig, edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Relative residual (h, w) and object flow (h, w, 2) of one direction of a pair; with ``edges``
    (the frame's :func:`~recon4d.tracking.classic.background.aperture` form) on straight edges only the
    part across them counts."""
    predicted = background_flow(flow, model, usable, config)
    residual = relative_residual(flow, predicted, config.flow_error_fraction, edges)
    residual[~inside(predicted, config.border_fraction * max(flow.shape[:2]))] = 0.0
    return residual, flow - predicted


def pair_motion(gray_a: np.ndarray, gray_b: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                dis: cv2.DISOpticalFlow | None = None, edges: tuple | None = None) -> PairMotion:
    """Background model, dense flows and residual motion between two (h, w) uint8 grey frames.

    ``dis`` computes the plain flows; the flows started from a guess (``flow_shift_px``,
    ``flow_prior_features``) take a DIS of their own, made for the pair: DIS carries state from a
    started call into its next plain one (see flow_prior.prior_flow), which would make a worker's
    flows depend on the pairs it ran before. With ``config.aperture_window`` and a translating camera
    (an epipolar background model) the residual on straight edges counts only across them
    (:func:`~recon4d.tracking.classic.background.aperture`); ``edges``: two functions giving the two
    frames' aperture forms (h, w, 3) (:func:`pair_motions` computes each frame's once, when asked)."""
    if edges is None:
        edges = tuple(functools.partial(aperture, gray, config.aperture_window, config.aperture_corner)
                      for gray in (gray_a, gray_b))
    dis = dis or dense_flow(config)
    height, width = gray_a.shape
    points_a, points_b = corner_matches(gray_a, gray_b)
    flow_ab = dis.calc(gray_a, gray_b, None)
    flow_ba = dis.calc(gray_b, gray_a, None)
    moved = False
    if config.flow_prior_features:
        found = feature_homography(gray_a, gray_b, config.flow_prior_features)
        # only where the plain flow misses the features' matches (DIS followed the subject, not the turn)
        if found is not None and flow_misses(flow_ab, found[1], found[2]) > config.flow_prior_gate_px:
            started_dis = dense_flow(config)
            flow_ab = prior_flow(gray_a, gray_b, started_dis, flow_ab, found[0], config.flow_prior_margin)
            flow_ba = prior_flow(gray_b, gray_a, started_dis, flow_ba, np.linalg.inv(found[0]),
                                 config.flow_prior_margin)
            moved = True
            # LK's forward-backward test kept mostly the subject's corners (it lost the background as DIS
            # did): the features' matches stand for the background in the model's fit
            points_a = np.concatenate([points_a, found[1]])
            points_b = np.concatenate([points_b, found[2]])
    if config.flow_shift_px and not moved:
        shift = global_shift(gray_a, gray_b, scale=4, least_px=config.flow_shift_px)
        if np.hypot(*shift) >= config.flow_shift_px:
            started_dis = dense_flow(config)
            flow_ab = shifted_flow(gray_a, gray_b, started_dis, flow_ab, shift)
            flow_ba = shifted_flow(gray_b, gray_a, started_dis, flow_ba, (-shift[0], -shift[1]))
            moved = True
    if moved:  # the corners' LK matches missed the motion as DIS did: they move by the flow found now
        points_b = (points_a + flow_at(flow_ab, points_a)).astype(np.float32)
    consistent = np.stack([consistent_flow(flow_ab, flow_ba), consistent_flow(flow_ba, flow_ab)])
    model = resolve_pose(fit_background(points_a, points_b, (width, height), config), flow_ab, consistent[0], config)
    # only under a translating camera: there depth parallax and its fit leave the residual noisy and long
    # edges a walking camera passes were flagged; under the planar models (a still, panning or turning camera)
    # the edges' measure cost pan scenes movers (pipeline_fidelity 101-130: 107 and 122)
    edge_a, edge_b = (edges[0](), edges[1]()) if config.aperture_window and model.kind == "epipolar" else (None, None)
    residual_a, object_a = _side(flow_ab, model, consistent[0], config, edge_a)
    residual_b, object_b = _side(flow_ba, invert_background(model), consistent[1], config, edge_b)
    if len(points_a):
        background_at = flow_at(flow_ab - object_a, points_a)
        point_residual = (np.linalg.norm(points_b - points_a - background_at, axis=1)
                          / (1.0 + config.flow_error_fraction * np.linalg.norm(background_at, axis=1)))
    else:
        point_residual = np.zeros(0)
    return PairMotion(flow_ab, flow_ba, model, np.stack([residual_a, residual_b]), np.stack([object_a, object_b]),
                      consistent, points_a, points_b, point_residual)


def motion_threads(config: ClassicTrackerConfig) -> int:
    """Worker threads of :func:`pair_motions`: ``config.motion_threads``, or when that is 0, 2 where
    at least 2 CPUs are usable by this process (its affinity, not the machine's count), else 1."""
    return worker_threads(config.motion_threads)


def pair_motions(gray, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                 threads: int | None = None) -> Iterator[PairMotion]:
    """:func:`pair_motion` of the pairs (0, 1), (1, 2), … of the (T, h, w) uint8 frames ``gray``, in order.

    With ``threads`` > 1 (default :func:`motion_threads`) up to that many pairs are computed ahead
    in worker threads while the caller works on the pair it was given (:func:`recon4d.workers.ahead`):
    pairs are independent and OpenCV and numpy release the GIL, so a second core takes the flow of
    the next pair. Each worker takes a DIS flow of its own from a pool (one DIS object must not
    serve two threads at once: it crashes); the frames are read on the caller's thread, in order
    (a lazy :func:`working_frames` cache is not shared between threads). At most ``threads`` + 1
    pairs wait (one queued for the next free worker), so memory does not grow with T. The pairs are the serial ones: nothing in a pair depends
    on another. Meanwhile OpenCV's own thread pool is set to one thread, and OpenBLAS's to one with any
    ``threads`` (:func:`recon4d.workers.one_blas_thread`; both restored after).
    """
    n_pairs = max(len(gray) - 1, 0)
    threads = motion_threads(config) if threads is None else max(1, threads)
    flows: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(min(threads, max(n_pairs, 1))):
        flows.put(dense_flow(config))

    def work(frames: tuple) -> PairMotion:
        dis = flows.get()
        try:
            if frames[2] is None:  # no aperture forms: the plain call
                return pair_motion(frames[0], frames[1], config, dis)
            return pair_motion(frames[0], frames[1], config, dis, frames[2:])
        finally:
            flows.put(dis)

    def edges(frame: np.ndarray):
        """A function giving the frame's aperture form, computed on its first call only (the pairs before and
        after the frame share it; two workers may both compute it at once: the same form)."""
        if not config.aperture_window:
            return None
        return functools.lru_cache(maxsize=1)(functools.partial(aperture, frame, config.aperture_window,
                                                                config.aperture_corner))

    def pairs() -> Iterator[tuple]:
        """(frame t, frame t + 1, functions giving their aperture forms or None), each frame's form made once."""
        if not n_pairs:
            return
        first = gray[0]
        first_edges = edges(first)
        for t in range(n_pairs):
            second = gray[t + 1]
            second_edges = edges(second)
            yield first, second, first_edges, second_edges
            first, first_edges = second, second_edges

    if threads == 1:
        with one_blas_thread():  # OpenBLAS's idle threads spin: CPU time for no gain (one_blas_thread)
            yield from ahead(pairs(), work, 1)
        return
    # Each worker keeps a core busy already: OpenCV's own pool splitting every DIS and LK call too
    # (what the serial path gains from it) oversubscribes the cores (dev 104: motion 2.8 -> 2.55 s wall,
    # CPU 4.8 -> 4.6 s with it off; DIS gives the same flow with any thread count).
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with one_blas_thread():
            # one pair more than workers waits in the queue: a worker that finishes starts it at once
            # instead of idling until the caller, busy summing a pair, asks for the next (one more
            # PairMotion held, ~2 MiB at 384×216)
            yield from ahead(pairs(), work, threads, "recon4d-motion", queued=1)
    finally:
        cv2.setNumThreads(opencv_threads)


class PackedFrames:
    """(T, h, w) bool frames held bit-packed along w (1/8 of the bytes); ``frames[t]`` unpacks one,
    ``frames[t] = mask`` packs one, ``np.asarray(frames)`` unpacks all."""

    def __init__(self, n_frames: int, height: int, width: int) -> None:
        self.shape = (int(n_frames), int(height), int(width))
        self.dtype = np.dtype(bool)
        self.ndim = 3
        self._packed = np.zeros((n_frames, height, (width + 7) // 8), np.uint8)

    def __len__(self) -> int:
        return self.shape[0]

    def __setitem__(self, t: int, mask: np.ndarray) -> None:
        self._packed[t] = np.packbits(np.asarray(mask, bool), axis=-1)

    def __getitem__(self, t: int) -> np.ndarray:
        return np.unpackbits(self._packed[t], axis=-1, count=self.shape[2]).view(bool)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        frames = np.unpackbits(self._packed, axis=-1, count=self.shape[2]).view(bool)
        return frames if dtype is None else frames.astype(dtype)

    def any(self) -> bool:
        return bool(self._packed.any())


class PackedMaskDict(MutableMapping):
    """frame → (h, w) bool mask, held bit-packed (1/8 of the bytes): a track keeps a mask per
    frame, a clip's tracks many (issue 12). Reading unpacks a copy, so change a mask by
    assigning it again (``masks[t] = masks[t] | other``), never in place."""

    def __init__(self, *args, **kwargs) -> None:
        self._packed: dict = {}
        self.update(*args, **kwargs)

    def __setitem__(self, t, mask: np.ndarray) -> None:
        mask = np.asarray(mask, bool)
        self._packed[t] = (np.packbits(mask, axis=-1), mask.shape[-1])

    def __getitem__(self, t) -> np.ndarray:
        packed, width = self._packed[t]
        return np.unpackbits(packed, axis=-1, count=width).view(bool)

    def __delitem__(self, t) -> None:
        del self._packed[t]

    def __iter__(self):
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, t) -> bool:
        return t in self._packed

    def __repr__(self) -> str:
        return f"PackedMaskDict(frames={sorted(self._packed)})"


class SparseFrames:
    """(T, h, w, C) float32 frames of which only a support of pixels per frame is held (their
    values exactly); ``frames[t]`` is the dense frame with 0 off its support."""

    def __init__(self, n_frames: int, height: int, width: int, channels: int) -> None:
        self.shape = (int(n_frames), int(height), int(width), int(channels))
        self.dtype = np.dtype(np.float32)
        self.ndim = 4
        self._pixels = [np.zeros(0, np.int32)] * n_frames
        self._values = [np.zeros((0, channels), np.float32)] * n_frames

    def __len__(self) -> int:
        return self.shape[0]

    def keep(self, t: int, frame: np.ndarray, support: np.ndarray) -> None:
        """Hold frame t's (h, w, C) values on its (h, w) bool ``support``."""
        pixels = np.flatnonzero(support)
        self.hold(t, pixels, np.asarray(frame, np.float32).reshape(-1, self.shape[3])[pixels])

    def hold(self, t: int, pixels: np.ndarray, values: np.ndarray) -> None:
        """Hold frame t's values (P, C) at the flat pixel indices ``pixels`` (P,) (the others 0)."""
        self._pixels[t] = np.asarray(pixels, np.int32)
        self._values[t] = np.asarray(values, np.float32).reshape(-1, self.shape[3])

    def __getitem__(self, t: int) -> np.ndarray:
        _, height, width, channels = self.shape
        dense = np.zeros((height * width, channels), np.float32)
        dense[self._pixels[t]] = self._values[t]
        return dense.reshape(height, width, channels)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        frames = np.stack([self[t] for t in range(len(self))]) if len(self) else np.zeros(self.shape, np.float32)
        return frames if dtype is None else frames.astype(dtype)


@dataclass(frozen=True, eq=False)
class MotionField:
    """Camera-compensated motion of a clip at the working resolution.

    forward_flow:  (T−1, h, w, 2) float32 dense flow t → t+1 (float16 when compact).
    backward_flow: (T−1, h, w, 2) float32 dense flow t+1 → t (float16 when compact).
    backgrounds:   T−1 :class:`BackgroundMotion` t → t+1.
    residual:      (T, h, w) float32 relative residual motion, px per sampled-frame step
                   (0 where the frame has no texture); None when compact.
    image_flow:    (T, h, w, 2) float32 image motion of each pixel per step, forwards in time
                   (what separates movers that touch: one rigid object moves as one there,
                   while its camera-compensated motion also depends on what is behind it);
                   when compact a :class:`SparseFrames` holding only the pixels of the frame's
                   moving components (0 elsewhere).
    velocity:      (T, h, w, 2) float32 camera-compensated motion of each pixel per step
                   (sparse like ``image_flow`` when compact).
    moving:        (T, h, w) bool residual above the frame's robust threshold
                   (a :class:`PackedFrames` when compact).
    thresholds:    (T,) float32 the thresholds used.
    moving_points: T arrays (N_t, 2) float32: tracked corners of frame t that the background
                   model does not explain (sparse evidence backing the dense residual).
    """

    forward_flow: np.ndarray
    backward_flow: np.ndarray
    backgrounds: list
    residual: np.ndarray | None
    image_flow: np.ndarray
    velocity: np.ndarray
    moving: np.ndarray
    thresholds: np.ndarray
    moving_points: list

    @property
    def planes(self) -> list:
        """T−1 tuples of background homographies t → t+1, dominant first."""
        return [background.planes for background in self.backgrounds]


@dataclass(eq=False)
class _FrameSums:
    """Sums over the (at most two) frame pairs a frame belongs to, until the frame is complete."""

    plain: np.ndarray
    trusted: np.ndarray
    n_trusted: np.ndarray
    plain_velocity: np.ndarray  # (2, h, w, 2): image flow, compensated
    trusted_velocity: np.ndarray
    n_sides: int = 0

    @classmethod
    def zeros(cls, height: int, width: int) -> "_FrameSums":
        plane = functools.partial(np.zeros, (height, width), np.float32)
        return cls(plane(), plane(), plane(), np.zeros((2, height, width, 2), np.float32),
                   np.zeros((2, height, width, 2), np.float32))


def compute_motion(gray, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                   progress: ProgressFn | None = None, compact: bool = False) -> MotionField:
    """Background models, dense flow and residual-motion masks of (T, h, w) uint8 grey frames
    (:func:`stream_motion`, run to its end)."""
    motion, finished = stream_motion(gray, config, progress, compact)
    for _ in finished:
        pass
    return motion


def stream_motion(gray, config: ClassicTrackerConfig = ClassicTrackerConfig(), progress: ProgressFn | None = None,
                  compact: bool = False) -> tuple[MotionField, Iterator[int]]:
    """The clip's :class:`MotionField`, filled as the returned iterator runs, and that iterator of the
    frames finished so far, in order: once it yields t, frame t's ``moving``, ``image_flow``,
    ``velocity`` and ``thresholds`` and the flows of the pairs before it are final, so a consumer
    (association) can work on frame t while later pairs are computed; ``backgrounds`` and
    ``moving_points`` are filled when it ends.

    The residual of frame t combines its residuals against frames t − 1 and t + 1: the mean
    over the directions whose flow is forward–backward consistent, so background a mover
    covers in one neighbour (an occlusion) takes the other neighbour's word; where neither
    is consistent (a fast mover the flow loses, or an occlusion on both sides) the plain
    mean. Image flow and velocities combine the same way (the backward side negated). Pixels without
    texture (:func:`textured`) have residual 0, and each frame's threshold
    (:func:`robust_threshold`) uses the statistics of its textured pixels. Corners whose
    motion misses the background's by more than that threshold are the frame's
    ``moving_points``. ``progress(done, T − 1)`` is called after each frame pair; a single
    frame has no motion.

    ``gray`` may be any sequence of frames (``len``, ``gray[t]``, ``gray.shape``; a lazy
    :func:`working_frames`): each frame is read twice, in order, up to
    :func:`motion_threads` pairs ahead of the one being summed (the pairs are computed in worker
    threads by :func:`pair_motions`; the sums, in order, here). A frame is finished (and its
    sums dropped) as soon as its second pair is in, so only two frames' sums are held.
    ``compact`` holds only what the tracker reads (issue 12: a clip's motion was ~10 MiB a
    frame): float16 flows (|flow| ≪ 65504 px; the 1/2048 relative step is far below the
    1 px motion floor), no residual, bit-packed ``moving``, and image flow and velocity on
    the pixels of each frame's moving components only (segmentation, association and
    clean-up read them under detections, which lie inside those components).
    """
    motion = _empty_motion(*gray.shape[:3], compact)
    return motion, _fill_motion(motion, gray, config, progress, compact)


def _empty_motion(n_frames: int, height: int, width: int, compact: bool) -> MotionField:
    """A clip's motion field with its arrays allocated (zeros) and no backgrounds or moving points yet."""
    n_pairs = max(n_frames - 1, 0)
    flow_dtype = np.float16 if compact else np.float32
    forward = np.zeros((n_pairs, height, width, 2), flow_dtype)
    backward = np.zeros((n_pairs, height, width, 2), flow_dtype)
    residual = None if compact else np.zeros((n_frames, height, width), np.float32)
    if compact:
        moving = PackedFrames(n_frames, height, width)
        image_flow, velocity = SparseFrames(n_frames, height, width, 2), SparseFrames(n_frames, height, width, 2)
    else:
        moving = np.zeros((n_frames, height, width), bool)
        image_flow = np.zeros((n_frames, height, width, 2), np.float32)
        velocity = np.zeros((n_frames, height, width, 2), np.float32)
    return MotionField(forward_flow=forward, backward_flow=backward, backgrounds=[], residual=residual,
                       image_flow=image_flow, velocity=velocity, moving=moving,
                       thresholds=np.zeros(n_frames, np.float32), moving_points=[])


def _fill_motion(motion: MotionField, gray, config: ClassicTrackerConfig, progress: ProgressFn | None,
                 compact: bool) -> Iterator[int]:
    """Compute ``motion``'s arrays pair by pair (:func:`stream_motion`), yielding each finished frame."""
    n_frames, height, width = gray.shape[:3]
    n_pairs = max(n_frames - 1, 0)
    forward, backward, residual = motion.forward_flow, motion.backward_flow, motion.residual
    image_flow, velocity, moving, thresholds = motion.image_flow, motion.velocity, motion.moving, motion.thresholds
    sums: dict[int, _FrameSums] = {}
    memory = ClipMemory(config, height, width) if config.long_baseline_decay > 0 else None

    def finish(frame: int) -> None:
        done = sums.pop(frame, None) or _FrameSums.zeros(height, width)
        some = done.n_trusted > 0
        n_sides = np.maximum(np.float32(done.n_sides), 1)
        value = np.where(some, done.trusted / np.maximum(done.n_trusted, 1), done.plain / n_sides).astype(np.float32)

        def combined(pixels=slice(None)) -> np.ndarray:
            """(2, P, 2) image flow and velocity of the ``pixels`` (flat indices; all by default)."""
            flat = (2, height * width, 2)
            n_trusted = np.maximum(done.n_trusted, 1).reshape(-1)[pixels, None]
            trusted = done.trusted_velocity.reshape(flat)[:, pixels] / n_trusted
            return np.where(some.reshape(-1)[pixels, None], trusted,
                            done.plain_velocity.reshape(flat)[:, pixels] / n_sides).astype(np.float32)

        observable = textured(gray[frame], config.min_texture)
        value[~observable] = 0.0
        thresholds[frame] = robust_threshold(value[observable] if observable.any() else value,
                                             config.residual_sigma, config.residual_floor_px)
        mask = value > thresholds[frame] if n_pairs else np.zeros(value.shape, bool)
        whole = None
        # slow movers under a translating camera: the motion summed along the flow (long_baseline); a still or
        # turning camera has no parallax noise to beat and the stabilised background finds its slow movers
        if memory is not None and any(background.kind == "epipolar" for background, *_ in pairs[max(frame - 1, 0):]):
            whole = combined()
            mask |= memory.moving(frame, value, float(thresholds[frame]), observable, whole, forward, backward)
        elif memory is not None:
            memory.forget()
        if config.long_step_frames and pairs[max(frame - 1, 0)][0].kind == "epipolar":
            # a followed subject: still like the fixation point over one step, not over k (long_step_moving)
            found = long_step_moving(observable, backward, forward, frame, config)
            if found is not None:
                mask |= apart(found[0], mask, config) if config.long_step_apart else found[0]
        moving[frame] = mask
        if compact:
            components = moving_components(mask, config) if mask.any() else []
            support = np.logical_or.reduce(components) if components else np.zeros(mask.shape, bool)
            pixels = np.flatnonzero(support)
            flows = combined(pixels) if whole is None else whole[:, pixels]  # only what is kept (speed)
            image_flow.hold(frame, pixels, flows[0])
            velocity.hold(frame, pixels, flows[1])
        else:
            residual[frame] = value
            image_flow[frame], velocity[frame] = (combined() if whole is None else whole).reshape(2, height, width, 2)

    pairs = []  # only the sparse parts: the dense ones are accumulated as we go
    for t, pair in enumerate(pair_motions(gray, config)):
        pairs.append((pair.background, pair.points_a, pair.points_b, pair.point_residual))
        if compact:
            forward[t], backward[t] = _to_half(pair.flow_ab), _to_half(pair.flow_ba)
        else:
            forward[t], backward[t] = pair.flow_ab, pair.flow_ba
        for side, (frame, sign) in enumerate(((t, 1.0), (t + 1, -1.0))):
            frame_sums = sums.setdefault(frame, _FrameSums.zeros(height, width))
            weight = pair.consistent[side].astype(np.float32)  # 1 where consistent: multiplies, no np.where
            frame_sums.plain += pair.residual[side]
            frame_sums.trusted += pair.residual[side] * weight
            frame_sums.n_trusted += weight
            weight = sign * weight
            weight = np.stack([weight, weight], -1)  # not [..., None]: broadcasting a length-1 last axis is ~5× slower
            for kind, field in enumerate(((pair.flow_ab, pair.flow_ba)[side], pair.object_flow[side])):
                (np.add if sign > 0 else np.subtract)(frame_sums.plain_velocity[kind], field,
                                                      out=frame_sums.plain_velocity[kind])
                frame_sums.trusted_velocity[kind] += field * weight
            frame_sums.n_sides += 1
        del pair
        finish(t)  # frame t has both its pairs now
        if progress is not None:
            progress(t + 1, n_pairs)
        yield t
    if n_frames:
        finish(n_frames - 1)  # the last frame has one pair (a one-frame clip none)
    moving_points = [[] for _ in range(n_frames)]
    for t, (_, points_a, points_b, point_residual) in enumerate(pairs):
        moving_points[t].append(points_a[point_residual > thresholds[t]])
        moving_points[t + 1].append(points_b[point_residual > thresholds[t + 1]])
    motion.backgrounds.extend(background for background, *_ in pairs)
    motion.moving_points.extend(np.concatenate(points) if points else np.zeros((0, 2), np.float32)
                                for points in moving_points)
    if n_frames:
        yield n_frames - 1  # the last frame once the whole field is filled
