"""Tracks after association (step 5 of :mod:`recon4d.tracking.classic.tracker`).

Owns what happens to the raw tracks of :func:`~recon4d.tracking.classic.association.associate`:
fragments of one mover are joined (:func:`stitch`), tracks too brief, too small or without
sparse motion evidence are dropped, small tracks that cling to a larger one join it
(:func:`absorb_fragments`), tracks that are a piece of another are dropped
(:func:`drop_duplicates`), tracks that look like the background around them and move with the
camera are dropped (:func:`background_texture`), as are, when asked, tracks whose image motion the
scene right around them shares (:func:`scene_share`: a patch of static scene at a depth the
background model got wrong, a piece of a larger mover), and each track is carried back before its
first detection, out of the track it was merged with (:func:`extend_backwards`);
:func:`clean_tracks` runs it all.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from recon4d.tracking.classic.association import Track, carry, coast, colour_histogram, colour_similarity
from recon4d.tracking.classic.boxes import inside_fraction, mask_box, mask_window
from recon4d.tracking.classic.config import SMEAR_PX, ClassicTrackerConfig
from recon4d.tracking.classic.epipolar import epipolar_offset
from recon4d.tracking.classic.evidence import normal_motion
from recon4d.tracking.classic.motion import MotionField
from recon4d.tracking.classic.segment import bin_histogram, hsv_bins, surroundings

__all__ = [
    "absorb_fragments",
    "background_texture",
    "clean_tracks",
    "drop_duplicates",
    "drop_reason",
    "extend_backwards",
    "point_support",
    "scene_share",
    "split_steps",
    "stitch",
    "surround_contrast",
    "travel",
]

_RING_PX = 4  # the surroundings a mask is compared with: nearer than the closing's reach (5 px at 384)


def point_support(track: Track, moving_points: list[np.ndarray]) -> float:
    """Fraction of a track's detected frames whose mask holds at least one moving corner."""
    backed = 0
    for t in track.detected:
        points = np.round(moving_points[t]).astype(int)
        height, width = track.masks[t].shape
        points = points[(points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)]
        backed += bool(track.masks[t][points[:, 1], points[:, 0]].any())
    return backed / max(len(track.detected), 1)


def travel(track: Track, motion: MotionField) -> float:
    """Farthest a track's box centre gets from where it started, against the background, px.

    Over consecutive detected frames t → t + 1 whose boxes keep their width and height
    (within 50 % or 4 px), the centre's displacement minus the background's displacement there (the
    median of ``image_flow − velocity`` under the mask) is summed; the result is the largest
    distance of the running sum from 0. A mover walks
    away from its start; the ghost a mover leaves where it was, or a patch of flow error,
    stays put with the background.
    """
    frames = sorted(track.detected)
    position, farthest = np.zeros(2), 0.0
    for t, following in zip(frames[:-1], frames[1:]):
        sizes = [track.boxes[k][2:] - track.boxes[k][:2] for k in (t, following)]
        if following != t + 1 or np.any(np.abs(sizes[1] - sizes[0]) > np.maximum(0.5 * sizes[0], 4.0)):
            continue  # a box that changes shape moves its centre without the object moving
        mask = track.masks[t]
        background = np.median((motion.image_flow[t] - motion.velocity[t])[mask], axis=0) if mask.any() else 0.0
        step = (track.boxes[following][:2] + track.boxes[following][2:]) / 2 - (track.boxes[t][:2] + track.boxes[t][2:]) / 2
        position += step - background
        farthest = max(farthest, float(np.linalg.norm(position)))
    return farthest


