"""Tracks of moving regions (step 4 of :mod:`recon4d.tracking.classic.tracker`).

Owns the frame-to-frame association of detections (:mod:`~recon4d.tracking.classic.segment`)
into tracks (:func:`associate`): each live track's mask is carried to the next frame on the
flow and compared with that frame's detections pixel by pixel; detections that hold several
tracks are shared between them (also tracks that move alike but look different, when asked:
movers walking together), pieces of one track's object are joined, the rest is matched
by mask overlap and colour (Hungarian assignment with gates); tracks without a detection
coast while their colours stay put, lost tracks may be revived, the detections left over
start new tracks. Clean-up afterwards lives in :mod:`~recon4d.tracking.classic.cleanup`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from recon4d.tracking.classic.boxes import box_iou, inside_fraction, mask_box, mask_window
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.motion import MotionField, PackedMaskDict
from recon4d.tracking.classic.segment import Detection, largest_component, profile_group
from recon4d.workers import ahead

__all__ = [
    "Track",
    "appearance_changed",
    "associate",
    "carry",
    "colour_histogram",
    "colour_similarity",
    "mask_overlaps",
    "rejoin_alike",
    "same_motion",
    "split_newcomer",
]


@dataclass(eq=False)
class Track:
    """A track under construction: per-frame boxes and masks at the working resolution."""

    boxes: dict = field(default_factory=dict)
    """frame → (4,) float64 xyxy box."""
    masks: PackedMaskDict = field(default_factory=PackedMaskDict)
    """frame → (h, w) bool mask (held bit-packed; assign a changed mask again)."""
    detected: set = field(default_factory=set)
    """Frames with a detection (the others were coasted)."""
    misses: int = 0
    """Frames coasted since the last detection."""
    colours: np.ndarray | None = None
    """Running hue–saturation histogram (exponential average over detections)."""
    first_colours: np.ndarray | None = None
    """Histogram of the first detection."""
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    """(2,) box-centre motion per frame, averaged over detections."""

    def add(self, t: int, mask: np.ndarray, colours: np.ndarray | None = None, box: np.ndarray | None = None) -> None:
        """Record frame t: a detection when ``colours`` is given, else a coasted mask."""
        box = mask_box(mask) if box is None else box
        if colours is not None:
            if self.detected:
                last = max(self.detected)
                if last < t:
                    step = (_centre(box) - _centre(self.boxes[last])) / (t - last)
                    self.velocity = step if len(self.detected) == 1 else 0.5 * (self.velocity + step)
            self.detected.add(t)
            self.misses = 0
            self.colours = colours if self.colours is None else _normalised(0.7 * self.colours + 0.3 * colours)
            if self.first_colours is None:
                self.first_colours = colours
        else:
            self.misses += 1
        self.boxes[t], self.masks[t] = box, mask


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def _normalised(histogram: np.ndarray) -> np.ndarray:
    return (histogram / max(float(histogram.sum()), 1e-12)).astype(np.float32)


def carry(box: np.ndarray, mask: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move a box (4,) and mask (h, w) by the median of ``flow`` (h, w, 2) under the mask (or box).

    Returns the moved box, the moved mask and the (2,) shift. A rigid shift, not a warp: two
    objects that one mask holds separate in the next frame instead of being carried along.
    """
    height, width = mask.shape
    window = mask_window(mask)
    vectors = flow[window][mask[window]]  # the mask's pixels in raster order, as flow[mask] (speed)
    if len(vectors) == 0:
        x0, y0, x1, y1 = np.clip(np.round(box), 0, [width, height, width, height]).astype(int)
        vectors = flow[y0:y1, x0:x1].reshape(-1, 2)
    shift = np.median(vectors, axis=0) if len(vectors) else np.zeros(2)
    return box + np.tile(shift, 2), shift_mask(mask, shift), shift


