"""Longer-baseline motion evidence (tracking/classic/long_baseline.py): slow movers under a moving camera."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon4d.errors import Recon4dError
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.background import sample_along_flow
from recon4d.tracking.classic.long_baseline import MotionMemory, apart, chained_flow, long_step_moving
from recon4d.tracking.classic.motion import compute_motion

from .plane_scenes import walking_scene


def _slow_carry(field: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Reference: bilinear read of field at p + back(p), the border replicated, one pixel at a time."""
    height, width = back.shape[:2]
    out = np.zeros(field.shape, np.float64)
    for y in range(height):
        for x in range(width):
            sx = min(max(x + float(back[y, x, 0]), 0.0), width - 1.0)
            sy = min(max(y + float(back[y, x, 1]), 0.0), height - 1.0)
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
            fx, fy = sx - x0, sy - y0
            out[y, x] = ((field[y0, x0] * (1 - fx) + field[y0, x1] * fx) * (1 - fy)
                         + (field[y1, x0] * (1 - fx) + field[y1, x1] * fx) * fy)
    return out


def test_sampling_along_the_flow_matches_a_slow_reference():
    rng = np.random.default_rng(3)
    field = rng.uniform(0.0, 1.0, (9, 11, 2)).astype(np.float32)
    back = rng.uniform(-2.5, 2.5, (9, 11, 2)).astype(np.float32)
    # OpenCV's bilinear weights are steps of 1/32 px: values 1 apart at most err by 1/64 (+ rounding)
    np.testing.assert_allclose(sample_along_flow(field, back), _slow_carry(field, back), atol=0.02)


def test_memory_adds_up_steady_motion_and_not_noise():
    """A steady motion reaches its own size; motion of the same size whose direction changes each frame
    stays well under it (the threshold falls with the noise, the mover's evidence does not)."""
    rng = np.random.default_rng(5)
    steady, noisy = MotionMemory(0.75), MotionMemory(0.75)
    zero = np.zeros((16, 16, 2), np.float32)
    for t in range(16):
        angle = rng.uniform(0, 2 * np.pi, (16, 16))
        noise = np.stack([np.cos(angle), np.sin(angle)], -1).astype(np.float32) * 0.5
        step = np.full((16, 16, 2), [0.3, 0.4], np.float32)  # 0.5 px per step
        strong = steady.update(step, None if t == 0 else zero)
        weak = noisy.update(noise, None if t == 0 else zero)
    assert abs(float(strong.mean()) - 0.5 * (1 - 0.75 ** 16)) < 1e-4
    assert float(weak.mean()) < 0.25


def test_memory_follows_a_moving_pattern_along_the_flow():
    """A blob moving 1 px per step right: the sum is carried with it (the flow t → t − 1 is −1 px)."""
    memory = MotionMemory(0.5)
    back = np.zeros((12, 30, 2), np.float32)
    back[..., 0] = -1.0
    for t in range(8):
        motion = np.zeros((12, 30, 2), np.float32)
        motion[4:8, 5 + t:9 + t] = [1.0, 0.0]
        evidence = memory.update(motion, None if t == 0 else back)
    assert evidence[5, 7 + 7] == pytest.approx(1.0 - 0.5 ** 8, abs=1e-5)  # the blob's middle, at t = 7
    assert evidence[5, 7 + 7 - 4] < 0.1  # where the blob was 4 steps ago: no current motion, only decay


def _flagged(speed: float, decay: float, with_mover: bool = True) -> tuple[np.ndarray, float]:
    scene = walking_scene(0, n_frames=16, mover_m_s=speed, with_mover=with_mover)
    gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in scene.frames])
    moving = np.asarray(compute_motion(gray, ClassicTrackerConfig(long_baseline_decay=decay)).moving)
    on = np.array([moving[t][scene.mover_masks[t]].mean() if scene.mover_masks[t].any() else np.nan
                   for t in range(len(moving))])
    return on, float(moving[~scene.mover_masks].mean())


def test_long_baseline_only_adds_movers_apart_from_the_one_step_ones():
    found = np.zeros((60, 90), bool)
    found[10:20, 10:20] = True  # around a one-step mover: left out (it would join it with its surroundings)
    found[40:50, 60:75] = True  # a mover of its own
    moving = np.zeros((60, 90), bool)
    moving[12:18, 21:30] = True  # 1 px from it: within the reach (2 px at a 90 px long side)
    kept = apart(found, moving, ClassicTrackerConfig(min_area_fraction=0.001))
    assert not kept[10:20, 10:20].any() and kept[40:50, 60:75].all() and kept.sum() == 150
    np.testing.assert_array_equal(apart(found, np.zeros_like(moving)), found)


def test_static_walls_under_a_walking_camera_stay_background():
    """Ground and two walls, nothing moving: the longer baseline flags (almost) nothing. Measured 0.0003."""
    _, off = _flagged(0.0, 0.75, with_mover=False)
    assert off < 0.002, off


def test_decay_is_validated():
    with pytest.raises(Recon4dError, match="long_baseline_decay"):
        ClassicTrackerConfig(long_baseline_decay=1.0)


