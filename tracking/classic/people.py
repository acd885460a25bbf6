"""Which tracks are people (step 6 of :mod:`recon4d.tracking.classic.tracker`).

Owns the person evidence of the classic tracker: OpenCV's HOG people detector run on a crop
around a track's box (:func:`crop_people`, never on whole frames: a track is only ever
compared with detections near it), the evidence per track and frame (:func:`person_evidence`)
and the labels (:func:`label_tracks`).

A track is a "person" agent when HOG finds an upright person on its box in at least
``person_min_fraction`` of the sampled frames and its box is upright (median height / width
at least ``person_min_upright``: a dog, a car or a ball is wider than tall or square), or in
at least ``person_weak_fraction`` of them when its box is as slim as a standing person
(``person_min_aspect``); with ``person_detector="auto"`` a looked-at frame whose box is that slim
is evidence too (HOG misses bent, side-on and small people; cars, dogs and balls are never that
slim). Otherwise it is an "object", the honest label when the evidence is not there. OpenCV 5 no longer ships HOG
in its main module: there, and with ``person_detector="shape"``, the evidence is shape alone
(a box at least ``person_min_aspect`` times taller than wide), which a tall box or a dog
facing the camera can fool.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from recon4d.tracking.classic.boxes import box_iou
from recon4d.tracking.classic.config import ClassicTrackerConfig, hog_available

__all__ = [
    "PeopleDetector",
    "crop_people",
    "hog_people_detector",
    "label_tracks",
    "person_evidence",
    "sample_frames",
]

PeopleDetector = Callable[[np.ndarray], np.ndarray]
"""``detect(image (h, w, 3) RGB uint8) -> (N, 4) xyxy`` person boxes in the image's pixels."""

_HOG_WINDOW = (64, 128)
_HOG_PERSON_PX = 96  # the INRIA windows the default detector was trained on hold a ~96 px person


def hog_people_detector(hit_threshold: float = -0.3) -> PeopleDetector:
    """OpenCV's default HOG people detector as a :data:`PeopleDetector` (needs :func:`hog_available`).

    Scans the image at scales 1.05ᵏ with an 8 px stride; images smaller than the 64 × 128
    window are padded.
    """
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        pad_x, pad_y = max(0, _HOG_WINDOW[0] - width), max(0, _HOG_WINDOW[1] - height)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if pad_x or pad_y:
            gray = cv2.copyMakeBorder(gray, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
        rects, _ = hog.detectMultiScale(gray, hitThreshold=hit_threshold, winStride=(8, 8), padding=(8, 8),
                                        scale=1.05)
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)

    return detect