def surround_contrast(image: np.ndarray, mask: np.ndarray, ring_px: int = _RING_PX) -> float:
    """How unlike its surroundings a mask looks: 1 − Bhattacharyya similarity of the hue–saturation–value
    histograms (:func:`.segment.hsv_bins`) of the pixels of ``mask`` (h, w) bool and of the ring of
    pixels within ``ring_px`` of it (outside it) in ``image`` (h, w, 3) uint8 RGB; 0 alike, 1 disjoint
    (0 for an empty mask or ring). Value counts (unlike :func:`.association.colour_histogram`): a
    dark grey car on a light grey road differs in brightness only."""
    if not mask.any():
        return 0.0
    window, inner, ring = surroundings(mask, ring_px)
    if not ring.any():
        return 0.0
    bins = hsv_bins(image[window])
    return 1.0 - colour_similarity(bin_histogram(bins, inner), bin_histogram(bins, ring))


def background_texture(track: Track, motion: MotionField, images: np.ndarray,
                       config: ClassicTrackerConfig = ClassicTrackerConfig()) -> bool:
    """Whether a track is a piece of the background the camera's motion was mis-compensated on.

    Over the track's detected frames, the median :func:`surround_contrast` of its mask in
    ``images`` (T, h, w, 3) uint8 RGB is under ``background_contrast`` (it has the colours of
    what is around it: ground or wall texture, a mover's own interior cut off from its outline)
    and the median of its compensated speed over the background's displacement under it
    (medians under the mask) is under ``background_speed_ratio`` (its motion evidence is no
    more than the flow error a moving camera leaves; under a still camera the ratio is
    unbounded: motion evidence is trusted there whatever the colours). ``background_contrast``
    0 never drops.
    """
    if config.background_contrast <= 0:
        return False
    contrasts, ratios = [], []
    for t in sorted(track.detected):
        mask = track.masks[t]
        if not mask.any():
            continue
        contrasts.append(surround_contrast(images[t], mask))
        window = mask_window(mask)
        velocity, inner = np.asarray(motion.velocity[t])[window], mask[window]
        compensated = velocity[inner]
        background = np.asarray(motion.image_flow[t])[window][inner] - compensated
        camera = float(np.median(np.linalg.norm(background, axis=-1)))
        ratios.append(float(np.median(np.linalg.norm(compensated, axis=-1))) / camera if camera > 0 else math.inf)
    if not contrasts:
        return False
    return (float(np.median(contrasts)) < config.background_contrast
            and float(np.median(ratios)) < config.background_speed_ratio)


def scene_share(track: Track, motion: MotionField, config: ClassicTrackerConfig = ClassicTrackerConfig()) -> float:
    """How much of the scene right around a track moves as it does in the image: median over its
    detected frames t < T − 1 of the fraction of the ring of pixels between ``SMEAR_PX`` and
    ``scene_ring_px`` from its mask whose forward flow t → t + 1 is within max(``scene_flow_px``,
    ``scene_flow_relative`` · the track's compensated speed) of the track's (medians under its
    moving pixels; frames where none of them moves are left out); 0 when no frame is left.

    A mover's flow differs from the ground or wall around it by its own motion, which is what
    made it a detection; a patch of static scene whose depth the background model guessed wrong
    (the top of a pillar before a far wall, the textureless windshield of a parked car: the
    residual comes from the predicted flow, not from the patch) moves with the rest of its
    surface beside it, and so does a piece cut out of a larger mover. Under a following camera a
    mover's own image motion is small, but the scene around it flows past it. Reads the full
    ``forward_flow`` (the ring lies off the moving components the compact flows keep).
    """
    kernel_near = np.ones((2 * SMEAR_PX + 1,) * 2, np.uint8)
    kernel_far = np.ones((2 * config.scene_ring_px + 1,) * 2, np.uint8)
    shares = []
    for t in sorted(track.detected):
        mask = track.masks[t]
        if t >= len(motion.forward_flow) or not mask.any():
            continue
        window = mask_window(mask, config.scene_ring_px)
        inner = mask[window]
        ring = cv2.dilate(inner.view(np.uint8), kernel_far) > cv2.dilate(inner.view(np.uint8), kernel_near)
        if not ring.any():
            continue
        own = inner & np.asarray(motion.moving[t])[window]
        if not own.any():  # held by the background model while it stood still: no motion to compare
            continue
        flow = np.asarray(motion.forward_flow[t][window], np.float32)
        speed = float(np.median(np.linalg.norm(np.asarray(motion.velocity[t])[window][own], axis=-1)))
        tolerance = max(config.scene_flow_px, config.scene_flow_relative * speed)
        apart = np.linalg.norm(flow[ring] - np.median(flow[own], axis=0), axis=-1)
        shares.append(float(np.mean(apart <= tolerance)))
    return float(np.median(shares)) if shares else 0.0


