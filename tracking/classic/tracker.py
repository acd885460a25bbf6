"""Weights-free tracker: moving-object discovery by camera-compensated motion segmentation.

The ``classic`` track backend (DESIGN §4). At a reduced working resolution (long side
``work_long_side``), for each pair of consecutive sampled frames:

1. Background motion (:mod:`~recon4d.tracking.classic.background`): Shi–Tomasi corners
   tracked with pyramidal Lucas–Kanade (forward–backward checked) are fitted with a RANSAC
   homography and a MAGSAC++ essential matrix (focal length from ``fov_deg``). A still or
   only turning camera, or a flat scene, keeps the homography model (with up to
   ``max_planes`` planes); a camera that translates over a 3D scene gets the epipolar
   model: every static pixel moves along its epipolar line by an amount set by its inverse
   depth, and the background's inverse depth is fitted locally by robust affine functions
   (the inverse depth of a plane is affine in the pixel), so the ground, walls and far
   things each predict their own flow, while a mover, whose flow implies a depth unlike its
   surroundings, stands out (plane + parallax, not a single homography).
2. Residual motion (:mod:`~recon4d.tracking.classic.motion`): dense DIS optical flow in
   both directions minus the background's predicted flow, divided by 1 +
   ``flow_error_fraction`` · |background flow| (flow errs in proportion to what it
   measures); a frame's residual is the mean over its two neighbours of the directions
   whose flow passes the forward–backward test; blank pixels and the border band
   (``border_fraction``) count as still.
3. Detections (:mod:`~recon4d.tracking.classic.segment`): residual above max(
   ``residual_floor_px``, median + ``residual_sigma`` · 1.4826 · MAD), opened and closed,
   split into connected components, and each component split again where its pixels move
   as two groups (movers that touch; a rigid object moves as one in the image), then cut
   to the pixels moving at ≥ ``core_fraction`` of its median speed (flow blurs motion past
   a mover's outline).
4. Tracks (:mod:`~recon4d.tracking.classic.association`): each live track's mask is
   carried on the flow and compared pixel by pixel with the frame's detections; a
   detection holding several tracks that move differently is shared between them, pieces
   of one track's object are joined, the rest is a Hungarian assignment on mask IoU and
   colour with gates; unmatched tracks coast while their colours stay put; lost tracks may
   be revived on their velocity and colours.
5. Clean-up (:mod:`~recon4d.tracking.classic.cleanup`): fragments of one mover are
   stitched; tracks detected too briefly (``min_frames``, ``min_frame_fraction``), without
   moving corners (``min_point_support``), that never move away from their start against
   the background (``min_travel``: ghosts, flow errors) or that keep to their epipolar lines
   under a translating camera (``min_epipolar_px``: depth errors of the background), whose
   motion runs along their image edges only (``min_normal_motion``, off by default: flow errors
   on long straight edges) or whose image motion the scene right around them shares (``scene_share``, off by default: a patch of a pillar or a
   parked car at a depth the background model got wrong, a piece of a larger mover) are
   dropped (counted by reason in ``Tracks2D.dropped``: the quality step's clip rule reads
   them); small tracks clinging to a larger one join it, pieces of another are dropped;
   each track is carried back before its first detection, out of the track it was merged with.
6. Masks at the clip frame size: the mask cut to the pixels whose colours are more common in
   it than around it (``colour_trim``, :func:`.segment.trim_to_colours`: flow smear, the ground
   a mover uncovers, its shadow), with its holes filled, or its convex hull when that covers
   less than ``min_fill`` of its box; boxes are the masks' bounding boxes in source-video pixels.
   On a still or only-turning camera (``background_model``, :mod:`.stabilised`: most frame pairs
   on one homography, the aligned frames agreeing with their temporal median) the mask is instead
   the foreground of that background near the track's mask (``background_reach``; shadows set
   aside): the mover's whole silhouette, its blank interior and feet, without the flow's smear;
   with ``background_split`` a motion detection that holds separate pieces of that foreground
   (movers a few pixels apart the smear joined) is cut in one detection per piece, which
   association does not join again.
   With ``background_hold`` an object that stops stays detected while it differs from the
   background, so its track goes on.
   With ``merge_step_ratio`` (off by default) a detected box whose area steps up against the
   track's own boxes before and after it (:mod:`.merges`: a second mover joined it and left) is
   reported not observed (``Tracks2D.observed``): questions do not name the object by it.
7. Labels (:mod:`~recon4d.tracking.classic.people`): OpenCV's HOG people detector on crops
   around a track's box in up to ``person_samples`` frames; "person" when it finds a person
   in enough of them and the box is upright, else "object" (cars, dogs and balls are not
   called people; object is the honest label without evidence).

User boxes (``boxes`` option, ``--boxes file.json``) bypass discovery: each box is carried
forwards and backwards through the clip by LK tracks inside it (median translation, scale
from the median ratio of pairwise distances; points moving with the background are set
aside when enough others move differently), and its masks are the filled boxes.

Limits (measured with ``benchmarks/track_fidelity.py``): movers that touch and move alike
for the whole clip (a group walking together, a hand and the cup it holds) are one track;
a person who barely moves is not found (nor is anything that never moves ``min_travel``
of its size); a mover covering most of a depth window (a close-up under a walking camera)
is partly taken for background; a mover walking exactly along its epipolar line at the
depth of what is behind it looks static for that pair; shadows move with their casters
and are part of their boxes; the person detector is HOG (upright, unoccluded people).
Sizes in metres are unknown here (tracking runs before reconstruction).

    ClassicTracker.from_config({"min_frames": 3}, "cpu").track(clip) -> Tracks2D
    load_user_boxes("boxes.json") -> list[dict]
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from recon4d.backends import config_from_options
from recon4d.tracking.classic.association import associate
from recon4d.tracking.classic.cleanup import clean_tracks
from recon4d.tracking.classic.evidence import detection_scores, track_evidence
from recon4d.tracking.classic.boxes import mask_box
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.people import PeopleDetector, label_tracks, person_evidence
from recon4d.tracking.classic.merges import merged_frames
from recon4d.tracking.classic.motion import motion_threads, stream_motion, to_working, working_frames, working_size
from recon4d.tracking.classic.segment import detect_moving_regions, fill_mask, trim_to_colours
from recon4d.tracking.classic.stabilised import (
    StabilisedBackground,
    foreground_detections,
    silhouettes,
    split_by_foreground,
)
from recon4d.tracking.classic.user_boxes import (
    AGENT_CATEGORIES,
    anchor_frame,
    background_homographies,
    load_user_boxes,
    propagate_box,
    validate_user_boxes,
)
from recon4d.types import Clip, PackedMasks, ProgressFn, Tracks2D
from recon4d.workers import ahead

__all__ = [
    "AGENT_CATEGORIES",
    "ClassicTracker",
    "ClassicTrackerConfig",
    "anchor_frame",
    "load_user_boxes",
    "validate_user_boxes",
]


def _to_source(boxes: np.ndarray, work_size: tuple[int, int], source_size: tuple[int, int]) -> np.ndarray:
    scale = np.array([source_size[0] / work_size[0], source_size[1] / work_size[1]] * 2)
    return boxes * scale


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape[::-1] == size:
        return mask
    return cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR) > 127


def _box_masks(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K, T, H, W) bool filled boxes from (K, T, 4) xyxy boxes in pixels of ``size`` = (W, H)."""
    width, height = size
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    with np.errstate(invalid="ignore"):
        inside_x = (xs >= boxes[..., 0, None]) & (xs < boxes[..., 2, None])
        inside_y = (ys >= boxes[..., 1, None]) & (ys < boxes[..., 3, None])
    return inside_y[..., :, None] & inside_x[..., None, :]


