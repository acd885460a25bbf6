"""Tests of tracking/classic/association.py and cleanup.py on hand-built detections and flows."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from recon4d.tracking.classic.association import (
    Track,
    appearance_changed,
    associate,
    carry,
    colour_histogram,
    colour_similarity,
    mask_overlaps,
    rejoin_alike,
    same_motion,
    split_newcomer,
)
from recon4d.tracking.classic.cleanup import (
    background_texture,
    clean_tracks,
    drop_duplicates,
    extend_backwards,
    stitch,
    surround_contrast,
    travel,
)
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.motion import MotionField
from recon4d.tracking.classic.segment import PROFILE_PIECE, Detection, detect_moving_regions

HEIGHT, WIDTH = 60, 100


def square(x: float, y: float, size: int = 12) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    x0, y0 = int(round(x)), int(round(y))
    mask[max(y0, 0):max(y0 + size, 0), max(x0, 0):max(x0 + size, 0)] = True
    return mask


def detection(mask: np.ndarray) -> Detection:
    ys, xs = np.nonzero(mask)
    return Detection(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64), mask)


def crossing(n_frames: int = 12):
    """Two coloured squares crossing: red moves right, blue moves left, one row apart.

    Returns frames (T, h, w, 3), a MotionField whose flows and velocities are exact, the
    per-frame detections (one merged detection while they overlap) and the true positions.
    """
    frames = np.full((n_frames, HEIGHT, WIDTH, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    texture = rng.integers(90, 170, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    frames[:] = texture
    flow = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    red_x = 10 + 6.0 * np.arange(n_frames)
    blue_x = 78 - 6.0 * np.arange(n_frames)
    detections = []
    for t in range(n_frames):
        red, blue = square(red_x[t], 20), square(blue_x[t], 26)
        frames[t][blue] = (30, 60, 230)
        frames[t][red] = (230, 40, 30)
        flow[t][blue] = (-6.0, 0.0)
        flow[t][red] = (6.0, 0.0)
        union = red | blue
        n_labels, labels = cv2.connectedComponents(union.astype(np.uint8))
        detections.append([detection(labels == i) for i in range(1, n_labels)])
    forward = flow[:-1]
    backward = -flow[1:]
    moving = np.zeros((n_frames, HEIGHT, WIDTH), bool)
    for t, found in enumerate(detections):
        for d in found:
            moving[t] |= d.mask
    motion = MotionField(forward, backward, [], np.where(moving, 5.0, 0.0).astype(np.float32), flow, flow, moving,
                         np.ones(n_frames, np.float32), [np.argwhere(m)[:, ::-1].astype(np.float32) for m in moving])
    return frames, motion, detections, red_x, blue_x


def test_mask_overlaps_counts_shared_pixels():
    labels = np.zeros((4, 4), np.int32)
    labels[0, :2], labels[3, 3] = 1, 2
    masks = [np.ones((4, 4), bool), np.eye(4, dtype=bool)]
    np.testing.assert_array_equal(mask_overlaps(masks, labels, 2), [[2, 1], [1, 1]])
    assert mask_overlaps([], labels, 2).shape == (0, 2)


def test_same_motion_rule():
    config = ClassicTrackerConfig()
    assert same_motion(np.array([3.0, 0]), np.array([3.5, 0]), 3.5, config)
    assert not same_motion(np.array([3.0, 0]), np.array([-3.0, 0]), 3.0, config)
    assert same_motion(np.array([10.0, 0]), np.array([11.5, 0]), 4.0, config)  # camera pan: differs by < 0.5 · 4


def test_carry_and_appearance():
    mask = square(10, 10)
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[mask] = (4.0, -2.0)
    box, moved, shift = carry(np.array([10, 10, 22, 22], float), mask, flow)
    np.testing.assert_allclose(shift, [4, -2])
    np.testing.assert_allclose(box, [14, 8, 26, 20])
    assert moved.sum() == mask.sum() and moved[8, 14]
    image = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    assert appearance_changed(image, image, mask, np.zeros(2)) == 0.0
    assert appearance_changed(image, 255 - image, mask, np.zeros(2)) > 0.5
    assert appearance_changed(image, image, mask, np.array([500.0, 0])) == 1.0


def test_colour_histogram_similarity():
    hsv = cv2.cvtColor(np.full((10, 10, 3), (200, 30, 30), np.uint8), cv2.COLOR_RGB2HSV)
    red = colour_histogram(hsv, np.ones((10, 10), bool))
    assert abs(red.sum() - 1) < 1e-6 and colour_similarity(red, red) > 0.99
    blue = colour_histogram(cv2.cvtColor(np.full((10, 10, 3), (30, 30, 200), np.uint8), cv2.COLOR_RGB2HSV),
                            np.ones((10, 10), bool))
    assert colour_similarity(red, blue) < 0.1


def test_associate_keeps_identities_through_a_crossing():
    frames, motion, detections, red_x, blue_x = crossing()
    merged = [t for t, found in enumerate(detections) if len(found) == 1]
    assert merged, "the squares must touch in some frames for this test to mean anything"
    tracks = associate(detections, motion, frames, ClassicTrackerConfig(min_area_fraction=0.001))
    assert len(tracks) == 2
    for track, true_x in zip(sorted(tracks, key=lambda k: k.boxes[0][0]), (red_x, blue_x)):
        assert len(track.boxes) == len(frames)
        left = np.array([track.boxes[t][0] for t in range(len(frames))])
        np.testing.assert_allclose(left, true_x, atol=4)  # no swap: each track stays on its square


def test_associate_joins_pieces_of_one_mover():
    frames, motion, detections, _, _ = crossing(6)
    # the red square's detection cut in two halves that move alike in frames 2 and 3
    for t in (2, 3):
        red = max(detections[t], key=lambda d: d.box[0] < 50 and d.mask.sum())
        top, bottom = red.mask.copy(), red.mask.copy()
        rows = np.flatnonzero(red.mask.any(axis=1))
        top[rows[len(rows) // 2]:] = False
        bottom[:rows[len(rows) // 2]] = False
        detections[t] = [d for d in detections[t] if d is not red] + [detection(top), detection(bottom)]
    tracks = associate(detections, motion, frames, ClassicTrackerConfig(min_area_fraction=0.001))
    assert len(tracks) == 2  # no third track from the extra piece


def walking_together(pieces: tuple[int, int], n_frames: int = 7, cut: int = 3):
    """Two squares 4 px apart moving right alike (people walking side by side): one detection holds both
    (and the ground between them) until frame ``cut``, then one detection each, labelled ``pieces`` (the
    background model's foreground pieces, or 0 when no model saw them apart). Returns the tracks of
    :func:`associate` and the right square's masks."""
    rng = np.random.default_rng(3)
    frames = np.repeat(rng.integers(90, 170, (1, HEIGHT, WIDTH, 3)).astype(np.uint8), n_frames, axis=0)
    flow = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    detections, rights, moving = [], [], np.zeros((n_frames, HEIGHT, WIDTH), bool)
    for t in range(n_frames):
        left, right = square(10 + 3.0 * t, 20), square(26 + 3.0 * t, 20)
        frames[t][left] = (230, 40, 30)
        frames[t][right] = (200, 60, 40)
        between = np.zeros_like(left)
        between[20:32, int(22 + 3 * t):int(26 + 3 * t)] = True
        moving[t] = left | right | between
        flow[t][moving[t]] = (3.0, 0.0)
        rights.append(right)
        if t < cut:
            detections.append([detection(moving[t])])
        else:
            detections.append([Detection(detection(left).box, left, pieces[0]),
                               Detection(detection(right).box, right, pieces[1])])
    motion = MotionField(flow[:-1], -flow[1:], [], np.where(moving, 5.0, 0.0).astype(np.float32), flow, flow, moving,
                         np.ones(n_frames, np.float32), [np.argwhere(m)[:, ::-1].astype(np.float32) for m in moving])
    return associate(detections, motion, frames, ClassicTrackerConfig(min_area_fraction=0.001)), rights


def test_associate_does_not_join_separate_silhouettes_again():
    # without the background model the two detections are pieces of the merged track's object
    joined, _ = walking_together((0, 0))
    assert len(joined) == 1
    # the background model saw two silhouettes: the second square gets its own track
    tracks, rights = walking_together((1, 2))
    assert len(tracks) == 2
    late = max(tracks, key=lambda track: min(track.boxes))
    assert min(late.boxes) == 3
    for t in range(3, 7):
        np.testing.assert_allclose(late.boxes[t], detection(rights[t]).box)


def joining(n_frames: int = 7, join: int = 3, blue_flow: tuple[float, float] = (3.0, -2.5)):
    """A red square moving right (3 px per frame) alone until frame ``join``, when a blue square
    appears right next to it, touching it, and moves by ``blue_flow``: from then on the motion
    mask holds one detection with both. Returns frames, MotionField, detections, the squares' masks."""
    rng = np.random.default_rng(2)
    frames = np.repeat(rng.integers(90, 170, (1, HEIGHT, WIDTH, 3)).astype(np.uint8), n_frames, axis=0)
    flow = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    reds, blues, detections = [], [], []
    for t in range(n_frames):
        red = square(10 + 3.0 * t, 20)
        blue = square(22 + 3.0 * t + blue_flow[0] * (t - join) - 3.0 * (t - join),
                      20 + blue_flow[1] * (t - join)) if t >= join else np.zeros_like(red)
        frames[t][blue] = (30, 60, 230)
        frames[t][red] = (230, 40, 30)
        flow[t][red] = (3.0, 0.0)
        flow[t][blue] = blue_flow
        reds.append(red)
        blues.append(blue)
        detections.append([detection(red | blue)])
    moving = np.array(reds) | np.array(blues)
    motion = MotionField(flow[:-1], -flow[1:], [], np.where(moving, 5.0, 0.0).astype(np.float32), flow, flow, moving,
                         np.ones(n_frames, np.float32), [np.argwhere(m)[:, ::-1].astype(np.float32) for m in moving])
    return frames, motion, detections, reds, blues


def test_split_newcomer_cuts_out_a_mover_that_joins_a_tracked_one():
    frames, motion, detections, reds, blues = joining()
    config, t = ClassicTrackerConfig(min_area_fraction=0.001), 4
    predicted = reds[t]  # the red track's mask carried into frame t
    kept, newcomer = split_newcomer(predicted, detections[t][0].mask, motion.image_flow[t], motion.velocity[t],
                                    motion.moving[t], 6, config)
    assert newcomer is not None
    np.testing.assert_array_equal(kept, reds[t])
    np.testing.assert_array_equal(newcomer, blues[t])
    # a part that moves with the track (what the motion mask had missed of the same object) stays
    _, motion_alike, detections_alike, reds, _ = joining(blue_flow=(3.0, 0.0))
    kept, newcomer = split_newcomer(reds[t], detections_alike[t][0].mask, motion_alike.image_flow[t],
                                    motion_alike.velocity[t], motion_alike.moving[t], 6, config)
    assert newcomer is None and kept is detections_alike[t][0].mask
    # nor is anything cut when the detection does not reach past the prediction
    _, newcomer = split_newcomer(reds[t], reds[t], motion.image_flow[t], motion.velocity[t], motion.moving[t], 6, config)
    assert newcomer is None


def test_associate_gives_a_mover_that_joins_a_track_its_own_track():
    frames, motion, detections, reds, blues = joining()
    tracks = associate(detections, motion, frames, ClassicTrackerConfig(min_area_fraction=0.001))
    assert len(tracks) == 2
    red, blue = tracks
    assert sorted(red.detected) == list(range(len(frames))) and sorted(blue.detected) == list(range(3, len(frames)))
    for t in range(len(frames)):  # the red track's box never takes in the blue square
        np.testing.assert_allclose(red.boxes[t], detection(reds[t]).box, atol=1)
    for t in range(3, len(frames)):
        np.testing.assert_allclose(blue.boxes[t], detection(blues[t]).box, atol=1)


def make_track(masks: dict[int, np.ndarray], detected=None) -> Track:
    track = Track()
    hsv = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for t in sorted(masks):
        track.add(t, masks[t], colour_histogram(hsv, masks[t]) if (detected is None or t in detected) else None)
    return track


def test_drop_duplicates_and_stitch():
    whole = make_track({t: square(10 + 3 * t, 20, 20) for t in range(8)})
    piece = make_track({t: square(12 + 3 * t, 22, 8) for t in range(2, 8)})
    other = make_track({t: square(70, 20 + t, 10) for t in range(8)})
    kept = drop_duplicates([whole, piece, other], ClassicTrackerConfig())
    assert kept == [whole, other]
    early = make_track({t: square(10 + 3 * t, 20) for t in range(4)})
    late = make_track({t: square(10 + 3 * t, 20) for t in range(6, 10)})
    joined = stitch([early, late], (WIDTH, HEIGHT), ClassicTrackerConfig())
    assert len(joined) == 1 and sorted(joined[0].detected) == [0, 1, 2, 3, 6, 7, 8, 9]


def test_stitch_rejoins_a_track_whose_colours_drifted():
    """A mover's colour histogram drifts with its pose and the background its mask takes in: a
    track broken for a few frames is rejoined at similarity 0.6-0.7 (the old 0.7 left two tracks)."""
    early = make_track({t: square(10 + 3 * t, 20) for t in range(4)})
    late = make_track({t: square(10 + 3 * t, 20) for t in range(7, 11)})
    early.colours = np.zeros(128, np.float32)
    early.colours[0] = 1.0
    late.first_colours = np.zeros(128, np.float32)
    late.first_colours[:2] = (0.75, 0.25)
    assert 0.6 < colour_similarity(early.colours, late.first_colours) < 0.7
    joined = stitch([early, late], (WIDTH, HEIGHT), ClassicTrackerConfig())
    assert len(joined) == 1 and sorted(joined[0].detected) == [0, 1, 2, 3, 7, 8, 9, 10]
    # a different object (disjoint colours) at the same place is not joined
    late.first_colours = np.zeros(128, np.float32)
    late.first_colours[5] = 1.0
    early = make_track({t: square(10 + 3 * t, 20) for t in range(4)})
    assert len(stitch([early, late], (WIDTH, HEIGHT), ClassicTrackerConfig())) == 2


def test_stitch_bridges_an_object_hidden_for_a_while_but_not_a_far_jump():
    """A track broken for 12 frames (hidden behind something; the old window was 9) is one
    object when it reappears where its velocity puts it; far from there it is another."""
    early = make_track({t: square(10 + t, 20) for t in range(4)})
    late = make_track({t: square(10 + t, 20) for t in range(15, 19)})
    joined = stitch([early, late], (WIDTH, HEIGHT), ClassicTrackerConfig())
    assert len(joined) == 1 and sorted(joined[0].detected) == [0, 1, 2, 3, 15, 16, 17, 18]
    early = make_track({t: square(10 + t, 20) for t in range(4)})
    # 58 px from where its velocity puts it and 70 px from where it was last seen: > 0.4 of the diagonal
    far = make_track({t: square(80, 40) for t in range(15, 19)})
    assert len(stitch([early, far], (WIDTH, HEIGHT), ClassicTrackerConfig())) == 2
    early = make_track({t: square(10 + t, 20) for t in range(4)})
    late = make_track({t: square(10 + t, 20) for t in range(15, 19)})
    assert len(stitch([early, late], (WIDTH, HEIGHT), ClassicTrackerConfig(stitch_max_gap=9))) == 2
    # a velocity carried over 12 frames misleads (here 8 px per frame towards the border, where
    # the object turned back): reappearing near where it was last seen also joins
    early = make_track({t: square(40, 20 + 8 * t) for t in range(4)})
    back = make_track({t: square(40, 30) for t in range(15, 19)})
    assert len(stitch([early, back], (WIDTH, HEIGHT), ClassicTrackerConfig())) == 1


def test_travel_tells_movers_from_ghosts():
    frames, motion, detections, _, _ = crossing(6)
    mover = make_track({t: square(10 + 6.0 * t, 20) for t in range(6)})
    assert travel(mover, motion) > 25
    ghost = make_track({t: square(40, 40) for t in range(6)})
    assert travel(ghost, motion) < 1


def test_extend_backwards_takes_a_track_out_of_the_one_it_was_merged_with():
    n_frames = 6
    frames = np.zeros((n_frames, HEIGHT, WIDTH, 3), np.uint8)
    flow = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    for t in range(n_frames):
        frames[t][square(20, 20, 14)] = (220, 30, 30)  # red square, still
        frames[t][square(34, 20, 14)] = (30, 30, 220)  # blue square next to it, still
    group = make_track({t: square(20, 20, 14) | square(34, 20, 14) for t in range(3)}
                       | {t: square(20, 20, 14) for t in range(3, n_frames)})
    hsv = cv2.cvtColor(frames[3], cv2.COLOR_RGB2HSV)
    blue = Track()
    for t in range(3, n_frames):
        blue.add(t, square(34, 20, 14), colour_histogram(hsv, square(34, 20, 14)))
    motion = MotionField(flow[:-1], flow[:-1], [], np.zeros((n_frames, HEIGHT, WIDTH), np.float32), flow, flow,
                         np.zeros((n_frames, HEIGHT, WIDTH), bool), np.ones(n_frames, np.float32),
                         [np.zeros((0, 2), np.float32)] * n_frames)
    extend_backwards([group, blue], motion, frames, ClassicTrackerConfig())
    assert sorted(blue.boxes) == list(range(n_frames))
    for t in range(3):
        np.testing.assert_allclose(blue.boxes[t], [34, 20, 48, 34])
        np.testing.assert_allclose(group.boxes[t], [20, 20, 34, 34])


def test_clean_tracks_drops_brief_and_still_tracks():
    frames, motion, detections, _, _ = crossing()
    config = ClassicTrackerConfig(min_area_fraction=0.001)
    tracks = associate(detections, motion, frames, config)
    brief = make_track({0: square(80, 45), 1: square(82, 45)})
    kept = clean_tracks(tracks + [brief], motion, frames, config)
    assert len(kept) == 2 and brief not in kept


def test_clean_tracks_keeps_a_steady_mover_that_moves_in_place():
    """A track detected in every frame that wobbles a little (a person bending) needs only
    min_steady_travel; the same wobble seen in a third of the frames (a ghost) is dropped."""
    frames, motion, _, _, _ = crossing()
    n_frames = frames.shape[0]
    wobble = {t: square(40 + 3.0 * (t % 2), 40, 14) for t in range(n_frames)}  # 3 px of a 20 px diagonal
    flicker = {t: square(70 + 3.0 * (t % 2), 40, 14) for t in range(0, n_frames, 3)}
    config = ClassicTrackerConfig(min_area_fraction=0.001, min_frames=2, min_frame_fraction=0.0,
                                  min_point_support=0.0)
    steady, ghost = make_track(wobble), make_track(flicker)
    diagonal = 14 * np.sqrt(2)
    assert config.min_steady_travel * diagonal <= travel(steady, motion) < config.min_travel * diagonal
    kept = clean_tracks([steady, ghost], motion, frames, config)
    assert steady in kept and ghost not in kept
    strict = clean_tracks([make_track(wobble)], motion, frames, replace(config, min_steady_travel=config.min_travel))
    assert strict == []  # at the usual travel the wobble is too little


def panning_texture(n_frames: int = 8, camera_px: float = 4.0):
    """A textured scene under a camera that moves ``camera_px`` px per step (image flow), with a
    red square that really moves and a patch of texture whose compensated motion is flow error
    (3 px per step) at the same place. Returns frames, motion, the red track and the patch track."""
    rng = np.random.default_rng(1)
    frames = np.repeat(rng.integers(90, 170, (1, HEIGHT, WIDTH, 3)).astype(np.uint8), n_frames, axis=0)
    image_flow = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    velocity = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    image_flow[..., 0] = camera_px
    red, patch = {}, {}
    for t in range(n_frames):
        red[t], patch[t] = square(10 + 5.0 * t, 10, 14), square(10 + 5.0 * t, 36, 14)
        frames[t][red[t]] = (230, 40, 30)
        velocity[t][red[t] | patch[t]] = (3.0, 0.0)
        image_flow[t][red[t] | patch[t]] += (3.0, 0.0)
    moving = np.zeros((n_frames, HEIGHT, WIDTH), bool)
    for t in range(n_frames):
        moving[t] = red[t] | patch[t]
    motion = MotionField(image_flow[:-1], -image_flow[1:], [], np.where(moving, 3.0, 0.0).astype(np.float32),
                         image_flow, velocity, moving, np.ones(n_frames, np.float32),
                         [np.argwhere(m)[:, ::-1].astype(np.float32) for m in moving])
    return frames, motion, make_track(red), make_track(patch)


def test_surround_contrast_tells_an_object_from_a_piece_of_texture():
    frames, _, red, patch = panning_texture()
    assert surround_contrast(frames[0], red.masks[0]) > 0.8
    assert surround_contrast(frames[0], patch.masks[0]) < 0.3
    grey = np.full((HEIGHT, WIDTH, 3), 170, np.uint8)
    grey[square(40, 20, 14)] = 60  # a dark grey object on a light grey ground: value tells them apart
    assert surround_contrast(grey, square(40, 20, 14)) > 0.8
    assert surround_contrast(grey, np.zeros((HEIGHT, WIDTH), bool)) == 0.0


def test_clean_tracks_drops_background_texture_under_a_moving_camera_only():
    """A patch of ground texture whose compensated motion is no more than the camera's flow
    error goes; a red object moving alike stays; under a still camera the patch stays
    (motion evidence is trusted there)."""
    config = ClassicTrackerConfig(min_area_fraction=0.001, min_frames=2, min_frame_fraction=0.0,
                                  min_point_support=0.0, min_travel=0.0, min_steady_travel=0.0)
    frames, motion, red, patch = panning_texture()
    assert background_texture(patch, motion, frames, config) and not background_texture(red, motion, frames, config)
    kept = clean_tracks([red, patch], motion, frames, config)
    assert kept == [red]
    assert len(clean_tracks([red, patch], motion, frames, replace(config, background_contrast=0.0))) == 2
    frames, motion, red, patch = panning_texture(camera_px=0.0)
    assert not background_texture(patch, motion, frames, config)
    assert len(clean_tracks([red, patch], motion, frames, config)) == 2


def test_clean_tracks_drops_a_track_detected_in_under_nine_of_32_frames():
    """Short-lived tracks were false on the development scenes: 8 detected frames of 32 are too
    few, 9 are enough."""
    frames, motion, _, _, _ = crossing(32)
    config = ClassicTrackerConfig(min_area_fraction=0.001, min_point_support=0.0, min_travel=0.0,
                                  min_steady_travel=0.0, background_contrast=0.0)
    short = make_track({t: square(10 + 6.0 * t, 20) for t in range(8)})
    enough = make_track({t: square(10 + 6.0 * t, 20) for t in range(9)})
    dropped: dict[str, int] = {}
    assert clean_tracks([short], motion, frames, config, dropped) == []
    assert dropped == {"frames": 1}
    assert clean_tracks([enough], motion, frames, config) == [enough]


def test_stitch_near_joins_differently_coloured_pieces_where_the_velocity_puts_them():
    """A mover cut by the motion mask into pieces of different colours (a person's shirt, then its
    legs): the second piece starts 3 frames on where the first's velocity puts it. With
    ``stitch_near_diagonals`` it continues the first whatever its colours; off (the old rule) or
    far from the predicted place it does not."""

    def pieces(x_late: float) -> list[Track]:
        early = make_track({t: square(10 + 3 * t, 20) for t in range(4)})
        late = make_track({t: square(x_late + 3 * (t - 6), 20) for t in range(6, 10)})
        early.colours = np.zeros(128, np.float32)
        early.colours[0] = 1.0
        late.first_colours = np.zeros(128, np.float32)
        late.first_colours[5] = 1.0
        return [early, late]

    near = ClassicTrackerConfig(stitch_near_diagonals=1.0)
    joined = stitch(pieces(28), (WIDTH, HEIGHT), near)
    assert len(joined) == 1 and sorted(joined[0].detected) == [0, 1, 2, 3, 6, 7, 8, 9]
    assert len(stitch(pieces(28), (WIDTH, HEIGHT), ClassicTrackerConfig())) == 2
    # 30 px past where the velocity puts it: more than a box diagonal (17 px) away
    assert len(stitch(pieces(58), (WIDTH, HEIGHT), near)) == 2



def person(x: float, top: int = 14, width: int = 8, height: int = 30) -> np.ndarray:
    """(h, w) bool standing person: a ``width`` × (height − 5) body under a 4 px head, left edge at ``x``."""
    mask, x = np.zeros((HEIGHT, WIDTH), bool), int(round(x))
    mask[top:top + 5, x + width // 2 - 2:x + width // 2 + 2] = True
    mask[top + 5:top + height, x:x + width] = True
    return mask


def walking_pair(apart: tuple[int, int], part: int, n_frames: int = 10, options: dict | None = None):
    """A person in red and one in blue walking right side by side, 3 px apart at 3 px per frame; in frames
    ``apart[0]`` up to ``apart[1]`` they hold hands (the motion mask holds both); from frame ``part`` on the
    blue one walks faster (5 px per frame) and they part. Detections are those of
    :func:`.segment.detect_moving_regions`. Returns the tracks of :func:`associate` and both people's masks."""
    config = ClassicTrackerConfig(min_area_fraction=0.001, **(options or {}))
    rng = np.random.default_rng(5)
    frames = np.repeat(rng.integers(90, 170, (1, HEIGHT, WIDTH, 3)).astype(np.uint8), n_frames, axis=0)
    flow = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    moving = np.zeros((n_frames, HEIGHT, WIDTH), bool)
    reds, blues, detections = [], [], []
    for t in range(n_frames):
        red_x = 5 + 3.0 * t
        blue_x = red_x + 11 + 2.0 * max(0, t - part)
        red, blue = person(red_x), person(blue_x)
        frames[t][red], frames[t][blue] = (230, 40, 30), (30, 60, 230)
        flow[t][red], flow[t][blue] = (3.0, 0.0), (5.0 if t >= part else 3.0, 0.0)
        moving[t] = red | blue
        if apart[0] <= t < apart[1] and t < part:
            hands = np.zeros_like(red)
            hands[24:30, int(red_x) + 7:int(blue_x) + 1] = True
            flow[t][hands] = (3.0, 0.0)
            moving[t] |= hands
        reds.append(red)
        blues.append(blue)
        detections.append(detect_moving_regions(moving[t], config, flow[t], flow[t]))
    motion = MotionField(flow[:-1], -flow[1:], [], np.where(moving, 5.0, 0.0).astype(np.float32), flow, flow, moving,
                         np.ones(n_frames, np.float32), [np.argwhere(m)[:, ::-1].astype(np.float32) for m in moving])
    return associate(detections, motion, frames, config), reds, blues, detections


def test_rejoin_alike_joins_the_members_of_one_object_only():
    hsv = cv2.cvtColor(np.full((HEIGHT, WIDTH, 3), 128, np.uint8), cv2.COLOR_RGB2HSV)
    left, right, other = person(10), person(20), person(60)
    group = 3 * PROFILE_PIECE
    members = [Detection(detection(left).box, left, group), Detection(detection(right).box, right, group + 1),
               detection(other)]
    joined = rejoin_alike(members, hsv, 0.6)  # all grey: one object whose outline dips
    assert len(joined) == 2 and joined[0].piece == 0
    np.testing.assert_array_equal(joined[0].mask, left | right)
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    image[left], image[right] = (230, 40, 30), (30, 60, 230)
    apart = rejoin_alike(members, cv2.cvtColor(image, cv2.COLOR_RGB2HSV), 0.6)  # red and blue: two movers
    assert apart is members


def test_people_merged_from_the_start_are_split_and_kept_apart_when_they_part():
    # the old tracker: one track for the pair, then a new one for whoever parts from it
    old, reds, blues, detections = walking_pair((0, 5), part=5)
    assert len(detections[0]) == 1
    assert any(np.any(track.boxes[0] != detection(reds[0]).box) for track in old if 0 in track.boxes)
    tracks, reds, blues, detections = walking_pair((0, 5), part=5, options={"profile_split_depth": 0.15})
    assert len(detections[0]) == 2
    assert len(tracks) == 2
    red, blue = sorted(tracks, key=lambda track: track.boxes[0][0])
    for t in range(10):  # each track on its own person throughout, before and after they part
        assert t in red.detected and t in blue.detected
        np.testing.assert_allclose(red.boxes[t], detection(reds[t]).box, atol=2)
        np.testing.assert_allclose(blue.boxes[t], detection(blues[t]).box, atol=2)


def test_tracks_of_people_walking_together_keep_their_own_person():
    # apart in frames 0-2, one motion component in 3-5 (alike motion), parting from 6
    old, reds, blues, detections = walking_pair((3, 6), part=6)
    assert [len(found) for found in detections[2:7]] == [2, 1, 1, 1, 2]
    boxes = [track.boxes[4] for track in old if 4 in track.detected]
    assert len(boxes) == 1  # the older track took the pair's detection whole
    np.testing.assert_allclose(boxes[0], detection(reds[4] | blues[4]).box, atol=1)
    tracks, reds, blues, _ = walking_pair((3, 6), part=6, options={"apart_max_similarity": 0.6})
    assert len(tracks) == 2
    red, blue = sorted(tracks, key=lambda track: track.boxes[0][0])
    for t in range(10):
        assert t in red.detected and t in blue.detected
        np.testing.assert_allclose(red.boxes[t], detection(reds[t]).box, atol=3)  # plus half the hands
        np.testing.assert_allclose(blue.boxes[t], detection(blues[t]).box, atol=3)


def handover(n_frames: int = 8, red_from: int = 0, red_until: int = 5, big_from: int = 5, big_red_fraction: float = 0.0):
    """A red 12 × 12 square moving right by 3 px per frame (detected in frames ``red_from`` .. ``red_until`` − 1),
    then from frame ``big_from`` a still 24 × 24 square (four times its area) where the red one would be:
    blue, or red in its left ``big_red_fraction`` of columns. Returns frames, MotionField and detections."""
    rng = np.random.default_rng(1)
    frames = np.repeat(rng.integers(90, 170, (1, HEIGHT, WIDTH, 3)).astype(np.uint8), n_frames, axis=0)
    flow = np.zeros((n_frames, HEIGHT, WIDTH, 2), np.float32)
    detections: list[list[Detection]] = [[] for _ in range(n_frames)]
    for t in range(red_from, red_until):
        red = square(10 + 3 * t, 20)
        frames[t][red] = (230, 40, 30)
        flow[t][red] = (3.0, 0.0)
        detections[t].append(detection(red))
    for t in range(big_from, n_frames):
        big = square(10 + 3 * big_from - 4, 16, 24)
        frames[t][big] = (30, 60, 230)
        ys, xs = np.nonzero(big)
        reddish = big & (np.arange(WIDTH)[None, :] < xs.min() + round(big_red_fraction * 24))
        frames[t][reddish] = (230, 40, 30)
        detections[t].append(detection(big))
    moving = np.zeros((n_frames, HEIGHT, WIDTH), bool)
    for t, found in enumerate(detections):
        for d in found:
            moving[t] |= d.mask
    motion = MotionField(flow[:-1], -flow[1:], [], np.where(moving, 5.0, 0.0).astype(np.float32), flow, flow, moving,
                         np.ones(n_frames, np.float32), [np.argwhere(m)[:, ::-1].astype(np.float32) for m in moving])
    return frames, motion, detections


def test_a_track_does_not_jump_onto_a_detection_many_times_its_size_in_other_colours():
    frames, motion, detections = handover()
    config = ClassicTrackerConfig(min_area_fraction=0.001)
    assert len(associate(detections, motion, frames, config)) == 1  # without the test the red track takes it
    tracks = associate(detections, motion, frames, replace(config, match_max_area_ratio=3.0))
    assert len(tracks) == 2
    red, big = tracks
    assert sorted(red.detected) == list(range(5)) and sorted(big.detected) == list(range(5, len(frames)))
    # a detection of the same colours may grow that much (an object coming out from behind another)
    frames, motion, detections = handover(big_red_fraction=1.0)
    assert len(associate(detections, motion, frames, replace(config, match_max_area_ratio=3.0))) == 1


def test_a_lost_track_is_not_revived_on_a_detection_many_times_its_size_in_other_colours():
    # the red square is not seen in frame 5; from frame 6 the large square, 40 % red, lies where it would be
    frames, motion, detections = handover(n_frames=9, big_from=6, big_red_fraction=0.4)
    config = ClassicTrackerConfig(min_area_fraction=0.001)
    assert [sorted(track.detected) for track in associate(detections, motion, frames, config)] == [
        [0, 1, 2, 3, 4, 6, 7, 8]]  # revived: they overlap and their colours are half alike
    tracks = associate(detections, motion, frames, replace(config, match_max_area_ratio=3.0))
    assert [sorted(track.detected) for track in tracks] == [[0, 1, 2, 3, 4], [6, 7, 8]]


def test_match_max_area_ratio_is_validated():
    with pytest.raises(Exception, match="match_max_area_ratio"):
        ClassicTrackerConfig(match_max_area_ratio=0.5)
