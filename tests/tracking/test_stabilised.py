"""Tests of the background model for still and only-turning cameras: tracking/classic/stabilised.py and
its hook in the classic tracker (whole silhouettes, objects that stop, translating cameras left alone)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon4d.tracking.classic.background import BackgroundMotion
from recon4d.tracking.classic.boxes import box_iou
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.motion import compute_motion, to_working
from recon4d.tracking.classic.stabilised import (
    StabilisedBackground,
    chain_homographies,
    colour_distance,
    foreground_detections,
    silhouettes,
    split_by_foreground,
    still_or_turning,
    temporal_median,
)
from recon4d.tracking.classic.segment import Detection
from recon4d.tracking.classic.tracker import ClassicTracker
from recon4d.types import Clip
from tests.tracking.plane_scenes import walking_scene

SIDE = 28
"""Side of the square (blank but for four small marks), pixels."""


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 smooth random texture (corners for the homographies, flow everywhere)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(60, 200, (height // 10 + 1, width // 10 + 1, 1)).astype(np.float32)
    fine = rng.uniform(-30, 30, (height // 3 + 1, width // 3 + 1, 1)).astype(np.float32)
    grey = (cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
            + cv2.resize(fine, (width, height), interpolation=cv2.INTER_CUBIC))
    tint = np.array([0.8, 1.0, 0.7], np.float32)  # grass-like: green over red and blue
    return (grey[..., None] * tint).clip(0, 255).astype(np.uint8)


def _square_path(n_frames: int) -> np.ndarray:
    """(T, 2) top-left corners of a square that moves right, stops for 8 frames, then moves down-right (no
    place holds it for half the frames: the median sees the ground everywhere)."""
    corners, position = [], np.array([10.0, 40.0])
    for t in range(n_frames):
        corners.append(position.copy())
        if t < 12:
            position += (6.0, 0.0)
        elif t >= 20:
            position += (5.0, 3.0)
    return np.array(corners)


def _square_clip(pan_px: float = 0.0, n_frames: int = 32, size=(240, 160)) -> tuple[Clip, np.ndarray]:
    """A clip of an untextured red square over a still textured ground, seen by a still camera or
    (``pan_px`` per frame) a window sliding over a larger image (a camera that only turns, to first
    order); returns the clip and the square's (T, 4) xyxy boxes in the clip's pixels."""
    width, height = size
    world = _texture(height + 40, width + int(abs(pan_px) * n_frames) + 40)
    frames, boxes = [], []
    for t, (x, y) in enumerate(_square_path(n_frames)):
        image = world.copy()
        wx, wy = int(x + 20 + 40), int(y + 20)
        image[wy:wy + SIDE, wx:wx + SIDE] = (220, 30, 30)
        for dy in (3, SIDE - 8):  # four dark marks: corners to track, a blank interior between them
            for dx in (3, SIDE - 8):
                image[wy + dy:wy + dy + 5, wx + dx:wx + dx + 5] = (40, 10, 10)
        left = int(round(20 + pan_px * t))
        frames.append(image[20:20 + height, left:left + width])
        boxes.append([wx - left, wy - 20, wx - left + SIDE, wy - 20 + SIDE])
    frames = np.ascontiguousarray(np.stack(frames))
    clip = Clip(frames=frames, timestamps_s=np.arange(n_frames) / 12.0, frame_index=np.arange(n_frames),
                fps=12.0, source="synthetic", source_size=(width, height))
    return clip, np.array(boxes, np.float64)


def _track_ious(tracks, truth: np.ndarray, k: int) -> np.ndarray:
    """(T,) box IoU of track k with the truth boxes (0 where the track is not visible)."""
    return np.array([box_iou(truth[t][None], tracks.boxes_xyxy[k, t][None].astype(np.float64))[0, 0]
                     if tracks.visible[k, t] else 0.0 for t in range(len(truth))])


# --- pure helpers ------------------------------------------------------------------------------


def test_temporal_median_matches_a_slow_reference():
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 256, (9, 6, 7, 3), dtype=np.uint8)
    valid = np.ones((9, 6, 7), bool)
    for y in range(6):  # an even number of invalid samples per pixel: the median is exact
        for x in range(7):
            valid[rng.choice(9, size=2 * rng.integers(0, 4), replace=False), y, x] = False
    median, covered = temporal_median(stack.copy(), valid, min_count=4)
    for y in range(6):
        for x in range(7):
            for c in range(3):
                values = np.sort(stack[valid[:, y, x], y, x, c].astype(int))
                n = len(values)
                assert median[y, x, c] == (values[(n - 1) // 2] + values[n // 2] + 1) // 2
    np.testing.assert_array_equal(covered, valid.sum(axis=0) >= 4)


def test_chain_homographies_composes_pairs_and_keeps_a_still_camera_still():
    shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -2.0], [0.0, 0.0, 1.0]])  # frame t → t + 1
    chained = chain_homographies([shift] * 4, reference=2, size=(100, 80))
    for t in range(5):  # frame t → frame 2 moves by (2 − t) steps
        expected = np.eye(3)
        expected[:2, 2] = (2 - t) * np.array([5.0, -2.0])
        np.testing.assert_allclose(chained[t], expected, atol=1e-9)
    noise = np.eye(3)
    noise[0, 2] = 0.1
    np.testing.assert_array_equal(chain_homographies([noise] * 6, 3, (100, 80)), np.tile(np.eye(3), (7, 1, 1)))


def test_colour_distance_ignores_shadows_not_colours():
    background = np.full((4, 4, 3), (90, 140, 60), np.uint8)
    shadow = (background * 0.6).astype(np.uint8)
    red = np.full((4, 4, 3), (200, 40, 40), np.uint8)
    band = (0.3, 0.95, 0.04)
    assert np.all(colour_distance(shadow, background, band) == 0)
    assert np.all(colour_distance(shadow, background, (0.0, 0.0, 0.0)) > 20)  # no shadow band
    assert np.all(colour_distance(red, background, band) > 50)


def test_still_or_turning_needs_most_pairs_on_one_homography():
    planar = BackgroundMotion("planar", (np.eye(3),))
    two_planes = BackgroundMotion("planar", (np.eye(3), np.eye(3)))
    epipolar = BackgroundMotion("epipolar", (np.eye(3),), np.eye(3), np.array([1.0, 0, 0]), np.eye(3))
    assert still_or_turning([planar] * 4, 0.75)
    assert still_or_turning([planar] * 3 + [epipolar], 0.75)
    assert not still_or_turning([planar] * 2 + [epipolar, two_planes], 0.75)
    assert not still_or_turning([], 0.75)


def test_silhouettes_take_the_foreground_near_each_mask_and_split_what_two_take():
    foreground = np.zeros((40, 60), bool)
    foreground[10:30, 5:25] = True  # one object ...
    foreground[10:30, 25:45] = True  # ... touching another
    left, right = np.zeros_like(foreground), np.zeros_like(foreground)
    left[12:20, 8:20] = True  # the motion masks cover part of each
    right[12:20, 30:42] = True
    whole_left, whole_right = silhouettes(foreground, [left, right], reach=1.0)
    assert whole_left[25, 10] and whole_right[25, 40]  # the parts the motion missed
    assert not (whole_left & whole_right).any()
    assert whole_left[:, :24].sum() > 0.9 * foreground[:, :24].sum()
    assert not whole_left[:, 30:].any()
    missed = np.zeros_like(foreground)
    missed[32:38, 50:58] = True
    assert silhouettes(foreground, [missed])[0] is None  # the model does not see it: keep the mask


def test_split_by_foreground_cuts_a_detection_holding_two_silhouettes():
    foreground = np.zeros((40, 80), bool)
    foreground[10:30, 10:25] = True  # two movers 6 px apart ...
    foreground[12:30, 31:44] = True
    foreground[5:7, 60:62] = True  # ... and a speck elsewhere
    smear = np.zeros_like(foreground)
    smear[8:32, 8:47] = True  # ... that one motion detection holds (flow smear, the ground between them)
    found = [Detection(np.array([8.0, 8, 47, 32]), smear)]
    cut = split_by_foreground(found, foreground, 20.0)
    assert len(cut) == 2
    left, right = sorted(cut, key=lambda detection: detection.box[0])
    assert left.mask[10:30, 10:25].all() and not left.mask[:, 31:].any()
    assert right.mask[12:30, 31:44].all() and not right.mask[:, :25].any()
    assert not (left.mask & right.mask).any() and (left.mask | right.mask).sum() == smear.sum()
    assert left.piece != right.piece and left.piece > 0 and right.piece > 0
    np.testing.assert_array_equal(right.box, [28, 8, 47, 32])
    # one silhouette (with a speck too small to count inside the detection): left as it was
    joined = foreground.copy()
    joined[15:20, 25:31] = True
    joined[30:32, 45:46] = True
    assert split_by_foreground(found, joined, 20.0) is found
    assert split_by_foreground(found, np.zeros_like(foreground), 20.0) is found


def test_foreground_detections_hold_a_stopped_object():
    foreground = np.zeros((40, 60), bool)
    foreground[10:20, 10:20] = True
    previous = np.zeros_like(foreground)
    previous[10:20, 11:21] = True
    held = foreground_detections([], foreground, [previous], 4.0)
    assert len(held) == 1 and held[0].mask[10:20, 10:20].all()
    assert foreground_detections([], np.zeros_like(foreground), [previous], 4.0) == []
    moving = Detection(np.array([11.0, 10, 21, 20]), previous)  # it still moves: the motion detection is it
    assert len(foreground_detections([moving], foreground, [previous], 4.0)) == 1


# --- the tracker ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pan_px", [0.0, 3.0], ids=["still", "panning"])
def test_object_that_stops_keeps_one_track(pan_px):
    """A square moves, stops for 8 frames and moves on: one track, in every frame. Without the
    background model the track coasts, ends and restarts (two tracks, or frames without a box)."""
    clip, truth = _square_clip(pan_px)
    tracks = ClassicTracker.from_config({"background_hold": True}).track(clip)
    assert tracks.n_objects == 1
    ious = _track_ious(tracks, truth, 0)
    assert tracks.visible[0].all()
    assert np.all(ious >= (0.75 if pan_px == 0 else 0.3)), ious.round(2)
    assert np.mean(ious >= 0.75) >= (1.0 if pan_px == 0 else 0.7), ious.round(2)


def test_translating_camera_does_not_use_the_model():
    """A camera walking over three planes: no single homography, so no background model, and the
    tracker's output is the same with the model switched on or off."""
    synthetic = walking_scene(seed=0, n_frames=10)
    config = ClassicTrackerConfig()
    _, gray = to_working(synthetic.frames, (320, 180))
    motion = compute_motion(gray, config)
    images = to_working(synthetic.frames, (320, 180))[0]
    assert StabilisedBackground.build(motion.backgrounds, images, config) is None
    n_frames = len(synthetic.frames)
    clip = Clip(frames=synthetic.frames, timestamps_s=np.arange(n_frames) / 6.0, frame_index=np.arange(n_frames),
                fps=6.0, source="synthetic", source_size=(320, 180))
    on = ClassicTracker.from_config({}).track(clip)
    off = ClassicTracker.from_config({"background_model": False}).track(clip)
    np.testing.assert_array_equal(on.boxes_xyxy, off.boxes_xyxy)


