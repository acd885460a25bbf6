"""Tests of the classic tracker's fast numeric paths against slow references (issue 12: tracker speed).

The epipolar terms, inverse depth and static flow run in float32 planes, the forward–backward
test through ``cv2.remap``/``cv2.magnitude``: each is checked here against a float64 or
per-pixel reference within stated tolerances. Segmentation's speed-ups (two-means without a
distance table, splitting and trimming in a window around each component) must give exactly
what the whole-frame forms gave, and a mask's whole-pixel shift what cv2.warpAffine gave.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon4d.errors import Recon4dError
from recon4d.tracking.classic.association import carry, shift_mask
from recon4d.tracking.classic.background import (
    BackgroundMotion,
    consistent_flow,
    inverse_depth,
    plane_bound,
    prior_intrinsics,
    relative_residual,
    static_flow,
)
from recon4d.tracking.classic.local_depth import background_inverse_depth, block_medians, depth_fit, nan_median
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.motion import dense_flow
from recon4d.tracking.classic.segment import (
    detect_moving_regions,
    moving_components,
    split_by_motion,
    trim_to_core,
    two_means,
)

SIZE = (384, 216)


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(degrees)
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _model() -> BackgroundMotion:
    translation = np.array([0.5, -0.1, 0.6])
    return BackgroundMotion("epipolar", (np.eye(3),), _rotation([0.2, 1, 0.1], 3.0),
                            translation / np.linalg.norm(translation), prior_intrinsics(SIZE, 60.0))


def _reference_terms(model: BackgroundMotion):
    """float64 (h, w, 3) pixels p, u = K R K⁻¹ p and v = K t: the formulas written out directly."""
    width, height = SIZE
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    grid = np.stack([xs, ys, np.ones_like(xs)], -1)
    infinite = model.intrinsics @ model.rotation @ np.linalg.inv(model.intrinsics)
    return grid, grid @ infinite.T, model.intrinsics @ model.translation


def test_static_flow_float32_matches_float64_reference():
    model = _model()
    rho = np.random.default_rng(0).uniform(0.01, 0.5, SIZE[::-1]).astype(np.float32)
    grid, rotated, baseline = _reference_terms(model)
    rho64 = rho.astype(np.float64)
    mapped = (rotated[..., :2] + rho64[..., None] * baseline[:2]) / (rotated[..., 2] + rho64 * baseline[2])[..., None]
    expected = mapped - grid[..., :2]
    flow = static_flow(model, rho)
    assert flow.dtype == np.float32 and flow.shape == (*SIZE[::-1], 2)
    np.testing.assert_allclose(flow, expected, atol=2e-3)  # flows of tens of px; float32 keeps ~1e-4 px


def test_inverse_depth_float32_matches_float64_reference():
    model = _model()
    rng = np.random.default_rng(1)
    flow = static_flow(model, rng.uniform(0.01, 0.5, SIZE[::-1]).astype(np.float32))
    flow += rng.normal(0.0, 0.5, flow.shape).astype(np.float32)  # off the epipolar lines too
    grid, rotated, baseline = _reference_terms(model)
    target = grid[..., :2] + flow.astype(np.float64)
    a = baseline[:2] - target * baseline[2]
    b = target * rotated[..., 2:3] - rotated[..., :2]
    norm2 = np.sum(a * a, axis=-1)
    expected_rho = np.sum(a * b, axis=-1) / np.maximum(norm2, 1e-12)
    expected_sensitivity = np.sqrt(norm2) / np.abs(rotated[..., 2])
    rho, sensitivity = inverse_depth(flow, model)
    assert rho.dtype == sensitivity.dtype == np.float32
    np.testing.assert_allclose(sensitivity, expected_sensitivity, rtol=1e-4)
    # ρ̂ error in pixels of flow it stands for (sensitivity · Δρ) stays far below a pixel
    assert np.max(np.abs(rho - expected_rho) * expected_sensitivity) < 1e-2


def test_relative_residual_matches_reference():
    rng = np.random.default_rng(2)
    flow, predicted = rng.normal(0, 5, (2, 40, 60, 2)).astype(np.float32)
    expected = np.linalg.norm(flow.astype(np.float64) - predicted, axis=-1) / (
        1.0 + 0.2 * np.linalg.norm(predicted.astype(np.float64), axis=-1))
    np.testing.assert_allclose(relative_residual(flow, predicted, 0.2), expected, rtol=1e-5, atol=1e-6)


def _consistent_reference(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """Per-pixel loop: bilinear lookup of flow_ba at p + flow_ab(p) (border replicated), then the test."""
    height, width = flow_ab.shape[:2]
    out = np.zeros((height, width), bool)
    for y in range(height):
        for x in range(width):
            fx, fy = flow_ab[y, x].astype(np.float64)
            qx, qy = min(max(x + fx, 0.0), width - 1.0), min(max(y + fy, 0.0), height - 1.0)
            x0, y0 = int(np.floor(qx)), int(np.floor(qy))
            x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
            wx, wy = qx - x0, qy - y0
            back = ((1 - wy) * ((1 - wx) * flow_ba[y0, x0] + wx * flow_ba[y0, x1])
                    + wy * ((1 - wx) * flow_ba[y1, x0] + wx * flow_ba[y1, x1]))
            mismatch = np.sum((flow_ab[y, x] + back) ** 2)
            out[y, x] = mismatch < 0.01 * (np.sum(flow_ab[y, x] ** 2) + np.sum(back ** 2)) + 0.5
    return out


def test_consistent_flow_matches_per_pixel_reference():
    rng = np.random.default_rng(3)
    height, width = 24, 32
    flow_ab = np.zeros((height, width, 2), np.float32)
    flow_ab[...] = [2.3, -1.2]
    flow_ab[8:16, 10:20] = [-4.0, 3.0]  # a mover
    flow_ba = -np.roll(flow_ab, (-1, 2), axis=(0, 1)) + rng.normal(0, 0.4, flow_ab.shape).astype(np.float32)
    fast = consistent_flow(flow_ab, flow_ba)
    slow = _consistent_reference(flow_ab, flow_ba)
    # pixels right at the threshold may flip with interpolation rounding: allow a handful
    assert fast.mean() > 0.2 and (~fast).mean() > 0.05
    assert np.count_nonzero(fast != slow) <= 0.01 * fast.size


def test_dense_flow_takes_the_configured_iterations():
    dis = dense_flow(ClassicTrackerConfig(flow_descent_iterations=7, flow_refine_iterations=1))
    assert dis.getGradientDescentIterations() == 7 and dis.getVariationalRefinementIterations() == 1
    with pytest.raises(Recon4dError, match="flow_descent_iterations"):
        ClassicTrackerConfig(flow_descent_iterations=0)


def _two_means_reference(vectors: np.ndarray, iterations: int = 10):
    """The (N, 2, 2) distance-table form two_means had before its speed-up."""
    centres = np.empty((2, 2))
    centres[0] = np.median(vectors, axis=0)
    centres[1] = vectors[np.argmax(np.sum((vectors - centres[0]) ** 2, axis=1))]
    labels = np.zeros(len(vectors), np.int64)
    for i in range(iterations):
        new_labels = np.argmin(np.sum((vectors[:, None] - centres[None]) ** 2, axis=-1), axis=1)
        if np.array_equal(new_labels, labels) and i > 0:
            break
        labels = new_labels
        for k in range(2):
            if np.any(labels == k):
                centres[k] = vectors[labels == k].mean(axis=0)
    return centres, labels


@pytest.mark.parametrize("seed", range(6))
def test_two_means_equals_distance_table_reference(seed):
    rng = np.random.default_rng(seed)
    vectors = np.concatenate([rng.normal(rng.normal(0, 3, 2), rng.uniform(0.1, 2), (rng.integers(5, 400), 2))
                              for _ in range(rng.integers(1, 4))])
    centres, labels = two_means(vectors)
    expected_centres, expected_labels = _two_means_reference(vectors)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(centres, expected_centres)


def test_two_means_breaks_exact_ties_like_argmin():
    # small integer vectors: some points lie exactly as far from both centres
    for seed in range(60):
        vectors = np.random.default_rng(seed).integers(-2, 3, (7, 2)).astype(np.float64)
        centres, labels = two_means(vectors)
        expected_centres, expected_labels = _two_means_reference(vectors)
        np.testing.assert_array_equal(labels, expected_labels)
        np.testing.assert_array_equal(centres, expected_centres)


def _movers_frame(seed: int):
    """(h, w) moving mask and image/compensated flows of a frame with touching and separate movers,
    some at the border, with noisy flow: splits, trims and nearest-part assignments all happen."""
    rng = np.random.default_rng(seed)
    height, width = 108, 192
    moving = np.zeros((height, width), bool)
    flow = rng.normal(0, 0.3, (height, width, 2)).astype(np.float32)
    for _ in range(rng.integers(3, 7)):
        y, x = rng.integers(-5, height - 5), rng.integers(-5, width - 5)
        h, w = rng.integers(8, 40), rng.integers(8, 50)
        moving[max(y, 0):y + h, max(x, 0):x + w] = True
        flow[max(y, 0):y + h, max(x, 0):x + w] += rng.normal(0, 4, 2).astype(np.float32)
    moving &= rng.random((height, width)) > 0.1  # patchy masks
    velocity = flow + rng.normal(0, 0.5, flow.shape).astype(np.float32)
    return moving, flow, velocity


@pytest.mark.parametrize("seed", range(8))
def test_detect_moving_regions_windows_equal_whole_frame_reference(seed):
    moving, flow, velocity = _movers_frame(seed)
    config = ClassicTrackerConfig()
    height, width = moving.shape
    min_area = max(config.min_area_fraction * height * width, 4)
    speed = np.linalg.norm(velocity, axis=-1)
    expected = [trim_to_core(part, moving, speed, min_area, config)
                for component in moving_components(moving, config)
                for part in split_by_motion(component, moving, flow, velocity, min_area, config)]
    expected = [mask for mask in sorted(expected, key=lambda mask: -int(np.count_nonzero(mask))) if mask.any()]
    found = detect_moving_regions(moving, config, flow, velocity)
    assert len(found) == len(expected) >= 2
    for detection, mask in zip(found, expected):
        np.testing.assert_array_equal(detection.mask, mask)


def test_shift_mask_equals_warp_affine_nearest():
    rng = np.random.default_rng(4)
    for trial in range(1200):
        height, width = (216, 384) if trial % 3 == 0 else (int(rng.integers(3, 50)), int(rng.integers(3, 50)))
        mask = rng.random((height, width)) < 0.3
        shift = [rng.normal(0, 5, 2).astype(np.float16),  # carry: medians of float16 flow
                 rng.integers(-4000, 4000, 2) / 2048,  # exact halves of warpAffine's 1/1024 steps (ties)
                 rng.normal(0, 300, 2),  # far outside
                 rng.normal(0, 3, 2)][trial % 4]  # appearance_changed: float64 box differences
        expected = cv2.warpAffine(mask.astype(np.uint8), np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                                  (width, height), flags=cv2.INTER_NEAREST) > 0
        np.testing.assert_array_equal(shift_mask(mask, shift), expected)
    assert not shift_mask(np.ones((4, 5), bool), np.array([np.nan, 0.0])).any()


def test_carry_reads_the_mask_pixels_in_whole_frame_order():
    rng = np.random.default_rng(5)
    flow = rng.normal(0, 4, (60, 80, 2)).astype(np.float16)  # compact motion holds float16 flows
    for trial in range(40):
        mask = np.zeros((60, 80), bool)
        y, x = rng.integers(0, 50), rng.integers(0, 70)
        mask[y:y + rng.integers(1, 30), x:x + rng.integers(1, 30)] = rng.random() < 0.9
        box = np.array([x, y, x + 10, y + 10], np.float64)
        moved_box, moved, shift = carry(box, mask, flow)
        expected = np.median(flow[mask], axis=0) if mask.any() else np.median(flow[y:y + 10, x:x + 10].reshape(-1, 2),
                                                                                    axis=0)
        np.testing.assert_array_equal(shift, expected)
        np.testing.assert_array_equal(moved, shift_mask(mask, expected))
        np.testing.assert_array_equal(moved_box, box + np.tile(expected, 2))


def _reference_background_inverse_depth(rho, usable, block=8, window=9, choose_from=None):
    """background_inverse_depth as it was before the speed-ups (ad2b150): a median per window
    through nan_median each round, each shift's fits gathered and chosen with numpy one by one."""
    height, width = rho.shape
    blocks = block_medians(rho, usable, block)
    rows, cols = blocks.shape
    overall = float(nan_median(blocks.ravel())) if np.isfinite(blocks).any() else 0.0
    half = window // 2
    values = np.lib.stride_tricks.sliding_window_view(np.pad(blocks, half, constant_values=np.nan),
                                                      (window, window))[::2, ::2].reshape(-1, window * window)
    offsets = np.arange(-half, window - half, dtype=np.float64)
    design = np.stack(np.broadcast_arrays(np.ones((window, window)), offsets[None, :], offsets[:, None]),
                      -1).reshape(-1, 3)
    outer = (design[:, :, None] * design[:, None, :]).reshape(-1, 9)
    present = np.isfinite(values)
    samples = np.where(present, values, 0.0)
    coefficients = np.zeros((len(values), 3))
    coefficients[:, 0] = np.nan_to_num(nan_median(values), nan=overall)
    for _ in range(3):
        residual = samples - coefficients @ design.T
        spread = np.abs(residual)
        spread[~present] = np.nan
        scale = np.maximum(np.nan_to_num(1.4826 * nan_median(spread), nan=1.0), 1e-6)[:, None]
        residual /= 2.4 * scale
        residual *= residual
        residual += 1.0
        weight = np.divide(present, residual)
        normal = (weight @ outer).reshape(-1, 3, 3) + 1e-6 * np.eye(3)
        coefficients = np.linalg.solve(normal, ((weight * samples) @ design)[..., None])[..., 0]
    coefficients[present.sum(axis=1) < 4] = [overall, 0.0, 0.0]
    fit_rows, fit_cols = (rows + 1) // 2, (cols + 1) // 2
    coefficients = coefficients.reshape(fit_rows, fit_cols, 3)
    row, col = np.arange(-1, rows + 1), np.arange(-1, cols + 1)
    fit_row, fit_col = np.clip((row + 1) // 2, 0, fit_rows - 1), np.clip((col + 1) // 2, 0, fit_cols - 1)
    reach = max(1, window // 8)
    shifts = [(0, 0)] if choose_from is None else [(dr, dc) for dr in (-reach, 0, reach) for dc in (-reach, 0, reach)]
    best, best_error = None, None
    for dr, dc in shifts:
        source_row, source_col = np.clip(fit_row + dr, 0, fit_rows - 1), np.clip(fit_col + dc, 0, fit_cols - 1)
        nearest = coefficients[source_row[:, None], source_col[None, :]]
        local = (nearest[..., 0] + nearest[..., 1] * (col - 2 * source_col)[None, :]
                 + nearest[..., 2] * (row - 2 * source_row)[:, None])
        candidate = cv2.resize(local.astype(np.float32), ((cols + 2) * block, (rows + 2) * block),
                               interpolation=cv2.INTER_LINEAR)[block:block + height, block:block + width]
        if choose_from is None:
            return candidate
        error = np.abs(candidate - choose_from)
        if best is None:
            best, best_error = candidate.copy(), error
        else:
            np.copyto(best, candidate, where=error < best_error)
            np.minimum(error, best_error, out=best_error)
    return best


def _depth_scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(216, 384) float32 inverse depth of a ground, a wall and two movers with noise, and usable pixels with holes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE[1], 0:SIZE[0]].astype(np.float32)
    rho = np.where(yy > 120, 0.02 + 0.004 * (yy - 120), 0.05 + 0.0002 * xx).astype(np.float32)
    rho[60:150, 100:140] = 0.9
    rho[20:70, 250:330] = -0.3
    rho += rng.normal(0.0, 0.01, rho.shape).astype(np.float32)
    usable = rng.random(rho.shape) > 0.2
    usable[:, :50] = False  # blocks with no usable pixel
    usable[170:, 200:260] = rng.random((46, 60)) > 0.97  # blocks with a few
    return rho, usable


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_block_medians_update_only_recomputes_changed_blocks_to_the_same_values(seed):
    rho, usable = _depth_scene(seed)
    rng = np.random.default_rng(seed + 10)
    dropped = usable & (rng.random(rho.shape) > 0.995)
    dropped[80:140, 90:150] |= usable[80:140, 90:150]  # a mover's pixels left out
    kept = usable & ~dropped
    full = block_medians(rho, kept, 8)
    updated = block_medians(rho, kept, 8, block_medians(rho, usable, 8), dropped)
    assert full.dtype == updated.dtype
    np.testing.assert_array_equal(updated, full)
    assert not np.array_equal(full, block_medians(rho, usable, 8), equal_nan=True)  # something did change
    # nothing changed: the previous medians themselves
    np.testing.assert_array_equal(block_medians(rho, kept, 8, full, np.zeros_like(kept)), full)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_background_inverse_depth_equals_the_reference_bit_for_bit(seed):
    rho, usable = _depth_scene(seed)
    smoothed = cv2.medianBlur(rho, 5)
    for choose_from in (None, smoothed):
        expected = _reference_background_inverse_depth(rho, usable, 8, 9, choose_from)
        np.testing.assert_array_equal(background_inverse_depth(rho, usable, 8, 9, choose_from), expected)
        given = background_inverse_depth(rho, usable, 8, 9, choose_from, blocks=block_medians(rho, usable, 8))
        np.testing.assert_array_equal(given, expected)
    blocks = block_medians(rho, usable, 8)
    assert plane_bound(rho, usable, 8, blocks=blocks) is not None
    np.testing.assert_array_equal(plane_bound(rho, usable, 8, blocks=blocks), plane_bound(rho, usable, 8))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_depth_fit_refit_equals_a_fit_from_scratch(seed):
    rho, usable = _depth_scene(seed)
    smoothed = cv2.medianBlur(rho, 5)
    left_out = np.zeros_like(usable)
    left_out[60:150, 100:140] = usable[60:150, 100:140]  # the first mover's pixels: a local refit
    kept = usable & ~left_out
    for choose_from in (None, smoothed):
        first = depth_fit(rho, usable, 8, 9, choose_from)
        np.testing.assert_array_equal(first.depth, _reference_background_inverse_depth(rho, usable, 8, 9, choose_from))
        refit = depth_fit(rho, kept, 8, 9, choose_from, previous=first, changed=left_out)
        scratch = depth_fit(rho, kept, 8, 9, choose_from)
        np.testing.assert_array_equal(refit.blocks, scratch.blocks)
        np.testing.assert_allclose(refit.coefficients, scratch.coefficients, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(refit.depth, scratch.depth, rtol=1e-5, atol=1e-6)
        assert not np.allclose(scratch.depth, first.depth, atol=1e-3)  # the refit had something to do
        unchanged = depth_fit(rho, usable, 8, 9, choose_from, previous=first, changed=np.zeros_like(usable))
        assert unchanged.depth is first.depth


def _textured_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(216, 384) uint8 grey frames: smoothed noise, the second shifted by (2.5, -1.5) px, with a blank band."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (SIZE[1] + 20, SIZE[0] + 20)).astype(np.float32), (0, 0), 2.0)
    shift = np.float32([[1, 0, 2.5], [0, 1, -1.5]])
    a = base[10:-10, 10:-10]
    b = cv2.warpAffine(base, shift, base.shape[::-1], flags=cv2.INTER_LINEAR)[10:-10, 10:-10]
    a, b = cv2.normalize(a, None, 0, 255, cv2.NORM_MINMAX), cv2.normalize(b, None, 0, 255, cv2.NORM_MINMAX)
    b[:, 300:] = 128  # content that vanishes: LK loses points there
    return a.astype(np.uint8), b.astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
def test_track_points_back_tracks_only_found_points_with_the_same_result(seed):
    from recon4d.tracking.classic.motion import _LK, track_points

    a, b = _textured_pair(seed)
    rng = np.random.default_rng(seed)
    points = np.concatenate([rng.uniform(5, [379, 211], (300, 2)), [[-50.0, 10.0], [500.0, 300.0]]]).astype(np.float32)
    start = points.reshape(-1, 1, 2)
    forward, ok_f, _ = cv2.calcOpticalFlowPyrLK(a, b, start, None, **_LK)
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(b, a, forward, None, **_LK)  # every point, as before
    keep = (ok_f.ravel() == 1) & (ok_b.ravel() == 1) & (np.linalg.norm((back - start).reshape(-1, 2), axis=1) < 1.0)
    assert (ok_f.ravel() == 0).any() and keep.sum() > 100
    kept_a, kept_b = track_points(a, b, points)
    np.testing.assert_array_equal(kept_a, points[keep])
    np.testing.assert_array_equal(kept_b, forward.reshape(-1, 2)[keep])
    assert track_points(a, b, np.float32([[-500.0, -500.0]]))[0].shape == (0, 2)


def test_relative_pose_from_the_inliers_alone_is_the_pose_recover_pose_gave():
    from recon4d.tracking.classic.background import fit_background

    rng = np.random.default_rng(3)
    intrinsics = prior_intrinsics(SIZE, 60.0)
    depth = rng.uniform(3.0, 12.0, 500)
    points = np.stack([rng.uniform(-0.5, 0.5, 500) * depth, rng.uniform(-0.3, 0.3, 500) * depth, depth], axis=1)
    rotation, translation = _rotation([0.1, 1, 0], 1.5), np.array([0.25, 0.02, 0.05])
    moved = points @ rotation.T + translation

    def project(camera_points):
        projected = camera_points @ intrinsics.T
        return projected[:, :2] / projected[:, 2:]

    a = project(points).astype(np.float32)
    b = project(moved).astype(np.float32)
    b[:60] += rng.normal(0, 6, (60, 2)).astype(np.float32)  # outliers: movers
    model = fit_background(a, b, SIZE, ClassicTrackerConfig())
    assert model.kind == "epipolar"
    # what _relative_pose did before: recoverPose over every point with the RANSAC mask
    inverse = np.linalg.inv(intrinsics)
    rays_a = a.astype(np.float64) @ inverse[:2, :2].T + inverse[:2, 2]
    rays_b = b.astype(np.float64) @ inverse[:2, :2].T + inverse[:2, 2]
    essential, mask = cv2.findEssentialMat(rays_a, rays_b, np.eye(3), cv2.USAC_MAGSAC, 0.999,
                                           ClassicTrackerConfig().essential_px / intrinsics[0, 0])
    _, expected_rotation, expected_translation, _ = cv2.recoverPose(essential[:3], rays_a, rays_b, np.eye(3),
                                                                    mask=mask.copy())
    np.testing.assert_array_equal(model.rotation, expected_rotation)
    np.testing.assert_array_equal(model.translation, expected_translation.ravel() / np.linalg.norm(expected_translation))