class _FrameDetections:
    """The T lists of a clip's detections, each found when association asks for its frame (it
    walks the frames once): their full-frame masks are never all held at once (issue 12).
    ``seconds`` adds up the time spent finding them."""

    def __init__(self, motion, config: ClassicTrackerConfig, background: StabilisedBackground | None = None,
                 images=None) -> None:
        self._motion, self._config = motion, config
        self._background, self._images, self._previous = background, images, []
        self._lock = threading.Lock()
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self._motion.moving)

    def __getitem__(self, t: int) -> list:
        started = time.perf_counter()
        moving = self._motion.moving[t]
        found = (detect_moving_regions(moving, self._config, self._motion.image_flow[t], self._motion.velocity[t])
                 if moving.any() else [])
        if self._background is not None and self._config.background_split and len(found):
            height, width = moving.shape
            found = split_by_foreground(found, self._background.foreground(t, self._images[t]),
                                        max(self._config.min_area_fraction * height * width, 4))
        if self._background is not None and self._config.background_hold:  # stopped objects stay found
            height, width = moving.shape
            previous = [self._background.carry(detection.mask, t - 1, t) for detection in self._previous]
            found = self._previous = foreground_detections(
                found, self._background.foreground(t, self._images[t]), previous,
                max(self._config.min_area_fraction * height * width, 4), self._config.background_reach)
        with self._lock:
            self.seconds += time.perf_counter() - started
        return found