def test_still_camera_motion_is_unchanged():
    """A still camera (the homography model: no parallax, and the stabilised background model finds slow
    movers there): the longer baseline adds nothing to the one-step mask."""
    rng = np.random.default_rng(7)
    ground = cv2.GaussianBlur(rng.uniform(0, 255, (120, 160)).astype(np.float32), (0, 0), 1.5)
    patch = cv2.GaussianBlur(rng.uniform(0, 255, (120, 160)).astype(np.float32), (0, 0), 1.5)
    frames = []
    for t in range(10):
        shifted = cv2.warpAffine(patch, np.float32([[1, 0, 0.4 * t], [0, 1, 0]]), (160, 120))
        frame = ground.copy()
        frame[40:80, 50:90] = shifted[40:80, 50:90]
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    gray = np.stack(frames)
    plain = compute_motion(gray, ClassicTrackerConfig())
    longer = compute_motion(gray, ClassicTrackerConfig(long_baseline_decay=0.75))
    assert all(background.kind == "planar" for background in longer.backgrounds)
    np.testing.assert_array_equal(np.asarray(longer.moving), np.asarray(plain.moving))


def _k_step_flagged(speed: float, steps: int, with_mover: bool = True) -> tuple[np.ndarray, float]:
    scene = walking_scene(0, n_frames=16, mover_m_s=speed, with_mover=with_mover)
    gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in scene.frames])
    config = ClassicTrackerConfig(long_step_frames=steps, long_step_apart=False)
    moving = np.asarray(compute_motion(gray, config).moving)
    on = np.array([moving[t][scene.mover_masks[t]].mean() if scene.mover_masks[t].any() else np.nan
                   for t in range(len(moving))])
    return on, float(moving[~scene.mover_masks].mean())


def test_chained_flow_adds_the_steps_along_the_way():
    """Three steps back, each moving the picture 2 px right and 1 px down (so the flow back is (-2, -1)
    wherever it is read): the chain takes every pixel (-6, -3) and trusts those that stay inside."""
    height, width, steps = 20, 30, 3
    backward = np.zeros((steps, height, width, 2), np.float32)
    backward[..., 0], backward[..., 1] = -2.0, -1.0
    forward = -backward
    flow, ok = chained_flow(backward, forward, steps, steps)
    np.testing.assert_allclose(flow, np.broadcast_to([-6.0, -3.0], flow.shape))
    assert ok[3:, 6:].all() and not ok[:3].any() and not ok[:, :6].any()  # (x - 6, y - 3) must lie inside


def test_chained_flow_drops_pixels_a_step_does_not_trust():
    """A step whose flow back is not undone by the flow forth (an occlusion) leaves the pixels that pass through it out."""
    height, width = 20, 30
    backward = np.zeros((2, height, width, 2), np.float32)
    forward = np.zeros_like(backward)
    forward[0, 5:10, 5:10] = [4.0, 0.0]  # frame t − 2 → t − 1 disagrees with the flow back here
    _, ok = chained_flow(backward, forward, 2, 2)
    assert not ok[5:10, 5:10].any() and ok[12:, 12:].all()


@pytest.mark.parametrize("flagged, frames", [
    (lambda speed, longer: _flagged(speed, 0.75 if longer else 0.0), slice(4, 11)),
    (lambda speed, longer: _k_step_flagged(speed, 3 if longer else 0), slice(3, 10)),
], ids=["decayed-sum", "k-steps"])
def test_slow_mover_under_a_walking_camera_is_found_over_a_longer_baseline(flagged, frames):
    """A box crossing at 0.2 m/s before a camera walking at 1.4 m/s into a corner: its one-step residual
    flags (almost) none of its pixels in the middle frames; over a longer baseline a good share, both as
    the residual summed over frames (decay 0.75; measured 0.20-0.37) and as the 3-step test (0.20-0.39).
    Off the box: 0.0000 -> under 0.001 of the pixels."""
    one_step, _ = flagged(0.2, False)
    longer, off = flagged(0.2, True)
    assert np.all(one_step[frames] < 0.05), one_step
    assert np.all(longer[frames] > 0.15), longer
    assert off < 0.003, off


def test_static_walls_under_a_walking_camera_stay_background_over_k_steps():
    """Ground and two walls, nothing moving: the 3-step test flags (almost) nothing. Measured 0.0001."""
    _, off = _k_step_flagged(0.0, 3, with_mover=False)
    assert off < 0.002, off


def test_k_step_needs_k_earlier_frames_and_a_translating_camera():
    backward = np.zeros((4, 20, 30, 2), np.float32)
    observable = np.ones((20, 30), bool)
    config = ClassicTrackerConfig(long_step_frames=3)
    assert long_step_moving(observable, backward, backward, 2, config) is None  # only 2 earlier frames
    assert long_step_moving(observable, backward, backward, 4, config) is None  # still: no epipolar model
    with pytest.raises(Recon4dError, match="long_step_frames"):
        ClassicTrackerConfig(long_step_frames=-1)
