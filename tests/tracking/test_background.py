"""Tests of tracking/classic/background.py: planar and epipolar background models, inverse depth, local fits."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from recon4d.tracking.classic.background import (
    BackgroundMotion,
    background_flow,
    fit_background,
    fit_background_planes,
    homography_flow,
    inverse_depth,
    invert_background,
    plane_bound,
    prior_intrinsics,
    relative_residual,
    rotation_stretch,
    static_flow,
)
from recon4d.tracking.classic.local_depth import background_inverse_depth, block_medians, nan_median
from recon4d.tracking.classic.config import ClassicTrackerConfig

SIZE = (160, 90)


def rotation_about(axis, angle_deg: float) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(axis, np.float64) / np.linalg.norm(axis) * math.radians(angle_deg))[0]


def project(points_camera: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    projected = points_camera @ intrinsics.T
    return projected[:, :2] / projected[:, 2:]


def scene_points(rng, n: int = 400) -> np.ndarray:
    """(n, 3) static points in camera a's frame: depths 3–12 m, spread over the view."""
    depth = rng.uniform(3.0, 12.0, n)
    return np.stack([rng.uniform(-0.5, 0.5, n) * depth, rng.uniform(-0.3, 0.3, n) * depth, depth], axis=1)


def test_prior_intrinsics_field_of_view():
    intrinsics = prior_intrinsics((200, 100), 90.0)
    np.testing.assert_allclose(intrinsics, [[100, 0, 100], [0, 100, 50], [0, 0, 1]])


def test_fit_background_turning_camera_is_planar():
    rng = np.random.default_rng(0)
    intrinsics = prior_intrinsics(SIZE, 60.0)
    points = scene_points(rng)
    rotation = rotation_about([0, 1, 0], 2.0)
    a, b = project(points, intrinsics), project(points @ rotation.T, intrinsics)
    model = fit_background(a.astype(np.float32), b.astype(np.float32), SIZE)
    assert model.kind == "planar"
    expected = intrinsics @ rotation @ np.linalg.inv(intrinsics)
    np.testing.assert_allclose(model.planes[0] / model.planes[0][2, 2], expected / expected[2, 2], atol=2e-3)


def test_fit_background_still_and_few_points():
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 80, (50, 2)).astype(np.float32)
    assert fit_background(points, points + 0.1, SIZE).kind == "planar"
    one = fit_background(points[:5], points[:5] + 3.0, SIZE)
    assert one.kind == "planar" and np.allclose(one.planes[0], np.eye(3))


def test_fit_background_translating_camera_is_epipolar_with_the_true_pose():
    rng = np.random.default_rng(2)
    intrinsics = prior_intrinsics(SIZE, 60.0)
    points = scene_points(rng)
    rotation, translation = rotation_about([0, 1, 0.2], 1.5), np.array([0.3, 0.02, 0.1])
    a, b = project(points, intrinsics), project(points @ rotation.T + translation, intrinsics)
    model = fit_background(a.astype(np.float32), b.astype(np.float32), SIZE)
    assert model.kind == "epipolar"
    np.testing.assert_allclose(model.rotation, rotation, atol=5e-3)
    np.testing.assert_allclose(model.translation, translation / np.linalg.norm(translation), atol=0.02)


def test_rotation_stretch_is_zero_for_a_turn_only():
    intrinsics = prior_intrinsics(SIZE, 60.0)
    turn = intrinsics @ rotation_about([0.2, 1, 0.1], 3.0) @ np.linalg.inv(intrinsics)
    assert rotation_stretch(3.0 * turn, intrinsics) < 1e-9  # whatever the homography's scale
    # the ground 1.5 m below a camera that steps 0.3 m forward while it turns: stretched by about |t| / d
    normal, distance = np.array([0.0, -1.0, 0.0]), 1.5
    plane = rotation_about([0.2, 1, 0.1], 3.0) + np.outer([0.0, 0.0, -0.3], normal) / distance
    assert rotation_stretch(intrinsics @ plane @ np.linalg.inv(intrinsics), intrinsics) > 0.05


