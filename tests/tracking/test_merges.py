"""Frames where a track's box lies over two movers (tracking/classic/merges.py)."""

from __future__ import annotations

import numpy as np
import pytest

from recon4d.errors import Recon4dError
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.merges import holds_coasted, merged_frames, stepped_up

N_FRAMES = 16


def pair_merged_then_parting(merged: range = range(6, 10)) -> np.ndarray:
    """(1, T, 4) boxes of a track on mover A (20 × 40 px, walking right 2 px a frame) whose box also
    covers mover B (20 × 40 px, just right of A) in the ``merged`` frames: they touched and parted."""
    boxes = np.zeros((1, N_FRAMES, 4))
    for t in range(N_FRAMES):
        x = 10.0 + 2 * t
        boxes[0, t] = [x, 50, x + 20, 90]
        if t in merged:
            boxes[0, t, 2] = x + 44  # A and B side by side in one box
    return boxes


def test_a_box_over_two_movers_that_parted_again_is_stepped_up():
    boxes = pair_merged_then_parting()
    detected = np.ones((1, N_FRAMES), bool)
    expected = np.isin(np.arange(N_FRAMES), range(6, 10))
    np.testing.assert_array_equal(stepped_up(boxes, detected, 1.8, 6)[0], expected)
    assert not stepped_up(boxes, detected, 2.5, 6).any()  # 2.2 times the area: under this ratio


def test_stepped_up_leaves_a_mover_that_grows_or_enters_alone():
    t = np.arange(N_FRAMES, dtype=float)
    approaching = np.stack([50 - 2 * t, 50 - 3 * t, 70 + 2 * t, 90 + 3 * t], axis=-1)[None]  # area grows 4×
    entering = np.stack([np.zeros(N_FRAMES), np.full(N_FRAMES, 50), np.minimum(5 + 10 * t, 40), np.full(N_FRAMES, 90)],
                        axis=-1)[None]  # cut by the border, then whole
    detected = np.ones((1, N_FRAMES), bool)
    assert not stepped_up(approaching, detected, 1.8, 6).any()
    assert not stepped_up(entering, detected, 1.8, 6).any()


def test_stepped_up_compares_detected_boxes_only():
    boxes = pair_merged_then_parting()
    detected = np.ones((1, N_FRAMES), bool)
    detected[0, 7] = False  # a coasted box is no observation anyway, and not a reference
    flagged = stepped_up(boxes, detected, 1.8, 6)[0]
    assert not flagged[7] and flagged[[6, 8, 9]].all()


def test_a_box_that_holds_a_coasted_track_holds_two_movers():
    boxes = np.full((3, 4, 4), np.nan)
    boxes[0] = [0, 0, 60, 40]  # the merged detection
    boxes[1] = [30, 5, 50, 35]  # a track coasted inside it in frames 1 and 2
    boxes[2] = [100, 0, 120, 40]  # a track elsewhere
    visible = np.isfinite(boxes).all(axis=-1)
    detected = visible.copy()
    detected[1, 1:3] = False
    held = holds_coasted(boxes, visible, detected, 0.7)
    np.testing.assert_array_equal(held[0], [False, True, True, False])
    assert not held[1:].any()


def test_merged_frames_is_off_by_default_and_combines_the_signs():
    boxes = pair_merged_then_parting()
    visible = detected = np.ones((1, N_FRAMES), bool)
    assert not merged_frames(boxes, visible, detected).any()
    config = ClassicTrackerConfig(merge_step_ratio=1.8)
    np.testing.assert_array_equal(merged_frames(boxes, visible, detected, config), stepped_up(boxes, detected, 1.8, 6))


@pytest.mark.parametrize("options", [{"merge_step_ratio": 0.5}, {"merge_window": 0}, {"merge_inside": 1.5}])
def test_merge_options_are_validated(options):
    with pytest.raises(Recon4dError):
        ClassicTrackerConfig(**options)


def test_the_box_of_a_track_that_took_two_people_holding_hands_is_no_observation():
    from tests.tracking.test_association import walking_pair

    # apart in frames 0-2, one motion component in 3-5 (hands held), parting from 6: the older track
    # takes the pair's detection whole in 3-5 (association cannot split movers that move alike)
    tracks, reds, blues, _ = walking_pair((3, 6), part=6, n_frames=12)
    boxes = np.full((len(tracks), 12, 4), np.nan)
    detected = np.zeros((len(tracks), 12), bool)
    for k, track in enumerate(tracks):
        for t, box in track.boxes.items():
            boxes[k, t] = box
        detected[k, sorted(track.detected)] = True
    visible = np.isfinite(boxes).all(axis=-1)
    red = min(range(len(tracks)), key=lambda k: boxes[k, 0, 0] if visible[k, 0] else np.inf)
    assert detected[red, 3:6].all()  # ... observed as if it were one object
    merged = merged_frames(boxes, visible, detected, ClassicTrackerConfig(merge_step_ratio=2.0))
    np.testing.assert_array_equal(np.flatnonzero(merged[red]), [3, 4, 5])
    assert not np.delete(merged, red, axis=0).any()