def crop_people(frame: np.ndarray, box: np.ndarray, detect: PeopleDetector) -> np.ndarray:
    """Person boxes (N, 4) xyxy in ``frame`` pixels that ``detect`` finds around ``box`` (4,).

    The crop is centred on the box, 1.6 times as tall and at least 0.9 times as wide as
    tall (the detector's window is 64 × 128 with the person 96 px tall in it, and it needs
    that context around the figure), cut to the frame, and scaled so the box is 96 px tall;
    small boxes are enlarged at most 4 ×.
    """
    height, width = frame.shape[:2]
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    if not (box_w > 0 and box_h > 0):
        return np.zeros((0, 4))
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = max(0.75 * box_w, 0.45 * box_h), 0.8 * box_h
    x0, x1 = int(max(0, np.floor(centre_x - half_w))), int(min(width, np.ceil(centre_x + half_w)))
    y0, y1 = int(max(0, np.floor(centre_y - half_h))), int(min(height, np.ceil(centre_y + half_h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((0, 4))
    scale = min(4.0, _HOG_PERSON_PX / box_h)
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    crop = cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    found = np.asarray(detect(crop), np.float64).reshape(-1, 4)
    return found / scale + np.array([x0, y0, x0, y0], np.float64)


def sample_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` of the (M,) frame indices, evenly spread (all of them when M ≤ n)."""
    frames = np.asarray(frames)
    if len(frames) <= n:
        return frames
    return frames[np.unique(np.round(np.linspace(0, len(frames) - 1, n)).astype(int))]


def _supports(box: np.ndarray, found: np.ndarray) -> bool:
    """A person box supports a track box when IoU ≥ 0.3 or it lies ≥ 70 % inside."""
    if len(found) == 0:
        return False
    inner_w = np.clip(np.minimum(box[2], found[:, 2]) - np.maximum(box[0], found[:, 0]), 0, None)
    inner_h = np.clip(np.minimum(box[3], found[:, 3]) - np.maximum(box[1], found[:, 1]), 0, None)
    found_area = np.maximum((found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1]), 1e-6)
    return bool(((box_iou(box[None], found)[0] >= 0.3) | (inner_w * inner_h / found_area >= 0.7)).any())


def person_evidence(boxes: np.ndarray, detected: np.ndarray, frames: np.ndarray | None,
                    config: ClassicTrackerConfig = ClassicTrackerConfig(),
                    people: PeopleDetector | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Person evidence per track and frame: (K, T) bool ``looked`` and (K, T) bool ``evidence``.

    boxes: (K, T, 4) xyxy in ``frames`` pixels; detected: (K, T) frames with a detection;
    frames: (T, H, W, 3) uint8 RGB. With a detector (``people``, else HOG where OpenCV has
    it and ``person_detector`` is "hog" or "auto") it runs on :func:`crop_people` crops in
    up to ``person_samples`` detected frames per track (``looked``), and with "auto" a looked-at
    frame whose box is at least ``person_min_aspect`` times taller than wide counts too; with "shape" (or "auto"
    without HOG) every detected frame is looked at and counts when its box is at least
    ``person_min_aspect`` times taller than wide; with "none" nothing is looked at.
    """
    kind = config.person_detector
    looked = np.zeros(detected.shape, bool)
    evidence = np.zeros(detected.shape, bool)
    if kind == "none" or not detected.any():
        return looked, evidence
    if people is None and (kind == "shape" or (kind == "auto" and not hog_available())):
        aspect = (boxes[..., 3] - boxes[..., 1]) / np.maximum(boxes[..., 2] - boxes[..., 0], 1e-6)
        return detected.copy(), detected & (np.nan_to_num(aspect) >= config.person_min_aspect)
    detect = people or hog_people_detector(config.hog_hit_threshold)
    for k in range(len(boxes)):
        for t in sample_frames(np.flatnonzero(detected[k]), config.person_samples):
            looked[k, t] = True
            evidence[k, t] = _supports(boxes[k, t], crop_people(frames[t], boxes[k, t], detect))
    if kind == "auto":
        # HOG misses bent, side-on and small people; a box as slim as a standing person is
        # evidence too (cars, dogs and balls never are that slim)
        aspect = (boxes[..., 3] - boxes[..., 1]) / np.maximum(boxes[..., 2] - boxes[..., 0], 1e-6)
        evidence |= looked & (np.nan_to_num(aspect) >= config.person_min_aspect)
    return looked, evidence


def label_tracks(looked: np.ndarray, evidence: np.ndarray, boxes: np.ndarray, detected: np.ndarray,
                 config: ClassicTrackerConfig = ClassicTrackerConfig()) -> tuple[tuple[str, ...], np.ndarray]:
    """Categories and is_agent (K,): "person" when evidence covers at least ``person_min_fraction``
    of the looked-at frames and the median detected box is upright (height / width ≥
    ``person_min_upright``), or covers at least ``person_weak_fraction`` and the box is as
    slim as a standing person (≥ ``person_min_aspect``); else "object".

    looked, evidence: (K, T) bool from :func:`person_evidence`; boxes: (K, T, 4) xyxy;
    detected: (K, T) bool.
    """
    support = (evidence & looked).sum(axis=1) / np.maximum(looked.sum(axis=1), 1)
    aspect = (boxes[..., 3] - boxes[..., 1]) / np.maximum(boxes[..., 2] - boxes[..., 0], 1e-6)
    aspect_median = np.array([np.median(aspect[k, detected[k]]) if detected[k].any() else 0.0
                              for k in range(len(boxes))])
    upright = aspect_median >= config.person_min_upright
    strong = (support >= config.person_min_fraction) & upright
    weak = (support >= config.person_weak_fraction) & (aspect_median >= config.person_min_aspect)
    is_person = (strong | weak) & looked.any(axis=1)
    return tuple("person" if p else "object" for p in is_person), is_person
