"""Background model of a still or only-turning camera (optional step of :mod:`recon4d.tracking.classic.tracker`).

Owns :class:`StabilisedBackground`: when most frame pairs of a clip keep a single-homography
background model (:func:`still_or_turning`: a camera on a tripod, still or panning and tilting,
whose image motion is a homography whatever the depth of the scene), every frame maps into one
reference frame by the chained homographies (:func:`chain_homographies`). The per-pixel temporal
median (:func:`temporal_median`) of up to ``background_samples`` aligned frames spread over the clip
is the background (each pixel shows background in most frames), on a canvas that holds every
frame; a frame's foreground is where its colour differs from the background warped back into it
(:func:`colour_distance`, shadows set aside; :meth:`StabilisedBackground.foreground`). Unlike the
flow residual this gives a mover's whole silhouette (its blank interior, its feet) without the
flow's smear past its outline (:func:`silhouettes`, the tracker's final masks), it sees the ground
between movers the smear joined into one motion detection (:func:`split_by_foreground`), and it
still shows an object that has stopped (:func:`foreground_detections`, with ``background_hold``).

The model is refused (``build`` returns None) when fewer than ``background_planar_fraction`` of the
pairs keep one homography (a camera that translates over a 3D scene: no single image of the
background exists), or when the aligned frames do not agree with their median (median colour
distance above ``background_max_noise``: parallax the homographies missed, drift, changing light;
a weak test on its own: a slow walk over a textured floor passes it).

Limits: something that sits still for more than half of the sampled frames is background (a person
who loiters loses the parts that stay put), and the place it leaves is foreground (a ghost: it
never moves, so ``min_travel`` drops it); a mover of the background's colour is missed where it
matches; a shadow is a darker pixel of the same chromaticity, so a grey mover on a lighter grey
ground may lose parts; places at the ends of a pan seen by fewer than half the sampled frames have
no background (tracks there keep their motion masks); the homographies are chained pair by pair
(no re-anchoring to the mosaic), so a long pan drifts.

    background = StabilisedBackground.build(motion.backgrounds, images, config)  # or None
    mask = background.foreground(t, images[t])                                  # (h, w) bool
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from recon4d.tracking.classic.boxes import mask_box, mask_window
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.segment import Detection, ellipse, fill_mask

__all__ = [
    "StabilisedBackground",
    "chain_homographies",
    "colour_distance",
    "foreground_detections",
    "near_foreground",
    "silhouettes",
    "split_by_foreground",
    "still_or_turning",
    "temporal_median",
]

_STILL_PX = 2.0
"""A clip whose chained homographies move no frame corner this far (pixels) is from a still camera."""
_MAX_CANVAS = 3.0
"""The canvas spans at most this many frame widths and heights (a wild homography cannot blow it up)."""


def still_or_turning(backgrounds: list, min_fraction: float = 0.75) -> bool:
    """Whether at least ``min_fraction`` of a clip's frame pairs keep a one-homography background model
    (:class:`.background.BackgroundMotion` kind "planar" with a single plane): a still camera or one that
    only turns, where one image of the background exists. A camera that translates over a 3D scene gets
    the epipolar model or extra planes in most pairs; a panning camera gets it in a few (a short baseline
    lets the essential matrix explain noise as a step), whose dominant homography still holds. A clip
    without pairs is refused; :meth:`StabilisedBackground.build` then checks that the aligned frames agree."""
    if not backgrounds:
        return False
    single = sum(model.kind == "planar" and len(model.planes) == 1 for model in backgrounds)
    return single >= min_fraction * len(backgrounds)


def chain_homographies(pairs: list[np.ndarray], reference: int, size: tuple[int, int],
                       still_px: float = 0.5) -> np.ndarray:
    """(T, 3, 3) homographies from each frame to frame ``reference``, from the T − 1 pair homographies t → t + 1.

    A pair whose homography moves no corner of the ``size`` = (w, h) frame by ``still_px`` or more is
    the identity (a still camera: its fit is noise, and chaining noise drifts)."""
    pairs = [np.eye(3) if _corner_shift(h, size) < still_px else h for h in pairs]
    n_frames = len(pairs) + 1
    chained = np.tile(np.eye(3), (n_frames, 1, 1))
    for t in range(reference - 1, -1, -1):
        chained[t] = chained[t + 1] @ pairs[t]
    for t in range(reference + 1, n_frames):
        chained[t] = chained[t - 1] @ np.linalg.inv(pairs[t - 1])
    return chained / chained[:, 2:3, 2:3]


def _frame_corners(size: tuple[int, int]) -> np.ndarray:
    """(4, 2) corners of a ``size`` = (w, h) frame."""
    width, height = size
    return np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)


def _corner_shift(homography: np.ndarray, size: tuple[int, int]) -> float:
    """Pixels the homography moves the farthest-moved corner of a ``size`` = (w, h) frame."""
    corners = _frame_corners(size)
    return float(np.max(np.linalg.norm(_apply(homography, corners) - corners, axis=1)))


def _apply(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.c_[points, np.ones(len(points))] @ homography.T
    return mapped[:, :2] / mapped[:, 2:3]


def temporal_median(stack: np.ndarray, valid: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of (S, H, W, 3) uint8 frames over their (S, H, W) bool ``valid`` pixels.

    Returns the (H, W, 3) uint8 median and the (H, W) bool pixels covered by at least ``min_count``
    frames. The invalid samples of a pixel are set to 0 and 255 in turn before a plain median: as many
    below every value as above it leave the middle where it was (within half a rank when their number
    is odd), at the cost of one uint8 median, not a NaN-aware sort of floats (``stack``'s invalid
    pixels are overwritten)."""
    invalid = ~valid
    if invalid.any():
        parity = np.cumsum(invalid, axis=0, dtype=np.uint8) & 1
        stack[invalid] = 0
        stack[invalid & (parity == 0)] = 255
    samples = len(stack)
    # samples last and contiguous: one partition of short rows (numpy's median along axis 0 is slower)
    ordered = np.ascontiguousarray(np.moveaxis(stack, 0, -1)).reshape(-1, samples)
    middle = [(samples - 1) // 2, samples // 2]
    ordered.partition(middle, axis=-1)
    median = ((ordered[:, middle[0]].astype(np.uint16) + ordered[:, middle[1]] + 1) // 2).astype(np.uint8)
    return median.reshape(stack.shape[1:]), valid.sum(axis=0) >= min_count


def colour_distance(image: np.ndarray, background: np.ndarray, shadow: tuple[float, float, float],
                    above: float = 0.0, background_lab: np.ndarray | None = None) -> np.ndarray:
    """(h, w) float32 colour distance of two (h, w, 3) uint8 RGB images in OpenCV's 8-bit Lab (0–255 units).

    A pixel whose brightness (R + G + B) is between ``shadow[0]`` and ``shadow[1]`` of the background's
    and whose chromaticity (R, G, B) / (R + G + B) differs from it by less than ``shadow[2]`` (largest
    component) is a shadow (distance 0): light blocked, the same surface (Lab's chroma shrinks with
    lightness, chromaticity does not). The shadow test runs only where the distance exceeds ``above``
    (the rest is background anyway; speed). ``background_lab``: ``background`` in 8-bit Lab, when known."""
    if background_lab is None:
        background_lab = cv2.cvtColor(background, cv2.COLOR_RGB2LAB)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab -= background_lab
    lightness, green_red, blue_yellow = cv2.split(lab)
    distance = cv2.sqrt(lightness * lightness + green_red * green_red + blue_yellow * blue_yellow)
    if shadow[2] > 0:
        ys, xs = np.nonzero(distance > above)
        pixel, reference = image[ys, xs].astype(np.float32) + 1.0, background[ys, xs].astype(np.float32) + 1.0
        brightness, reference_brightness = pixel.sum(axis=1), reference.sum(axis=1)
        chromaticity = np.abs(pixel / brightness[:, None] - reference / reference_brightness[:, None]).max(axis=1)
        ratio = brightness / reference_brightness
        shade = (ratio >= shadow[0]) & (ratio <= shadow[1]) & (chromaticity < shadow[2])
        distance[ys[shade], xs[shade]] = 0.0
    return distance


@dataclass(eq=False)
class StabilisedBackground:
    """The background of a still or only-turning camera's clip on a canvas that holds every frame (not
    frozen: it caches each frame's foreground)."""

    to_canvas: np.ndarray = field(repr=False)
    """(T, 3, 3) homography from each working frame's pixels to the canvas."""
    canvas: np.ndarray = field(repr=False)
    """(H, W, 3) uint8 RGB temporal median of the aligned frames."""
    covered: np.ndarray = field(repr=False)
    """(H, W) bool canvas pixels seen by enough sampled frames to have a median."""
    threshold: float
    """Colour distance (:func:`colour_distance`) above which a pixel is foreground."""
    noise: float
    """Median colour distance of the sampled aligned frames from the background (the agreement test)."""
    config: ClassicTrackerConfig
    """The tracker's settings (closing size, minimum area, shadow band)."""
    _cache: dict = field(default_factory=dict, init=False, repr=False)
    """frame → bit-packed foreground and known masks, each computed once (association and masks both ask)."""
    _lab: np.ndarray | None = field(default=None, init=False, repr=False)
    """The canvas in 8-bit Lab, for a still camera's frames."""

    @classmethod
    def build(cls, backgrounds: list, images, config: ClassicTrackerConfig = ClassicTrackerConfig()
              ) -> "StabilisedBackground | None":
        """The model of a clip from its T − 1 pair background models and (T, h, w, 3) uint8 RGB working
        ``images`` (any sequence; the sampled frames are read once), or None when the clip fails
        :func:`still_or_turning` or its aligned frames disagree with their median by more than
        ``background_max_noise``."""
        if not still_or_turning(backgrounds, config.background_planar_fraction):
            return None
        n_frames = len(images)
        height, width = images[0].shape[:2]
        reference = n_frames // 2
        chained = chain_homographies([model.planes[0] for model in backgrounds], reference, (width, height))
        if not config.background_turning and max(_corner_shift(h, (width, height)) for h in chained) >= _STILL_PX:
            return None
        reach = np.concatenate([_apply(h, _frame_corners((width, height))) for h in chained])
        low = np.maximum(np.floor(reach.min(axis=0)), [-(_MAX_CANVAS - 1) / 2 * width, -(_MAX_CANVAS - 1) / 2 * height])
        high = np.minimum(np.ceil(reach.max(axis=0)), [(_MAX_CANVAS + 1) / 2 * width, (_MAX_CANVAS + 1) / 2 * height])
        size = (int(high[0] - low[0]), int(high[1] - low[1]))
        shift = np.array([[1.0, 0.0, -low[0]], [0.0, 1.0, -low[1]], [0.0, 0.0, 1.0]])
        to_canvas = shift @ chained
        samples = np.unique(np.linspace(0, n_frames - 1, min(n_frames, config.background_samples)).round().astype(int))
        stack = np.zeros((len(samples), size[1], size[0], 3), np.uint8)
        valid = np.zeros((len(samples), size[1], size[0]), bool)
        ones = np.full((height, width), 255, np.uint8)
        for i, t in enumerate(samples):
            if size == (width, height) and np.allclose(to_canvas[t], np.eye(3)):  # a still camera (speed)
                stack[i], valid[i] = images[t], True
                continue
            stack[i] = cv2.warpPerspective(np.ascontiguousarray(images[t]), to_canvas[t], size, flags=cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_REPLICATE)
            valid[i] = cv2.warpPerspective(ones, to_canvas[t], size, flags=cv2.INTER_NEAREST) == 255
        # a median needs the place seen empty: where only a few frames saw it, a mover that stayed
        # there while it was in view (the ends of a pan) would be background
        canvas, covered = temporal_median(stack, valid, max(3, (len(samples) + 1) // 2))
        # the sampled frames' agreement with the median, on every 4th row and column (enough pixels)
        lab = cv2.cvtColor(canvas[::4, ::4].copy(), cv2.COLOR_RGB2LAB)
        distances = np.concatenate([
            colour_distance(stack[i, ::4, ::4].copy(), canvas[::4, ::4], (0.0, 0.0, 0.0), background_lab=lab)[
                (valid[i] & covered)[::4, ::4]] for i in range(len(samples))])
        if distances.size == 0:
            return None
        noise = float(np.median(distances))
        if noise > config.background_max_noise:
            return None
        spread = 1.4826 * float(np.median(np.abs(distances - noise)))
        threshold = max(config.background_min_distance, noise + config.background_sigma * spread)
        return cls(to_canvas, canvas, covered, threshold, noise, config)

    def foreground(self, t: int, image: np.ndarray) -> np.ndarray:
        """(h, w) bool foreground of working frame t (``image`` (h, w, 3) uint8 RGB): colour distance from
        the background warped into the frame above ``threshold``, opened with a 3 px ellipse, closed
        with one of ``close_fraction`` of the long side, holes filled, components under
        ``min_area_fraction`` of the frame dropped; False where the canvas has no background
        (:meth:`known`). Cached per frame (bit-packed)."""
        if t not in self._cache:
            self._cache[t] = self._separate(t, image)
        packed, width = self._cache[t][0]
        return np.unpackbits(packed, axis=-1, count=width).view(bool)

    def known(self, t: int, image: np.ndarray) -> np.ndarray:
        """(h, w) bool pixels of working frame t whose background the canvas holds (seen by at least half
        the sampled frames)."""
        if t not in self._cache:
            self._cache[t] = self._separate(t, image)
        packed, width = self._cache[t][1]
        return np.unpackbits(packed, axis=-1, count=width).view(bool)

    def carry(self, mask: np.ndarray, source: int, target: int) -> np.ndarray:
        """(h, w) bool ``mask`` of working frame ``source`` moved with the background into frame ``target``
        (a still object's pixels under a turning camera)."""
        if source == target or np.allclose(self.to_canvas[source], self.to_canvas[target]):
            return mask
        height, width = mask.shape
        homography = np.linalg.inv(self.to_canvas[target]) @ self.to_canvas[source]
        return cv2.warpPerspective(mask.astype(np.uint8), homography, (width, height), flags=cv2.INTER_NEAREST) > 0

    def _separate(self, t: int, image: np.ndarray) -> tuple:
        height, width = image.shape[:2]
        config = self.config
        if self.canvas.shape[:2] == (height, width) and np.allclose(self.to_canvas[t], np.eye(3)):
            # a still camera: the canvas is the frame (no warps; its Lab conversion once)
            background, known = self.canvas, self.covered
            if self._lab is None:
                self._lab = cv2.cvtColor(self.canvas, cv2.COLOR_RGB2LAB)
            lab = self._lab
        else:
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            background = cv2.warpPerspective(self.canvas, self.to_canvas[t], (width, height), flags=flags,
                                             borderMode=cv2.BORDER_REPLICATE)
            known = cv2.warpPerspective(self.covered.astype(np.uint8), self.to_canvas[t], (width, height),
                                        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP).astype(bool)
            lab = None
        shadow = (config.background_shadow_low, config.background_shadow_high, config.background_shadow_chroma)
        distance = colour_distance(np.ascontiguousarray(image), background, shadow, self.threshold, lab)
        mask = (distance > self.threshold) & known
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, ellipse(3))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, ellipse(round(config.close_fraction * max(height, width))))
        n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        min_area = max(config.min_area_fraction * height * width, 4)
        keep = np.zeros(n_labels, bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
        mask = fill_mask(keep[labels], 0.0) & known if keep.any() else np.zeros((height, width), bool)
        return (np.packbits(mask, axis=-1), width), (np.packbits(known, axis=-1), width)


def near_foreground(foreground: np.ndarray, mask: np.ndarray, reach: float) -> np.ndarray:
    """(h, w) bool foreground pixels within ``reach`` × the diagonal of an (h, w) bool mask's box (at least
    2 px) of the mask: its object's silhouette where the mask fell short (a blank interior, feet the motion
    missed), without the whole connected foreground (movers that touch in it, a mover and the ghost
    of another)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return np.zeros(mask.shape, bool)
    radius = max(2, round(reach * float(np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))))
    window = mask_window(mask, radius)
    grown = cv2.dilate(mask[window].astype(np.uint8), ellipse(2 * radius + 1)).astype(bool)
    near = np.zeros(mask.shape, bool)
    near[window] = grown & foreground[window]
    return near


def silhouettes(foreground: np.ndarray, masks: list[np.ndarray], known: np.ndarray | None = None,
                reach: float = 0.1, min_overlap: float = 0.3, min_known: float = 0.9) -> list[np.ndarray | None]:
    """Each of one frame's (h, w) bool ``masks`` (tracks or detections) replaced by the foreground (h, w)
    bool near it (:func:`near_foreground`), pixels that two take going to the nearer mask; None (keep the
    mask) where the foreground holds less than ``min_overlap`` of the mask (the model missed the object:
    it matches the background's colour, or it is a flow error) or where less than ``min_known`` of the
    mask lies where the model knows the background (``known`` (h, w) bool; everywhere when None)."""
    taken: list[np.ndarray | None] = []
    for mask in masks:
        area = int(np.count_nonzero(mask))
        if (area == 0 or np.count_nonzero(mask & foreground) < min_overlap * area
                or (known is not None and np.count_nonzero(mask & known) < min_known * area)):
            taken.append(None)
        else:
            taken.append(near_foreground(foreground, mask, reach))
    present = [k for k, region in enumerate(taken) if region is not None]
    if len(present) > 1:
        claims = np.sum([taken[k] for k in present], axis=0)
        if (claims > 1).any():
            distance = np.stack([cv2.distanceTransform((~masks[k]).astype(np.uint8), cv2.DIST_L2, 3)
                                 for k in present])
            nearest = np.argmin(distance, axis=0)
            for i, k in enumerate(present):
                taken[k] = taken[k] & ((claims == 1) | (nearest == i))
    return taken


def foreground_detections(found: list, foreground: np.ndarray, previous: list[np.ndarray], min_area: float,
                          reach: float = 0.04) -> list:
    """One frame's detections (:class:`.segment.Detection`, largest first): its motion detections ``found``
    and the objects of the previous frame that stopped moving.

    foreground: the frame's (h, w) bool foreground; previous: the (h, w) bool masks of what this function
    returned for the frame before, moved with the background into this frame
    (:meth:`StabilisedBackground.carry`). Where such a mask touches none of this frame's detections and
    the foreground near it (:func:`near_foreground`, pixels no other detection holds) covers at least half
    its area, that foreground is a detection too: an object that stops stays found, so its track goes on
    instead of ending and restarting. Motion detections are kept as they are (grown to the foreground
    they joined neighbouring movers and lost recall on the dev scenes); the final masks take the foreground."""
    regions = [detection.mask for detection in found]
    taken = np.logical_or.reduce(regions) if regions else np.zeros(foreground.shape, bool)
    for mask in previous:
        if (mask & taken).any():
            continue
        held = near_foreground(foreground, mask, reach) & ~taken
        if np.count_nonzero(held) >= max(min_area, 0.5 * np.count_nonzero(mask)):
            regions.append(held)
            taken |= held
    regions.sort(key=lambda mask: -int(np.count_nonzero(mask)))
    return [Detection(mask_box(mask), mask) for mask in regions]


def split_by_foreground(found: list, foreground: np.ndarray, min_area: float, min_share: float = 0.15) -> list:
    """One frame's motion detections (:class:`.segment.Detection`) with each one that holds several separate
    pieces of the foreground cut into one detection per piece, largest first.

    foreground: the frame's (h, w) bool foreground (:meth:`StabilisedBackground.foreground`). The flow
    smears motion past a mover's outline and the detection step closes gaps, so movers a few pixels
    apart (people walking in a row, a dog beside a car) come as one motion detection; the background
    model sees the ground between them. A piece counts when the detection holds at least ``min_area``
    pixels of it and ``min_share`` of the detection's foreground; each pixel of the detection goes to
    the nearest counted piece (the smear, the ground between them, pieces too small to count), and the
    cut detections carry their piece's label (:attr:`.segment.Detection.piece`: association does not
    join them again). Where the foreground joins two movers (they touch, or a shadow bridges them)
    nothing is cut."""
    if not found or not foreground.any():
        return found
    n_labels, labels = cv2.connectedComponents(foreground.astype(np.uint8), connectivity=8)
    if n_labels < 3:
        return found
    regions: list[tuple[np.ndarray, int]] = []
    for detection in found:
        window = mask_window(detection.mask)
        mask, local = detection.mask[window], labels[window]
        counts = np.bincount(local[mask], minlength=n_labels)
        counts[0] = 0
        pieces = np.flatnonzero((counts >= min_area) & (counts >= min_share * counts.sum()))
        if len(pieces) < 2:
            regions.append((detection.mask, detection.piece))
            continue
        # a piece's own pixels, not the whole component: what lies outside the detection is another story
        distance = np.stack([cv2.distanceTransform((~(mask & (local == piece))).astype(np.uint8), cv2.DIST_L2, 3)
                             for piece in pieces])
        nearest = np.argmin(distance, axis=0)
        for i in range(len(pieces)):
            part = np.zeros(detection.mask.shape, bool)
            part[window] = mask & (nearest == i)
            regions.append((part, int(pieces[i])))
    if len(regions) == len(found):
        return found
    regions.sort(key=lambda region: -int(np.count_nonzero(region[0])))
    return [Detection(mask_box(mask), mask, piece) for mask, piece in regions]