def turning_camera_with_movers(rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corner matches a → b (N, 2) of a camera that turns 2° about its vertical axis (no step), 60 %
    of them (the majority: a crowd) on movers walking sideways, and the rotation's homography (3, 3)."""
    intrinsics = prior_intrinsics(SIZE, 60.0)
    points = scene_points(rng, 300)
    rotation = rotation_about([0, 1, 0], 2.0)
    moved = points @ rotation.T
    movers = np.arange(len(points)) < 180
    moved[movers] = (points[movers] + [0.25, 0.0, 0.0]) @ rotation.T  # walking sideways: along the lines of a step
    a, b = project(points, intrinsics), project(moved, intrinsics)
    return a.astype(np.float32), b.astype(np.float32), intrinsics @ rotation @ np.linalg.inv(intrinsics)


def test_turn_max_stretch_keeps_a_turning_camera_planar_whatever_its_movers():
    a, b, turn = turning_camera_with_movers(np.random.default_rng(5))
    # an essential matrix explains the movers as near static points of a sideways step: epipolar before
    assert fit_background(a, b, SIZE, ClassicTrackerConfig(turn_max_stretch=0.0)).kind == "epipolar"
    model = fit_background(a, b, SIZE, ClassicTrackerConfig(turn_max_stretch=0.002))
    assert model.kind == "planar" and len(model.planes) == 1
    np.testing.assert_allclose(model.planes[0] / model.planes[0][2, 2], turn / turn[2, 2], atol=2e-3)
    # the movers stand out against that one homography
    mapped = cv2.perspectiveTransform(a.reshape(-1, 1, 2).astype(np.float64), model.planes[0]).reshape(-1, 2)
    error = np.linalg.norm(mapped - b, axis=1)
    assert error[:180].min() > 1.0 and np.percentile(error[180:], 95) < 0.1


def epipolar_model() -> BackgroundMotion:
    intrinsics = prior_intrinsics(SIZE, 60.0)
    translation = np.array([0.6, 0.1, 0.3])
    return BackgroundMotion("epipolar", (np.eye(3),), rotation_about([0.1, 1, 0], 2.0),
                            translation / np.linalg.norm(translation), intrinsics)


def test_static_flow_matches_a_per_pixel_projection():
    model = epipolar_model()
    rng = np.random.default_rng(3)
    rho = rng.uniform(0.05, 0.4, (SIZE[1], SIZE[0])).astype(np.float32)
    flow = static_flow(model, rho)
    for y, x in [(0, 0), (45, 80), (89, 159), (10, 140)]:
        ray = np.linalg.solve(model.intrinsics, [x, y, 1.0])
        point = ray / rho[y, x]
        moved = model.intrinsics @ (model.rotation @ point + model.translation)
        np.testing.assert_allclose(flow[y, x], moved[:2] / moved[2] - [x, y], atol=1e-3)


def test_inverse_depth_recovers_depth_and_reports_sensitivity():
    model = epipolar_model()
    yy, xx = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    rho = (0.1 + 0.002 * yy + 0.0005 * xx).astype(np.float32)
    flow = static_flow(model, rho)
    estimate, sensitivity = inverse_depth(flow, model)
    good = sensitivity > 1.0
    assert good.mean() > 0.8
    np.testing.assert_allclose(estimate[good], rho[good], atol=1e-3)
    # a pixel pushed across its epipolar line keeps a residual no inverse depth removes
    pushed = flow.copy()
    direction = static_flow(model, rho + 0.01) - flow
    normal = np.stack([-direction[..., 1], direction[..., 0]], -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12
    pushed += 3.0 * normal
    best, _ = inverse_depth(pushed, model)
    residual = np.linalg.norm(pushed - static_flow(model, best), axis=-1)
    assert np.median(residual[good]) > 2.5


def test_background_inverse_depth_fits_planes_and_ignores_a_mover():
    yy, xx = np.mgrid[0:96, 0:160]
    plane = (0.05 + 0.003 * yy + 0.001 * xx).astype(np.float32)
    usable = np.ones(plane.shape, bool)
    np.testing.assert_allclose(background_inverse_depth(plane, usable), plane, atol=1e-5)
    with_mover = plane.copy()
    with_mover[30:60, 70:95] = 1.5  # a mover whose flow says "very near"
    fitted = background_inverse_depth(with_mover, usable)
    assert np.abs(fitted - plane).max() < 0.02
    holes = usable.copy()
    holes[:, :40] = False  # a blank band: the fit carries the plane across it
    assert np.abs(background_inverse_depth(plane, holes) - plane)[:, 40:].max() < 1e-4
    assert background_inverse_depth(plane, np.zeros_like(usable)).shape == plane.shape


def test_nan_median_matches_numpy():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(7, 9, 31))
    values[rng.random(values.shape) < 0.4] = np.nan
    values[0, 0] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(values, axis=-1)
    np.testing.assert_allclose(nan_median(values), expected, equal_nan=True)


def test_invert_background_round_trip():
    model = epipolar_model()
    back = invert_background(invert_background(model))
    np.testing.assert_allclose(back.rotation, model.rotation)
    np.testing.assert_allclose(back.translation, model.translation)
    rho = np.full((SIZE[1], SIZE[0]), 0.2, np.float32)
    forward = static_flow(model, rho)
    x, y = 80, 45
    target = np.array([x, y]) + forward[y, x]
    # the inverse model at the target takes the pixel back (its inverse depth in b differs)
    inverse = invert_background(model)
    point_b = model.rotation @ (np.linalg.solve(model.intrinsics, [x, y, 1.0]) / 0.2) + model.translation
    flow_back = static_flow(inverse, np.full_like(rho, 1.0 / point_b[2]))
    np.testing.assert_allclose(target + flow_back[int(round(target[1])), int(round(target[0]))], [x, y], atol=0.6)
    planar = BackgroundMotion("planar", (np.diag([1.0, 1.0, 1.0]) + np.eye(3) * 0,))
    assert invert_background(planar).kind == "planar"


def test_background_flow_planar_takes_the_nearest_plane():
    left = np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]])
    right = np.array([[1, 0, -3.0], [0, 1, 0], [0, 0, 1]])
    flow = np.zeros((20, 30, 2), np.float32)
    flow[:, :15, 0], flow[:, 15:, 0] = 2.0, -3.0
    model = BackgroundMotion("planar", (left, right))
    np.testing.assert_allclose(background_flow(flow, model, np.ones((20, 30), bool)), flow, atol=1e-5)
    np.testing.assert_allclose(homography_flow(left, (30, 20))[..., 0], 2.0, atol=1e-5)


