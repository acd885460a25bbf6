"""Background tracks that stay put in the image while the frame moves
(recon4d/recon/classic/camera_motion.py: ``held_still``; ``ClassicConfig.still_track_px``).

A follow camera walks behind its subject and keeps looking at it: when no tracker masks the
subject out, its corners stay near the focus of expansion, where they agree with every
essential matrix. The tracks here are exact projections (f = 300 px) of static points and of a
subject that moves with the camera.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from recon4d.recon.classic.camera_motion import estimate_motion, held_still
from recon4d.recon.classic.config import ClassicConfig, ClassicReconstructionError

FOCAL = 300.0


def follow(n_frames: int, step_m: float, turn_deg: float) -> np.ndarray:
    """world_to_cam (T, 3, 4): walking forward (+z) step_m per frame while turning turn_deg about y."""
    poses = []
    for t in range(n_frames):
        rotation = Rotation.from_euler("y", -turn_deg * t, degrees=True).as_matrix()
        centre = np.array([0.0, 0.0, step_m * t])
        poses.append(np.concatenate([rotation, (-rotation @ centre)[:, None]], axis=1))
    return np.stack(poses)


def observe(world_to_cam: np.ndarray, n_static: int = 300, n_subject: int = 60, seed: int = 3):
    """(N, T, 2) normalised tracks: static points 4–14 m ahead, then a subject 3 m ahead of every
    camera that stays put in the image (it walks with the camera)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([-6, -3, 4], [6, 2, 14], size=(n_static, 3))
    camera = np.einsum("tij,nj->nti", world_to_cam[:, :, :3], points) + world_to_cam[:, :, 3]
    static = camera[..., :2] / camera[..., 2:]
    subject = rng.uniform([-0.1, -0.2], [0.1, 0.2], size=(n_subject, 1, 2)) + np.zeros((1, len(world_to_cam), 2))
    return np.concatenate([static, subject]) + rng.normal(scale=0.1 / FOCAL, size=(n_static + n_subject,
                                                                                   len(world_to_cam), 2))


def test_held_still_flags_the_subject_that_walks_with_a_turning_camera_and_no_static_point():
    tracks = observe(follow(8, 0.4, 6.0))  # a 6° turn moves the frame by ~31 px per step
    flagged = held_still(tracks, np.ones(tracks.shape[:2], bool), FOCAL, min_shift_px=15.0)
    assert flagged[300:].all() and not flagged[:300].any()


def test_held_still_judges_no_step_where_the_frame_moves_too_little():
    tracks = observe(follow(8, 0.05, 0.5))  # ~3 px per step: nothing stands out from a still frame
    assert not held_still(tracks, np.ones(tracks.shape[:2], bool), FOCAL, min_shift_px=15.0).any()


def test_estimate_motion_leaves_the_still_subject_out_when_asked():
    truth = follow(8, 0.4, 6.0)
    tracks = observe(truth, n_subject=150)
    everything = np.ones(len(tracks), bool)

    def turn_error_deg(config):
        motion = estimate_motion(tracks, everything, FOCAL, config)
        relative = np.swapaxes(motion.world_to_cam[:, :, :3], 1, 2) @ truth[:, :, :3]
        return np.degrees(Rotation.from_matrix(relative).magnitude()).max()

    # Measured: 0.035° off at worst with the subject in the background tracks, 0.007° without.
    assert turn_error_deg(ClassicConfig(still_track_px=15.0)) < 0.02 < turn_error_deg(ClassicConfig(still_track_px=None))


def test_config_checks_still_track_px():
    with pytest.raises(ClassicReconstructionError, match="still_track_px"):
        ClassicConfig(still_track_px=-1.0)


def dense_held_still(xy, bg_seen, focal, min_shift_px, ratio=0.3):
    """The whole-clip formula (N, T − 1 temporaries): the slow reference of the step-wise one."""
    from recon4d.recon.classic.camera_motion import MIN_MAP_POINTS

    step = xy[:, 1:] - xy[:, :-1]
    both = bg_seen[:, 1:] & bg_seen[:, :-1]
    median = np.zeros(both.shape[1])
    for t in range(both.shape[1]):
        if both[:, t].sum() >= MIN_MAP_POINTS:
            median[t] = np.linalg.norm(np.median(step[both[:, t], t], axis=0)) * focal
    judged = both & (median >= min_shift_px)[None]
    with np.errstate(invalid="ignore"):
        still = judged & (np.linalg.norm(step, axis=-1) * focal < ratio * median[None])
    n_judged = judged.sum(axis=1)
    return (n_judged > 0) & (2 * still.sum(axis=1) >= n_judged)


def test_held_still_step_by_step_equals_the_whole_clip_formula():
    """held_still works one step at a time (a long clip's (N, T − 1) temporaries took ~300 MiB):
    on tracks that come and go, with steps the camera moves in and steps it does not, it flags
    exactly the tracks the whole-clip formula flags."""
    xy = observe(follow(16, 0.4, 6.0), n_static=400, n_subject=80)
    rng = np.random.default_rng(5)
    xy[rng.uniform(size=xy.shape[:2]) < 0.3] = np.nan  # tracks that come and go
    xy[:, 10:] = xy[:, 10:11] + 1e-4 * (xy[:, 10:] - xy[:, 10:11])  # a camera that stops
    seen = np.isfinite(xy[..., 0]) & (rng.uniform(size=len(xy)) < 0.9)[:, None]
    seen[:, 5] &= rng.uniform(size=len(xy)) < 0.01  # a step with too few tracks to judge
    flagged = held_still(xy, seen, FOCAL, 15.0)
    assert 0 < flagged.sum() < len(flagged)
    np.testing.assert_array_equal(flagged, dense_held_still(xy, seen, FOCAL, 15.0))
