"""Moving regions and their tracks (steps 3–5 of :mod:`recon4d.tracking.classic.tracker`).

Owns the per-frame detections (:func:`detect_moving_regions`, :func:`fill_mask`) and
their association into tracks (:func:`associate`): carrying masks on the flow,
coasting, colour histograms, Hungarian matching, splitting merged movers, reviving
lost tracks and stitching fragments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from recon4d.tracking.classic.boxes import inside_fraction, box_iou, mask_box
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.motion import MotionField

__all__ = [
    "Detection",
    "appearance_changed",
    "associate",
    "colour_histogram",
    "detect_moving_regions",
    "fill_mask",
]


@dataclass(frozen=True, eq=False)
class Detection:
    """A connected moving region of one frame at the working resolution."""

    box: np.ndarray  # (4,) float64 xyxy, pixel edges
    mask: np.ndarray  # (h, w) bool


def _ellipse(diameter: int) -> np.ndarray:
    diameter = max(1, int(diameter) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def detect_moving_regions(moving: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[Detection]:
    """Connected components of a cleaned (h, w) bool motion mask, largest first."""
    height, width = moving.shape
    cleaned = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, _ellipse(3))
    cleaned = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, _ellipse(round(config.close_fraction * max(height, width))))
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(cleaned, connectivity=8)
    min_area = config.min_area_fraction * height * width
    keep = [i for i in range(1, n_labels) if stats[i, cv2.CC_STAT_AREA] >= max(min_area, 4)]
    keep.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    detections = []
    for i in keep:
        x, y, w, h = stats[i, :4]
        detections.append(Detection(np.array([x, y, x + w, y + h], np.float64), labels == i))
    return detections


def fill_mask(mask: np.ndarray, min_fill: float) -> np.ndarray:
    """Fill the holes of an (h, w) bool mask; use its convex hull when it covers < ``min_fill`` of its box."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    if not contours:
        return filled.astype(bool)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    x, y, w, h = cv2.boundingRect(filled)
    if filled.sum() < min_fill * w * h:
        hull = cv2.convexHull(np.concatenate(contours))
        cv2.fillConvexPoly(filled, hull, 1)
    return filled.astype(bool)


@dataclass(eq=False)
class _Track:
    """A track under construction: per-frame boxes and masks (working resolution)."""

    boxes: dict = field(default_factory=dict)
    masks: dict = field(default_factory=dict)
    detected: set = field(default_factory=set)
    misses: int = 0
    colours: np.ndarray | None = None  # hue–saturation histogram of the latest detection
    first_colours: np.ndarray | None = None  # ... and of the first one

    def add(self, t: int, box: np.ndarray, mask: np.ndarray, colours: np.ndarray | None = None) -> None:
        """Record frame t: a detection when ``colours`` is given, else a coasted box."""
        self.boxes[t], self.masks[t] = box, mask
        if colours is not None:
            self.detected.add(t)
            self.misses, self.colours = 0, colours
            if self.first_colours is None:
                self.first_colours = colours
        else:
            self.misses += 1


