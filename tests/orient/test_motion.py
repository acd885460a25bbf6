"""Tests of orient/motion.py: agents face their smoothed direction of travel."""

from __future__ import annotations

import numpy as np
import pytest

from recon4d.errors import Recon4dError, ShapeError
from recon4d.geometry import forward_axis, orientation_to_rotation
from recon4d.orient.motion import (
    PERSON_EXTENT_M,
    MotionOrienter,
    MotionOrientWarning,
    MotionOrienterConfig,
    estimate_up,
    heading_rotations,
    metres_per_unit,
    smoothed_velocity,
    speed_confidence,
)
from recon4d.types import Clip, LiftResult, Reconstruction, Tracks2D


def lifted_from(center_world: np.ndarray, visible: np.ndarray) -> LiftResult:
    n_objects, n_frames = visible.shape
    center = np.where(visible[..., None], center_world, np.nan)
    return LiftResult(center_camera=np.full((n_objects, n_frames, 3), np.nan), center_world=center,
                      visible=visible, extent=np.full((n_objects, n_frames, 3), np.nan, np.float32),
                      n_points=np.zeros((n_objects, n_frames), np.int64))


def inputs(center_world, visible, is_agent, cam_to_world, timestamps_s):
    n_objects, n_frames = visible.shape
    clip = Clip(frames=np.zeros((n_frames, 4, 4, 3), np.uint8), timestamps_s=timestamps_s,
                frame_index=np.arange(n_frames), fps=12.0, source="test", source_size=(4, 4))
    boxes = np.where(visible[..., None], np.array([0, 0, 1, 1], np.float32), np.nan)
    tracks = Tracks2D(ids=np.arange(n_objects), categories=tuple("person" if a else "box" for a in is_agent),
                      is_agent=is_agent, boxes_xyxy=boxes, visible=visible)
    return clip, tracks, Reconstruction(cam_to_world=cam_to_world, unit="metric"), lifted_from(center_world, visible)