def shift_mask(mask: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(h, w) bool ``mask`` moved by ``shift`` (2,) px: exactly what ``cv2.warpAffine`` gives with
    nearest-neighbour sampling and the float32 matrix [[1, 0, x], [0, 1, y]], as a whole-pixel
    copy (speed: ten times faster). warpAffine's rule, fixed point with 10 fractional bits:
    target pixel p reads p + d with d = (rint(−shift · 1024) + 512) >> 10; outside reads 0."""
    height, width = mask.shape
    moved = np.zeros((height, width), bool)
    shift = np.asarray(shift[:2], np.float32)
    if not np.isfinite(shift).all():
        return moved  # warpAffine reads from outside the image
    dx, dy = ((int(np.rint(-float(value) * 1024)) + 512) >> 10 for value in shift)
    rows, cols = slice(max(0, -dy), min(height, height - dy)), slice(max(0, -dx), min(width, width - dx))
    if rows.start < rows.stop and cols.start < cols.stop:
        moved[rows, cols] = mask[rows.start + dy:rows.stop + dy, cols.start + dx:cols.stop + dx]
    return moved


def appearance_changed(image_a: np.ndarray, image_b: np.ndarray, mask_a: np.ndarray, shift: np.ndarray,
                       min_change: float = 25.0) -> float:
    """Fraction of the pixels p of ``mask_a`` whose colour differs between image_a(p) and
    image_b(p + shift) by more than ``min_change`` in some channel (1.0 when the shifted mask
    leaves the image).

    image_a, image_b: (h, w, 3) uint8; mask_a: (h, w) bool; shift: (2,) pixels. Small when
    what the mask covered in frame a is still there in frame b: the test that keeps a
    coasting track on an object that stopped, not on the ground it left. A fraction, not a
    median, because motion masks include a margin of background that never changes.
    """
    height, width = mask_a.shape
    warp = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    moved_a = cv2.warpAffine(image_a, warp, (width, height), flags=cv2.INTER_LINEAR)
    moved_mask = shift_mask(mask_a, shift)
    if not moved_mask.any():
        return 1.0
    difference = np.abs(moved_a[moved_mask].astype(np.int16) - image_b[moved_mask]).max(axis=-1)
    return float(np.mean(difference > min_change))


def coast(track: Track, source: int, target: int, flow: np.ndarray, images: np.ndarray,
          config: ClassicTrackerConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """Box and mask of ``track`` carried from frame ``source`` to ``target``, or None when the
    carried box leaves the image or no longer shows what the track's nearest detection did."""
    box, mask, _ = carry(track.boxes[source], track.masks[source], flow)
    height, width = mask.shape
    if not mask.any() or inside_fraction(box, (width, height)) <= 0.5:
        return None
    reference = min(track.detected, key=lambda t: abs(t - target))
    shift = box[:2] - track.boxes[reference][:2]
    if appearance_changed(images[reference], images[target], track.masks[reference], shift) > config.coast_max_changed:
        return None
    return box, mask


def colour_histogram(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(16 · 8,) float32 hue–saturation histogram of the (h, w, 3) HSV pixels under ``mask``, summing to 1."""
    hist = cv2.calcHist([hsv], [0, 1], mask.astype(np.uint8), [16, 8], [0, 180, 0, 256]).ravel()
    return hist / max(float(hist.sum()), 1.0)


def colour_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 − Bhattacharyya distance of two histograms: 1 alike, 0 disjoint."""
    return 1.0 - float(cv2.compareHist(a.astype(np.float32), b.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


def mask_overlaps(masks: list[np.ndarray], labels: np.ndarray, n_labels: int) -> np.ndarray:
    """(len(masks), n_labels) int64 pixels each mask shares with each label 1..n_labels of a label image."""
    if not masks:
        return np.zeros((0, n_labels), np.int64)
    return np.stack([np.bincount(labels[mask], minlength=n_labels + 1)[1:n_labels + 1] for mask in masks])


def same_motion(flow_a: np.ndarray, flow_b: np.ndarray, speed: float, config: ClassicTrackerConfig) -> bool:
    """Whether two (2,) image motions are too alike to split (the rule of :func:`split_by_motion`);
    ``speed`` is the faster one's camera-compensated speed."""
    return float(np.linalg.norm(flow_a - flow_b)) < max(config.split_min_px, config.split_min_relative * speed)


@dataclass(eq=False)
class _Frame:
    """One frame's detections with what association needs of them."""

    masks: list
    colours: list
    flows: list
    speeds: list
    labels: np.ndarray
    flow: np.ndarray
    velocity: np.ndarray
    moving: np.ndarray
    hsv: np.ndarray
    pieces: list = field(default_factory=list)
    """Per detection its foreground piece (:attr:`.segment.Detection.piece`; 0 none)."""

    @classmethod
    def build(cls, detections: list[Detection], hsv: np.ndarray, flow: np.ndarray, velocity: np.ndarray,
              moving: np.ndarray, max_similarity: float | None = None) -> "_Frame":
        if max_similarity is not None:
            detections = rejoin_alike(detections, hsv, max_similarity)
        labels = np.zeros(hsv.shape[:2], np.int32)
        for index, detection in enumerate(detections):
            labels[detection.mask & (labels == 0)] = index + 1
        frame = cls([], [], [], [], labels, flow, velocity, moving, hsv)
        for index, detection in enumerate(detections):
            frame._describe(labels == index + 1, detection.piece)
        return frame

    def add(self, mask: np.ndarray) -> int:
        """Add a detection (h, w) bool cut out of another (pixels already labelled); returns its index."""
        self.labels[mask] = len(self.masks) + 1
        return self._describe(mask)

    def separate(self, detections: list[int]) -> bool:
        """Whether two of the detections are different pieces of the background model's foreground."""
        return len({self.pieces[d] for d in detections} - {0}) > 1

    def _describe(self, mask: np.ndarray, piece: int = 0) -> int:
        """Append a detection's mask, colours, image flow and compensated speed; returns its index."""
        self.masks.append(mask)
        self.pieces.append(piece)
        self.colours.append(colour_histogram(self.hsv, mask))
        self.flows.append(_mean_velocity(self.flow, mask, self.moving))
        self.speeds.append(float(np.linalg.norm(_mean_velocity(self.velocity, mask, self.moving))))
        return len(self.masks) - 1


def rejoin_alike(detections: list[Detection], hsv: np.ndarray, max_similarity: float) -> list[Detection]:
    """One frame's detections with the members of each profile split (:func:`.segment.split_by_profile`)
    joined again when two of them look alike: colour histograms (:func:`colour_histogram` of the (h, w, 3)
    HSV frame) at least ``max_similarity`` alike. An object's own outline dips too (a car's pillars over
    its blank windows); two movers side by side mostly differ in clothes or coat."""
    groups: dict[int, list[int]] = {}
    for index, detection in enumerate(detections):
        if profile_group(detection.piece):
            groups.setdefault(profile_group(detection.piece), []).append(index)
    joined: dict[int, Detection | None] = {}  # a member → its joined detection (the first) or None
    for members in groups.values():
        colours = [colour_histogram(hsv, detections[i].mask) for i in members]
        if len(members) > 1 and all(colour_similarity(colours[i], colours[j]) < max_similarity
                                    for i in range(len(members)) for j in range(i + 1, len(members))):
            continue
        mask = np.logical_or.reduce([detections[i].mask for i in members])
        joined.update({i: None for i in members})
        joined[members[0]] = Detection(mask_box(mask), mask)
    if not joined:
        return detections
    kept = [joined.get(i, detection) for i, detection in enumerate(detections)]
    kept = [detection for detection in kept if detection is not None]
    kept.sort(key=lambda detection: -int(np.count_nonzero(detection.mask)))
    return kept


def _mean_velocity(velocity: np.ndarray, mask: np.ndarray, moving: np.ndarray) -> np.ndarray:
    window = mask_window(mask)  # the same pixels in the same order as on the whole frame (speed)
    velocity, mask, moving = velocity[window], mask[window], moving[window]
    inner = mask & moving
    vectors = velocity[inner if inner.any() else mask]
    return vectors.mean(axis=0).astype(np.float64) if len(vectors) else np.zeros(2)


def _nearest_split(region: np.ndarray, seeds: list[np.ndarray]) -> list[np.ndarray]:
    """Pixels of ``region`` given to the nearest seed mask (each seed (h, w) bool)."""
    distance = np.stack([cv2.distanceTransform((~seed).astype(np.uint8), cv2.DIST_L2, 3) for seed in seeds])
    nearest = np.argmin(distance, axis=0)
    return [region & (nearest == i) for i in range(len(seeds))]


def split_newcomer(predicted: np.ndarray, detection: np.ndarray, flow: np.ndarray, velocity: np.ndarray,
                   moving: np.ndarray, min_area: float,
                   config: ClassicTrackerConfig = ClassicTrackerConfig()) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut a new mover out of the detection a track was matched to: (track's part, newcomer or None).

    predicted: (h, w) bool the track's mask carried into this frame; detection: (h, w) bool
    its matched detection; flow, velocity: (h, w, 2) image and camera-compensated motion;
    moving: (h, w) bool. A mover that starts moving next to a tracked one, or walks into it,
    joins its motion component, and a single-frame split (:func:`.segment.split_by_motion`)
    often misses it (the flow blurs their border into a gradient). The track knows its own
    extent: when the detection reaches past the predicted mask (dilated by the closing
    kernel) by at least ``newcomer_growth`` of its area (and ``min_area``), and that part
    moves differently in the image from the predicted part (by ``split_min_px`` and
    ``newcomer_min_relative`` of the faster compensated speed; a limb or a part the motion
    mask missed before moves with the body), the detection's moving pixels outside the
    predicted mask that move more like that part than like the track (their largest
    connected part) seed the newcomer, the predicted part's other pixels seed the track, and
    every pixel of the detection goes to the nearer seed.
    """
    area = int(np.count_nonzero(predicted))
    if config.newcomer_growth <= 0 or area == 0:
        return detection, None
    radius = max(2, round(config.close_fraction * max(detection.shape)))
    reach = cv2.dilate(predicted.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))).astype(bool)
    own, extra = detection & predicted, detection & ~reach
    if np.count_nonzero(own) < min_area or np.count_nonzero(extra) < max(min_area, config.newcomer_growth * area):
        return detection, None
    own_flow, extra_flow = _mean_velocity(flow, own, moving), _mean_velocity(flow, extra, moving)
    speed = max(float(np.linalg.norm(_mean_velocity(velocity, part, moving))) for part in (own, extra))
    if float(np.linalg.norm(own_flow - extra_flow)) < max(config.split_min_px, config.newcomer_min_relative * speed):
        return detection, None
    ys, xs = np.nonzero(detection & moving)
    vectors = flow[ys, xs].astype(np.float64)
    closer = np.sum((vectors - extra_flow) ** 2, axis=1) < np.sum((vectors - own_flow) ** 2, axis=1)
    like_newcomer = np.zeros(detection.shape, bool)
    like_newcomer[ys[closer], xs[closer]] = True
    seed = largest_component(like_newcomer & ~predicted)
    own_seed = own & ~like_newcomer
    if np.count_nonzero(seed) < min_area or np.count_nonzero(own_seed) < min_area:
        return detection, None
    kept, newcomer = _nearest_split(detection, [own_seed, seed])
    if np.count_nonzero(kept) < min_area or np.count_nonzero(newcomer) < min_area:
        return detection, None
    return kept, newcomer


def _distinct_movers(claimants: list[int], shares: list[np.ndarray], ages: list[int], frame: _Frame,
                     config: ClassicTrackerConfig, colours: list) -> list[int]:
    """The claimants of one detection that move differently from each other, oldest first.

    shares: each claimant's predicted mask within the detection; colours: every track's colour
    histogram. Claimants whose image motion there is alike (:func:`same_motion`) are pieces of one
    object, unless they look apart (:func:`_look_apart`): only the one with the most detected frames
    (``ages``) keeps its claim.
    """
    order = sorted(range(len(claimants)), key=lambda i: -ages[claimants[i]])
    motions = [(_mean_velocity(frame.flow, share, frame.moving), float(np.linalg.norm(
        _mean_velocity(frame.velocity, share, frame.moving)))) for share in shares]
    kept: list[int] = []
    for i in order:
        if all(not same_motion(motions[i][0], motions[j][0], max(motions[i][1], motions[j][1]), config)
               or _look_apart(claimants[i], claimants[j], colours, ages, config) for j in kept):
            kept.append(i)
    return [claimants[i] for i in kept]


def _look_apart(a: int, b: int, colours: list, ages: list[int], config: ClassicTrackerConfig) -> bool:
    """Whether tracks a and b, whose masks one detection holds and which move alike, are still two
    movers walking together: both detected in at least ``apart_min_frames`` frames, their colour
    histograms under ``apart_max_similarity`` alike."""
    if config.apart_max_similarity <= 0 or min(ages[a], ages[b]) < config.apart_min_frames:
        return False
    if colours[a] is None or colours[b] is None:
        return False
    return colour_similarity(colours[a], colours[b]) < config.apart_max_similarity


def _resolve(predicted: list[np.ndarray], colours: list[np.ndarray], ages: list[int], frame: _Frame,
             min_area: float, config: ClassicTrackerConfig) -> tuple[dict[int, np.ndarray], list[int]]:
    """Masks for the live tracks from one frame's detections; returns track → mask and unused detections.

    predicted: per live track its mask carried into this frame; colours: their histograms;
    ages: their numbers of detected frames. In order: a detection holding at least half of
    two or more predicted masks is shared between those tracks, pixel by pixel to the
    nearest predicted mask (movers that touch), unless they move alike (pieces of one
    object, :func:`_distinct_movers`: the oldest takes it whole) and do not look apart
    (:func:`_look_apart`, off by default);
    a track whose predicted mask holds most (60 %) of two or more unclaimed detections that
    move alike takes their union (one object the motion mask cut in pieces), unless the
    background model saw them as separate silhouettes (:meth:`_Frame.separate`); the rest is a
    Hungarian assignment on mask IoU + 0.3 · colour similarity, a pair needing IoU ≥
    ``match_iou``, or centres within half the predicted box's diagonal and colours
    ``colour_min_similarity`` alike.
    """
    n_detections = len(frame.masks)
    overlap = mask_overlaps(predicted, frame.labels, n_detections).astype(np.float64)
    predicted_area = np.array([np.count_nonzero(mask) for mask in predicted], np.float64).reshape(-1, 1)
    detection_area = np.array([np.count_nonzero(mask) for mask in frame.masks], np.float64).reshape(1, -1)
    assigned: dict[int, np.ndarray] = {}
    used: set[int] = set()
    inside_detection = overlap / np.maximum(predicted_area, 1)
    for d in range(n_detections):
        claimants = [k for k in range(len(predicted)) if predicted_area[k, 0] > 0 and inside_detection[k, d] >= 0.5]
        if len(claimants) < 2:
            continue
        claimants = _distinct_movers(claimants, [predicted[k] & frame.masks[d] for k in claimants], ages, frame, config,
                                     colours)
        if len(claimants) == 1:
            assigned[claimants[0]] = frame.masks[d]
        else:
            for k, part in zip(claimants, _nearest_split(frame.masks[d], [predicted[k] for k in claimants])):
                if np.count_nonzero(part) >= min_area and k not in assigned:
                    assigned[k] = part
        used.add(d)
    inside_prediction = overlap / np.maximum(detection_area, 1)
    for k in range(len(predicted)):
        if k in assigned:
            continue
        pieces = [d for d in range(n_detections) if d not in used and inside_prediction[k, d] >= 0.6
                  and all(inside_prediction[j, d] < 0.3 for j in range(len(predicted)) if j != k)]
        if len(pieces) >= 2 and not frame.separate(pieces) and all(same_motion(frame.flows[pieces[0]], frame.flows[d],
                                                max(frame.speeds[pieces[0]], frame.speeds[d]), config)
                                    for d in pieces[1:]):
            assigned[k] = np.logical_or.reduce([frame.masks[d] for d in pieces])
            used.update(pieces)
    rows = [k for k in range(len(predicted)) if k not in assigned]
    cols = [d for d in range(n_detections) if d not in used]
    if rows and cols:
        sub = overlap[np.ix_(rows, cols)]
        iou = sub / (predicted_area[rows] + detection_area[:, cols] - sub + 1e-9)
        similarity = np.array([[colour_similarity(colours[k], frame.colours[d]) for d in cols] for k in rows])
        predicted_boxes = np.array([mask_box(predicted[k]) if predicted_area[k, 0] else np.full(4, np.nan)
                                    for k in rows])
        detection_boxes = np.array([mask_box(frame.masks[d]) for d in cols])
        distance = np.linalg.norm(_centres(predicted_boxes)[:, None] - _centres(detection_boxes)[None], axis=-1)
        diagonal = np.linalg.norm(predicted_boxes[:, 2:] - predicted_boxes[:, :2], axis=1)[:, None]
        near = np.nan_to_num(distance < 0.5 * diagonal) & (similarity >= config.colour_min_similarity)
        allowed = ((iou >= config.match_iou) | near) & ~_size_jump(
            detection_area[:, cols] / np.maximum(predicted_area[rows], 1), similarity, config)
        score = np.where(allowed, iou + 0.3 * similarity, -1.0)
        for i, j in zip(*linear_sum_assignment(-score)):
            if allowed[i, j]:
                kept, newcomer = split_newcomer(predicted[rows[i]], frame.masks[cols[j]], frame.flow, frame.velocity,
                                                frame.moving, min_area, config)
                assigned[rows[i]] = kept
                used.add(cols[j])
                if newcomer is not None:
                    frame.add(newcomer)
    return assigned, [d for d in range(len(frame.masks)) if d not in used]


def _size_jump(ratio: np.ndarray, similarity: np.ndarray, config: ClassicTrackerConfig) -> np.ndarray:
    """Which (track, detection) pairs are another object: the detection's area is over
    ``match_max_area_ratio`` times the track's predicted area, or under its inverse, while their colours
    are under ``colour_min_similarity`` alike (ratio, similarity: (tracks, detections) arrays). A mover's
    motion mask changes size from frame to frame, but not many times over while it keeps its colours;
    a track that takes such a detection has jumped onto a mover passing by (an identity switch). 0 ratio:
    no pair is."""
    if config.match_max_area_ratio <= 0:
        return np.zeros(ratio.shape, bool)
    jump = (ratio > config.match_max_area_ratio) | (ratio < 1 / config.match_max_area_ratio)
    return jump & (similarity < config.colour_min_similarity)


def _revive(lost: list[Track], t: int, frame: _Frame, unused: list[int], size: tuple[int, int],
            config: ClassicTrackerConfig) -> list[tuple[int, int]]:
    """Pairs (lost track, detection) for tracks lost in the last few frames that reappear.

    A lost track's last box is moved on by its velocity to frame t; a detection revives it
    when its box overlaps that (IoU ≥ ``match_iou``) or, for movers that jump further than
    their size, when colours are ``colour_min_similarity`` alike, box areas within a factor
    2 and the jump is under ``max_jump`` of the image diagonal per frame of gap.
    """
    if not lost or not unused:
        return []
    predicted = np.stack([track.boxes[max(track.boxes)] + np.tile(track.velocity * (t - max(track.boxes)), 2)
                          for track in lost])
    boxes = np.stack([mask_box(frame.masks[d]) for d in unused])
    iou = box_iou(predicted, boxes)
    similarity = np.array([[colour_similarity(track.colours, frame.colours[d]) for d in unused] for track in lost])
    gap = np.array([t - max(track.boxes) for track in lost], np.float64)[:, None]
    distance = np.linalg.norm(_centres(predicted)[:, None] - _centres(boxes)[None], axis=-1)
    area_p = np.prod(predicted[:, 2:] - predicted[:, :2], axis=1)[:, None]
    area_d = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)[None]
    ratio = area_p / np.maximum(area_d, 1e-6)
    alike = ((similarity >= config.colour_min_similarity) & (ratio > 0.5) & (ratio < 2.0)
             & (distance < config.max_jump * math.hypot(*size) * gap))
    allowed = (((iou >= config.match_iou) & (similarity >= 0.5 * config.colour_min_similarity)) | alike) & ~_size_jump(
        area_d / np.maximum(area_p, 1e-6), similarity, config)
    score = np.where(allowed, iou + similarity, -1.0)
    return [(int(r), unused[c]) for r, c in zip(*linear_sum_assignment(-score)) if allowed[r, c]]


def associate(detections: list[list[Detection]], motion: MotionField, images: np.ndarray,
              config: ClassicTrackerConfig = ClassicTrackerConfig(), threads: int = 1,
              ready: Iterable[int] | None = None) -> list[Track]:
    """Link per-frame detections into tracks (all of them; :mod:`~recon4d.tracking.classic.cleanup` filters).

    detections: T lists of :class:`Detection`; images: (T, h, w, 3) uint8 RGB working frames.
    threads > 1: each frame's detections (``detections[t]``, which may find them when read) and
    their descriptions (colours, flows) are made up to that many frames ahead in worker threads,
    while this thread links the frames before; the tracks are the same as with 1. ``detections``
    must then be safe to read from a worker thread; ``images`` is read on this thread.
    ready: the frames 0, 1, … T − 1 in order as ``motion`` finishes them (:func:`.motion.stream_motion`),
    so frames are linked while later ones' motion is computed; default: all are ready.
    A live track's mask is carried to the next frame on the forward flow (:func:`carry`)
    and given a mask by :func:`_resolve`. An unmatched track coasts for up to ``max_coast``
    frames while :func:`appearance_changed` says its object is still there; otherwise it is
    lost, and a detection left over may revive a track lost in the last ``max_coast``
    frames (:func:`_revive`; the frames in between stay unseen) before it starts a new one.
    Returns the tracks in order of first appearance.
    """
    n_frames = len(detections)
    height, width = images.shape[1:3]
    min_area = max(config.min_area_fraction * height * width, 4)
    live: list[Track] = []
    finished: list[Track] = []

    def describe(item: tuple[int, np.ndarray]) -> tuple[int, _Frame]:
        t, image = item
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        return t, _Frame.build(detections[t], hsv, motion.image_flow[t], motion.velocity[t], motion.moving[t],
                               config.profile_max_similarity)

    frames = ahead(((t, images[t]) for t in (range(n_frames) if ready is None else ready)), describe, threads,
                   name="recon4d-detect")
    for t, frame in frames:
        hsv = frame.hsv
        carried = [carry(track.boxes[t - 1], track.masks[t - 1], motion.forward_flow[t - 1])[1] for track in live]
        assigned, unused = _resolve(carried, [track.colours for track in live], [len(track.detected) for track in live],
                                    frame, min_area, config)
        next_live = []
        for k, track in enumerate(live):
            if k in assigned:
                track.add(t, assigned[k], colour_histogram(hsv, assigned[k]))
                next_live.append(track)
                continue
            coasted = coast(track, t - 1, t, motion.forward_flow[t - 1], images, config) \
                if track.misses < config.max_coast else None
            if coasted is None:
                finished.append(track)
            else:
                track.add(t, coasted[1], box=coasted[0])
                next_live.append(track)
        lost = [track for track in finished if max(track.boxes) >= t - 1 - config.max_coast]
        revived = _revive(lost, t, frame, unused, (width, height), config)
        for r, d in revived:
            finished.remove(lost[r])
            lost[r].add(t, frame.masks[d], frame.colours[d])
            next_live.append(lost[r])
        for d in sorted(set(unused) - {d for _, d in revived}):
            track = Track()
            track.add(t, frame.masks[d], frame.colours[d])
            next_live.append(track)
        live = next_live
    tracks = finished + live
    tracks.sort(key=lambda track: (min(track.boxes), -len(track.detected)))
    return tracks