def stitch(tracks: list[Track], size: tuple[int, int], config: ClassicTrackerConfig,
           short_frames: int | None = None) -> list[Track]:
    """Join track fragments: B continues A when B's first detection comes after A's last,
    within ``stitch_max_gap`` frames, with colours at least ``colour_min_similarity``
    alike, areas within a factor 3 (unless one is cut by the image border) and a jump from
    where A's velocity puts it under ``max_jump`` of the image diagonal per frame of gap up to
    2 · ``max_coast`` + 1 frames (what coasting could have bridged); after a longer gap, from
    there or from where A was last seen, under ``max_jump`` of the diagonal (an object hidden
    behind another for a while reappears near where it went, not anywhere of its colour). Best-matching pairs first; A's coasted
    frames from B's start on give way.

    With ``stitch_near_diagonals`` > 0, B also continues A whatever their colours when it starts within
    2 · ``max_coast`` + 1 frames where A's velocity puts it within that many of A's last box diagonals,
    and both are detected in fewer than ``short_frames`` frames (None: any): the pieces of one mover the
    motion mask cut differently (a person's shirt, then legs), too short to be kept alone; tracks long
    enough to stand on their own keep the colour test."""
    width, height = size
    diagonal = math.hypot(width, height)
    coast_gap = 2 * config.max_coast + 1

    def cut(box: np.ndarray) -> bool:
        return box[0] <= 1 or box[1] <= 1 or box[2] >= width - 1 or box[3] >= height - 1

    def centre(box: np.ndarray) -> np.ndarray:
        return (box[:2] + box[2:]) / 2

    while True:
        best = None
        for a, early in enumerate(tracks):
            end = max(early.detected)
            for b, late in enumerate(tracks):
                start = min(late.detected)
                gap = start - end
                if a == b or not 0 < gap <= config.stitch_max_gap or min(late.boxes) <= end:
                    continue
                # cheapest tests first (speed): masks are unpacked for their areas only for a candidate
                similarity = colour_similarity(early.colours, late.first_colours)
                if best is not None and similarity <= best[0]:
                    continue
                jump = np.linalg.norm(centre(late.boxes[start]) - centre(early.boxes[end] + np.tile(early.velocity * gap, 2)))
                if similarity < config.colour_min_similarity and not (
                        config.stitch_near_diagonals > 0 and 0 < gap <= coast_gap
                        and (short_frames is None or max(len(early.detected), len(late.detected)) < short_frames)
                        and jump <= config.stitch_near_diagonals * _diagonal(early.boxes[end])):
                    continue
                if gap > coast_gap:  # a velocity carried that far (often of a box cut by the border) misleads
                    jump = min(jump, np.linalg.norm(centre(late.boxes[start]) - centre(early.boxes[end])))
                if not jump <= config.max_jump * diagonal * (gap if gap <= coast_gap else 1):
                    continue
                ratio = np.count_nonzero(late.masks[start]) / max(np.count_nonzero(early.masks[end]), 1)
                if 1 / 3 <= ratio <= 3 or cut(late.boxes[start]) or cut(early.boxes[end]):
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