class _Timed:
    """An iterator that adds up the seconds its source takes to produce each item."""

    def __init__(self, items) -> None:
        self._items, self.seconds = iter(items), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        started = time.perf_counter()
        try:
            return next(self._items)
        finally:
            self.seconds += time.perf_counter() - started


class ClassicTracker:
    """Weights-free tracker: camera-compensated motion segmentation, or user boxes (module docstring)."""

    name = "classic"
    version = "1"

    def __init__(self, config: ClassicTrackerConfig = ClassicTrackerConfig(), boxes: list[dict] | None = None,
                 people: PeopleDetector | None = None) -> None:
        self.config = config
        self.user_boxes = validate_user_boxes(boxes) if boxes else []
        self.people = people
        """Optional people detector ``frame (H, W, 3) → (N, 4) xyxy``; overrides HOG/shape."""
        self.last_stage_seconds: dict[str, float] = {}
        """Seconds of each step of the last discovery (motion, background, segment, associate, cleanup,
        masks, people), for benchmarks."""

    @classmethod
    def from_config(cls, options: dict, device: str = "cpu") -> "ClassicTracker":
        """Build from CLI/config options: ClassicTrackerConfig fields plus ``boxes`` (user
        boxes: a list as :func:`validate_user_boxes` takes, or the path of a JSON file).

        ``device`` is ignored: everything runs on the CPU with OpenCV.
        """
        options = dict(options or {})
        boxes = options.pop("boxes", None)
        if isinstance(boxes, (str, Path)):
            boxes = load_user_boxes(boxes)
        return cls(config_from_options(ClassicTrackerConfig, options, "classic tracker", extra=("boxes",)), boxes)

    def track(self, clip: Clip, progress: ProgressFn | None = None) -> Tracks2D:
        """Find and follow moving objects (or the user's boxes) in ``clip``.

        Returns Tracks2D with boxes (K, T, 4) in source-video pixels (NaN where not
        visible) and masks (K, T, H, W) bool at the clip frame size, bit-packed
        (:class:`~recon4d.types.PackedMasks`, read per object and frame); K may be 0.
        """
        size = working_size(*clip.image_size, self.config.work_long_side)
        if self.user_boxes:
            return self._track_user_boxes(clip, to_working(clip.frames, size)[1], size, progress)
        return self._discover(clip, size, progress)

    def _discover(self, clip: Clip, size: tuple[int, int], progress) -> Tracks2D:
        """Discovery holds little per frame (issue 12): working frames are resized from the clip
        when read, motion is compact (:func:`stream_motion`), detections are found frame by frame.
        Each frame is linked (association) as soon as its motion is finished, while worker threads
        compute the next frame pairs' (issue 12: the caller mostly waited on them) and find the next
        frames' detections; the tracks are those of one step after another."""
        config, n_frames = self.config, clip.n_frames
        images, gray = working_frames(clip.frames, size)
        seconds: dict[str, float] = {}
        started = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal started
            now = time.perf_counter()
            seconds[step] = now - started
            started = now

        motion, finished = stream_motion(gray, config, progress, compact=True)
        if config.background_model and (config.background_split or config.background_hold):
            # detections read the background model, which needs every frame pair's: motion first
            for _ in finished:
                pass
            lap("motion")
            background = StabilisedBackground.build(motion.backgrounds, images, config)
            lap("background")
            detections = _FrameDetections(motion, config, background, images)
            tracks = associate(detections, motion, images, config)
            lap("associate")
            seconds["associate"] -= detections.seconds
        else:
            # frames are linked as their motion is finished, while worker threads compute later pairs
            detections, ready = _FrameDetections(motion, config), _Timed(finished)
            tracks = associate(detections, motion, images, config, motion_threads(config), ready)
            lap("associate")
            seconds["motion"], seconds["associate"] = ready.seconds, seconds["associate"] - ready.seconds
            background = StabilisedBackground.build(motion.backgrounds, images, config) if config.background_model \
                else None
            lap("background")
        seconds["segment"] = detections.seconds  # found during association (on worker threads: overlapping it)
        dropped: dict[str, int] = {}
        tracks = clean_tracks(tracks, motion, images, config, dropped)
        strength = track_evidence(tracks, motion, config.flow_error_fraction)[1] if config.detection_score_full else None
        del motion, detections  # the flows are not needed for masks and labels
        lap("cleanup")
        n_tracks = len(tracks)
        boxes = np.full((n_tracks, n_frames, 4), np.nan)
        visible = np.zeros((n_tracks, n_frames), bool)
        detected = np.zeros((n_tracks, n_frames), bool)
        # Bit-packed (1/8 of a bool array): K × T full-size masks were the largest thing a clip's
        # tracks held (issue 12); readers index them per object and frame like an array.
        masks = PackedMasks.zeros(n_tracks, n_frames, clip.frames.shape[1], clip.frames.shape[2])
        # frame-major: the working frames are resized when read and only the last FRAME_BATCH are
        # kept, so reading them track by track resized each frame once per track
        present = sorted((t, k) for k, track in enumerate(tracks) for t in track.boxes)

        def final_masks(item: tuple[int, list[int], np.ndarray]) -> tuple[int, list]:
            """t and frame t's (track, box, mask at the clip size) of the tracks it shows (on a worker thread)."""
            t, keys, image = item
            own = [tracks[k].masks[t] for k in keys]
            whole = ([None] * len(keys) if background is None
                     else silhouettes(background.foreground(t, image), own, background.known(t, image),
                                    config.background_reach))
            shown = []
            for k, mask, silhouette in zip(keys, own, whole):
                if silhouette is not None:
                    mask = silhouette
                elif config.colour_trim:
                    mask = trim_to_colours(image, mask)
                mask = fill_mask(mask, config.min_fill)
                if mask.any():
                    shown.append((k, mask_box(mask), _resize_mask(mask, clip.image_size)))
            return t, shown

        groups = ((t, [k for _, k in group], images[t])
                  for t, group in itertools.groupby(present, key=lambda pair: pair[0]))
        for t, shown in ahead(groups, final_masks, motion_threads(config), name="recon4d-masks"):
            for k, box, mask in shown:
                boxes[k, t] = box
                visible[k, t] = True
                masks[k, t] = mask
        for k, track in enumerate(tracks):
            detected[k, sorted(track.detected)] = True
        merged = merged_frames(boxes, visible, detected, config)  # boxes over two movers: no observations
        lap("masks")
        work_scale = np.array([clip.image_size[0] / size[0], clip.image_size[1] / size[1]] * 2)
        looked, evidence = person_evidence(boxes * work_scale, detected & visible, clip.frames, config, self.people)
        categories, is_agent = label_tracks(looked, evidence, boxes, detected & visible, config)
        lap("people")
        self.last_stage_seconds = seconds
        scores = (None if strength is None
                  else np.where(visible, detection_scores(strength, config.detection_score_full), np.nan))
        return Tracks2D(ids=np.arange(n_tracks), categories=categories, is_agent=is_agent,
                        boxes_xyxy=_to_source(boxes, size, clip.source_size).astype(np.float32),
                        visible=visible, masks=masks, dropped=dropped, observed=detected & visible & ~merged,
                        scores=scores)

    def _track_user_boxes(self, clip: Clip, gray: np.ndarray, size: tuple[int, int], progress) -> Tracks2D:
        n_boxes = len(self.user_boxes)
        to_work = np.array([size[0] / clip.source_size[0], size[1] / clip.source_size[1]] * 2)
        boxes = np.full((n_boxes, clip.n_frames, 4), np.nan)
        anchors = [anchor_frame(entry, clip) for entry in self.user_boxes]
        background = background_homographies(gray)
        for k, (entry, anchor) in enumerate(zip(self.user_boxes, anchors)):
            boxes[k] = propagate_box(gray, anchor, np.asarray(entry["box"]) * to_work, background)
            if progress is not None:
                progress(k + 1, n_boxes)
        boxes = np.where(np.isfinite(boxes), np.clip(boxes, 0, [size[0], size[1]] * 2), np.nan)
        visible = np.isfinite(boxes).all(axis=-1)
        clip_scale = np.array([clip.image_size[0] / size[0], clip.image_size[1] / size[1]] * 2)
        return Tracks2D(ids=np.arange(n_boxes), categories=tuple(e["category"] for e in self.user_boxes),
                        is_agent=np.array([e["is_agent"] for e in self.user_boxes], bool),
                        boxes_xyxy=_to_source(boxes, size, clip.source_size).astype(np.float32),
                        visible=visible, masks=PackedMasks.pack(_box_masks(boxes * clip_scale, clip.image_size)))