def world_forward(orientation: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Forward axes (K, T, 3) in world coordinates of camera-relative orientations (K, T, 3)."""
    return np.einsum("tij,ktj->kti", cam_to_world[:, :3, :3], forward_axis(orientation))


# A camera at the origin looking along world +x, world z up: right = −y, down = −z.
FACING_X = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], float)


# --- pure functions -------------------------------------------------------------------------------


def test_smoothed_velocity_is_exact_for_quadratics_with_gaps_and_uneven_times():
    times = np.cumsum(np.r_[0.0, np.random.default_rng(0).uniform(0.05, 0.12, 29)])
    velocity_true = np.stack([1.0 + 0.4 * times, -0.5 + 0 * times, 0.3 * times], -1)
    path = np.stack([times + 0.2 * times ** 2, -0.5 * times, 0.15 * times ** 2], -1)[None]
    visible = np.ones((1, 30), bool)
    visible[0, [7, 8, 20]] = False
    velocity = smoothed_velocity(path, visible, times, window_s=0.8)  # ≥ 4 samples in every window
    np.testing.assert_allclose(velocity[visible], velocity_true[visible[0]], atol=1e-9)
    assert np.isnan(velocity[~visible]).all()


def test_smoothed_velocity_edge_cases():
    assert np.isnan(smoothed_velocity(np.zeros((1, 1, 3)), np.ones((1, 1), bool), np.zeros(1))).all()
    assert smoothed_velocity(np.zeros((0, 5, 3)), np.zeros((0, 5), bool), np.arange(5.0)).shape == (0, 5, 3)
    lonely = np.zeros((1, 6, 3))
    visible = np.zeros((1, 6), bool)
    visible[0, 2] = True  # no neighbour in its window
    assert np.isnan(smoothed_velocity(lonely, visible, np.arange(6.0), 0.5)).all()
    # sparse sampling: the window widens to the neighbours, so a line still has a velocity
    line = np.arange(6.0)[None, :, None] * np.array([2.0, 0, 0])
    np.testing.assert_allclose(smoothed_velocity(line, np.ones((1, 6), bool), np.arange(6.0), 0.5)[0, :, 0], 2.0)
    with pytest.raises(ShapeError):
        smoothed_velocity(np.zeros((1, 5, 3)), np.ones((1, 4), bool), np.arange(5.0))


def test_estimate_up_from_cameras_and_refined_by_walking():
    pitch = np.radians(20.0)  # camera looks 20° down along world +x: its −y leans 20° off vertical
    rotation = np.array([[0, -np.sin(pitch), np.cos(pitch)], [-1, 0, 0], [0, -np.cos(pitch), -np.sin(pitch)]])
    cam_to_world = np.tile(np.eye(4), (3, 1, 1))
    cam_to_world[:, :3, :3] = rotation
    camera_up = estimate_up(cam_to_world)
    assert np.degrees(np.arccos(camera_up @ [0, 0, 1])) == pytest.approx(20.0)
    walking = np.array([[1.0, 0.2, 0], [0.3, -1.0, 0], [-0.7, 0.7, 0], [0.1, 1.0, 0]])
    np.testing.assert_allclose(estimate_up(cam_to_world, walking), [0, 0, 1], atol=1e-12)
    towards = np.array([[-1.0, 0, 0], [-1.2, 0, 0]])  # one direction is enough when it has depth
    np.testing.assert_allclose(estimate_up(cam_to_world, towards), [0, 0, 1], atol=1e-12)
    sideways = np.array([[0, 1.0, 0.01], [0, -1.2, -0.02], [0, 1.1, 0.0]])  # across the view: no pitch cue
    np.testing.assert_allclose(estimate_up(cam_to_world, sideways), camera_up)
    np.testing.assert_allclose(estimate_up(cam_to_world, walking, max_refinement_deg=10.0), camera_up)


def test_heading_rotations_and_confidence():
    velocity = np.array([[3.0, 4.0, 2.0], [0.0, 0.0, 5.0], [np.nan] * 3])
    rotation, speed = heading_rotations(velocity, np.array([0, 0, 2.0]))
    np.testing.assert_allclose(speed[:2], [5.0, 0.0])
    np.testing.assert_allclose(rotation[0], [[0.6, -0.8, 0], [0.8, 0.6, 0], [0, 0, 1]], atol=1e-12)
    assert np.linalg.det(rotation[0]) == pytest.approx(1.0)
    assert np.isnan(rotation[1:]).all()
    np.testing.assert_allclose(speed_confidence([0.0, 0.15, 0.375, 0.6, 2.0], 0.15, 0.6), [0, 0, 0.5, 1, 1])


# --- the backend --------------------------------------------------------------------------------


def test_camera_relative_angles_for_a_known_camera():
    times = np.arange(12) / 12.0
    towards = np.stack([5.0 - 1.2 * times, 0 * times, 0 * times], -1)  # walks to the camera: azimuth 0
    leftwards = np.stack([5.0 + 0 * times, 1.2 * times, 0 * times], -1)  # world +y is image left: 90
    cam_to_world = np.tile(FACING_X, (12, 1, 1))
    clip, tracks, recon, lifted = inputs(np.stack([towards, leftwards]), np.ones((2, 12), bool),
                                         np.array([True, True]), cam_to_world, times)
    result = MotionOrienter().orient(clip, tracks, recon, lifted)
    np.testing.assert_allclose(result.angles_deg[0], np.tile([0, 0, 0], (12, 1)), atol=1e-4)
    np.testing.assert_allclose(result.angles_deg[1], np.tile([90, 0, 0], (12, 1)), atol=1e-4)
    np.testing.assert_allclose(result.conf, 1.0)
    assert result.angles_deg.dtype == np.float32 and result.conf.dtype == np.float32


def test_static_invisible_and_non_agents():
    times = np.arange(10) / 10.0
    walker = np.stack([times, 0 * times, 0 * times], -1)
    standing = np.tile([2.0, 1.0, 0.0], (10, 1)) + 0.005 * np.sin(7 * times)[:, None]  # sways in place
    sliding_box = np.stack([0 * times, times, 0 * times], -1)
    visible = np.ones((3, 10), bool)
    visible[0, 4] = False
    clip, tracks, recon, lifted = inputs(np.stack([walker, standing, sliding_box]), visible,
                                         np.array([True, True, False]), np.tile(FACING_X, (10, 1, 1)), times)
    calls = []
    result = MotionOrienter().orient(clip, tracks, recon, lifted, progress=lambda d, t: calls.append((d, t)))
    assert np.isnan(result.angles_deg[0, 4]).all() and np.isnan(result.conf[0, 4])
    assert np.isfinite(result.angles_deg[0, visible[0]]).all()
    assert np.isnan(result.angles_deg[1]).all() and (result.conf[1] == 0).all()
    assert np.isnan(result.angles_deg[2]).all() and np.isnan(result.conf[2]).all()
    assert calls == [(1, 1)]


def test_conf_grows_with_speed():
    times = np.arange(10) / 10.0
    paths = np.stack([np.stack([speed * times, 0 * times, 0 * times], -1) for speed in (0.1, 0.375, 1.0)])
    clip, tracks, recon, lifted = inputs(paths, np.ones((3, 10), bool), np.ones(3, bool),
                                         np.tile(FACING_X, (10, 1, 1)), times)
    result = MotionOrienter().orient(clip, tracks, recon, lifted)
    np.testing.assert_allclose(result.conf[:, 5], [0.0, 0.5, 1.0], atol=1e-6)
    assert np.isnan(result.angles_deg[0]).all()


def test_synthetic_agents_face_where_they_walk():
    pytest.importorskip("open3d", reason="synthetic scenes need open3d (pip install 'recon4d[synth]')")
    pytest.importorskip("trimesh", reason="synthetic scenes need trimesh (pip install 'recon4d[synth]')")
    from recon4d.synth.scene import SynthConfig, generate_scene

    errors = []
    for seed in (0, 1, 2):
        truth = generate_scene(SynthConfig(seed=seed, n_frames=24, width=160, height=90, shadows=False)).scene
        clip, tracks, recon, lifted = inputs(truth.center_world, truth.visible, truth.is_agent,
                                             truth.cam_to_world, truth.timestamps_s)
        result = MotionOrienter().orient(clip, tracks, recon, lifted)
        agents = truth.is_agent
        assert np.isnan(result.angles_deg[~agents]).all()
        estimated = world_forward(result.angles_deg, truth.cam_to_world)[agents]
        expected = world_forward(truth.orientation, truth.cam_to_world)[agents]
        seen = truth.visible[agents]
        assert np.isfinite(estimated[seen]).all()  # synthetic agents never stand still
        cosine = np.clip(np.sum(estimated[seen] * expected[seen], axis=-1), -1, 1)
        errors.append(np.degrees(np.arccos(cosine)))
        # the whole rotation, not only the forward axis: up is world z
        rotation = orientation_to_rotation(result.angles_deg[agents][seen])
        world_up = np.einsum("tij,tj->ti", truth.cam_to_world[np.nonzero(seen)[1], :3, :3], rotation[..., :, 2])
        np.testing.assert_allclose(world_up, np.tile([0, 0, 1], (len(world_up), 1)), atol=0.01)  # < 0.6°
    errors = np.concatenate(errors)
    # Measured (192 agent-frames): median 0.03°, max 0.4°; the up fit, not the heading, dominates.
    assert np.median(errors) < 0.1 and errors.max() < 1.0


def test_from_config_and_shape_checks():
    assert MotionOrienter.from_config({"v_min": 0.2}, "cpu").config.v_min == 0.2
    with pytest.raises(Recon4dError, match="unknown option"):
        MotionOrienter.from_config({"speed": 1}, "cpu")
    with pytest.raises(Recon4dError, match="v_min < v_full"):
        MotionOrienterConfig(v_min=1.0, v_full=0.5)
    times = np.arange(5) / 5.0
    clip, tracks, recon, lifted = inputs(np.zeros((1, 5, 3)), np.ones((1, 5), bool), np.ones(1, bool),
                                         np.tile(FACING_X, (5, 1, 1)), times)
    with pytest.raises(ShapeError):
        MotionOrienter().orient(clip, tracks, Reconstruction(np.tile(np.eye(4), (4, 1, 1)), unit="metric"), lifted)
    assert MotionOrienter.name == "motion"


def test_arbitrary_scale_is_brought_to_metres_by_the_heights_of_people():
    """π³-like geometry in units of 5 cm: speeds judged in metres only after scaling."""
    times = np.arange(10) / 10.0
    walk = np.stack([np.stack([speed * times, 0 * times, 0 * times], -1) for speed in (0.3, 1.0)])
    visible, agents = np.ones((2, 10), bool), np.ones(2, bool)
    poses = np.tile(FACING_X, (10, 1, 1))
    clip, tracks, metric, lifted = inputs(walk, visible, agents, poses, times)
    expected = MotionOrienter().orient(clip, tracks, metric, lifted)
    assert np.isfinite(expected.angles_deg).all() and expected.conf[1, 5] == 1.0

    unit_m = 0.05
    small = lifted_from(walk / unit_m, visible)
    height = np.full((2, 10, 3), np.nan, np.float32)
    height[..., 1] = PERSON_EXTENT_M / unit_m
    small = LiftResult(small.center_camera, small.center_world, small.visible, height, small.n_points)
    arbitrary = Reconstruction(cam_to_world=poses, unit="arbitrary")
    with pytest.warns(MotionOrientWarning, match="scaled by 0.05 m per unit"):
        result = MotionOrienter().orient(clip, tracks, arbitrary, small)
    np.testing.assert_allclose(result.conf, expected.conf, atol=1e-5)
    np.testing.assert_allclose(result.angles_deg, expected.angles_deg, atol=1e-3)
    assert metres_per_unit(height, visible, np.array([True, False])) == pytest.approx(unit_m)


def test_arbitrary_scale_without_people_warns():
    times = np.arange(10) / 10.0
    walk = np.stack([np.stack([times, 0 * times, 0 * times], -1)])
    clip, tracks, _, lifted = inputs(walk, np.ones((1, 10), bool), np.ones(1, bool), np.tile(FACING_X, (10, 1, 1)),
                                     times)
    with pytest.warns(MotionOrientWarning, match="applied in world units per second"):
        MotionOrienter().orient(clip, tracks, Reconstruction(np.tile(FACING_X, (10, 1, 1)), unit="arbitrary"), lifted)
