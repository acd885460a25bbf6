"""Moving regions of one frame (step 3 of :mod:`recon4d.tracking.classic.tracker`).

Owns the per-frame detections: connected components of the cleaned motion mask
(:func:`moving_components`), split where the movers inside one component move differently
(:func:`split_by_motion`: two objects that touch or overlap in the image rarely share a
velocity), cut to the part that moves at the mover's speed (:func:`trim_to_core`: flow blurs
motion into the background around a mover), optionally cut where the outline shows two tops (:func:`split_by_profile`:
movers side by side at one velocity), all together (:func:`detect_moving_regions`), the filled mask a
detection reports (:func:`fill_mask`), and a mask cut to the pixels that do not look like its surroundings
(:func:`trim_to_colours`: flow smear, the uncovered ground behind a mover, its shadow).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from recon4d.tracking.classic.boxes import mask_box, mask_window
from recon4d.tracking.classic.config import ClassicTrackerConfig

__all__ = [
    "HSV_BINS",
    "Detection",
    "bin_histogram",
    "detect_moving_regions",
    "fill_mask",
    "hsv_bins",
    "moving_components",
    "bimodal",
    "split_by_motion",
    "surroundings",
    "trim_to_colours",
    "trim_to_core",
    "two_means",
]


@dataclass(frozen=True, eq=False)
class Detection:
    """A moving region of one frame at the working resolution."""

    box: np.ndarray
    """(4,) float64 xyxy, pixel edges."""
    mask: np.ndarray
    """(h, w) bool."""
    piece: int = 0
    """The background model's foreground component this was cut to (stabilised.split_by_foreground), else 0:
    detections of different pieces are separate silhouettes, which association does not join again."""


def ellipse(diameter: int) -> np.ndarray:
    """An elliptic structuring element of odd ``diameter`` (at least 1)."""
    diameter = max(1, int(diameter) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def moving_components(moving: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[np.ndarray]:
    """(h, w) bool masks of the connected components of a cleaned motion mask, largest first.

    Opened with a 3 px ellipse (speckle), closed with one of ``close_fraction`` of the long
    side (a mover's motion is patchy where it has no texture); components under
    ``min_area_fraction`` or ``component_min_area_fraction`` of the frame are dropped (the
    latter: most small components are background flow errors, which association takes for a
    mover's continuation and cleanup for tracks).
    """
    height, width = moving.shape
    cleaned = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, ellipse(3))
    cleaned = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, ellipse(round(config.close_fraction * max(height, width))))
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(cleaned, connectivity=8)
    min_area = max(config.min_area_fraction, config.component_min_area_fraction) * height * width
    keep = [i for i in range(1, n_labels) if stats[i, cv2.CC_STAT_AREA] >= max(min_area, 4)]
    keep.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [labels == i for i in keep]


def two_means(vectors: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic 2-means of (N, 2) vectors: (2, 2) centres and (N,) labels in {0, 1}.

    Starts from the median and the vector farthest from it, then Lloyd iterations.
    """
    centres = np.empty((2, 2))
    centres[0] = np.median(vectors, axis=0)
    centres[1] = vectors[np.argmax(np.sum((vectors - centres[0]) ** 2, axis=1))]
    labels = np.zeros(len(vectors), np.int64)
    # Per-coordinate columns and a comparison instead of (N, 2, 2) differences and an
    # argmin: the same sums of two squares (ties go to group 0 as argmin's did).
    xs, ys = np.ascontiguousarray(vectors[:, 0]), np.ascontiguousarray(vectors[:, 1])
    for _ in range(iterations):
        new_labels = ((xs - centres[1, 0]) ** 2 + (ys - centres[1, 1]) ** 2
                      < (xs - centres[0, 0]) ** 2 + (ys - centres[0, 1]) ** 2).astype(np.int64)
        if np.array_equal(new_labels, labels) and _ > 0:
            break
        labels = new_labels
        for k in range(2):
            if np.any(labels == k):
                centres[k] = vectors[labels == k].mean(axis=0)
    return centres, labels


def bimodal(vectors: np.ndarray, centres: np.ndarray, band: float = 0.15) -> bool:
    """Whether (N, 2) vectors form two groups around (2, 2) ``centres`` rather than a gradient.

    Along the line through the centres, the vectors within ``band`` of the separation of
    the midpoint must be at most half as many as those within ``band`` of the sparser
    centre: a rolling ball or a turning body has a continuum of velocities (as many in the
    middle as at the ends), two movers have two clusters with only their blurred border
    in between.
    """
    direction = centres[1] - centres[0]
    length2 = float(direction @ direction)
    if length2 <= 0:
        return False
    position = (vectors - centres[0]) @ direction / length2  # 0 at the first centre, 1 at the second
    middle = np.count_nonzero(np.abs(position - 0.5) <= band)
    ends = min(np.count_nonzero(np.abs(position) <= band), np.count_nonzero(np.abs(position - 1.0) <= band))
    return middle <= 0.8 * ends


def _nearest_parts(region: np.ndarray, parts: list[np.ndarray]) -> list[np.ndarray]:
    """Give every pixel of ``region`` to the nearest of the disjoint ``parts`` (all (h, w) bool)."""
    distance = np.stack([cv2.distanceTransform((~part).astype(np.uint8), cv2.DIST_L2, 3) for part in parts])
    nearest = np.argmin(distance, axis=0)
    return [region & (nearest == i) for i in range(len(parts))]


def split_by_motion(region: np.ndarray, moving: np.ndarray, flow: np.ndarray, velocity: np.ndarray,
                    min_area: float, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                    depth: int = 2) -> list[np.ndarray]:
    """Split a connected moving region (h, w) bool into parts that move differently.

    moving: (h, w) bool pixels that passed the motion test; flow: (h, w, 2) image motion per
    step; velocity: (h, w, 2) camera-compensated motion per step. The moving pixels of the
    region are split in two by :func:`two_means` on their image motion (one rigid object
    moves as one in the image; its compensated motion also varies with the depth of what is
    behind it); the split stands when the two mean image motions differ by at least
    ``split_min_px``, by ``split_min_relative`` of the faster group's compensated speed (a
    limb swinging against a body differs by less than the body's own speed) and by
    ``split_min_ratio`` times the spread within the groups, and the image motions are
    :func:`bimodal` (an object rolling, turning or approaching has a gradient of motion,
    not two motions). Each group, opened with a 3 px ellipse, must hold a connected part of
    at least ``min_area`` pixels; the region's other pixels (blank interiors, the closing's
    margin) go to the nearest part. Parts are split again up to ``depth`` times. Returns
    the parts (the region itself when it does not split).
    """
    points = region & moving
    count = int(np.count_nonzero(points))
    if depth <= 0 or count < 2 * min_area:
        return [region]
    vectors = flow[points].astype(np.float64)
    centres, labels = two_means(vectors)
    separation = float(np.linalg.norm(centres[0] - centres[1]))
    spread = float(np.sqrt(np.mean(np.sum((vectors - centres[labels]) ** 2, axis=1))))
    compensated = velocity[points]
    speed = max(float(np.linalg.norm(compensated[labels == k].mean(axis=0))) if np.any(labels == k) else 0.0
                for k in range(2))
    if (separation < config.split_min_px or separation < config.split_min_relative * speed
            or separation < config.split_min_ratio * spread
            or (config.split_bimodal and not bimodal(vectors, centres))):
        return [region]
    ys, xs = np.nonzero(points)
    parts = []
    for k in range(2):
        group = np.zeros(region.shape, np.uint8)
        group[ys[labels == k], xs[labels == k]] = 1
        part = largest_component(cv2.morphologyEx(group, cv2.MORPH_OPEN, ellipse(3)))
        if np.count_nonzero(part) >= min_area:
            parts.append(part)
    if len(parts) < 2:
        return [region]
    result = []
    for part in _nearest_parts(region, parts):
        result += split_by_motion(part, moving, flow, velocity, min_area, config, depth - 1)
    return result


PROFILE_PIECE = 1 << 20
"""The members :func:`split_by_profile` cuts from one region have :attr:`Detection.piece` g · PROFILE_PIECE + i
(g ≥ 1 per split, i the member; above any foreground label): :func:`profile_group` reads g back."""


def profile_group(piece: int) -> int:
    """The split a :attr:`Detection.piece` comes from (:data:`PROFILE_PIECE`), 0 for none."""
    return piece // PROFILE_PIECE


def profile_cut(region: np.ndarray, min_depth: float) -> int | None:
    """The column of an (h, w) bool region between two tops of its upper outline, or None.

    The outline is each column's first row of the region; peaks narrower than 8 % of the region's
    height (a tail, a raised hand, flow noise) are opened away. A column's depth is how much lower its
    top lies than the lower of the highest tops on its left and on its right: two people side by side
    show two heads with their shoulders, or the ground between them, lower; one person's outline falls
    away from a single head, a car's from its roof. The deepest column counts when its depth is at
    least ``min_depth`` of the region's height (and 1 px). Returns the middle of the deepest columns.
    """
    filled = region.any(axis=0)
    columns = np.flatnonzero(filled)
    if len(columns) < 3:
        return None
    rows = np.flatnonzero(region.any(axis=1))
    height = rows[-1] + 1 - rows[0]
    top = np.where(filled, np.argmax(region, axis=0), rows[-1] + 1)[columns[0]:columns[-1] + 1].astype(np.float64)
    width = max(3, round(0.08 * height) | 1)
    if len(top) > width:
        # an opening of the outline seen as heights: narrow peaks fall to their neighbours' level
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(top, width // 2, mode="edge"), width)
        lowered = windows.max(axis=1)
        top = np.lib.stride_tricks.sliding_window_view(np.pad(lowered, width // 2, mode="edge"), width).min(axis=1)
    left, right = np.minimum.accumulate(top), np.minimum.accumulate(top[::-1])[::-1]
    depth = top - np.maximum(left, right)
    deepest = float(depth.max())
    if deepest < max(min_depth * height, 1.0):
        return None
    valley = np.flatnonzero(depth == deepest)
    return int(columns[0] + valley[len(valley) // 2])


TALL = 1.5
"""Height over width of a standing person's silhouette at least (about 2.5 when alone; arms and flow smear widen it)."""


def _tallness(mask: np.ndarray) -> float:
    """Height over width of an (h, w) bool mask's bounding box (0 when empty)."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return h / w if w else 0.0


def split_by_profile(region: np.ndarray, min_area: float, min_depth: float, depth: int = 2) -> list[np.ndarray]:
    """Members of an (h, w) bool moving region cut at the valleys of its upper outline (:func:`profile_cut`).

    Movers walking side by side at one velocity are one motion component that no motion test can
    split (:func:`split_by_motion`); their outline shows one top per member (two heads, a person and
    the dog beside them). The region is cut at the deepest valley's column when both sides keep
    ``min_area`` pixels and one of them is as tall as a person (:data:`TALL`: slices of a car whose
    blank windows dent its outline are not), and each side again up to ``depth`` times. ``min_depth``
    0: never cut. Returns the members, left to right (the region itself when it is not cut).

    Where it fails (the dev seeds): under a moving camera the motion mask of people is a blob whose
    outline shows no heads, and a car half hidden by a wall has a dented outline too.
    """
    if min_depth <= 0 or depth <= 0 or np.count_nonzero(region) < 2 * min_area:
        return [region]
    column = profile_cut(region, min_depth)
    if column is None:
        return [region]
    left, right = region.copy(), region.copy()
    left[:, column:] = False
    right[:, :column] = False
    if np.count_nonzero(left) < min_area or np.count_nonzero(right) < min_area:
        return [region]
    if max(_tallness(left), _tallness(right)) < TALL:
        return [region]
    return (split_by_profile(left, min_area, min_depth, depth - 1)
            + split_by_profile(right, min_area, min_depth, depth - 1))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool largest 8-connected component of an (h, w) bool or uint8 mask (all False when empty)."""
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8, copy=False), connectivity=8)
    if n_labels < 2:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def trim_to_core(region: np.ndarray, moving: np.ndarray, speed: np.ndarray, min_area: float,
                 config: ClassicTrackerConfig = ClassicTrackerConfig(), long_side: int | None = None) -> np.ndarray:
    """The part of a moving region (h, w) bool that moves at least ``core_fraction`` of its median speed.

    moving: (h, w) bool pixels that passed the motion test; speed: (h, w) camera-compensated
    speed, px per step. Dense flow blurs a mover's motion into the background around it, so
    a fast mover's motion mask (a frame-wide threshold) reaches well past its outline; the
    mover's own pixels move at about its speed and the blurred margin falls off from there,
    so the outline lies where the speed drops to a fraction of the mover's (a half-maximum
    rule, lowered so the slower parts of a body — a rolling ball's bottom, a planted foot —
    stay). The pixels that pass are opened and closed like :func:`moving_components` and kept
    in components of at least ``min_area`` pixels; the region is returned unchanged when none
    is that large or ``core_fraction`` is 0. ``long_side``: the frame's long side (the closing's
    scale) when the arrays are a window of the frame; by default their own.
    """
    inner = region & moving
    if config.core_fraction <= 0 or not inner.any():
        return region
    core = (region & (speed >= config.core_fraction * float(np.median(speed[inner])))).astype(np.uint8)
    core = cv2.morphologyEx(core, cv2.MORPH_OPEN, ellipse(3))
    long_side = max(region.shape) if long_side is None else long_side
    core = cv2.morphologyEx(core, cv2.MORPH_CLOSE, ellipse(round(config.close_fraction * long_side)))
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    keep = [i for i in range(1, n_labels) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    if not keep:
        return region
    return np.isin(labels, keep) & region


def detect_moving_regions(moving: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                          flow: np.ndarray | None = None, velocity: np.ndarray | None = None) -> list[Detection]:
    """Detections of one frame: :func:`moving_components`, each split by :func:`split_by_motion`
    and cut to its core (:func:`trim_to_core`) when (h, w, 2) image ``flow`` and compensated
    ``velocity`` are given; largest first.

    Splitting and trimming run on a window around each component (speed: whole-frame
    morphology, labelling and distance maps per part were most of this step): the window
    holds the component and a margin wider than the closing of :func:`trim_to_core` reaches
    past it on both of its passes, so the parts are those of the whole frame."""
    height, width = moving.shape
    min_area = max(config.min_area_fraction * height * width, 4)
    margin = 2 * round(config.close_fraction * max(height, width)) + 4
    regions, pieces = [], []
    for component in moving_components(moving, config):
        if flow is None or velocity is None:
            regions.append(component)
            pieces.append(0)
            continue
        window = mask_window(component, margin)
        speed = np.linalg.norm(velocity[window], axis=-1)
        for part in split_by_motion(component[window], moving[window], flow[window], velocity[window], min_area,
                                    config):
            core = trim_to_core(part, moving[window], speed, min_area, config, max(height, width))
            members = split_by_profile(core, min_area, config.profile_split_depth)
            group = PROFILE_PIECE * (1 + len(regions))  # unique per split: the first member's index
            for index, member in enumerate(members):
                region = np.zeros((height, width), bool)
                region[window] = member
                # members of one split are separate silhouettes: association does not join them again
                pieces.append(group + index if len(members) > 1 else 0)
                regions.append(region)
    order = sorted(range(len(regions)), key=lambda i: -int(np.count_nonzero(regions[i])))
    return [Detection(mask_box(regions[i]), regions[i], pieces[i]) for i in order if regions[i].any()]


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


HSV_BINS = (8, 4, 4)
"""Hue, saturation and value bins of the colour histograms that tell an object from its surroundings."""


def hsv_bins(image: np.ndarray) -> np.ndarray:
    """(h, w) int64 bin of each pixel of an (h, w, 3) uint8 RGB image in an 8 × 4 × 4 hue–saturation–value
    histogram (value counts: a dark grey object on a light grey ground differs in brightness only)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    hue, saturation, value = (hsv[..., i].astype(np.int64) for i in range(3))
    n_hue, n_saturation, n_value = HSV_BINS
    return ((hue * n_hue // 180) * n_saturation + saturation * n_saturation // 256) * n_value + value * n_value // 256


def bin_histogram(bins: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(8 · 4 · 4,) float64 histogram of the :func:`hsv_bins` ``bins`` (h, w) under ``mask`` (h, w) bool,
    summing to 1 (all 0 for an empty mask)."""
    counts = np.bincount(bins[mask], minlength=int(np.prod(HSV_BINS))).astype(np.float64)
    return counts / max(float(counts.sum()), 1.0)


def surroundings(mask: np.ndarray, ring_px: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """The window of an (h, w) bool mask grown by ``ring_px`` (:func:`.boxes.mask_window`), the mask
    within it and the ring of pixels within ``ring_px`` of the mask (outside it), both bool."""
    window = mask_window(mask, ring_px)
    inner = mask[window]
    kernel = np.ones((2 * ring_px + 1, 2 * ring_px + 1), np.uint8)
    return window, inner, cv2.dilate(inner.astype(np.uint8), kernel).astype(bool) & ~inner


def trim_to_colours(image: np.ndarray, mask: np.ndarray, ring_px: int = 4, keep_min: float = 0.3) -> np.ndarray:
    """The pixels of a mover's mask (h, w) bool whose colours are more common inside the mask than
    in the ring of ``ring_px`` around it, in ``image`` (h, w, 3) uint8 RGB.

    A motion mask reaches past its mover: dense flow smears motion over the background next to
    it, the ground a mover uncovers behind it has no trustworthy flow (a trail as wide as the
    mover on a walking person), and its shadow moves with it. Those pixels look like the
    surroundings; the mover's own pixels, by and large, do not. A pixel stays when its bin of
    :func:`hsv_bins` is more frequent under the mask than in the ring; the kept pixels are
    opened with a 3 × 3 square (speckle). The mask is returned unchanged when fewer than
    ``keep_min`` of its pixels would stay (a mover coloured like its surroundings) or it has
    no ring (it fills the frame). Holes are left to :func:`fill_mask`.
    """
    if not mask.any():
        return mask
    window, inner, ring = surroundings(mask, ring_px)
    if not ring.any():
        return mask
    bins = hsv_bins(image[window])
    inside, around = bin_histogram(bins, inner), bin_histogram(bins, ring)
    keep = inner & (around[bins] < inside[bins])
    keep = cv2.morphologyEx(keep.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    if np.count_nonzero(keep) < keep_min * np.count_nonzero(inner):
        return mask
    trimmed = np.zeros(mask.shape, bool)
    trimmed[window] = keep
    return trimmed
