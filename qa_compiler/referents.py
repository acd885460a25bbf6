"""Which frames' boxes may name an object in a question (the sampler's ``SceneIndex.nameable``).

A DSR question names an object by its category and its box at one frame ("the person at
[x0, y0, x1, y1] at 1.2 s"). A box names the object only where it lies on it: the weights-free
tracker's boxes sometimes do not — a box coasted over an occlusion lies on the occluder, one carried
back before the first detection on whatever the flow moved it onto (neither is a detection:
``Tracks2D.observed``), and a detected box that merged with a neighbour, lost half the object or
jumped to something else changes size or place from one frame to the next, which the object does
not (:func:`steady_boxes`). Ground-truth boxes and stores that do not record ``Scene.observed`` are
taken as they are (:func:`referent_frames`).

On the pipeline's dev scenes (``benchmarks/referent_diagnose.py``, seeds 101–130) the box a
question named a matched object by missed it (IoU < 0.3) at 31 % of those frames before these
rules (17 % of carried-back boxes covered it, 26 % of coasted, 72 % of detected), at 20 % with
them, at 17 % when the quality record must also pass the frame (its size check catches most boxes
grown over more than the object); what is left is mostly steady boxes on another object (an
identity switch or a merge), which only the tracker can fix.

    referent_frames(scene) -> (K, T) bool
"""

from __future__ import annotations

import numpy as np

from recon4d.types import Scene

STEADY_WINDOW = 2
"""Frames on each side a box is compared with (:func:`steady_boxes`)."""
STEADY_AREA_RATIO = 2.0
"""Largest change of box area per frame between neighbouring boxes of one object."""
STEADY_SHIFT_DIAGONALS = 0.2
"""Largest move of the box centre per frame, in mean box diagonals."""
STEADY_MIN_AGREE = 0.75
"""Share of its neighbours a steady box must agree with."""


def steady_boxes(boxes: np.ndarray, window: int = STEADY_WINDOW, max_area_ratio: float = STEADY_AREA_RATIO,
                 max_shift_diagonals: float = STEADY_SHIFT_DIAGONALS, min_agree: float = STEADY_MIN_AGREE) -> np.ndarray:
    """(K, T) bool: finite boxes that agree with at least ``min_agree`` of the finite boxes of the same
    object up to ``window`` frames before and after. Two boxes agree when their areas differ by at most
    ``max_area_ratio`` ** (frames apart) and their centres lie at most ``max_shift_diagonals`` · (frames
    apart) mean diagonals apart.

    boxes: (K, T, 4) xyxy, NaN where not visible. A box without finite neighbours is steady (nothing
    to compare). A mover's box changes little between sampled frames; a merge with a neighbour, a
    piece of the object or a jump to another thing changes it a lot, in the frames where it happens
    (the border cutting a box changes it too: such frames are left out as well), and the boxes
    around it still agree with each other.
    """
    boxes = np.asarray(boxes, np.float64)
    n_frames = boxes.shape[1]
    finite = np.isfinite(boxes).all(axis=-1)
    size = np.clip(boxes[..., 2:] - boxes[..., :2], 0.0, None)
    log_area = np.log(np.maximum(size[..., 0] * size[..., 1], 1e-9))
    diagonal = np.linalg.norm(size, axis=-1)
    centre = 0.5 * (boxes[..., :2] + boxes[..., 2:])
    compared = np.zeros(finite.shape, np.int64)
    agreed = np.zeros(finite.shape, np.int64)
    for offset in (*range(1, window + 1), *range(-window, 0)):
        here = slice(max(0, -offset), min(n_frames, n_frames - offset))
        there = slice(here.start + offset, here.stop + offset)
        both = finite[:, here] & finite[:, there]
        apart = abs(offset)
        with np.errstate(invalid="ignore"):
            area_ok = np.abs(log_area[:, here] - log_area[:, there]) <= apart * np.log(max_area_ratio)
            shift = np.linalg.norm(centre[:, here] - centre[:, there], axis=-1)
            shift_ok = shift <= max_shift_diagonals * apart * 0.5 * (diagonal[:, here] + diagonal[:, there])
        compared[:, here] += both
        agreed[:, here] += both & area_ok & shift_ok
    return finite & (agreed >= min_agree * compared)


def referent_frames(scene: Scene, steady: bool = True, trusted: bool = True) -> np.ndarray:
    """(K, T) bool: visible frames whose box may name the object: the tracker found it there
    (``Scene.observed_frames``); with ``steady``, the box is steady (:func:`steady_boxes` over the
    visible boxes); with ``trusted``, the scene's quality record passes the frame
    (``ObjectQuality.frame_ok``, where there is one: a box whose implied size does not suit the
    category, that breaks the trajectory or that came with an identity-switch jump names something
    else). A scene that does not record ``observed`` (ground truth, older stores, other trackers)
    names objects at every visible frame, as before."""
    if scene.observed is None:
        return scene.visible.copy()
    named = scene.observed_frames
    if steady:
        named = named & steady_boxes(np.where(scene.visible[..., None], scene.box_xyxy.astype(np.float64), np.nan))
    if trusted and scene.object_quality is not None:
        named = named & scene.object_quality.frame_ok
    return named