def _step_cut(track: Track, hsv: dict, images: np.ndarray, least: int,
              config: ClassicTrackerConfig) -> tuple[int, np.ndarray, np.ndarray] | None:
    """The frame to cut ``track`` at (:func:`split_steps`) and the mean colour histograms of the w
    detected frames before and after it, or None.

    Over the track's detected frames f_0 < … < f_{n−1} (areas a_i of their masks) and w =
    ``step_window``, a cut before f_i (w ≤ i ≤ n − w) is a step when median(a_i … a_{i+w−1}) and
    median(a_{i−w} … a_{i−1}) differ by at least ``step_area_ratio`` and the mean hue–saturation
    histograms of those two runs of frames are under ``step_max_similarity`` alike; both pieces must
    keep at least ``least`` detected frames, and no two of the 2w frames may lie more than
    ``max_coast`` + 1 apart (a join over a longer gap is :func:`stitch`'s). The largest step wins
    (between equal ones, the largest change of area from f_{i−1} to f_i). ``hsv``: frame →
    (h, w, 3) HSV image, filled on demand (colours are read only where the area steps).
    """
    frames, window = sorted(track.detected), config.step_window
    if len(frames) < 2 * window:
        return None
    areas = np.array([np.count_nonzero(track.masks[t]) for t in frames], np.float64)
    gaps = np.diff(frames)
    steps = []
    for i in range(window, len(frames) - window + 1):
        if min(i, len(frames) - i) < least or np.max(gaps[i - window:i + window - 1]) > config.max_coast + 1:
            continue  # across a longer gap stitch judged the join (an object hidden for a while)
        before, after = np.median(areas[i - window:i]), np.median(areas[i:i + window])
        step = abs(math.log(max(after, 1.0) / max(before, 1.0)))
        if step >= math.log(config.step_area_ratio):
            # ties (the medians hold over a few cuts around a step) go to the sharpest change between neighbours
            steps.append((step, abs(math.log(max(areas[i], 1.0) / max(areas[i - 1], 1.0))), i))
    colours: dict[int, np.ndarray] = {}

    def mean_colours(run: list[int]) -> np.ndarray:
        for t in run:
            if t not in colours:
                if t not in hsv:
                    hsv[t] = cv2.cvtColor(images[t], cv2.COLOR_RGB2HSV)
                window_slice = mask_window(track.masks[t])
                colours[t] = colour_histogram(hsv[t][window_slice], track.masks[t][window_slice])
        return np.mean([colours[t] for t in run], axis=0)

    for _, _, i in sorted(steps, reverse=True):
        similarity = colour_similarity(mean_colours(frames[i - window:i]), mean_colours(frames[i:i + window]))
        if similarity < config.step_max_similarity:
            return frames[i], mean_colours(frames[i - window:i]), mean_colours(frames[i:i + window])
    return None


def _cut(track: Track, start: int, colours_before: np.ndarray, colours_after: np.ndarray) -> tuple[Track, Track]:
    """``track``'s frames before ``start`` and from it on, as two tracks (coasted frames go with the
    detection they were carried from: the earlier piece keeps those before ``start``); the colours
    each piece has at the cut (histograms) become the earlier one's last and the later one's first."""
    early, late = Track(), Track()
    for t in sorted(track.boxes):
        piece = early if t < start else late
        piece.boxes[t], piece.masks[t] = track.boxes[t], track.masks[t]
    early.detected = {t for t in track.detected if t < start}
    late.detected = {t for t in track.detected if t >= start}
    early.colours, early.first_colours = colours_before, track.first_colours
    late.colours, late.first_colours = track.colours, colours_after
    early.velocity = late.velocity = track.velocity
    return early, late


