"""Tests of recon4d/synth/cameras.py: the camera kinds of synthetic footage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from recon4d.synth.cameras import (
    CAMERA_KINDS,
    follow_path,
    look_at,
    orbit_path,
    pan_path,
    rotvec_to_matrix,
    static_path,
    walk_path,
)

TIMES = np.arange(60) / 12.0


def is_rotation(poses: np.ndarray) -> bool:
    rotation = poses[:, :3, :3]
    return (np.allclose(np.swapaxes(rotation, 1, 2) @ rotation, np.eye(3), atol=1e-9)
            and np.allclose(np.linalg.det(rotation), 1.0) and np.allclose(poses[:, 3], [0, 0, 0, 1]))


def step_lengths(poses: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)


def view_angles_deg(poses: np.ndarray) -> np.ndarray:
    relative = np.swapaxes(poses[:-1, :3, :3], 1, 2) @ poses[1:, :3, :3]
    return np.degrees(Rotation.from_matrix(relative).magnitude())


def test_rotvec_to_matrix_matches_scipy():
    rotvec = np.random.default_rng(0).normal(size=(50, 3))
    np.testing.assert_allclose(rotvec_to_matrix(rotvec), Rotation.from_rotvec(rotvec).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rotvec_to_matrix(np.zeros(3)), np.eye(3))


def test_static_camera_repeats_one_pose_exactly():
    poses = static_path(30, np.random.default_rng(1))
    assert is_rotation(poses)
    np.testing.assert_array_equal(poses, np.broadcast_to(poses[0], poses.shape))
    assert 1.2 <= poses[0, 2, 3] <= 4.5


@pytest.mark.parametrize("seed", range(5))
def test_pan_keeps_its_position_and_turns(seed):
    poses = pan_path(TIMES, np.random.default_rng(seed))
    assert is_rotation(poses)
    np.testing.assert_array_equal(poses[:, :3, 3], np.broadcast_to(poses[0, :3, 3], (len(TIMES), 3)))
    forward = poses[:, :3, 2]
    sweep = np.degrees(np.arccos(np.clip(forward[0] @ forward[-1], -1, 1)))
    assert 10.0 < sweep < 40.0
    assert np.abs(poses[:, 2, 0]).max() < 1e-12  # a tripod head does not roll


@pytest.mark.parametrize("seed", range(5))
def test_walk_moves_at_walking_pace_with_steps_and_shake(seed):
    poses = walk_path(TIMES, np.random.default_rng(seed))
    assert is_rotation(poses)
    speed = step_lengths(poses) * 12.0
    assert 0.6 < np.median(speed) < 1.4
    height = poses[:, 2, 3]
    assert 0.015 < height.max() - height.min() < 0.1  # the bob of the steps
    roll = np.degrees(np.arcsin(np.clip(poses[:, 2, 0], -1, 1)))
    assert np.abs(roll).max() > 0.05  # handheld: the image x axis is not always level
    assert view_angles_deg(poses).max() < 3.0  # shake is smooth, not a jump per frame


def test_follow_walks_behind_the_subject_and_looks_at_it():
    def subject(times):
        return np.stack([2.0 * np.cos(0.5 * times), 2.0 * np.sin(0.5 * times)], -1)

    poses = follow_path(TIMES, subject, 3.0, np.random.default_rng(0))
    assert is_rotation(poses)
    target = np.column_stack([subject(TIMES), np.full(len(TIMES), 0.9)])
    camera = np.einsum("tji,tj->ti", poses[:, :3, :3], target - poses[:, :3, 3])
    angle_off_axis = np.degrees(np.arctan2(np.linalg.norm(camera[:, :2], axis=1), camera[:, 2]))
    assert angle_off_axis.max() < 3.0  # kept near the image centre, up to the shake
    assert (camera[:, 2] > 2.0).all()
    behind = np.linalg.norm(poses[:, :2, 3] - subject(TIMES - 3.0), axis=1)
    assert behind.max() < 1.2  # on the subject's own path, a little to the side


def test_orbit_still_is_the_first_pose_of_the_moving_orbit():
    moving, still = orbit_path(24, np.random.default_rng(3)), orbit_path(24, np.random.default_rng(3), still=True)
    np.testing.assert_allclose(still, np.broadcast_to(moving[0], still.shape))
    assert step_lengths(moving).sum() > 0.3


@pytest.mark.parametrize("make", [pan_path, walk_path], ids=["pan", "walk"])
def test_paths_are_functions_of_time_not_of_the_frame_rate(make):
    slow, fast = make(np.arange(25) / 12.0, np.random.default_rng(4)), make(np.arange(49) / 24.0, np.random.default_rng(4))
    # Same clip length (2 s); every other frame of the 24 fps path is a frame of the 12 fps one.
    np.testing.assert_allclose(fast[::2], slow, atol=1e-12)


def test_camera_kinds_and_look_at():
    assert CAMERA_KINDS == ("static", "pan", "orbit", "walk", "follow")
    pose = look_at(np.array([0.0, -5.0, 2.0]), np.array([0.0, 0.0, 0.0]))
    assert pose[2, 0] == pytest.approx(0.0) and pose[:3, 2] @ np.array([0.0, 1.0, 0.0]) > 0.9
