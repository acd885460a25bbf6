"""Tests of recon4d/geometry.py (DESIGN §2 coordinate conventions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from recon4d import geometry
from recon4d.errors import ShapeError
from recon4d.geometry import (
    FACING_CAMERA_ROTATION,
    FLU_TO_OPENCV,
    OPENCV_TO_FLU,
    agent_observer_pose,
    agent_to_camera,
    camera_observer_pose,
    camera_to_agent,
    camera_to_camera,
    flu_to_opencv,
    forward_axis,
    invert_rigid,
    opencv_to_flu,
    orientation_to_rotation,
    rotation_to_orientation,
    to_observer_frame,
)

from tests.conftest import SHARED_DATA, missing_shared_data

REFERENCE_VECTORS = SHARED_DATA / "dsr_reference_vectors.json"
TRANSFORM_FNS = (
    "camera_self_coord_trans",
    "camera_agent_coord_trans",
    "agent_camera_coord_trans",
    "camera_mutual_coordinate_transform",
)


def _reference_params():
    if not REFERENCE_VECTORS.exists():  # the test then skips, or fails under CI=true
        return [pytest.param(None, id="no-reference-vectors")]
    cases = json.loads(REFERENCE_VECTORS.read_text())["cases"]
    params, seen = [], {fn: 0 for fn in TRANSFORM_FNS}
    for case in cases:
        if case["fn"] in seen:
            params.append(pytest.param(case, id=f"{case['fn']}-{seen[case['fn']]}"))
            seen[case["fn"]] += 1
    return params


def _random_rigid(rng, n=None):
    """Random cam_to_world pose(s), (4, 4) or (n, 4, 4)."""
    shape = () if n is None else (n,)
    pose = np.zeros(shape + (4, 4))
    rotation = Rotation.random(1 if n is None else n, random_state=rng).as_matrix()
    pose[..., :3, :3] = rotation.reshape(shape + (3, 3))
    pose[..., :3, 3] = rng.normal(scale=3.0, size=shape + (3,))
    pose[..., 3, 3] = 1.0
    return pose


def _scipy_rotation(angles_deg):
    """R_cam←agent straight from the DESIGN formula, one scipy call per row."""
    angles_deg = np.asarray(angles_deg, dtype=float).reshape(-1, 3)
    euler = [
        Rotation.from_euler("zyx", [-az, polar, -rot], degrees=True).as_matrix()
        for az, polar, rot in angles_deg
    ]
    return FACING_CAMERA_ROTATION @ np.stack(euler)


def _assert_rotations(rotation):
    eye = np.broadcast_to(np.eye(3), rotation.shape)
    np.testing.assert_allclose(np.swapaxes(rotation, -1, -2) @ rotation, eye, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0, atol=1e-12)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.mark.parametrize("case", _reference_params())
def test_reference_vectors(case):
    if case is None:
        missing_shared_data(f"the DSR reference vectors {REFERENCE_VECTORS}")
    fn = case["fn"]
    expected = np.asarray(case["out"])
    if fn == "camera_self_coord_trans":
        got = opencv_to_flu(case["coords"])
    elif fn == "camera_agent_coord_trans":
        angles = [case["azimuth"], case["polar"], case["rotation"]]
        got = camera_to_agent(case["coords"], angles, case["trans"])
    elif fn == "agent_camera_coord_trans":
        angles = [case["azimuth"], case["polar"], case["rotation"]]
        got = agent_to_camera(case["coord"], angles, case["trans"])
    else:
        got = camera_to_camera(case["coords"], case["mat_1"], case["mat_2"])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_reference_vectors_cover_every_transform():
    if not REFERENCE_VECTORS.exists():
        missing_shared_data(f"the DSR reference vectors {REFERENCE_VECTORS}")
    ids = [param.id for param in _reference_params()]
    for fn in TRANSFORM_FNS:
        assert sum(i.startswith(fn + "-") for i in ids) == 30


def test_opencv_flu_constants_and_round_trip(rng):
    points = rng.normal(size=(4, 5, 3))
    np.testing.assert_array_equal(opencv_to_flu(points), points @ OPENCV_TO_FLU.T)
    np.testing.assert_array_equal(flu_to_opencv(opencv_to_flu(points)), points)
    np.testing.assert_array_equal(OPENCV_TO_FLU @ FLU_TO_OPENCV, np.eye(3))
    np.testing.assert_array_equal(opencv_to_flu([0.0, 0.0, 1.0]), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(opencv_to_flu([1.0, 2.0, 3.0]), [3.0, -1.0, -2.0])
    assert opencv_to_flu(np.array([1, 2, 3])).dtype == np.float64
    assert not OPENCV_TO_FLU.flags.writeable


@pytest.mark.parametrize("fn", [opencv_to_flu, flu_to_opencv, forward_axis, orientation_to_rotation])
@pytest.mark.parametrize("shape", [(), (2,), (5, 4), (3, 2)])
def test_last_axis_three_required(fn, shape):
    with pytest.raises(ShapeError, match=r"must have shape \("):
        fn(np.zeros(shape))


def test_shape_error_is_readable():
    with pytest.raises(ShapeError, match=r"points must have shape \(\*, 3\) but has shape \(4, 2\)"):
        opencv_to_flu(np.zeros((4, 2)))
    with pytest.raises(ShapeError, match=r"dtype"):
        opencv_to_flu(np.array(["a", "b", "c"]))


def test_orientation_to_rotation_matches_scipy(rng):
    angles = rng.uniform(-720.0, 720.0, size=(400, 3))
    np.testing.assert_allclose(orientation_to_rotation(angles), _scipy_rotation(angles), atol=1e-12)
    _assert_rotations(orientation_to_rotation(angles))


def test_orientation_to_rotation_is_vectorised(rng):
    angles = rng.uniform(-180.0, 180.0, size=(2, 3, 3))
    rotation = orientation_to_rotation(angles)
    assert rotation.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(rotation[1, 2], orientation_to_rotation(angles[1, 2]), atol=0)
    assert orientation_to_rotation([0.0, 0.0, 0.0]).shape == (3, 3)
    np.testing.assert_array_equal(orientation_to_rotation([0, 0, 0]), FACING_CAMERA_ROTATION)


@pytest.mark.parametrize(
    ("angles", "forward"),
    [
        ([0.0, 0.0, 0.0], [0.0, 0.0, -1.0]),  # faces the camera
        ([0.0, 30.0, 0.0], [0.0, 0.5, -np.sqrt(3) / 2]),  # DESIGN §2 example
        ([90.0, 0.0, 0.0], [-1.0, 0.0, 0.0]),  # faces image-left
        ([180.0, 0.0, 0.0], [0.0, 0.0, 1.0]),  # faces away
        ([270.0, 0.0, 0.0], [1.0, 0.0, 0.0]),  # faces image-right
        ([0.0, 0.0, 77.0], [0.0, 0.0, -1.0]),  # rotation turns about the viewing axis
        ([90.0, 0.0, 90.0], [0.0, -1.0, 0.0]),  # image-left turned in-plane to image-up
    ],
)
def test_forward_axis_design_examples(angles, forward):
    np.testing.assert_allclose(forward_axis(angles), forward, atol=1e-12)


def test_rotation_turns_about_the_camera_optical_axis(rng):
    angles = rng.uniform(-180.0, 180.0, size=(50, 3))
    turned = angles.copy()
    turned[:, 2] = rng.uniform(-180.0, 180.0, 50)
    rotation, rotation_turned = orientation_to_rotation(angles), orientation_to_rotation(turned)
    # An in-image-plane turn keeps every axis's depth (camera z) component.
    np.testing.assert_allclose(rotation_turned[:, 2, :], rotation[:, 2, :], atol=1e-12)
    in_plane = np.deg2rad(angles[:, 2] - turned[:, 2])
    cos, sin = np.cos(in_plane), np.sin(in_plane)
    turn = np.zeros((50, 3, 3))
    turn[:, 0, 0], turn[:, 0, 1], turn[:, 1, 0], turn[:, 1, 1], turn[:, 2, 2] = cos, -sin, sin, cos, 1.0
    np.testing.assert_allclose(turn @ rotation_turned, rotation, atol=1e-12)


def test_forward_axis_is_first_column(rng):
    angles = rng.uniform(-180.0, 180.0, size=(6, 3))
    np.testing.assert_array_equal(forward_axis(angles), orientation_to_rotation(angles)[..., 0])
    np.testing.assert_allclose(np.linalg.norm(forward_axis(angles), axis=-1), 1.0, atol=1e-12)


def _angles_in_range(rng, n):
    return np.stack(
        [
            rng.uniform(0.0, 360.0, n),
            rng.uniform(-89.0, 89.0, n),
            rng.uniform(-179.9, 180.0, n),
        ],
        axis=-1,
    )


def test_rotation_to_orientation_round_trips_angles(rng):
    angles = _angles_in_range(rng, 500)
    np.testing.assert_allclose(rotation_to_orientation(orientation_to_rotation(angles)), angles, atol=1e-9)


def test_rotation_to_orientation_round_trips_matrices(rng):
    rotation = Rotation.random(500, random_state=rng).as_matrix().reshape(5, 100, 3, 3)
    angles = rotation_to_orientation(rotation)
    assert angles.shape == (5, 100, 3)
    np.testing.assert_allclose(orientation_to_rotation(angles), rotation, atol=1e-12)
    assert np.all((angles[..., 0] >= 0.0) & (angles[..., 0] < 360.0))
    assert np.all((angles[..., 1] >= -90.0) & (angles[..., 1] <= 90.0))
    assert np.all((angles[..., 2] > -180.0) & (angles[..., 2] <= 180.0))


def test_rotation_to_orientation_canonicalises_polar_beyond_90(rng):
    angles = rng.uniform(-720.0, 720.0, size=(300, 3))
    canonical = rotation_to_orientation(orientation_to_rotation(angles))
    assert np.all(np.abs(canonical[:, 1]) <= 90.0)
    np.testing.assert_allclose(
        orientation_to_rotation(canonical), orientation_to_rotation(angles), atol=1e-12
    )


@pytest.mark.parametrize(
    ("angles", "expected"),
    [
        ([0.0, 0.0, 180.0], [0.0, 0.0, 180.0]),
        ([0.0, 0.0, -180.0], [0.0, 0.0, 180.0]),
        ([360.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
        ([-1e-20, 0.0, 0.0], [0.0, 0.0, 0.0]),
        ([-90.0, 10.0, 20.0], [270.0, 10.0, 20.0]),
        ([10.0, 120.0, 0.0], [190.0, 60.0, 180.0]),
    ],
)
def test_rotation_to_orientation_wrapping(angles, expected):
    np.testing.assert_allclose(rotation_to_orientation(orientation_to_rotation(angles)), expected, atol=1e-9)


@pytest.mark.parametrize("polar", [90.0, -90.0])
def test_rotation_to_orientation_gimbal_lock(rng, polar):
    azimuth, roll = rng.uniform(0.0, 90.0, 20), rng.uniform(-90.0, 90.0, 20)
    angles = np.stack([azimuth, np.full(20, polar), roll], axis=-1)
    rotation = orientation_to_rotation(angles)
    recovered = rotation_to_orientation(rotation)
    np.testing.assert_allclose(recovered[:, 1], polar, atol=1e-9)
    np.testing.assert_array_equal(recovered[:, 2], 0.0)
    # Only azimuth + rotation (polar +90) or azimuth − rotation (polar −90) is defined.
    combined = azimuth + roll if polar > 0 else azimuth - roll
    np.testing.assert_allclose(recovered[:, 0], np.mod(combined, 360.0), atol=1e-9)
    np.testing.assert_allclose(orientation_to_rotation(recovered), rotation, atol=1e-12)


@pytest.mark.parametrize("offset_deg", [1e-4, 1e-7, 1e-10, 1e-13])
def test_rotation_to_orientation_near_gimbal_lock(rng, offset_deg):
    sign = np.where(rng.random(50) < 0.5, 1.0, -1.0)
    polar = sign * (90.0 - offset_deg)
    angles = np.stack([rng.uniform(0, 360, 50), polar, rng.uniform(-180, 180, 50)], axis=-1)
    rotation = orientation_to_rotation(angles)
    recovered = orientation_to_rotation(rotation_to_orientation(rotation))
    np.testing.assert_allclose(recovered, rotation, atol=1e-11)


def test_rotation_to_orientation_shape_error():
    with pytest.raises(ShapeError, match="rotation must have shape"):
        rotation_to_orientation(np.eye(4))


def test_invert_rigid(rng):
    pose = _random_rigid(rng, 8)
    inverse = invert_rigid(pose)
    np.testing.assert_allclose(inverse @ pose, np.broadcast_to(np.eye(4), pose.shape), atol=1e-12)
    np.testing.assert_allclose(inverse, np.linalg.inv(pose), atol=1e-12)
    with pytest.raises(ShapeError, match="transform"):
        invert_rigid(np.eye(3))


def test_camera_to_camera_properties(rng):
    points = rng.normal(size=(6, 3))
    cam1, cam2 = _random_rigid(rng), _random_rigid(rng)
    np.testing.assert_allclose(camera_to_camera(points, cam1, cam1), points, atol=1e-12)
    there = camera_to_camera(points, cam1, cam2)
    np.testing.assert_allclose(camera_to_camera(there, cam2, cam1), points, atol=1e-12)
    homogeneous = np.concatenate([points, np.ones((6, 1))], axis=-1)
    world = (cam1 @ homogeneous.T).T
    np.testing.assert_allclose(there, (np.linalg.inv(cam2) @ world.T).T[:, :3], atol=1e-12)


def test_camera_to_camera_broadcasts_pose_stacks(rng):
    points = rng.normal(size=(4, 5, 3))
    cam1, cam2 = _random_rigid(rng, 5), _random_rigid(rng, 5)
    got = camera_to_camera(points, cam1, cam2)
    assert got.shape == (4, 5, 3)
    np.testing.assert_allclose(got[2, 3], camera_to_camera(points[2, 3], cam1[3], cam2[3]), atol=1e-12)


def test_camera_to_camera_shape_errors(rng):
    with pytest.raises(ShapeError, match="cam2_to_world"):
        camera_to_camera(np.zeros((2, 3)), np.eye(4), np.eye(3))
    with pytest.raises(ShapeError, match="do not broadcast"):
        camera_to_camera(np.zeros((4, 3)), _random_rigid(rng, 5), np.eye(4))


def test_camera_agent_round_trip(rng):
    points = rng.normal(scale=4.0, size=(3, 7, 3))
    angles, center = rng.uniform(-180, 180, 3), rng.normal(size=3)
    agent = camera_to_agent(points, angles, center)
    assert agent.shape == points.shape
    np.testing.assert_allclose(agent_to_camera(agent, angles, center), points, atol=1e-12)
    back = camera_to_agent(agent_to_camera(points, angles, center), angles, center)
    np.testing.assert_allclose(back, points, atol=1e-12)


def test_camera_to_agent_axes(rng):
    angles, center = rng.uniform(-180, 180, 3), rng.normal(size=3)
    np.testing.assert_allclose(camera_to_agent(center, angles, center), 0.0, atol=1e-15)
    ahead = center + 2.0 * forward_axis(angles)
    np.testing.assert_allclose(camera_to_agent(ahead, angles, center), [2.0, 0.0, 0.0], atol=1e-12)
    # An agent facing the camera 3 m ahead sees the camera 3 m in front of it.
    facing, ahead_3m = [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]
    np.testing.assert_allclose(camera_to_agent([0.0, 0.0, 0.0], facing, ahead_3m), [3.0, 0, 0], atol=1e-12)
    # Facing the camera, its left is image right (+x) and its up is image up (−y).
    np.testing.assert_allclose(camera_to_agent([1.0, -1.0, 3.0], facing, ahead_3m), [0, 1.0, 1.0], atol=1e-12)


def test_camera_to_agent_broadcasts_per_frame_orientation(rng):
    points = rng.normal(size=(2, 5, 3))
    angles, center = rng.uniform(-180, 180, (5, 3)), rng.normal(size=(5, 3))
    got = camera_to_agent(points, angles, center)
    np.testing.assert_allclose(got[1, 4], camera_to_agent(points[1, 4], angles[4], center[4]), atol=1e-12)


def test_camera_agent_shape_errors():
    with pytest.raises(ShapeError, match="angles_deg"):
        camera_to_agent(np.zeros((4, 3)), [0.0, 0.0], np.zeros(3))
    with pytest.raises(ShapeError, match="center"):
        agent_to_camera(np.zeros((4, 3)), np.zeros(3), np.zeros((3, 3, 2)))
    with pytest.raises(ShapeError, match="do not broadcast"):
        camera_to_agent(np.zeros((4, 3)), np.zeros((5, 3)), np.zeros(3))


def test_camera_observer_pose(rng):
    cam_to_world = _random_rigid(rng, 6)
    observer = camera_observer_pose(cam_to_world)
    assert observer.shape == (6, 4, 4)
    _assert_rotations(observer[:, :3, :3])
    np.testing.assert_array_equal(observer[:, :3, 3], cam_to_world[:, :3, 3])
    # Columns are the camera's +z (forward), −x (left), −y (up) in world coordinates.
    np.testing.assert_allclose(observer[:, :3, 0], cam_to_world[:, :3, 2], atol=0)
    np.testing.assert_allclose(observer[:, :3, 1], -cam_to_world[:, :3, 0], atol=0)
    np.testing.assert_allclose(observer[:, :3, 2], -cam_to_world[:, :3, 1], atol=0)


def test_point_in_front_of_camera_is_flu_forward(rng):
    cam_to_world = _random_rigid(rng)
    in_front_world = cam_to_world[:3, :3] @ [0.0, 0.0, 1.0] + cam_to_world[:3, 3]
    observer = camera_observer_pose(cam_to_world)
    got = to_observer_frame(in_front_world[None, None], observer)
    np.testing.assert_allclose(got[0, 0], [1.0, 0.0, 0.0], atol=1e-12)


def test_camera_observer_frame_matches_opencv_to_flu(rng):
    cam_to_world = _random_rigid(rng, 5)
    points_cam = rng.normal(scale=3.0, size=(4, 5, 3))
    points_world = np.einsum("tij,ktj->kti", cam_to_world[:, :3, :3], points_cam) + cam_to_world[:, :3, 3]
    got = to_observer_frame(points_world, camera_observer_pose(cam_to_world))
    np.testing.assert_allclose(got, opencv_to_flu(points_cam), atol=1e-12)


def test_agent_observer_frame_matches_camera_to_agent(rng):
    n_obj, n_frames = 3, 6
    cam_to_world = _random_rigid(rng, n_frames)
    angles = rng.uniform(-180, 180, (n_frames, 3))
    center_cam = rng.normal(scale=2.0, size=(n_frames, 3))
    center_world = np.einsum("tij,tj->ti", cam_to_world[:, :3, :3], center_cam) + cam_to_world[:, :3, 3]
    points_cam = rng.normal(scale=3.0, size=(n_obj, n_frames, 3))
    points_world = np.einsum("tij,ktj->kti", cam_to_world[:, :3, :3], points_cam) + cam_to_world[:, :3, 3]
    observer = agent_observer_pose(cam_to_world, center_world, angles)
    assert observer.shape == (n_frames, 4, 4)
    _assert_rotations(observer[:, :3, :3])
    np.testing.assert_allclose(
        to_observer_frame(points_world, observer), camera_to_agent(points_cam, angles, center_cam), atol=1e-11
    )
    # Absolute viewpoint: the agent frozen at frame 2 observing every frame.
    frozen = to_observer_frame(points_world, observer[2])
    expected = camera_to_agent(points_cam[:, 2], angles[2], center_cam[2])
    np.testing.assert_allclose(frozen[:, 2], expected, atol=1e-11)


def test_agent_observer_pose_broadcasts_and_propagates_nan(rng):
    cam_to_world = _random_rigid(rng, 4)
    center_world = rng.normal(size=(2, 4, 3))
    angles = rng.uniform(-180, 180, (2, 4, 3))
    angles[1, 3] = np.nan
    observer = agent_observer_pose(cam_to_world, center_world, angles)
    assert observer.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(
        observer[0, 1], agent_observer_pose(cam_to_world[1], center_world[0, 1], angles[0, 1]), atol=0
    )
    np.testing.assert_allclose(
        observer[0, 1, :3, 0], cam_to_world[1, :3, :3] @ forward_axis(angles[0, 1]), atol=1e-12
    )
    assert np.isnan(observer[1, 3, :3, :3]).all()
    assert not np.isnan(observer[1, 2]).any()
    np.testing.assert_array_equal(observer[..., 3, :], np.broadcast_to([0, 0, 0, 1.0], (2, 4, 4)))
    with pytest.raises(ShapeError, match="do not broadcast"):
        agent_observer_pose(cam_to_world, rng.normal(size=(5, 3)), np.zeros(3))


def test_to_observer_frame_own_origin_is_zero(rng):
    observer = camera_observer_pose(_random_rigid(rng, 5))
    origins = observer[None, :, :3, 3]
    np.testing.assert_allclose(to_observer_frame(origins, observer), 0.0, atol=1e-12)
    np.testing.assert_allclose(to_observer_frame(origins[:, 3:4], observer[3]), 0.0, atol=1e-12)


@pytest.mark.parametrize("pose_form", ["absolute", "relative"])
@pytest.mark.parametrize(("n_obj", "n_frames"), [(7, 11), (1, 1), (3, 1), (40, 257), (0, 4)])
def test_to_observer_frame_matches_the_einsum_reference(rng, pose_form, n_obj, n_frames):
    points = rng.normal(scale=5.0, size=(n_obj, n_frames, 3))
    points[rng.random((n_obj, n_frames)) < 0.2] = np.nan
    observer = camera_observer_pose(_random_rigid(rng, None if pose_form == "absolute" else n_frames))
    got = to_observer_frame(points, observer)
    expected = geometry._to_observer_frame_numpy(points, observer)
    assert got.shape == expected.shape == (n_obj, n_frames, 3)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    hidden = np.isnan(points).any(axis=-1)
    np.testing.assert_array_equal(np.isnan(got), np.repeat(hidden[..., None], 3, axis=-1))


def test_absolute_pose_equals_repeated_relative_pose(rng):
    points = rng.normal(size=(3, 6, 3))
    pose = camera_observer_pose(_random_rigid(rng))
    np.testing.assert_allclose(
        to_observer_frame(points, pose), to_observer_frame(points, np.repeat(pose[None], 6, axis=0)), atol=0
    )


def test_to_observer_frame_accepts_non_contiguous_and_integer_input(rng):
    points = rng.normal(size=(6, 4, 3)).transpose(1, 0, 2)
    poses = camera_observer_pose(_random_rigid(rng, 6))
    np.testing.assert_allclose(
        to_observer_frame(points, poses), geometry._to_observer_frame_numpy(points, poses), atol=1e-13
    )
    integer_points = np.arange(12).reshape(2, 2, 3)
    identity = np.eye(4, dtype=int)
    np.testing.assert_allclose(to_observer_frame(integer_points, identity), integer_points, atol=0)


def test_nan_pose_gives_nan_everywhere(rng):
    pose = np.full((4, 4), np.nan)
    assert np.isnan(to_observer_frame(rng.normal(size=(2, 3, 3)), pose)).all()


@pytest.mark.parametrize(
    ("points_shape", "pose_shape", "message"),
    [
        ((5, 3), (4, 4), r"points_world must have shape \(K, T, 3\)"),
        ((2, 5, 4), (4, 4), r"points_world must have shape \(K, T, 3\)"),
        ((2, 5, 3), (4, 3), r"observer_to_world must have shape \(4, 4\)"),
        ((2, 5, 3), (3, 4, 4), r"observer_to_world has 3 along axis 0 \(T\) but T=5"),
        ((2, 5, 3), (2, 5, 4, 4), r"\(4, 4\) \(absolute viewpoint\) or \(T, 4, 4\)"),
    ],
)
@pytest.mark.parametrize("fn", [to_observer_frame, geometry._to_observer_frame_numpy])
def test_to_observer_frame_shape_errors(fn, points_shape, pose_shape, message):
    with pytest.raises(ShapeError, match=message):
        fn(np.zeros(points_shape), np.zeros(pose_shape))


@pytest.mark.parametrize("src, dst, message", [
    (np.zeros((2, 3)), np.zeros((2, 3)), "at least 3 point pairs"),
    (np.ones((5, 3)), np.random.default_rng(0).normal(size=(5, 3)), "src points all lie at one place"),
    (np.random.default_rng(0).normal(size=(5, 3)), np.full((5, 3), 7.0), "dst points all lie at one place"),
    (np.r_[np.zeros((4, 3)), [[np.nan, 0, 0]]], np.random.default_rng(1).normal(size=(5, 3)), "non-finite"),
])
def test_umeyama_refuses_degenerate_inputs(src, dst, message):
    """Issue 10: these gave NaN or infinite scale instead of an error."""
    from recon4d.errors import GeometryError
    from recon4d.geometry import umeyama_sim3

    with pytest.raises(GeometryError, match=message):
        umeyama_sim3(src, dst)
    batched_src = np.stack([np.random.default_rng(2).normal(size=src.shape), src])
    batched_dst = np.stack([np.random.default_rng(3).normal(size=dst.shape), dst])
    with pytest.raises(GeometryError):
        umeyama_sim3(batched_src, batched_dst)
