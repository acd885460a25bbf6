"""Box bottoms that are not the feet (recon4d.recon.classic.cut_bottoms)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from recon4d.recon.classic.config import ClassicConfig, ClassicReconstructionError
from recon4d.recon.classic.cut_bottoms import height_misfits, misfit_depths, top_depth
from recon4d.recon.classic.object_depth import contact_depth, hidden_bottoms
from recon4d.recon.classic.reconstructor import ClassicReconstructor, ReconstructionWarning
from recon4d.types import Tracks2D
from tests.recon.test_classic import make_clip, moving_objects_boxes

INTRINSICS = np.array([[554.0, 0.0, 320.0], [0.0, 554.0, 180.0], [0.0, 0.0, 1.0]])


def walking_boxes(camera_height_m: float, height_m: float, n_frames: int = 16):
    """Boxes (1, T, 4) of an object ``height_m`` tall walking from 12 m to 5 m towards a level
    camera ``camera_height_m`` up; its camera depths (T,); the ground per camera (T, 4)."""
    depth = np.linspace(12.0, 5.0, n_frames)
    x = np.linspace(-1.0, 1.0, n_frames)
    u = INTRINSICS[0, 0] * x / depth + INTRINSICS[0, 2]
    feet = INTRINSICS[1, 1] * camera_height_m / depth + INTRINSICS[1, 2]  # image y grows downwards
    head = INTRINSICS[1, 1] * (camera_height_m - height_m) / depth + INTRINSICS[1, 2]
    boxes = np.stack([u - 10, head - 0.5, u + 10, feet + 0.5], axis=-1)[None]  # pixel edges around the rows
    plane = np.tile([0.0, -1.0, 0.0, camera_height_m], (n_frames, 1))
    return boxes, depth, plane


def test_a_track_that_starts_with_its_feet_hidden_is_caught_and_placed_from_its_top():
    # A dog (1 m) walks out from behind a prop under a camera 2.6 m up: in its first five frames the
    # prop hides 40 %, 32 %, 24 %, 16 % and 8 % of it. No sudden rise, so hidden_bottoms sees nothing,
    # and the contacts put it 3-19 % too far; the implied heights of the first three (0.70-0.83 m
    # against 1 m) give them away, and the top at the track's height places them within 1 %.
    boxes, depth, plane = walking_boxes(2.6, 1.0)
    cut = boxes.copy()
    fraction = np.array([0.4, 0.32, 0.24, 0.16, 0.08])
    cut[0, :5, 3] -= fraction * (cut[0, :5, 3] - cut[0, :5, 1])
    assert not hidden_bottoms(cut).any()
    none = np.zeros((1, len(depth)), bool)
    contact = contact_depth(cut, plane, INTRINSICS, np.full(len(depth), 100.0), (640, 400), 2.0, none)
    assert (contact[0, :3] / depth[:3] > 1.1).all()
    misfit, typical, _ = height_misfits(cut, np.isfinite(contact), plane, INTRINSICS, log_tol=0.15)
    expected = np.zeros_like(misfit)
    expected[0, :3] = True
    np.testing.assert_array_equal(misfit, expected)
    assert typical[0] == pytest.approx(1.0, rel=0.02)
    placed = top_depth(cut, plane, INTRINSICS, typical)
    np.testing.assert_allclose(placed[0, :3], depth[:3], rtol=0.01)
    # A box that is a fragment (the top 30 % of the dog at frame 8) is flagged, but its top is not
    # trusted either: no depth is made up for it.
    fragment = cut.copy()
    fragment[0, 8, 3] -= 0.7 * (fragment[0, 8, 3] - fragment[0, 8, 1])
    usable = np.isfinite(contact_depth(fragment, plane, INTRINSICS, np.full(len(depth), 100.0), (640, 400), 2.0,
                                       none))
    flagged, from_top = misfit_depths(fragment, usable, plane, INTRINSICS, log_tol=0.15)
    assert flagged[0, 8] and np.isnan(from_top[0, 8])
    np.testing.assert_allclose(from_top[0, :3], depth[:3], rtol=0.02)  # the fragment moves the median height a little
    assert np.isnan(from_top[0, 3:8]).all()
    # The whole track fits its height: nothing is flagged.
    whole = contact_depth(boxes, plane, INTRINSICS, np.full(len(depth), 100.0), (640, 400), 2.0, none)
    assert not height_misfits(boxes, np.isfinite(whole), plane, INTRINSICS, log_tol=0.15)[0].any()


def test_top_depth_is_unknown_where_the_top_sits_on_the_horizon():
    # A 1.7 m person under a camera 1.72 m up keeps the top of the head on the horizon at any
    # distance: the top says nothing about the depth (seed 101's person), so no depth is made up.
    boxes, _, plane = walking_boxes(1.72, 1.7)
    assert np.isnan(top_depth(boxes, plane, INTRINSICS, np.array([1.7]))).all()
    boxes, depth, plane = walking_boxes(1.1, 1.7)  # the head well above the horizon: exact
    np.testing.assert_allclose(top_depth(boxes, plane, INTRINSICS, np.array([1.7]))[0], depth, rtol=1e-9)


def test_height_misfits_needs_enough_trusted_frames():
    boxes, _, plane = walking_boxes(2.6, 1.0, n_frames=4)
    misfit, typical, _ = height_misfits(boxes, np.ones((1, 4), bool), plane, INTRINSICS, log_tol=0.15)
    assert np.isnan(typical).all() and not misfit.any()


def test_a_lowered_head_keeps_the_contact():
    # The dog lowers its head in frames 8-9 (its box top drops by 30 % of its height): the height
    # it implies is as short as with hidden feet, but its top moved, not its bottom, so its
    # contact is right and stays (placed from the top it would come out 16 % too near).
    boxes, depth, plane = walking_boxes(2.6, 1.0)
    lowered = boxes.copy()
    lowered[0, 8:10, 1] += 0.3 * (lowered[0, 8:10, 3] - lowered[0, 8:10, 1])
    usable = np.ones((1, len(depth)), bool)
    assert height_misfits(lowered, usable, plane, INTRINSICS, log_tol=0.15)[0][0, 8:10].all()
    misfit, from_top = misfit_depths(lowered, usable, plane, INTRINSICS, log_tol=0.15)
    assert not misfit.any() and np.isnan(from_top).all()


@pytest.mark.parametrize("value", [0.0, -0.1, float("nan"), True])
def test_config_rejects_a_bad_height_misfit(value):
    with pytest.raises(ClassicReconstructionError, match="height_misfit_log must be"):
        ClassicConfig(height_misfit_log=value)


def test_the_reconstructor_places_a_person_whose_feet_start_hidden_from_the_top():
    # Three people walk from 12 m towards a still camera 2.6 m up, tilted 10 deg down; the first
    # comes out from behind a prop that hides 50, 40, 30, 20 and 10 % of it in frames 0-4. Before,
    # its contacts put it 52 % and 39 % too far in frames 0-1; with height_misfit_log those frames
    # are placed from the top, within 8 % like the whole frames (the prior's own error is ~4 %).
    boxes, intrinsics = moving_objects_boxes(10.0, 2.6, [1.7, 1.7, 1.7])
    n_frames = boxes.shape[1]
    cut = boxes.copy()
    cut[0, :5, 3] -= np.array([0.5, 0.4, 0.3, 0.2, 0.1]) * (cut[0, :5, 3] - cut[0, :5, 1])
    clip = make_clip(np.full((n_frames, 360, 640, 3), 128, np.uint8))
    tracks = Tracks2D(np.array([1, 2, 3]), ("person",) * 3, np.ones(3, bool), cut.astype(np.float32),
                      np.ones((3, n_frames), bool))
    truth = np.linspace(12.0, 5.0, n_frames)

    def depths(option):
        config = ClassicConfig(focal_px=float(intrinsics[0, 0]), height_misfit_log=option)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReconstructionWarning)
            recon = ClassicReconstructor(config).reconstruct(clip, tracks)
        return np.array([recon.local_points[t][min(359, int(0.5 * (y1 + y2))), int(0.5 * (x1 + x2)), 2]
                         for t, (x1, y1, x2, y2) in enumerate(cut[0])]) / truth

    before, after = depths(None), depths(0.15)
    assert (before[:2] > 1.35).all()
    assert np.abs(after[:2] - 1.0).max() < 0.08
    np.testing.assert_allclose(after[2:], before[2:])  # the frames that fit are left alone


def test_a_track_whose_height_flickers_has_none():
    # A box whose height jumps by a third every other frame (a false track on clutter) has no
    # height to check its bottoms against: nothing is flagged.
    boxes, _, plane = walking_boxes(2.6, 1.0)
    flicker = boxes.copy()
    flicker[0, ::2, 3] -= 0.35 * (flicker[0, ::2, 3] - flicker[0, ::2, 1])
    misfit, typical, _ = height_misfits(flicker, np.ones(boxes.shape[:2], bool), plane, INTRINSICS, log_tol=0.15)
    assert np.isnan(typical).all() and not misfit.any()