def test_background_flow_epipolar_explains_a_static_scene_not_a_mover():
    model = epipolar_model()
    yy, xx = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    rho = (0.02 + 0.0005 * yy).astype(np.float32)  # background flow 7–16 px
    flow = static_flow(model, rho)
    mover = np.zeros(rho.shape, bool)
    mover[30:60, 60:80] = True
    moved = flow.copy()
    moved[mover] += [8.0, 0.0]  # along the epipolar lines (t is mostly sideways)
    config = ClassicTrackerConfig()
    predicted = background_flow(moved, model, np.ones(rho.shape, bool), config)
    residual = relative_residual(moved, predicted, config.flow_error_fraction)
    assert np.median(residual[mover]) > 1.5
    assert np.percentile(residual[~mover], 95) < 0.3


def test_fit_background_planes_few_points_is_identity():
    planes = fit_background_planes(np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32), (64, 64))
    np.testing.assert_array_equal(planes[0], np.eye(3))


def test_relative_residual_scales_with_background_motion():
    flow = np.zeros((2, 2, 2), np.float32)
    predicted = np.array([[[0, 0], [10, 0]], [[0, 0], [0, 0]]], np.float32)
    residual = relative_residual(flow, predicted, 0.1)
    np.testing.assert_allclose(residual, [[0, 5], [0, 0]])


def ground_with_followed_mover():
    """A camera moving forward over a ground plane, with a mover that keeps its place in the
    image (it moves with the camera: zero flow, ρ̂ = 0) covering a 60 × 40 px patch of the
    ground, and a static box standing nearer than the ground around it (ρ above the ground's).
    Returns (model, flow (96, 160, 2), mover (96, 160) bool, box (96, 160) bool)."""
    size = (160, 96)
    intrinsics = prior_intrinsics(size, 60.0)
    model = BackgroundMotion("epipolar", (np.eye(3),), np.eye(3), np.array([0.0, 0.0, 1.0]), intrinsics)
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    rho = (0.02 + 0.002 * yy).astype(np.float32)  # the ground: nearer towards the bottom
    box = (yy >= 20) & (yy < 40) & (xx >= 10) & (xx < 30)
    rho[box] = 0.3
    flow = static_flow(model, rho)
    mover = (yy >= 52) & (yy < 92) & (xx >= 50) & (xx < 110)
    flow[mover] = 0.0
    return model, flow, mover, box


