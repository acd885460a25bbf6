"""Tests of tracking/classic/cleanup.py: the scene-share rule (cleanup.scene_share), the edge-motion rule
(evidence.normal_motion) and the cut of tracks whose object changes (cleanup.split_steps)."""

from __future__ import annotations

import numpy as np
import pytest

from recon4d.tracking.classic.association import Track
from recon4d.tracking.classic.background import BackgroundMotion
from recon4d.tracking.classic.cleanup import clean_tracks, scene_share, split_steps
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.evidence import normal_motion
from recon4d.tracking.classic.motion import MotionField

WIDTH, HEIGHT, N_FRAMES = 96, 64, 4
CAMERA_FLOW = np.array([2.0, 0.5], np.float32)


def scene(own_motion: tuple[float, float], dtype=np.float32) -> tuple[MotionField, Track]:
    """A camera whose whole view flows by CAMERA_FLOW (noise 0.05 px) and a track on a 16 × 16 region
    flagged moving with 3 px of compensated motion (the background model's residual there), whose
    image flow is the scene's plus ``own_motion`` px per step: (0, 0) is a patch of static scene
    whose depth was guessed wrong, anything else a mover."""
    rng = np.random.default_rng(0)
    region = np.zeros((HEIGHT, WIDTH), bool)
    region[24:40, 40:56] = True
    forward = np.broadcast_to(CAMERA_FLOW, (N_FRAMES - 1, HEIGHT, WIDTH, 2)).copy()
    forward += rng.normal(0.0, 0.05, forward.shape).astype(np.float32)
    forward[:, region] += np.asarray(own_motion, np.float32)
    velocity = np.zeros((N_FRAMES, HEIGHT, WIDTH, 2), np.float32)
    velocity[:, region] = [3.0, 0.0]
    image_flow = np.zeros_like(velocity)
    image_flow[:, region] = forward[0, region]
    moving = np.stack([region] * N_FRAMES)
    motion = MotionField(forward.astype(dtype), -forward.astype(dtype), [BackgroundMotion("planar", (np.eye(3),))] *
                         (N_FRAMES - 1), None, image_flow, velocity, moving, np.ones(N_FRAMES, np.float32),
                         [np.zeros((0, 2), np.float32)] * N_FRAMES)
    track = Track()
    for t in range(N_FRAMES):
        track.add(t, region, np.full(4, 0.25, np.float32))
    return motion, track


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_scene_share_of_a_patch_of_scene_and_of_a_mover(dtype):
    patch_motion, patch = scene((0.0, 0.0), dtype)
    assert scene_share(patch, patch_motion) > 0.95  # the ring flows as the patch does
    mover_motion, mover = scene((0.0, 2.0), dtype)
    assert scene_share(mover, mover_motion) < 0.05  # a mover's flow differs from its surroundings by its own motion
    # 0.4 px per step apart is within the tolerance (0.3 of the 3 px residual): shared; not at 0.1 and 0.2 px
    slow_motion, slow = scene((0.0, 0.4), dtype)
    assert scene_share(slow, slow_motion) > 0.95
    tight = ClassicTrackerConfig(scene_flow_relative=0.1, scene_flow_px=0.2)
    assert scene_share(slow, slow_motion, tight) < 0.05


def test_scene_share_edges():
    motion, track = scene((0.0, 0.0))
    assert scene_share(Track(), motion) == 0.0  # no frames
    whole = Track()
    whole.add(0, np.ones((HEIGHT, WIDTH), bool), np.full(4, 0.25, np.float32))
    assert scene_share(whole, motion) == 0.0  # a mask filling the frame has no ring
    last = Track()
    last.add(N_FRAMES - 1, track.masks[0], np.full(4, 0.25, np.float32))
    assert scene_share(last, motion) == 0.0  # the last frame has no forward flow
    still = MotionField(motion.forward_flow, motion.backward_flow, motion.backgrounds, None, motion.image_flow,
                        motion.velocity, np.zeros_like(motion.moving), motion.thresholds, motion.moving_points)
    assert scene_share(track, still) == 0.0  # no pixel of it moves (a stopped object the background model holds)


