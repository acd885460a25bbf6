"""A camera whose height above the fitted ground drifts is not trusted
(recon4d/recon/classic/camera_quality.py: ``height_drift``, ``build_camera_quality``;
``ClassicConfig.max_height_drift``).

A handheld camera keeps its height to a few centimetres; a pose chain that drifts in scale or
bends its rotation climbs out of the ground (follow seeds of pipeline_fidelity: 23–80 % off the
median height in places while the truth stays within 2 %).
"""

from __future__ import annotations

import numpy as np
import pytest

from recon4d.recon.classic.camera_quality import build_camera_quality, height_drift, path_kinks
from recon4d.recon.classic.config import ClassicConfig, ClassicReconstructionError

GROUND = (np.array([0.0, -1.0, 0.0]), 1.6)  # OpenCV world (y down): the ground 1.6 m below camera 0


def walk(heights_m: np.ndarray) -> np.ndarray:
    """world_to_cam (T, 3, 4): a level camera walking forward 0.3 m a frame at the given heights."""
    poses = np.tile(np.eye(3, 4), (len(heights_m), 1, 1))
    centres = np.stack([np.zeros(len(heights_m)), 1.6 - heights_m, 0.3 * np.arange(len(heights_m))], axis=1)
    poses[:, :, 3] = -centres
    return poses


def test_height_drift_of_a_steady_and_of_a_climbing_camera():
    steady = 1.6 + 0.02 * np.sin(np.arange(20))  # the bob of a walk
    assert np.nanmax(height_drift(walk(steady), GROUND)) < 0.03
    climbing = np.linspace(1.2, 2.0, 20)
    drift = height_drift(walk(climbing), GROUND)
    assert drift.shape == (20,)
    assert drift[0] == pytest.approx(abs(1.2 / np.median(climbing) - 1.0))
    assert drift[[0, -1]].min() > 0.2 and drift[10] < 0.05


def test_height_drift_without_a_ground_or_below_it_is_not_measured():
    assert np.isnan(height_drift(walk(np.full(5, 1.6)), None)).all()
    flipped = (-GROUND[0], -GROUND[1])  # cameras on the wrong side: no usable height
    assert np.isnan(height_drift(walk(np.full(5, 1.6)), flipped)).all()


def quality(world_to_cam: np.ndarray, drift, max_drift):
    n_frames = len(world_to_cam)
    xy = np.zeros((0, n_frames, 2))
    seen = np.zeros((0, n_frames), bool)
    none = np.zeros(n_frames, bool)
    return build_camera_quality(world_to_cam, np.zeros((0, 3)), xy, seen, 300.0, "parallax", none, none,
                                "ground-plane", 2.0, 2.5, 0.3, drift, max_drift)


def test_frames_whose_height_drifts_are_not_ok():
    heights = np.concatenate([np.full(10, 1.6), np.linspace(1.6, 2.2, 6)])
    poses = walk(heights)
    drift = height_drift(poses, GROUND)
    checked = quality(poses, drift, 0.1)
    assert checked.frame_ok.tolist() == (drift <= 0.1).tolist()
    assert not checked.frame_ok[-1] and checked.frame_ok[:10].all()
    assert checked.score == pytest.approx(checked.frame_ok.mean())
    assert quality(poses, drift, None).frame_ok.all()  # off: the old record
    assert quality(poses, np.full(len(poses), np.nan), 0.1).frame_ok.all()  # not measured: kept


def test_config_max_height_drift():
    assert ClassicConfig().max_height_drift is None
    assert ClassicConfig(max_height_drift=0.1).max_height_drift == 0.1
    with pytest.raises(ClassicReconstructionError, match="max_height_drift"):
        ClassicConfig(max_height_drift=-0.1)


def path(centres: np.ndarray) -> np.ndarray:
    """world_to_cam (T, 3, 4) of level cameras at ``centres`` (T, 3)."""
    poses = np.tile(np.eye(3, 4), (len(centres), 1, 1))
    poses[:, :, 3] = -centres
    return poses


def test_a_smooth_walk_has_no_kinks_even_at_uneven_sampling():
    times = np.cumsum(np.tile([1 / 6, 1 / 12], 10))  # 32 of 60 frames: steps alternate in length
    heading = np.radians(20.0) * np.sin(times)  # a walk that weaves ±20°
    steps = 1.3 * np.diff(times, prepend=0.0)[:, None] * np.stack([np.sin(heading), 0 * heading,
                                                                    np.cos(heading)], axis=1)
    assert not path_kinks(path(np.cumsum(steps, axis=0)), times, 60.0, 2.5).any()


def test_a_path_that_walks_back_or_jumps_is_kinked():
    times = np.arange(12) / 6.0
    centres = np.zeros((12, 3))
    centres[:, 2] = 0.2 * np.arange(12)
    back = centres.copy()
    back[6:, 2] = back[5, 2] - 0.2 * np.arange(1, 7)  # turns round at frame 5 (180°)
    assert np.flatnonzero(path_kinks(path(back), times, 60.0, 2.5)).tolist() == [5]
    jump = centres.copy()
    jump[7:, 2] += 1.0  # one step of 1.2 m amid 0.2 m steps
    assert np.flatnonzero(path_kinks(path(jump), times, 60.0, 2.5)).tolist() == [6, 7]
    speed = np.concatenate([np.full(8, 1.2), [0.8, 0.4], np.zeros(12)])  # slows down to stand still
    shake = np.random.default_rng(0).normal(scale=2e-3, size=(23, 3))  # its hand shakes
    stops = np.concatenate([[0.0], np.cumsum(speed / 6.0)])[:, None] * [0.0, 0.0, 1.0] + shake
    assert path_kinks(path(stops), np.arange(23) / 6.0, 60.0, 2.5).any()  # judged by its shake
    assert not path_kinks(path(stops), np.arange(23) / 6.0, 60.0, 2.5, min_speed=0.3).any()


def test_kinked_frames_are_not_ok():
    poses = walk(np.full(6, 1.6))
    kinks = np.array([False, False, True, True, False, False])
    checked = build_camera_quality(poses, np.zeros((0, 3)), np.zeros((0, 6, 2)), np.zeros((0, 6), bool), 300.0,
                                   "parallax", np.zeros(6, bool), np.zeros(6, bool), "ground-plane", 2.0, 2.5, 0.3,
                                   None, None, kinks)
    assert checked.frame_ok.tolist() == (~kinks).tolist()


def test_config_path_kinks():
    assert ClassicConfig().max_path_turn_deg is None and ClassicConfig().max_speed_ratio == 2.5
    assert ClassicConfig(max_path_turn_deg=60.0).max_path_turn_deg == 60.0
    with pytest.raises(ClassicReconstructionError, match="max_speed_ratio"):
        ClassicConfig(max_speed_ratio=0)
    with pytest.raises(ClassicReconstructionError, match="max_path_turn_deg"):
        ClassicConfig(max_path_turn_deg=-5.0)