def test_plane_bound_is_the_ground_where_a_mover_hides_it():
    yy, xx = np.mgrid[0:96, 0:160]
    ground = (0.02 + 0.002 * yy).astype(np.float32)
    rho = ground.copy()
    rho[52:92, 50:110] = 0.0  # a mover with no parallax in front of the ground
    rho[:, 150:] = np.nan  # blocks with nothing usable: the plane's span ends before them
    usable = np.isfinite(rho)
    bound = plane_bound(rho, usable, block=8, slack=0.15, max_planes=1)
    blocks = block_medians(rho, usable, 8)
    scale = float(np.median(np.abs(blocks[np.isfinite(blocks)])))  # the frame's median |ρ̂| (of its blocks)
    expected = ground - 0.15 * (np.abs(ground) + scale)
    np.testing.assert_allclose(bound[52:92, 50:110], expected[52:92, 50:110], atol=2e-3)
    np.testing.assert_allclose(bound[:, :144], expected[:, :144], atol=2e-3)
    assert np.isneginf(bound[:, 152:]).all()
    assert plane_bound(rho, np.zeros_like(usable)) is None  # nothing usable: no planes
    assert plane_bound(rho, usable, max_planes=0) is None


def test_plane_bound_flags_a_mover_the_camera_follows():
    model, flow, mover, box = ground_with_followed_mover()
    usable = np.ones(mover.shape, bool)
    before = ClassicTrackerConfig(depth_window=5, plane_bound_planes=0)  # the model without the bound
    after = ClassicTrackerConfig(depth_window=5, plane_bound_planes=1)
    old = relative_residual(flow, background_flow(flow, model, usable, before), before.flow_error_fraction)
    new = relative_residual(flow, background_flow(flow, model, usable, after), after.flow_error_fraction)
    # the local depth fit takes the mover, which covers its windows, for far background ...
    assert np.median(old[mover]) < 0.5
    # ... the ground's bound does not: nothing static shows beyond the ground
    assert np.median(new[mover]) > 1.5
    static = ~cv2.dilate(mover.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    static &= ~cv2.dilate(box.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    assert np.percentile(new[static], 95) < 0.3  # the static ground stays explained
    # a static thing nearer than the ground is never pushed back by the bound
    np.testing.assert_allclose(new[box], old[box], atol=0.05)


def test_plane_bound_columns_reach_a_mover_as_wide_as_the_plane():
    yy, xx = np.mgrid[0:96, 0:160]
    ground = (0.02 + 0.002 * yy).astype(np.float32)
    rho = ground.copy()
    rho[40:72, :] = 0.0  # a mover (or a group) across the whole width: its rows hold no ground
    usable = np.ones(rho.shape, bool)
    rows_only = plane_bound(rho, usable, block=8, slack=0.15, max_planes=1)
    assert np.isneginf(rows_only[40:72]).all()  # no inlier left and right of it in its rows
    bound = plane_bound(rho, usable, block=8, slack=0.15, max_planes=1, columns=True)
    blocks = block_medians(rho, usable, 8)
    scale = float(np.median(np.abs(blocks[np.isfinite(blocks)])))
    expected = ground - 0.15 * (np.abs(ground) + scale)
    # the ground above and below it in every column bounds it: nothing static shows beyond the ground
    np.testing.assert_allclose(bound[40:72], expected[40:72], atol=2e-3)
    np.testing.assert_array_equal(bound[:40], rows_only[:40])


def test_block_medians_match_a_per_block_reference():
    rng = np.random.default_rng(7)
    rho = rng.normal(size=(43, 70)).astype(np.float32)
    usable = rng.random(rho.shape) < 0.7
    usable[:8, :8] = False  # a block with nothing usable: NaN
    got = block_medians(rho, usable, 8)
    assert got.shape == (5, 8)
    for r in range(5):
        for c in range(8):
            values = rho[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8][usable[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8]]
            if len(values):
                assert got[r, c] == pytest.approx(float(np.median(values)), abs=1e-6)
            else:
                assert np.isnan(got[r, c])
