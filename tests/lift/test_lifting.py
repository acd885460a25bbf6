"""Tests for recon4d.lift.lifting: analytic planar scenes, robustness, filters, shapes, and the numba
kernels against the vectorised numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from recon4d.errors import ShapeError
from recon4d.lift.lifting import (
    LiftConfig,
    LiftResult,
    _erode_numpy,
    _lift_numpy,
    _valid_point_mask_numpy,
    lift_objects,
    valid_point_mask,
)

FOCAL = 64.0


def unproject(depth: np.ndarray) -> np.ndarray:
    """(T, H, W) depth -> (T, H, W, 3) float32 camera-frame points of a pinhole camera with
    focal 64 and principal point at the frame centre; pixel (v, u) sits at integer coords.

    float32 like π³'s output (and one numba compilation for most tests)."""
    height, width = depth.shape[-2:]
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    x = (u - width / 2) * depth / FOCAL
    y = (v - height / 2) * depth / FOCAL
    return np.stack([x, y, depth], axis=-1).astype(np.float32)


def identity_poses(n_frames: int) -> np.ndarray:
    return np.tile(np.eye(4), (n_frames, 1, 1))


def box_mask(n_frames: int, height: int, width: int, rows: tuple, cols: tuple) -> np.ndarray:
    """(1, T, H, W) mask of one object covering rows × cols in every frame."""
    masks = np.zeros((1, n_frames, height, width), dtype=bool)
    masks[:, :, rows[0] : rows[1], cols[0] : cols[1]] = True
    return masks


def no_filters(**overrides) -> LiftConfig:
    """A config that keeps every finite point in front of the camera."""
    return LiftConfig(**{"depth_edge_rtol": None, "extent_quantiles": None, **overrides})