def _pair_clip(gap: int, n_frames: int = 24, size=(240, 160)) -> tuple[Clip, np.ndarray]:
    """A still camera over textured ground and two textured squares ``gap`` px apart (red left of
    blue) walking right alike, 4 px per frame, then turning down together; returns the clip and
    the (2, T, 4) true boxes."""
    width, height = size
    world = _texture(height, width, seed=4)
    rng = np.random.default_rng(5)
    # textured squares (flow everywhere on them), red and blue
    red = (rng.uniform(0.6, 1.0, (SIDE, SIDE, 1)) * [230, 40, 30]).astype(np.uint8)
    blue = (rng.uniform(0.6, 1.0, (SIDE, SIDE, 1)) * [40, 60, 230]).astype(np.uint8)
    frames, boxes = [], []
    for t in range(n_frames):
        image = world.copy()
        x, y = 20 + 4 * min(t, 16), 50 + 3 * max(t - 16, 0)
        image[y:y + SIDE, x:x + SIDE] = red
        image[y:y + SIDE, x + SIDE + gap:x + 2 * SIDE + gap] = blue
        frames.append(image)
        boxes.append([[x, y, x + SIDE, y + SIDE], [x + SIDE + gap, y, x + 2 * SIDE + gap, y + SIDE]])
    frames = np.ascontiguousarray(np.stack(frames))
    clip = Clip(frames=frames, timestamps_s=np.arange(n_frames) / 12.0, frame_index=np.arange(n_frames),
                fps=12.0, source="synthetic", source_size=(width, height))
    return clip, np.array(boxes, np.float64).transpose(1, 0, 2)


def test_movers_walking_side_by_side_get_a_track_each():
    """Two squares 4 px apart that move alike: the flow's smear joins them into one motion detection,
    the background model sees two silhouettes. With background_split each square has its own track
    (box IoU >= 0.5 in most of the frames); without it one track holds both and matches neither."""
    clip, truth = _pair_clip(gap=4)
    joined = ClassicTracker.from_config({}).track(clip)  # off by default
    assert joined.n_objects == 1
    assert all(np.mean(_track_ious(joined, true, 0) >= 0.5) < 0.1 for true in truth)
    tracks = ClassicTracker.from_config({"background_split": True}).track(clip)
    assert tracks.n_objects == 2
    found = np.array([[np.mean(_track_ious(tracks, true, k) >= 0.5) for k in range(2)] for true in truth])
    best = found.argmax(axis=1)
    assert best[0] != best[1], found.round(2)
    assert found.max(axis=1).min() >= 0.4, found.round(2)
