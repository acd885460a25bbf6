"""Weights-free tracker: moving-object discovery by camera-compensated motion segmentation.

The ``classic`` track backend (DESIGN §4). At a reduced working resolution (long side
``work_long_side``), for each pair of consecutive sampled frames:

1. Background motion: Shi–Tomasi corners tracked with pyramidal Lucas–Kanade (forward–
   backward checked) are fitted with a RANSAC homography, the dominant plane. When the
   camera moves, up to ``max_planes − 1`` further homographies are fitted to the corners
   left over, each kept only when its inliers are many and spread over the image (a
   second scene plane such as a wall, never a compact moving object).
2. Residual motion: dense DIS optical flow (full resolution, dense patches) minus the
   nearest plane's displacement field, in both directions. A frame's residual is the
   mean over its two neighbours of the directions whose flow passes the forward–backward
   test (background a mover covers is an occlusion, not motion); blank pixels, where
   flow is not observable, count as still.
3. Motion mask: residual above max(``residual_floor_px``, median + ``residual_sigma`` ·
   1.4826 · MAD over the frame's textured pixels), opened and closed with elliptic
   kernels, split into connected components; components under ``min_area_fraction`` of
   the frame are noise.
4. Tracks: each live track's mask is carried to the next frame by the median flow under
   it and matched to that frame's components (Hungarian on IoU, with centre proximity
   and, for movers that jump further than their size between sampled frames, colour
   histograms). A component holding two tracks' carried masks (movers that touch) is
   split between them. An unmatched track coasts on its median flow for up to
   ``max_coast`` frames while its colours stay put (an object that stops moving stays
   where it stopped; one that left is dropped), also backwards before its first
   detection; a lost track may be revived by a later component that looks like it, and
   fragments of one mover are joined afterwards. Tracks detected in too few frames
   (``min_frames``, ``min_frame_fraction``) or without moving corners to back their dense
   motion (``min_point_support``; dense flow errs on repetitive texture, sparse corner
   tracks rarely do) are dropped.
5. Masks at the clip frame size: the component with its holes filled, or its convex hull
   when that covers less than ``min_fill`` of its box (sparse motion); boxes are the
   masks' bounding boxes in source-video pixels.
6. Labels: a track is a "person" agent when person evidence covers at least
   ``person_min_fraction`` of its detected frames, else an "object" (non-agent).
   Evidence is OpenCV's HOG people detector overlapping its box where the installed
   OpenCV has one (``cv2.HOGDescriptor``, the 4.x wheels). OpenCV 5 no longer ships HOG
   in its main module; there the weights-free fallback is shape: a box at least
   ``person_min_aspect`` times taller than wide (upright people; a crouching person or a
   dog facing the camera fools it).

User boxes (``boxes`` option, ``--boxes file.json``) bypass discovery: each box is carried
forwards and backwards through the clip by LK tracks inside it (median translation, scale
from the median ratio of pairwise distances; points moving with the background are set
aside when enough others move differently), and its masks are the filled boxes.

Limits: movers that touch for the whole clip (a hand and the cup it holds) are one
object; a limb that moves apart from a still body can become a track of its own; a
person who barely moves is not found; with a moving camera, strong parallax
that no plane explains can make short-lived false movers (most are dropped as too brief).

The steps live in modules of their own: :mod:`recon4d.tracking.classic.motion` (working
resolution, background planes, residual flow and its threshold: steps 1–3),
:mod:`recon4d.tracking.classic.association` (moving regions, tracks, filled masks: steps 3–5),
:mod:`recon4d.tracking.classic.user_boxes` (the box format and its propagation),
:mod:`recon4d.tracking.classic.boxes` (box helpers) and :mod:`recon4d.tracking.classic.config`
(:class:`ClassicTrackerConfig`). This module holds the labels (step 6) and
:class:`ClassicTracker`, which runs them.

    ClassicTracker.from_config({"min_frames": 3}, "cpu").track(clip) -> Tracks2D
    load_user_boxes("boxes.json") -> list[dict]
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from recon4d.backends import config_from_options
from recon4d.tracking.classic.association import associate
from recon4d.tracking.classic.cleanup import clean_tracks
from recon4d.tracking.classic.boxes import mask_box
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.people import PeopleDetector, label_tracks, person_evidence
from recon4d.tracking.classic.motion import compute_motion, to_working, working_size
from recon4d.tracking.classic.segment import detect_moving_regions, fill_mask
from recon4d.tracking.classic.user_boxes import (
    AGENT_CATEGORIES,
    anchor_frame,
    background_homographies,
    load_user_boxes,
    propagate_box,
    validate_user_boxes,
)
from recon4d.types import Clip, ProgressFn, Tracks2D

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
        visible) and masks (K, T, H, W) bool at the clip frame size; K may be 0.
        """
        size = working_size(*clip.image_size, self.config.work_long_side)
        images, gray = to_working(clip.frames, size)
        if self.user_boxes:
            return self._track_user_boxes(clip, gray, size, progress)
        return self._discover(clip, images, gray, size, progress)

    def _discover(self, clip: Clip, images: np.ndarray, gray: np.ndarray, size: tuple[int, int], progress) -> Tracks2D:
        config, n_frames = self.config, clip.n_frames
        motion = compute_motion(gray, config, progress)
        detections = [detect_moving_regions(motion.moving[t], config, motion.image_flow[t], motion.velocity[t]) if motion.moving[t].any() else []
                      for t in range(n_frames)]
        tracks = clean_tracks(associate(detections, motion, images, config), motion, images, config)
        n_tracks = len(tracks)
        boxes = np.full((n_tracks, n_frames, 4), np.nan)
        visible = np.zeros((n_tracks, n_frames), bool)
        detected = np.zeros((n_tracks, n_frames), bool)
        masks = np.zeros((n_tracks, n_frames, clip.frames.shape[1], clip.frames.shape[2]), bool)
        for k, track in enumerate(tracks):
            for t in track.boxes:
                mask = fill_mask(track.masks[t], config.min_fill)
                if not mask.any():
                    continue
                boxes[k, t] = mask_box(mask)
                visible[k, t] = True
                masks[k, t] = _resize_mask(mask, clip.image_size)
            detected[k, sorted(track.detected)] = True
        work_scale = np.array([clip.image_size[0] / size[0], clip.image_size[1] / size[1]] * 2)
        looked, evidence = person_evidence(boxes * work_scale, detected & visible, clip.frames, config, self.people)
        categories, is_agent = label_tracks(looked, evidence, boxes, detected & visible, config)
        return Tracks2D(ids=np.arange(n_tracks), categories=categories, is_agent=is_agent,
                        boxes_xyxy=_to_source(boxes, size, clip.source_size).astype(np.float32),
                        visible=visible, masks=masks)

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
                        visible=visible, masks=_box_masks(boxes * clip_scale, clip.image_size))
