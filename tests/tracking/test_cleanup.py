"""Tests of tracking/classic/cleanup.py: the scene-share rule (cleanup.scene_share)."""

from __future__ import annotations

import numpy as np
import pytest

from recon4d.tracking.classic.association import Track
from recon4d.tracking.classic.background import BackgroundMotion
from recon4d.tracking.classic.cleanup import clean_tracks, scene_share
from recon4d.tracking.classic.config import ClassicTrackerConfig
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