def carry(box: np.ndarray, mask: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move a box (4,) and mask (h, w) by the median of ``flow`` (h, w, 2) under the mask (or box).

    Returns the moved box, the moved mask and the (2,) shift.
    """
    height, width = mask.shape
    vectors = flow[mask]
    if len(vectors) == 0:
        x0, y0, x1, y1 = np.clip(np.round(box), 0, [width, height, width, height]).astype(int)
        vectors = flow[y0:y1, x0:x1].reshape(-1, 2)
    shift = np.median(vectors, axis=0) if len(vectors) else np.zeros(2)
    moved = cv2.warpAffine(mask.astype(np.uint8), np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                           (width, height), flags=cv2.INTER_NEAREST) > 0
    return box + np.tile(shift, 2), moved, shift


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
    moved_mask = cv2.warpAffine(mask_a.astype(np.uint8), warp, (width, height), flags=cv2.INTER_NEAREST) > 0
    if not moved_mask.any():
        return 1.0
    difference = np.abs(moved_a[moved_mask].astype(np.int16) - image_b[moved_mask]).max(axis=-1)
    return float(np.mean(difference > min_change))


def _coast(track: "_Track", source: int, target: int, flow: np.ndarray, images: np.ndarray,
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


def _match(predicted: np.ndarray, track_colours: list[np.ndarray], detections: list[Detection],
           detection_colours: list[np.ndarray], image_size: tuple[int, int],
           config: ClassicTrackerConfig) -> list[tuple[int, int]]:
    """Hungarian matching of predicted boxes (N, 4) to detections; returns (track, detection) pairs.

    A pair may match on overlap (IoU ≥ ``match_iou``), on proximity (centres closer than
    a quarter of the two box diagonals), or, for movers that jump further than their own
    size between sampled frames, on colour: hue–saturation histograms at least
    ``colour_min_similarity`` alike (1 − Bhattacharyya distance), box areas within a factor
    2, and a jump under ``max_jump`` of the image diagonal.
    """
    if len(predicted) == 0 or not detections:
        return []
    boxes = np.stack([d.box for d in detections])
    iou = box_iou(predicted, boxes)
    centres_p = (predicted[:, :2] + predicted[:, 2:]) / 2
    centres_d = (boxes[:, :2] + boxes[:, 2:]) / 2
    diag_p = np.linalg.norm(predicted[:, 2:] - predicted[:, :2], axis=1)
    diag_d = np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)
    distance = np.linalg.norm(centres_p[:, None] - centres_d[None], axis=-1)
    close = distance < 0.25 * (diag_p[:, None] + diag_d[None])
    similarity = np.array([[1.0 - cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA) for b in detection_colours]
                           for a in track_colours]).reshape(iou.shape)
    area_ratio = (diag_p[:, None] / np.maximum(diag_d[None], 1e-6)) ** 2
    alike = ((similarity >= config.colour_min_similarity) & (area_ratio > 0.5) & (area_ratio < 2.0)
             & (distance < config.max_jump * math.hypot(*image_size)))
    rows, cols = linear_sum_assignment(-(iou + 0.5 * close + 0.5 * alike * similarity))
    return [(r, c) for r, c in zip(rows, cols) if iou[r, c] >= config.match_iou or close[r, c] or alike[r, c]]


def _share_merged(predicted_masks: list[np.ndarray], detections: list[Detection], matches: dict[int, int],
                  min_area: float) -> tuple[list[Detection], dict[int, int], set[int]]:
    """Split detections that hold several tracks' objects (movers that touch and merge).

    An unmatched track whose carried mask lies at least half inside a detection shares it
    with that detection's owner: each pixel goes to the track whose carried mask is
    nearest. Returns the detections (parts appended), the updated track → detection
    matches, and the indices of the detections that were split (no longer usable whole).
    """
    claims: dict[int, list[int]] = {}
    for r, mask in enumerate(predicted_masks):
        if r in matches or not mask.any():
            continue
        inside = [np.count_nonzero(mask & d.mask) / np.count_nonzero(mask) for d in detections]
        if inside and max(inside) >= 0.5:
            claims.setdefault(int(np.argmax(inside)), []).append(r)
    owner_of = {c: r for r, c in matches.items()}
    detections, matches, shared = list(detections), dict(matches), set()
    for c, claimants in claims.items():
        owners = ([owner_of[c]] if c in owner_of else []) + claimants
        if len(owners) < 2:
            continue
        distance = np.stack([cv2.distanceTransform((~predicted_masks[r]).astype(np.uint8), cv2.DIST_L2, 3)
                             for r in owners])
        nearest = np.argmin(distance, axis=0)
        for i, r in enumerate(owners):
            part = detections[c].mask & (nearest == i)
            if np.count_nonzero(part) >= max(min_area, 4):
                matches[r] = len(detections)
                detections.append(Detection(mask_box(part), part))
            else:
                matches.pop(r, None)
        shared.add(c)
    return detections, matches, shared


def _assign(carried: list, track_colours: list, detections: list[Detection], hsv: np.ndarray,
            config: ClassicTrackerConfig) -> tuple[list[Detection], list[np.ndarray], dict[int, int], list[int]]:
    """One frame's data association for the live tracks.

    carried: per live track, (box, mask, shift) carried into this frame; hsv: the frame in
    HSV. Matches tracks to detections (:func:`_match`) and splits detections two tracks
    share (:func:`_share_merged`). Returns the frame's detections (split parts appended),
    their colour histograms, the track → detection matches and the detections left over.
    """
    height, width = hsv.shape[:2]
    predicted = np.array([box for box, _, _ in carried], np.float64).reshape(-1, 4)
    colours = [colour_histogram(hsv, d.mask) for d in detections]
    matches = dict(_match(predicted, track_colours, detections, colours, (width, height), config))
    detections, matches, split = _share_merged([mask for _, mask, _ in carried], detections, matches,
                                               config.min_area_fraction * height * width)
    colours += [colour_histogram(hsv, d.mask) for d in detections[len(colours):]]
    leftovers = sorted(set(range(len(detections))) - set(matches.values()) - split)
    return detections, colours, matches, leftovers


def _point_support(track: _Track, moving_points: list[np.ndarray]) -> float:
    """Fraction of a track's detected frames whose mask holds at least one moving corner."""
    backed = 0
    for t in track.detected:
        points = np.round(moving_points[t]).astype(int)
        height, width = track.masks[t].shape
        points = points[(points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)]
        backed += bool(track.masks[t][points[:, 1], points[:, 0]].any())
    return backed / max(len(track.detected), 1)


def _stitch(tracks: list[_Track], size: tuple[int, int], config: ClassicTrackerConfig) -> list[_Track]:
    """Join track fragments: B continues A when B's first detection comes after A's last,
    within 2 · ``max_coast`` + 1 frames, with colours at least ``colour_min_similarity``
    alike, areas within a factor 3 (unless one is cut by the image border) and a jump under
    ``max_jump`` of the image diagonal per frame of gap. Best-matching pairs first; A's
    coasted frames from B's start on give way."""
    width, height = size
    diagonal = math.hypot(width, height)

    def cut(box: np.ndarray) -> bool:
        return box[0] <= 1 or box[1] <= 1 or box[2] >= width - 1 or box[3] >= height - 1

    def first_detected(track: _Track) -> int:
        return min(track.detected)

    def last_detected(track: _Track) -> int:
        return max(track.detected)

    def centre(box: np.ndarray) -> np.ndarray:
        return (box[:2] + box[2:]) / 2

    while True:
        best = None
        for a, early in enumerate(tracks):
            for b, late in enumerate(tracks):
                gap = first_detected(late) - last_detected(early)
                if a == b or not 0 < gap <= 2 * config.max_coast + 1:
                    continue
                if min(late.boxes) <= last_detected(early):
                    continue
                end, start = last_detected(early), first_detected(late)
                ratio = np.count_nonzero(late.masks[start]) / max(np.count_nonzero(early.masks[end]), 1)
                jump = np.linalg.norm(centre(late.boxes[start]) - centre(early.boxes[end]))
                similarity = 1.0 - cv2.compareHist(early.colours, late.first_colours, cv2.HISTCMP_BHATTACHARYYA)
                sized = 1 / 3 <= ratio <= 3 or cut(late.boxes[start]) or cut(early.boxes[end])
                if (similarity >= config.colour_min_similarity and sized
                        and jump <= config.max_jump * diagonal * gap and (best is None or similarity > best[0])):
                    best = (similarity, a, b)
        if best is None:
            return tracks
        _, a, b = best
        early, late = tracks[a], tracks[b]
        for t in [t for t in early.boxes if t >= min(late.boxes)]:
            del early.boxes[t], early.masks[t]
        early.boxes.update(late.boxes)
        early.masks.update(late.masks)
        early.detected |= late.detected
        early.colours = late.colours
        del tracks[b]


def associate(detections: list[list[Detection]], motion: MotionField, images: np.ndarray,
              config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[_Track]:
    """Link per-frame detections into tracks; coast unmatched tracks on their median flow.

    detections: T lists of :class:`Detection`; images: (T, h, w, 3) uint8 RGB working
    frames. A live track's box is carried to the next frame on the forward flow and
    matched to that frame's detections (:func:`_match`). An unmatched track coasts for up
    to ``max_coast`` frames while :func:`appearance_changed` says its object is still
    there; otherwise it is lost, and a detection matching none of the live tracks may
    revive a track lost in the last ``max_coast`` frames (same matching rules; the frames
    in between stay unseen) before it starts a new one. Fragments one object left behind
    are joined afterwards (:func:`_stitch`), and each track coasts backwards from its
    first frame. Tracks detected in fewer than max(``min_frames``,
    ``min_frame_fraction`` · T) frames, with a median detected area under
    ``min_area_fraction``, or with moving corners (``MotionField.moving_points``) in fewer
    than ``min_point_support`` of their detected frames (dense-flow errors on repetitive
    texture, which sparse corner tracks do not share) are dropped. Returns the tracks in
    order of first appearance.
    """
    n_frames = len(detections)
    height, width = images.shape[1:3]
    live: list[_Track] = []
    finished: list[_Track] = []
    for t in range(n_frames):
        hsv = cv2.cvtColor(images[t], cv2.COLOR_RGB2HSV)
        carried = [carry(track.boxes[t - 1], track.masks[t - 1], motion.forward_flow[t - 1]) for track in live]
        frame_detections, colours, matches, unmatched = _assign(
            carried, [track.colours for track in live], detections[t], hsv, config)
        next_live = []
        for r, track in enumerate(live):
            if r in matches:
                detection = frame_detections[matches[r]]
                track.add(t, detection.box, detection.mask, colours[matches[r]])
                next_live.append(track)
                continue
            coasted = _coast(track, t - 1, t, motion.forward_flow[t - 1], images, config) \
                if track.misses < config.max_coast else None
            if coasted is None:
                finished.append(track)
            else:
                track.add(t, *coasted)
                next_live.append(track)
        lost = [track for track in finished if max(track.boxes) >= t - 1 - config.max_coast]
        revived = _match(np.array([track.boxes[max(track.boxes)] for track in lost]).reshape(-1, 4),
                         [track.colours for track in lost], [frame_detections[c] for c in unmatched],
                         [colours[c] for c in unmatched], (width, height), config)
        for r, c in revived:
            finished.remove(lost[r])
            lost[r].add(t, frame_detections[unmatched[c]].box, frame_detections[unmatched[c]].mask,
                        colours[unmatched[c]])
            next_live.append(lost[r])
        for c in sorted(set(range(len(unmatched))) - {c for _, c in revived}):
            track = _Track()
            track.add(t, frame_detections[unmatched[c]].box, frame_detections[unmatched[c]].mask,
                      colours[unmatched[c]])
            next_live.append(track)
        live = next_live
    tracks = _stitch(finished + live, (width, height), config)
    for track in tracks:
        first = min(track.boxes)
        for t in range(first - 1, max(first - 1 - config.max_coast, -1), -1):
            coasted = _coast(track, t + 1, t, motion.backward_flow[t], images, config)
            if coasted is None:
                break
            track.boxes[t], track.masks[t] = coasted
    min_area = config.min_area_fraction * height * width
    min_frames = max(config.min_frames, math.ceil(config.min_frame_fraction * n_frames - 1e-9))
    kept = [track for track in tracks
            if len(track.detected) >= min_frames
            and np.median([track.masks[t].sum() for t in track.detected]) >= min_area
            and _point_support(track, motion.moving_points) >= config.min_point_support]
    kept.sort(key=lambda track: (min(track.boxes), -len(track.detected)))
    return kept
