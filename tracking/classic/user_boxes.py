"""User boxes of the classic tracker: the ``boxes`` option and ``--boxes`` file.

Owns the box format (:func:`validate_user_boxes`, :func:`load_user_boxes`,
:class:`UserBoxesError`, :data:`AGENT_CATEGORIES`), the frame a box is given at
(:func:`anchor_frame`) and its propagation through the clip by LK tracks inside it
against the background homography (:func:`propagate_box`,
:func:`background_homographies`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from recon4d.errors import Recon4dError
from recon4d.tracking.classic.boxes import inside_fraction
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.background import fit_background_planes, reprojection_error
from recon4d.tracking.classic.motion import corner_matches, track_points
from recon4d.types import Clip

__all__ = [
    "AGENT_CATEGORIES",
    "UserBoxesError",
    "anchor_frame",
    "fit_boxes_to_frame",
    "background_homographies",
    "load_user_boxes",
    "propagate_box",
    "validate_user_boxes",
]

AGENT_CATEGORIES = frozenset({"person", "dog", "cat", "horse", "bird", "animal", "cow", "sheep"})
"""Categories whose user boxes default to ``is_agent=True``."""

_USER_BOX_KEYS = {"category", "is_agent", "box", "frame", "time_s"}


class UserBoxesError(Recon4dError, ValueError):
    """A user-box file or option is malformed; the message names the entry and the fix."""


def validate_user_boxes(entries, where: str = "boxes") -> list[dict]:
    """Check user-box entries and return normalised copies.

    Each entry is ``{"category": str, "box": [x1, y1, x2, y2] (source px), "frame": int
    (index into the clip's sampled frames) or "time_s": float, "is_agent": bool
    (optional; default: category in AGENT_CATEGORIES)}``. Categories are lower-cased with
    their spaces collapsed ("Person" → "person", an agent). A top-level ``{"boxes": [...]}``
    is accepted too. Raises :class:`UserBoxesError` naming the entry and what to fix.
    """
    if isinstance(entries, dict) and set(entries) == {"boxes"}:
        entries = entries["boxes"]
    if not isinstance(entries, list):
        raise UserBoxesError(f"{where}: expected a JSON list of box objects (or {{\"boxes\": [...]}}), "
                             f"got {type(entries).__name__}.")
    normalised = []
    for i, entry in enumerate(entries):
        name = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise UserBoxesError(f"{name}: expected an object like {{\"category\": \"person\", "
                                 f"\"box\": [x1, y1, x2, y2], \"frame\": 0}}, got {type(entry).__name__}.")
        unknown = set(entry) - _USER_BOX_KEYS
        if unknown:
            raise UserBoxesError(f"{name}: unknown key(s) {sorted(unknown)}; allowed keys are {sorted(_USER_BOX_KEYS)}.")
        category = entry.get("category")
        if not isinstance(category, str) or not category.strip():
            raise UserBoxesError(f"{name}: \"category\" must be a non-empty string such as \"person\".")
        box = entry.get("box")
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
            raise UserBoxesError(f"{name}: \"box\" must be four finite numbers [x1, y1, x2, y2] in source-video "
                                 f"pixels, got {box!r}.")
        if not (box[2] > box[0] and box[3] > box[1]):
            raise UserBoxesError(f"{name}: \"box\" {list(box)} is empty; it needs x2 > x1 and y2 > y1.")
        has_frame, has_time = "frame" in entry, "time_s" in entry
        if has_frame == has_time:
            raise UserBoxesError(f"{name}: give exactly one of \"frame\" (index of a sampled clip frame) and "
                                 f"\"time_s\" (seconds in the video).")
        if has_frame:
            frame = entry["frame"]
            if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
                raise UserBoxesError(f"{name}: \"frame\" must be a non-negative integer, got {frame!r}.")
        else:
            time_s = entry["time_s"]
            if isinstance(time_s, bool) or not isinstance(time_s, (int, float)) or not math.isfinite(time_s) or time_s < 0:
                raise UserBoxesError(f"{name}: \"time_s\" must be a non-negative number of seconds, got {time_s!r}.")
        category = " ".join(category.lower().split())  # "Traffic  Cone" → "traffic cone", as detectors name them
        is_agent = entry.get("is_agent", category in AGENT_CATEGORIES)
        if not isinstance(is_agent, bool):
            raise UserBoxesError(f"{name}: \"is_agent\" must be true or false, got {is_agent!r}.")
        item = {"category": category, "is_agent": is_agent, "box": [float(v) for v in box]}
        item.update({"frame": int(entry["frame"])} if has_frame else {"time_s": float(entry["time_s"])})
        normalised.append(item)
    return normalised


def load_user_boxes(path) -> list[dict]:
    """Read and validate a ``--boxes`` JSON file (see :func:`validate_user_boxes` for the format)."""
    path = Path(path)
    if not path.is_file():
        raise UserBoxesError(f"box file '{path}' does not exist (or is not a file); check the --boxes path.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserBoxesError(f"box file '{path}' is not UTF-8 text ({exc}); save it as UTF-8 JSON.") from exc
    except json.JSONDecodeError as exc:
        raise UserBoxesError(f"box file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno}, "
                             f"column {exc.colno}.") from exc
    return validate_user_boxes(data, where=str(path))


def anchor_frame(entry: dict, clip: Clip) -> int:
    """The sampled clip frame a user box belongs to."""
    if "frame" in entry:
        if entry["frame"] >= clip.n_frames:
            raise UserBoxesError(f"a user box is given at frame {entry['frame']} but the clip has "
                                 f"{clip.n_frames} sampled frames (0..{clip.n_frames - 1}).")
        return entry["frame"]
    times = clip.timestamps_s
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / clip.fps
    if not times[0] - step <= entry["time_s"] <= times[-1] + step:
        raise UserBoxesError(f"a user box is given at time_s={entry['time_s']:.3f} but the clip covers "
                             f"{times[0]:.3f}–{times[-1]:.3f} s.")
    return int(np.argmin(np.abs(times - entry["time_s"])))


def _box_step(gray_a: np.ndarray, gray_b: np.ndarray, box: np.ndarray, background: np.ndarray) -> np.ndarray | None:
    """Carry a box from frame a to b with LK tracks inside it; None when nothing could be tracked.

    Points whose motion fits the background homography ``background`` within 1 px are set
    aside when at least 5 others move differently (the object moves against the background).
    """
    height, width = gray_a.shape
    x0, y0, x1, y1 = np.clip(np.round(box), 0, [width, height, width, height]).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    region = np.zeros_like(gray_a)
    region[y0:y1, x0:x1] = 255
    spacing = max(2, min(x1 - x0, y1 - y0) // 12)
    corners = cv2.goodFeaturesToTrack(gray_a, 150, 0.005, spacing, mask=region, blockSize=5)
    points = corners.reshape(-1, 2) if corners is not None else np.zeros((0, 2), np.float32)
    if len(points) < 8:
        xs, ys = np.meshgrid(np.linspace(x0, x1 - 1, 6), np.linspace(y0, y1 - 1, 6))
        points = np.concatenate([points, np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)])
    points_a, points_b = track_points(gray_a, gray_b, points)
    if len(points_a) < 3:
        return None
    own = reprojection_error(background, points_a, points_b) >= 1.0
    if own.sum() >= 5:
        points_a, points_b = points_a[own], points_b[own]
    shift = np.median(points_b - points_a, axis=0)
    pick = np.linspace(0, len(points_a) - 1, min(len(points_a), 40)).astype(int)
    ia, ib = np.triu_indices(len(pick), k=1)
    dist_a = np.linalg.norm(points_a[pick][ia] - points_a[pick][ib], axis=1)
    dist_b = np.linalg.norm(points_b[pick][ia] - points_b[pick][ib], axis=1)
    usable = dist_a > 3.0
    scale = float(np.clip(np.median(dist_b[usable] / dist_a[usable]), 0.8, 1.25)) if usable.any() else 1.0
    centre = (box[:2] + box[2:]) / 2 + shift
    half = (box[2:] - box[:2]) / 2 * scale
    return np.concatenate([centre - half, centre + half])


def propagate_box(gray: np.ndarray, anchor: int, box: np.ndarray,
                  background: Callable[[int, int], np.ndarray] | None = None) -> np.ndarray:
    """Carry ``box`` (4,) given at frame ``anchor`` through (T, h, w) grey frames, both ways.

    ``background(a, b)`` gives the (3, 3) background homography from frame a to b (fitted
    here when not given; pass a cached one when carrying several boxes). Returns (T, 4)
    float64 boxes, NaN from the frame where the box has left the image (less than 30 % of
    it inside). A step without trackable points keeps the box (the object is taken as still).
    """
    n_frames, height, width = gray.shape
    if background is None:
        background = background_homographies(gray)
    boxes = np.full((n_frames, 4), np.nan)
    boxes[anchor] = box
    for direction in (1, -1):
        current = np.asarray(box, np.float64)
        t = anchor
        while 0 <= t + direction < n_frames:
            moved = _box_step(gray[t], gray[t + direction], current, background(t, t + direction))
            current = current if moved is None else moved
            if inside_fraction(current, (width, height)) < 0.3:
                break
            t += direction
            boxes[t] = current
    return boxes


def background_homographies(gray: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """``background(a, b)``: the dominant-plane homography between frames a and b of (T, h, w)
    grey frames, fitted on first use and remembered (b → a is the inverse of a → b)."""
    height, width = gray.shape[1:]
    cache: dict[tuple[int, int], np.ndarray] = {}
    single_plane = ClassicTrackerConfig(max_planes=1)

    def background(a: int, b: int) -> np.ndarray:
        if (a, b) not in cache:
            if (b, a) in cache:
                cache[a, b] = np.linalg.inv(cache[b, a])
            else:
                cache[a, b] = fit_background_planes(*corner_matches(gray[a], gray[b]), (width, height),
                                                    single_plane)[0]
        return cache[a, b]

    return background


def fit_boxes_to_frame(boxes: list[dict], frame_size: tuple[int, int], where: str = "--boxes") -> tuple[list[dict], list[str]]:
    """User boxes checked against the video's (width, height) in source pixels, before any stage.

    A box that does not overlap the frame, or reaches further out than the frame's own size
    (``1e308``, a coordinate from another video), is a UserBoxesError naming it; a box that
    crosses the border is clamped to the frame, with a warning saying so. Returns (boxes,
    warnings).
    """
    width, height = (float(v) for v in frame_size)
    fitted, notes = [], []
    for index, entry in enumerate(boxes):
        x1, y1, x2, y2 = (float(v) for v in entry["box"])
        name = f"{where}[{index}] {entry['category']} {[round(float(v), 1) for v in entry['box']]}"
        far = max(-x1, -y1, x2 - width, y2 - height)
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height or far > max(width, height):
            raise UserBoxesError(f"{name} lies outside the {int(width)}x{int(height)} frame of the video (boxes are in "
                                 "its pixels, x from 0 to the width, y from 0 to the height); fix the box or the video.")
        clamped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width),
                   min(max(y2, 0.0), height)]
        if clamped[2] - clamped[0] < 2 or clamped[3] - clamped[1] < 2:
            raise UserBoxesError(f"{name} keeps less than 2 pixels inside the {int(width)}x{int(height)} frame; fix "
                                 "the box.")
        if clamped != [x1, y1, x2, y2]:
            notes.append(f"{name} crosses the border of the {int(width)}x{int(height)} frame; clamped to "
                         f"{[round(v, 1) for v in clamped]}")
        fitted.append({**entry, "box": clamped})
    return fitted, notes
