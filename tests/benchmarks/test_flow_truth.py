"""Tests of benchmarks/flow_truth.py's true static flow (static_flow_truth)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from flow_truth import static_flow_truth  # noqa: E402

INTRINSICS = np.array([[100.0, 0.0, 40.0], [0.0, 100.0, 20.0], [0.0, 0.0, 1.0]])


def _wall(depth: float, width: int = 80, height: int = 40) -> np.ndarray:
    """(height, width, 3) camera-frame points of a wall facing the camera at ``depth``, one per pixel."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = np.stack([(xs - 40.0) / 100.0, (ys - 20.0) / 100.0, np.ones_like(xs)], -1)
    return rays * depth


def test_a_sideways_step_moves_a_wall_by_focal_times_step_over_depth():
    flow = static_flow_truth(_wall(10.0), np.eye(3), np.array([0.5, 0.0, 0.0]), INTRINSICS, (80, 40))
    assert np.allclose(flow[..., 0], 5.0, atol=1e-4) and np.allclose(flow[..., 1], 0.0, atol=1e-4)


def test_a_turn_moves_every_depth_alike_and_the_working_size_scales_the_flow():
    angle = np.radians(2.0)
    rotation = np.array([[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]])
    near = static_flow_truth(_wall(2.0), rotation, np.zeros(3), INTRINSICS, (80, 40))
    far = static_flow_truth(_wall(50.0), rotation, np.zeros(3), INTRINSICS, (80, 40))
    assert np.allclose(near, far, atol=1e-3)
    assert abs(near[20, 40, 0] - 100.0 * np.tan(angle)) < 1e-3  # the centre moves by f · tan(angle)
    half = static_flow_truth(_wall(2.0), rotation, np.zeros(3), INTRINSICS, (40, 20))
    assert half.shape == (20, 40, 2) and np.allclose(half, near[::2, ::2] / 2, atol=1e-3)


def test_points_that_go_behind_the_camera_have_no_flow():
    flow = static_flow_truth(_wall(1.0), np.eye(3), np.array([0.0, 0.0, -2.0]), INTRINSICS, (80, 40))
    assert np.isnan(flow).all()