def random_scene(seed: int, n_frames=3, height=23, width=31, n_obj=3, dtype=np.float32):
    """A smooth surface with steps, noise and broken points; blob masks; confidence in [0, 1]."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width]
    noise = 0.003 * rng.standard_normal((n_frames, height, width))
    depth = 3.0 + 0.3 * np.sin(u / 10.0) + 0.2 * np.cos(v / 8.0) + noise
    depth[:, 5:12, 8:17] -= 1.0
    points = unproject(depth)
    broken = rng.random((n_frames, height, width))
    points[broken < 0.01] = np.nan
    points[(broken >= 0.01) & (broken < 0.02), 2] = -1.0
    points[(broken >= 0.02) & (broken < 0.025), 0] = np.inf
    masks = np.zeros((n_obj, n_frames, height, width), dtype=bool)
    for k in range(n_obj):
        for t in range(n_frames):
            cu, cv = rng.uniform([0, 0], [width, height])
            su, sv = rng.uniform(2.0, 9.0, 2)
            masks[k, t] = ((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2 <= 1.0
            masks[k, t] |= rng.random((height, width)) < 0.03
    masks[0, -1] = False  # gone in the last frame
    masks[1, 0] = False
    masks[1, 0, height // 2, width // 2 : width // 2 + 2] = True  # 2 pixels at most
    conf = rng.random((n_frames, height, width))
    cam_to_world = identity_poses(n_frames)
    cam_to_world[:, :3, :3] = Rotation.from_rotvec(rng.normal(size=(n_frames, 3))).as_matrix()
    cam_to_world[:, :3, 3] = rng.normal(size=(n_frames, 3))
    return masks, points.astype(dtype), conf.astype(dtype), cam_to_world


def test_fronto_parallel_square_centre_is_exact_for_every_estimator():
    depth = np.full((2, 32, 32), 5.0)
    masks = box_mask(2, 32, 32, rows=(8, 16), cols=(10, 20))
    for estimator in ("mean", "median", "trimmed"):
        config = no_filters(estimator=estimator, extent_quantiles=(0.0, 1.0))
        result = lift_objects(masks, unproject(depth), None, identity_poses(2), config)
        assert isinstance(result, LiftResult)
        # Columns 10..19 and rows 8..15 average to pixel (14.5, 11.5); x = (u − 16)·5/64.
        expected = [(14.5 - 16) * 5 / FOCAL, (11.5 - 16) * 5 / FOCAL, 5.0]
        np.testing.assert_allclose(result.center_camera[0], [expected] * 2, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(result.n_points, [[80, 80]])
        np.testing.assert_array_equal(result.visible, [[True, True]])
        np.testing.assert_allclose(result.extent[0, 0], [9 * 5 / FOCAL, 7 * 5 / FOCAL, 0.0], rtol=1e-7)


def test_result_dtypes_and_shapes():
    masks, points, conf, cam_to_world = random_scene(0)
    result = lift_objects(masks, points, conf, cam_to_world)
    assert result.center_camera.shape == result.center_world.shape == (3, 3, 3)
    assert result.center_camera.dtype == result.center_world.dtype == np.float64
    assert result.extent.shape == (3, 3, 3) and result.extent.dtype == np.float32
    assert result.visible.shape == (3, 3) and result.visible.dtype == bool
    assert result.n_points.shape == (3, 3) and result.n_points.dtype == np.int64


def test_world_centre_applies_cam_to_world():
    depth = np.full((3, 32, 32), 5.0)
    masks = box_mask(3, 32, 32, rows=(8, 16), cols=(10, 20))
    cam_to_world = identity_poses(3)
    angles = [[0, 0, 0], [90, 0, 0], [10, -30, 45]]
    cam_to_world[:, :3, :3] = Rotation.from_euler("zyx", angles, degrees=True).as_matrix()
    cam_to_world[:, :3, 3] = [[0, 0, 0], [1, 2, 3], [-4, 0.5, 2]]
    result = lift_objects(masks, unproject(depth), None, cam_to_world, no_filters())
    centre = result.center_camera[0]
    expected = np.einsum("tij,tj->ti", cam_to_world[:, :3, :3], centre) + cam_to_world[:, :3, 3]
    np.testing.assert_allclose(result.center_world[0], expected, atol=1e-12)
    # 90° about z maps camera (x, y, z) to world (−y, x, z), then shifts by (1, 2, 3).
    expected_1 = [-centre[1, 1] + 1, centre[1, 0] + 2, centre[1, 2] + 3]
    np.testing.assert_allclose(result.center_world[0, 1], expected_1)


def test_object_masked_out_in_some_frames_is_not_visible_there():
    depth = np.full((4, 20, 20), 2.0)
    masks = box_mask(4, 20, 20, rows=(5, 10), cols=(5, 10))
    masks[0, 1] = False
    masks[0, 3, :, :] = False
    masks[0, 3, 0, 0] = True
    points = unproject(depth)
    points[3, 0, 0] = np.nan
    result = lift_objects(masks, points, None, identity_poses(4), LiftConfig())
    np.testing.assert_array_equal(result.visible, [[True, False, True, False]])
    np.testing.assert_array_equal(result.n_points, [[25, 0, 25, 0]])
    for array in (result.center_camera, result.center_world, result.extent):
        assert np.isnan(array[0, [1, 3]]).all() and np.isfinite(array[0, [0, 2]]).all()


@pytest.mark.parametrize(
    "estimator, trim_fraction, expected_z",
    [("median", 0.1, 5.0), ("trimmed", 0.25, 5.0), ("mean", 0.1, 0.8 * 5.0 + 0.2 * 50.0)],
)
def test_robust_estimators_ignore_twenty_percent_outliers(estimator, trim_fraction, expected_z):
    depth = np.full((1, 30, 30), 5.0)
    depth[0, 10:12, 10:20] = 50.0  # 20 of the mask's 100 pixels are background far behind
    masks = box_mask(1, 30, 30, rows=(10, 20), cols=(10, 20))
    config = no_filters(estimator=estimator, trim_fraction=trim_fraction)
    result = lift_objects(masks, unproject(depth), None, identity_poses(1), config)
    assert result.center_camera[0, 0, 2] == pytest.approx(expected_z, abs=1e-12)


def test_erosion_shrinks_the_mask_by_whole_pixels_and_not_at_the_frame_border():
    depth = np.full((1, 30, 40), 3.0)
    masks = np.zeros((2, 1, 30, 40), dtype=bool)
    masks[0, 0, 5:15, 10:22] = True  # 10 × 12 inside the frame
    masks[1, 0, 20:30, 0:8] = True  # 10 × 8 in the bottom-left corner
    expected = {0: [120, 80], 1: [80, 63], 2: [48, 48], 5: [0, 15]}
    for erode_px, counts in expected.items():
        result = lift_objects(masks, unproject(depth), None, identity_poses(1), no_filters(erode_px=erode_px))
        np.testing.assert_array_equal(result.n_points[:, 0], counts, err_msg=f"erode_px={erode_px}")
    assert not result.visible[0, 0] and result.visible[1, 0]


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_numpy_erosion_matches_scipy_square_erosion(radius):
    rng = np.random.default_rng(radius)
    mask = ndimage.binary_dilation(rng.random((37, 41)) < 0.08, iterations=3)
    structure = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
    expected = ndimage.binary_erosion(mask, structure=structure, border_value=1)
    np.testing.assert_array_equal(_erode_numpy(mask, radius), expected)


def test_depth_edge_rejects_a_one_pixel_rim_on_both_sides_of_a_step():
    depth = np.full((1, 30, 40), 5.0)
    depth[0, 10:20, 12:24] = 4.0  # 10 × 12 patch nearer the camera
    points = unproject(depth)
    valid = valid_point_mask(points, None, LiftConfig())
    # Inner ring 120 − 8·10 = 40 plus outer ring 12·14 − 120 = 48.
    assert valid.sum() == 30 * 40 - 88
    assert not valid[0, 9, 11:25].any() and not valid[0, 10, 12:24].any() and valid[0, 11, 13:23].all()
    masks = box_mask(1, 30, 40, rows=(10, 20), cols=(12, 24))
    result = lift_objects(masks, points, None, identity_poses(1), LiftConfig())
    assert result.n_points[0, 0] == 80 and result.center_camera[0, 0, 2] == 4.0
    off = lift_objects(masks, points, None, identity_poses(1), LiftConfig(depth_edge_rtol=None))
    assert off.n_points[0, 0] == 120


def test_depth_step_below_tolerance_is_not_an_edge():
    depth = np.full((1, 12, 12), 5.0)
    depth[0, :, 6:] = 5.1  # relative jump 0.02 < 0.03
    assert valid_point_mask(unproject(depth), None, LiftConfig()).all()
    assert valid_point_mask(unproject(depth), None, LiftConfig(depth_edge_rtol=0.01)).sum() == 12 * 10


def test_invalid_points_are_dropped_and_do_not_make_edges():
    depth = np.full((1, 8, 8), 2.0)
    points = unproject(depth)
    points[0, 3, 3] = np.nan
    points[0, 4, 4, 2] = -2.0
    points[0, 5, 5, 1] = np.inf
    points[0, 6, 6, 2] = 0.0
    valid = valid_point_mask(points, None, LiftConfig())
    assert valid.sum() == 64 - 4
    assert not valid[0, [3, 4, 5, 6], [3, 4, 5, 6]].any()


def test_conf_threshold_and_conf_weighted_mean():
    depth = np.full((1, 20, 20), 4.0)
    depth[0, :, 10:] = 6.0
    conf = np.full((1, 20, 20), 0.75, dtype=np.float32)
    conf[0, :5] = 0.05  # below the default threshold 0.1
    conf[0, 5:, :10] = 0.25
    masks = box_mask(1, 20, 20, rows=(0, 20), cols=(0, 20))
    points = unproject(depth)
    plain = lift_objects(masks, points, conf, identity_poses(1), no_filters())
    assert plain.n_points[0, 0] == 300
    assert plain.center_camera[0, 0, 2] == pytest.approx(5.0)
    weighted = lift_objects(masks, points, conf, identity_poses(1), no_filters(conf_weighted=True))
    expected_z = (0.25 * 4.0 + 0.75 * 6.0) / (0.25 + 0.75)
    assert weighted.center_camera[0, 0, 2] == expected_z
    strict = lift_objects(masks, points, conf, identity_poses(1), no_filters(conf_threshold=0.5))
    assert strict.n_points[0, 0] == 150
    unfiltered = lift_objects(masks, points, None, identity_poses(1), no_filters(conf_weighted=True))
    assert unfiltered.n_points[0, 0] == 400 and unfiltered.center_camera[0, 0, 2] == 5.0


def test_min_points():
    depth = np.full((1, 10, 10), 1.0)
    masks = box_mask(1, 10, 10, rows=(2, 3), cols=(2, 7))
    for min_points, visible in [(5, True), (6, False)]:
        config = no_filters(min_points=min_points)
        result = lift_objects(masks, unproject(depth), None, identity_poses(1), config)
        assert result.visible[0, 0] == visible and result.n_points[0, 0] == 5
        assert np.isnan(result.center_camera[0, 0]).any() != visible


def test_empty_object_and_frame_axes():
    points = unproject(np.full((2, 6, 7), 1.0))
    result = lift_objects(np.zeros((0, 2, 6, 7), dtype=bool), points, None, identity_poses(2))
    assert result.center_camera.shape == result.center_world.shape == result.extent.shape == (0, 2, 3)
    assert result.visible.shape == result.n_points.shape == (0, 2)
    result = lift_objects(np.zeros((2, 0, 6, 7), dtype=bool), points[:0], None, identity_poses(0))
    assert result.center_world.shape == (2, 0, 3) and result.n_points.shape == (2, 0)
    assert valid_point_mask(points[:0], None).shape == (0, 6, 7)


def test_shape_errors_name_the_array_and_the_dimension():
    masks, points, conf, cam_to_world = random_scene(1)
    with pytest.raises(ShapeError, match=r"local_points .*\(T\)"):
        lift_objects(masks, points[:2], conf, cam_to_world)
    with pytest.raises(ShapeError, match=r"conf .*\(W\)"):
        lift_objects(masks, points, conf[..., :-1], cam_to_world)
    with pytest.raises(ShapeError, match=r"local_points must have shape \(T, H, W, 3\)"):
        lift_objects(masks, points[..., :2], conf, cam_to_world)
    with pytest.raises(ShapeError, match=r"cam_to_world must have shape \(T, 4, 4\)"):
        lift_objects(masks, points, conf, cam_to_world[:, :3])
    with pytest.raises(ShapeError, match="masks has dtype float64"):
        lift_objects(masks.astype(np.float64), points, conf, cam_to_world)
    with pytest.raises(ShapeError, match=r"masks must have shape \(K, T, h, w\)"):
        lift_objects(masks[0], points, conf, cam_to_world)
    with pytest.raises(ShapeError, match=r"conf .*\(H\)"):
        valid_point_mask(points, conf[:, 1:], LiftConfig())


@pytest.mark.parametrize(
    "bad",
    [
        {"estimator": "mode"},
        {"trim_fraction": 0.5},
        {"erode_px": -1},
        {"erode_px": 1.5},
        {"min_points": 0},
        {"extent_quantiles": (0.9, 0.1)},
        {"depth_edge_rtol": -0.1},
        {"conf_threshold": float("nan")},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="LiftConfig"):
        LiftConfig(**bad)


def assert_same_result(fast: LiftResult, slow: LiftResult, estimator: str) -> None:
    np.testing.assert_array_equal(fast.n_points, slow.n_points)
    np.testing.assert_array_equal(fast.visible, slow.visible)
    if estimator == "median":
        np.testing.assert_array_equal(fast.center_camera, slow.center_camera)
    else:
        np.testing.assert_allclose(fast.center_camera, slow.center_camera, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.center_world, slow.center_world, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.extent, slow.extent, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("estimator", ["mean", "median", "trimmed"])
@pytest.mark.parametrize("erode_px", [0, 2])
@pytest.mark.parametrize("depth_edge_rtol", [None, 0.03])
@pytest.mark.parametrize("use_conf", [False, True])
def test_kernel_matches_numpy_reference(estimator, erode_px, depth_edge_rtol, use_conf):
    masks, points, conf, cam_to_world = random_scene(7)
    conf = conf if use_conf else None
    config = LiftConfig(estimator=estimator, erode_px=erode_px, depth_edge_rtol=depth_edge_rtol, min_points=3)
    fast = lift_objects(masks, points, conf, cam_to_world, config)
    slow = _lift_numpy(masks, points, conf, cam_to_world, config)
    assert fast.visible.any() and not fast.visible.all()
    assert_same_result(fast, slow, estimator)


@pytest.mark.parametrize("trim_fraction", [0.0, 0.1, 0.3])
def test_kernel_matches_reference_for_weighting_trimming_and_quantiles(trim_fraction):
    masks, points, conf, cam_to_world = random_scene(11, n_frames=4, height=40, width=52, n_obj=4)
    for config in (
        LiftConfig(conf_weighted=True, extent_quantiles=(0.2, 0.7)),
        LiftConfig(estimator="trimmed", trim_fraction=trim_fraction, extent_quantiles=(0.0, 1.0)),
        LiftConfig(estimator="median", extent_quantiles=None, erode_px=1, conf_threshold=0.3),
    ):
        fast = lift_objects(masks, points, conf, cam_to_world, config)
        slow = _lift_numpy(masks, points, conf, cam_to_world, config)
        assert_same_result(fast, slow, config.estimator)
    assert np.isnan(fast.extent).all()


def test_kernel_median_is_exact_on_large_gathers_with_ties():
    # Over 600 points per object engages the sampling step of the selection; rounding depths
    # to a coarse grid makes many equal keys.
    rng = np.random.default_rng(3)
    depth = np.round(2.0 + rng.random((2, 60, 70)), 1)
    masks = np.stack([np.ones((2, 60, 70), bool), rng.random((2, 60, 70)) < 0.5])
    points = unproject(depth)
    for estimator in ("median", "trimmed"):
        config = no_filters(estimator=estimator, extent_quantiles=(0.05, 0.95))
        fast = lift_objects(masks, points, None, identity_poses(2), config)
        slow = _lift_numpy(masks, points, None, identity_poses(2), config)
        assert (fast.n_points > 600).all()
        assert_same_result(fast, slow, estimator)


def test_float16_points_are_read_without_loss():
    masks, points, conf, cam_to_world = random_scene(5)
    points16, conf16 = points.astype(np.float16), conf.astype(np.float16)
    for config in (LiftConfig(), LiftConfig(estimator="median", conf_weighted=True, erode_px=1)):
        half = lift_objects(masks, points16, conf16, cam_to_world, config)
        points32, conf32 = points16.astype(np.float32), conf16.astype(np.float32)
        single = lift_objects(masks, points32, conf32, cam_to_world, config)
        assert_same_result(half, single, "median")
        np.testing.assert_array_equal(half.center_camera, single.center_camera)
        assert_same_result(half, _lift_numpy(masks, points16, conf16, cam_to_world, config), config.estimator)
    np.testing.assert_array_equal(
        valid_point_mask(points16, conf16), _valid_point_mask_numpy(points16, conf16, LiftConfig())
    )


@pytest.mark.parametrize("config", [LiftConfig(), LiftConfig(depth_edge_rtol=None, conf_threshold=0.5)])
def test_valid_point_mask_matches_reference(config):
    _, points, conf, _ = random_scene(2)
    for c in (conf, None):
        expected = _valid_point_mask_numpy(points, c, config)
        np.testing.assert_array_equal(valid_point_mask(points, c, config), expected)
    assert 0.3 < expected.mean() < 1.0


@pytest.mark.parametrize(
    "kind", ["random", "sorted", "reversed", "constant", "few_values", "raster_sawtooth"]
)
def test_place_ranks_matches_sorting(kind):
    from recon4d.lift.order_statistics import place_ranks

    rng = np.random.default_rng(0)
    n = 2503
    values = {
        "random": rng.normal(size=n),
        "sorted": np.sort(rng.normal(size=n)),
        "reversed": np.sort(rng.normal(size=n))[::-1].copy(),
        "constant": np.full(n, 1.5),
        "few_values": rng.integers(0, 4, n).astype(np.float64),
        "raster_sawtooth": np.tile(np.arange(50.0), n // 50 + 1)[:n],
    }[kind]
    expected = np.sort(values)
    for ranks in ([0], [n - 1], [n // 2], [124, 125, 2377, 2378], [3, 1250, 1251, 2499]):
        work = values.copy()
        place_ranks(work, np.array(ranks, dtype=np.int64))
        np.testing.assert_array_equal(work[ranks], expected[ranks])
        np.testing.assert_array_equal(np.sort(work), expected)
        for r in ranks:
            assert (work[:r] <= work[r]).all() and (work[r + 1 :] >= work[r]).all()


def test_non_contiguous_inputs_are_accepted():
    masks, points, conf, cam_to_world = random_scene(4, n_frames=4)
    fast = lift_objects(masks[:, ::2], points[::2], conf[::2], cam_to_world[::2])
    slow = _lift_numpy(masks[:, ::2], points[::2], conf[::2], cam_to_world[::2])
    assert_same_result(fast, slow, "mean")


@pytest.mark.parametrize("n", [1, 2, 7, 601, 4096, 12345])
@pytest.mark.parametrize("kind", ["random", "raster_sawtooth", "few_values", "heavy_tail"])
def test_quantile_pair_matches_numpy(n, kind):
    from recon4d.lift.order_statistics import quantile_pair

    rng = np.random.default_rng(n)
    values = {
        "random": rng.normal(size=n),
        "raster_sawtooth": np.tile(np.arange(37.0), n // 37 + 1)[:n] + 0.001 * np.arange(n),
        "few_values": rng.integers(0, 3, n).astype(np.float64),
        "heavy_tail": rng.standard_cauchy(n),
    }[kind]
    for q_lo, q_hi in [(0.05, 0.95), (0.0, 1.0), (0.5, 0.5), (0.3, 0.31), (0.2, 0.7)]:
        work = values.copy()
        got = quantile_pair(work, q_lo, q_hi)
        np.testing.assert_array_equal(got, np.quantile(values, [q_lo, q_hi]), err_msg=f"{q_lo}, {q_hi}")
        np.testing.assert_array_equal(np.sort(work), np.sort(values))
        if n >= 4096 and kind in ("random", "heavy_tail") and q_hi - q_lo > 0.5:
            # The sampled brackets held, so the values were only read, not reordered.
            np.testing.assert_array_equal(work, values)


@pytest.mark.parametrize("n", [1, 6, 601, 4096, 12345])
@pytest.mark.parametrize("kind", ["random", "raster_sawtooth", "few_values"])
def test_rank_pair_matches_sorting(n, kind):
    from recon4d.lift.order_statistics import rank_pair

    rng = np.random.default_rng(n + 1)
    values = {
        "random": rng.normal(size=n),
        "raster_sawtooth": np.tile(np.arange(37.0), n // 37 + 1)[:n] + 0.001 * np.arange(n),
        "few_values": rng.integers(0, 3, n).astype(np.float64),
    }[kind]
    expected = np.sort(values)
    for r0, r1 in [((n - 1) // 2, n // 2), (0, min(1, n - 1)), (n // 3, n // 3), (n - 1, n - 1)]:
        work = values.copy()
        assert rank_pair(work, r0, r1) == (expected[r0], expected[r1])
        np.testing.assert_array_equal(np.sort(work), expected)
        if n >= 4096 and kind == "random" and 0 < r0 and r1 < n - 1:
            np.testing.assert_array_equal(work, values)  # bracketed: read, not reordered


def test_masks_of_another_size_are_resized_and_lazy_inputs_read_in_batches():
    """Issue 10: masks at another size than the point maps used to be refused (and the pipeline
    replaced them by filled boxes); they are resized by nearest neighbour."""
    from recon4d.lift.lifting import resize_masks
    from recon4d.types import FrameSequence

    masks, points, conf, cam_to_world = random_scene(5, n_frames=5, height=24, width=32)
    small = masks[:, :, ::2, ::2]  # (K, T, 12, 16): a pixel per 2×2 block
    resized = resize_masks(small, (24, 32))
    np.testing.assert_array_equal(resized, np.repeat(np.repeat(small, 2, axis=2), 2, axis=3))
    expected = lift_objects(resized, points, conf, cam_to_world, no_filters())
    got = lift_objects(small, points, conf, cam_to_world, no_filters())
    np.testing.assert_array_equal(got.n_points, expected.n_points)
    np.testing.assert_allclose(got.center_world, expected.center_world, equal_nan=True)

    lazy_points = FrameSequence(5, points.shape[1:], points.dtype, lambda t: points[t])
    lazy_conf = FrameSequence(5, conf.shape[1:], conf.dtype, lambda t: conf[t])
    visible = np.ones(masks.shape[:2], bool)
    visible[0, 1] = visible[2, 4] = False
    streamed = lift_objects(masks, lazy_points, lazy_conf, cam_to_world, visible=visible, batch_frames=2)
    reference = lift_objects(masks & visible[..., None, None], points, conf, cam_to_world)
    np.testing.assert_array_equal(streamed.n_points, reference.n_points)
    np.testing.assert_allclose(streamed.center_world, reference.center_world, equal_nan=True)
    assert not streamed.visible[0, 1] and not streamed.visible[2, 4] and masks[0, 1].any()