def split_steps(tracks: list[Track], images: np.ndarray, config: ClassicTrackerConfig) -> list[Track]:
    """Cut tracks where their object changes: where the mask area steps by ``step_area_ratio`` while
    the colours change (:func:`_step_cut`), repeatedly; pieces keep the tracks' order.

    Association joins a detection to a track by overlap, nearness and colour, one frame at a time:
    a track born on a false mover (a road marking at the border moving with the background) takes
    over a real mover that comes out next to it, and a track whose object stops may take another that
    passes; the box then grows or shrinks several times over in a few frames. Cut there, each piece
    faces :func:`drop_reason` as a track of its own (a piece that moved with the background fails it).
    images: (T, h, w, 3) uint8 RGB. 0 ``step_area_ratio``: the tracks unchanged.
    """
    if config.step_area_ratio <= 0:
        return tracks
    least = _min_frames(len(images), config)
    hsv: dict[int, np.ndarray] = {}
    result: list[Track] = []
    pending = list(reversed(tracks))
    while pending:
        track = pending.pop()
        cut = _step_cut(track, hsv, images, least, config)
        if cut is None:
            result.append(track)
        else:
            pending.extend(reversed(_cut(track, *cut)))
    return result


def _diagonal(box: np.ndarray) -> float:
    return float(np.linalg.norm(box[2:] - box[:2]))


def extend_backwards(tracks: list[Track], motion: MotionField, images: np.ndarray,
                     config: ClassicTrackerConfig = ClassicTrackerConfig()) -> None:
    """Carry each track back before its first frame, in place, while its object is still there.

    A track's mask is carried back frame by frame on the backward flow (:func:`carry`).
    Where the carried mask lies mostly (≥ 50 %) inside another track's detected mask, the
    object was there but merged with that one (movers that start together and part later):
    while the colours under the carried mask stay ``hidden_min_similarity`` alike to the
    track's first detection, the track takes its carried mask and the other keeps the rest
    (at least ``min_area_fraction`` of the frame). Elsewhere it coasts back (:func:`coast`:
    the pixels under it must not change) at most ``max_coast`` frames.
    """
    height, width = images.shape[1:3]
    min_area = max(config.min_area_fraction * height * width, 4)
    for track in tracks:
        free = 0
        t = min(track.boxes) - 1
        while t >= 0:
            box, mask, _ = carry(track.boxes[t + 1], track.masks[t + 1], motion.backward_flow[t])
            if not mask.any() or inside_fraction(box, (width, height)) <= 0.5:
                break
            area = np.count_nonzero(mask)
            hosts = [other for other in tracks if other is not track and t in other.detected
                     and np.count_nonzero(other.masks[t] & mask) >= 0.5 * area]
            if hosts:
                hsv = cv2.cvtColor(images[t], cv2.COLOR_RGB2HSV)
                host = max(hosts, key=lambda other: np.count_nonzero(other.masks[t] & mask))
                rest = host.masks[t] & ~mask
                similarity = colour_similarity(colour_histogram(hsv, mask), track.first_colours)
                if np.count_nonzero(rest) < min_area or similarity < config.hidden_min_similarity:
                    break
                host.masks[t], host.boxes[t] = rest, mask_box(rest)
            else:
                free += 1
                if free > config.max_coast or coast(track, t + 1, t, motion.backward_flow[t], images, config) is None:
                    break
            track.boxes[t], track.masks[t] = box, mask
            t -= 1