def test_clean_tracks_drops_a_track_that_moves_with_the_scene():
    # every other clean-up rule let through, so only scene_share decides
    config = dict(min_frames=1, min_frame_fraction=0.0, min_point_support=0.0, min_travel=0.0,
                  min_steady_travel=0.0, background_contrast=0.0)
    images = np.random.default_rng(1).integers(0, 255, (N_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    motion, patch = scene((0.0, 0.0))
    dropped: dict[str, int] = {}
    assert clean_tracks([patch], motion, images, ClassicTrackerConfig(scene_share=0.25, **config), dropped) == []
    assert dropped == {"scene_share": 1}  # counted by reason, for the quality step's clip rule
    motion, patch = scene((0.0, 0.0))
    dropped = {}
    assert len(clean_tracks([patch], motion, images, ClassicTrackerConfig(**config), dropped)) == 1  # off by default
    assert dropped == {}
    motion, mover = scene((0.0, 2.0))
    assert len(clean_tracks([mover], motion, images, ClassicTrackerConfig(scene_share=0.25, **config))) == 1


def test_scene_settings_are_validated():
    with pytest.raises(Exception, match="scene_ring_px"):
        ClassicTrackerConfig(scene_ring_px=4)
    with pytest.raises(Exception, match="scene_share"):
        ClassicTrackerConfig(scene_share=1.5)


def joined_track(n_frames: int = 20, step_at: int = 10, later_colour=(0, 0, 255), skip: tuple[int, ...] = ()) \
        -> tuple[Track, np.ndarray]:
    """A track and its (n_frames, HEIGHT, WIDTH, 3) uint8 RGB images on grey: a 6 × 6 red patch before
    ``step_at`` (a false start), then a 16 × 16 patch of ``later_colour`` that it took over (a mover
    coming out next to it), both drifting right 1 px a frame; frames in ``skip`` have no detection."""
    images = np.full((n_frames, HEIGHT, WIDTH, 3), 128, np.uint8)
    track = Track()
    for t in range(n_frames):
        mask = np.zeros((HEIGHT, WIDTH), bool)
        if t < step_at:
            mask[10:16, 10 + t:16 + t] = True
            images[t][mask] = (255, 0, 0)
        else:
            mask[30:46, 10 + t:26 + t] = True
            images[t][mask] = later_colour
        if t in skip:
            track.add(t, mask)  # coasted
        else:
            track.add(t, mask, np.full(128, 1 / 128, np.float32))
    return track, images


def test_split_steps_cuts_a_false_start_from_the_mover_it_joined():
    track, images = joined_track(skip=(9,))
    early, late = split_steps([track], images, ClassicTrackerConfig(step_area_ratio=3.0))
    assert early.detected == set(range(9)) and late.detected == set(range(10, 20))
    assert sorted(early.boxes) == list(range(10))  # the coasted frame 9 goes with the detection it came from
    assert sorted(late.boxes) == list(range(10, 20))
    assert np.array_equal(late.masks[12], track.masks[12]) and np.array_equal(late.boxes[12], track.boxes[12])
    # off by default: the same list back
    tracks = [track]
    assert split_steps(tracks, images, ClassicTrackerConfig()) is tracks


def test_split_steps_keeps_what_is_one_object_or_too_short_to_cut():
    config = ClassicTrackerConfig(step_area_ratio=3.0)
    approaching, images = joined_track(later_colour=(255, 0, 0))  # grows, same colours: one object
    assert len(split_steps([approaching], images, config)) == 1
    short, images = joined_track(n_frames=20, step_at=17)  # 3 frames after the step: under min_frames
    assert len(split_steps([short], images, config)) == 1
    assert len(split_steps([short], images, ClassicTrackerConfig(step_area_ratio=3.0, min_frame_fraction=0.1))) == 2
    hidden, images = joined_track(n_frames=26, step_at=13, skip=tuple(range(10, 16)))  # a gap stitch bridged
    assert len(split_steps([hidden], images, config)) == 1
    assert len(split_steps([hidden], images, ClassicTrackerConfig(step_area_ratio=3.0, max_coast=6))) == 2
    gentle, images = joined_track()
    assert len(split_steps([gentle], images, ClassicTrackerConfig(step_area_ratio=8.0))) == 1  # 7.1 times the area


def test_step_settings_are_validated():
    with pytest.raises(Exception, match="step_area_ratio"):
        ClassicTrackerConfig(step_area_ratio=0.5)
    with pytest.raises(Exception, match="step_max_similarity"):
        ClassicTrackerConfig(step_max_similarity=1.5)


def striped_scene(velocity_px: tuple[float, float]) -> tuple[MotionField, Track, np.ndarray]:
    """(motion, track, images): horizontal stripes 4 px tall (every edge horizontal: the gradient is
    vertical), a track on a 16 × 16 region of them flagged moving with compensated motion
    ``velocity_px``: along the stripes (x) is the aperture problem's flow error on static edges, across
    them (y) a mover's motion the edges show."""
    motion, track = scene((0.0, 0.0))
    rows = (np.arange(HEIGHT) // 4 % 2 * 200 + 20).astype(np.uint8)
    images = np.broadcast_to(rows[None, :, None, None], (N_FRAMES, HEIGHT, WIDTH, 3)).copy()
    region = track.masks[0]
    motion.velocity[:, region] = velocity_px
    return motion, track, images


def test_normal_motion_tells_motion_along_edges_from_motion_across_them():
    motion, track, images = striped_scene((3.0, 0.0))
    assert normal_motion(track.masks, sorted(track.detected), images, motion.velocity) < 0.05
    motion, track, images = striped_scene((0.0, 3.0))
    assert normal_motion(track.masks, sorted(track.detected), images, motion.velocity) > 0.95
    motion, track, images = striped_scene((2.0, 2.0))  # 45°: |cos| = 0.71
    assert normal_motion(track.masks, sorted(track.detected), images, motion.velocity) == pytest.approx(0.707, abs=0.01)
    blank = np.zeros_like(images)  # no gradient anywhere: nothing measured
    assert np.isnan(normal_motion(track.masks, sorted(track.detected), blank, motion.velocity))


def test_clean_tracks_drops_a_track_moving_along_its_edges_only():
    config = dict(min_frames=1, min_frame_fraction=0.0, min_point_support=0.0, min_travel=0.0,
                  min_steady_travel=0.0, background_contrast=0.0)
    motion, ghost, images = striped_scene((3.0, 0.0))
    dropped: dict[str, int] = {}
    assert clean_tracks([ghost], motion, images, ClassicTrackerConfig(min_normal_motion=0.15, **config), dropped) == []
    assert dropped == {"edge_motion": 1}
    motion, mover, images = striped_scene((1.0, 3.0))
    assert len(clean_tracks([mover], motion, images, ClassicTrackerConfig(min_normal_motion=0.15, **config))) == 1
    motion, ghost, images = striped_scene((3.0, 0.0))
    assert len(clean_tracks([ghost], motion, images, ClassicTrackerConfig(**config))) == 1  # off by default
    blank = np.zeros_like(images)  # unmeasured (NaN) is kept: no edges, no aperture problem
    assert len(clean_tracks([ghost], motion, blank, ClassicTrackerConfig(min_normal_motion=0.15, **config))) == 1
    with pytest.raises(Exception, match="min_normal_motion"):
        ClassicTrackerConfig(min_normal_motion=1.5)