def absorb_fragments(tracks: list[Track], config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[Track]:
    """Merge small tracks into the large track they cling to: a fragment of a mover (its feet,
    its trailing edge, a limb) rather than an object of its own.

    Track A absorbs track B when B's median detected area is under ``fragment_max_area``
    of A's, and in at least 70 % of the frames both are detected B's mask touches A's
    (within 2 px) and B's box centre moves within ``split_min_px`` (or
    ``split_min_relative`` of the faster) of A's from the previous such frame. B's masks
    join A's in the frames both have; B's other frames are dropped. Largest first.
    """
    order = sorted(range(len(tracks)), key=lambda k: -_median_area(tracks[k]))
    absorbed: set[int] = set()
    kernel = np.ones((5, 5), np.uint8)
    for i in order:
        big = tracks[i]
        if i in absorbed:
            continue
        for j in order:
            small = tracks[j]
            if j == i or j in absorbed or _median_area(small) > config.fragment_max_area * _median_area(big):
                continue
            both = sorted(big.detected & small.detected)
            if len(both) < 2:
                continue
            clinging = 0
            for previous, t in zip(both[:-1], both[1:]):
                touching = np.any(cv2.dilate(small.masks[t].astype(np.uint8), kernel).astype(bool) & big.masks[t])
                move_big = _centre(big.boxes[t]) - _centre(big.boxes[previous])
                move_small = _centre(small.boxes[t]) - _centre(small.boxes[previous])
                faster = max(np.linalg.norm(move_big), np.linalg.norm(move_small))
                alike = np.linalg.norm(move_big - move_small) <= max(config.split_min_px,
                                                                      config.split_min_relative * faster)
                clinging += bool(touching and alike)
            if clinging < 0.7 * (len(both) - 1):
                continue
            for t in both:
                big.masks[t] = big.masks[t] | small.masks[t]
                big.boxes[t] = mask_box(big.masks[t])
            absorbed.add(j)
    return [track for k, track in enumerate(tracks) if k not in absorbed]


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def _median_area(track: Track) -> float:
    return float(np.median([np.count_nonzero(track.masks[t]) for t in track.detected]))


def drop_duplicates(tracks: list[Track], config: ClassicTrackerConfig) -> list[Track]:
    """Drop tracks that are a piece of a longer one: in at least ``duplicate_min_frames`` of
    the frames both are detected, at least 60 % of the shorter track's mask lies inside the
    longer one's (a shadow, a limb or a fragment the motion mask cut off). Longest first."""
    order = sorted(range(len(tracks)), key=lambda k: -len(tracks[k].detected))
    kept: list[int] = []
    for k in order:
        track = tracks[k]
        duplicate = False
        for j in kept:
            both = sorted(track.detected & tracks[j].detected)
            if not both:
                continue
            inside = [np.count_nonzero(track.masks[t] & tracks[j].masks[t]) / max(np.count_nonzero(track.masks[t]), 1)
                      for t in both]
            if np.mean(np.array(inside) >= 0.6) * len(both) >= config.duplicate_min_frames * len(track.detected):
                duplicate = True
                break
        if not duplicate:
            kept.append(k)
    return [tracks[k] for k in sorted(kept)]


def _median_diagonal(track: Track) -> float:
    return float(np.median([_diagonal(track.boxes[t]) for t in track.detected]))


def _min_frames(n_frames: int, config: ClassicTrackerConfig) -> int:
    """Frames a track must be detected in to be kept: max(``min_frames``, ``min_frame_fraction`` · T)."""
    return max(config.min_frames, math.ceil(config.min_frame_fraction * n_frames - 1e-9))


def _min_travel(track: Track, n_frames: int, config: ClassicTrackerConfig) -> float:
    """Least travel in box diagonals: ``min_steady_travel`` for tracks detected in most frames."""
    steady = len(track.detected) >= config.steady_fraction * n_frames
    return config.min_steady_travel if steady else config.min_travel


def off_epipolar(track: Track, motion: MotionField, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                 noise_cache: dict | None = None) -> bool:
    """Whether a track leaves its epipolar lines as a mover does (or cannot be judged so).

    Under a translating camera a static pixel moves along its epipolar line whatever its
    depth; a region the background model mistook for a mover because it guessed the depth
    wrong (the edge of a pillar before a far wall) stays on the lines. True when fewer than
    half the track's detected frames have an epipolar background model, else when the
    median distance of its moving pixels from their lines (:func:`.epipolar.epipolar_offset`)
    reaches ``min_epipolar_px`` or ``epipolar_noise_ratio`` times the background's (the flow's
    own error: well under ``min_epipolar_px`` for a slow camera or a small frame).
    ``noise_cache``: the background's level per frame, shared by the tracks of a clip.
    """
    frames = sorted(track.detected)
    offset, noise, used = epipolar_offset(track.masks, frames, motion.forward_flow, motion.backgrounds,
                                          motion.moving, noise_cache)
    return used < 0.5 * len(frames) or offset >= min(config.min_epipolar_px, config.epipolar_noise_ratio * noise)


def drop_reason(track: Track, motion: MotionField, images: np.ndarray, n_frames: int, config: ClassicTrackerConfig,
                noise_cache: dict | None = None) -> str | None:
    """Why :func:`clean_tracks` drops a track before joining fragments (None: kept), cheapest test first:
    ``"frames"`` (detected in too few frames), ``"area"`` (too small), ``"point_support"``, ``"travel"``,
    ``"epipolar"`` (keeps to its epipolar lines), ``"edge_motion"`` (moves along its edges only,
    :func:`.evidence.normal_motion`), ``"scene_share"``, ``"background_texture"``."""
    height, width = images.shape[1:3]
    # written as `not kept-test` so a NaN measure drops, as before
    if not len(track.detected) >= _min_frames(n_frames, config):
        return "frames"
    if not np.median([track.masks[t].sum() for t in track.detected]) >= config.min_area_fraction * height * width:
        return "area"
    if not point_support(track, motion.moving_points) >= config.min_point_support:
        return "point_support"
    if not travel(track, motion) >= _min_travel(track, n_frames, config) * _median_diagonal(track):
        return "travel"
    if not off_epipolar(track, motion, config, noise_cache):
        return "epipolar"
    if config.min_normal_motion > 0 and normal_motion(track.masks, sorted(track.detected), images,
                                                      motion.velocity) < config.min_normal_motion:
        return "edge_motion"
    if config.scene_share > 0 and scene_share(track, motion, config) >= config.scene_share:
        return "scene_share"
    if background_texture(track, motion, images, config):
        return "background_texture"
    return None


def clean_tracks(tracks: list[Track], motion: MotionField, images: np.ndarray,
                 config: ClassicTrackerConfig = ClassicTrackerConfig(), dropped: dict[str, int] | None = None) -> list[Track]:
    """Stitch fragments, cut tracks whose object changes (:func:`split_steps`, off by default), drop weak
    tracks, absorb fragments, drop duplicates, extend the rest backwards.

    Tracks detected in fewer than max(``min_frames``, ``min_frame_fraction`` · T) frames,
    with a median detected area under ``min_area_fraction``, or with moving corners
    (``MotionField.moving_points``) in fewer than ``min_point_support`` of their detected
    frames (dense-flow errors on repetitive texture, which sparse corner tracks do not
    share), whose box never gets ``min_travel`` of its diagonal away from where it
    started against the background (:func:`travel`; ``min_steady_travel`` for tracks detected
    in at least ``steady_fraction`` of the frames), that keep to their epipolar lines under
    a translating camera (:func:`off_epipolar`), whose compensated motion crosses their image edges
    less than ``min_normal_motion`` (0: off, the default; :func:`.evidence.normal_motion`: a flow
    error moving along a long straight edge of static scene), that look like the background around them
    and move no more than the camera's flow error (:func:`background_texture`), or whose image
    motion at least ``scene_share`` (0: off, the default) of the ring around them shares (:func:`scene_share`)
    are dropped (:func:`drop_reason`). ``dropped``, when given, counts them in place by reason
    (the quality step reads how confused the tracker was from it; fragments absorbed or dropped
    as duplicates are pieces of a kept track and are not counted).
    Returns the tracks in order of first appearance.
    """
    n_frames, height, width = images.shape[:3]
    tracks = stitch(list(tracks), (width, height), config, _min_frames(n_frames, config))
    tracks = split_steps(tracks, images, config)
    noise_cache: dict = {}
    kept = []
    for track in tracks:
        reason = drop_reason(track, motion, images, n_frames, config, noise_cache)
        if reason is None:
            kept.append(track)
        elif dropped is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
    kept = drop_duplicates(absorb_fragments(kept, config), config)
    extend_backwards(kept, motion, images, config)
    kept.sort(key=lambda track: (min(track.boxes), -len(track.detected)))
    return kept
