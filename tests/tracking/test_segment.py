"""Tests of tracking/classic/segment.py: moving components, splitting by motion, filled masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon4d.errors import Recon4dError
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.segment import (
    bin_histogram,
    hsv_bins,
    trim_to_colours,
    bimodal,
    detect_moving_regions,
    fill_mask,
    moving_components,
    profile_cut,
    profile_group,
    split_by_motion,
    split_by_profile,
    trim_to_core,
    two_means,
)

HEIGHT, WIDTH = 60, 80


def two_blocks(gap: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A moving mask of two touching 20 × 20 squares (``gap`` px apart) and flow (left square +x, right −x)."""
    moving = np.zeros((HEIGHT, WIDTH), bool)
    moving[20:40, 10:30] = True
    moving[20:40, 30 + gap:50 + gap] = True
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[:, :30 + gap // 2, 0] = 3.0
    flow[:, 30 + gap // 2:, 0] = -3.0
    return moving, flow


def test_two_means_is_deterministic_and_finds_two_groups():
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal([3, 0], 0.2, (100, 2)), rng.normal([-3, 0], 0.2, (60, 2))])
    centres, labels = two_means(vectors)
    assert sorted(np.round(centres[:, 0]).tolist()) == [-3, 3]
    assert np.bincount(labels).tolist() in ([100, 60], [60, 100])
    again, labels_again = two_means(vectors)
    np.testing.assert_array_equal(labels, labels_again)
    np.testing.assert_array_equal(centres, again)


def test_bimodal_tells_two_groups_from_a_gradient():
    rng = np.random.default_rng(1)
    groups = np.concatenate([rng.normal([2, 0], 0.1, (200, 2)), rng.normal([-2, 0], 0.1, (200, 2))])
    centres, _ = two_means(groups)
    assert bimodal(groups, centres)
    gradient = np.stack([np.linspace(-2, 2, 400), np.zeros(400)], -1)  # a rolling ball: top fast, bottom still
    centres, _ = two_means(gradient)
    assert not bimodal(gradient, centres)
    assert not bimodal(gradient, np.zeros((2, 2)))


def test_split_by_motion_separates_touching_movers():
    moving, flow = two_blocks()
    parts = split_by_motion(moving, moving, flow, flow, min_area=20)
    assert len(parts) == 2
    boxes = sorted((np.argwhere(p)[:, 1].min(), np.argwhere(p)[:, 1].max()) for p in parts)
    assert boxes == [(10, 29), (30, 49)]
    assert sum(np.count_nonzero(p) for p in parts) == np.count_nonzero(moving)


def test_split_by_motion_keeps_one_mover_whole():
    moving, flow = two_blocks()
    same = np.zeros_like(flow)
    same[..., 0] = 3.0
    assert len(split_by_motion(moving, moving, same, same, min_area=20)) == 1
    # a rigid object moving as one in the image, whose compensated velocity differs between
    # its top (against a far wall) and bottom (against the ground): still one
    compensated = same.copy()
    compensated[:30] += [2.0, 0.0]
    assert len(split_by_motion(moving, moving, same, compensated, min_area=20)) == 1
    # a limb slower than the body by less than split_min_relative of the body's speed
    slow = same.copy()
    slow[:, 30:, 0] = 2.0
    assert len(split_by_motion(moving, moving, slow, slow, min_area=20)) == 1
    # a gradient (rolling) is not two movers
    rolling = np.zeros_like(flow)
    rolling[..., 0] = np.linspace(0, 6, HEIGHT)[:, None]
    assert len(split_by_motion(moving, moving, rolling, rolling, min_area=20)) == 1
    # parts too small
    assert len(split_by_motion(moving, moving, flow, flow, min_area=500)) == 1


def test_split_by_motion_ignores_still_margin_pixels():
    moving, flow = two_blocks()
    region = np.zeros_like(moving)
    region[15:45, 5:55] = True  # the closing's margin around the two movers: not moving
    parts = split_by_motion(region, moving, flow, flow, min_area=20)
    assert len(parts) == 2
    assert sum(np.count_nonzero(p) for p in parts) == np.count_nonzero(region)


def test_moving_components_and_detections():
    moving, flow = two_blocks(gap=20)
    moving[2, 2] = True  # speckle, removed by the opening
    config = ClassicTrackerConfig(close_fraction=0.01)
    components = moving_components(moving, config)
    assert len(components) == 2
    detections = detect_moving_regions(moving, config)
    assert len(detections) == 2 and all(d.mask.any() for d in detections)
    np.testing.assert_array_equal(sorted(d.box.tolist() for d in detections),
                                  [[10, 20, 30, 40], [50, 20, 70, 40]])
    touching, touching_flow = two_blocks()
    assert len(detect_moving_regions(touching, config)) == 1
    assert len(detect_moving_regions(touching, config, touching_flow, touching_flow)) == 2
    assert detect_moving_regions(np.zeros((HEIGHT, WIDTH), bool), config) == []


def test_component_floor_drops_small_components_only_from_detections():
    moving = np.zeros((HEIGHT, WIDTH), bool)
    moving[10:30, 10:30] = True  # a mover: 400 px, 8 % of the frame
    moving[40:48, 50:58] = True  # a flow-error blob: 64 px, 1.3 %, over min_area_fraction's 0.1 %
    config = ClassicTrackerConfig(close_fraction=0.01)
    assert len(moving_components(moving, config)) == 2
    floored = ClassicTrackerConfig(close_fraction=0.01, component_min_area_fraction=0.02)
    components = moving_components(moving, floored)
    assert len(components) == 1 and components[0][20, 20]
    assert [d.box.tolist() for d in detect_moving_regions(moving, floored)] == [[10, 10, 30, 30]]
    # the larger of the two floors holds: min_area_fraction still drops what it did
    assert moving_components(moving, ClassicTrackerConfig(close_fraction=0.01, min_area_fraction=0.1,
                                                           component_min_area_fraction=0.02)) == []
    with pytest.raises(Recon4dError, match="component_min_area_fraction"):
        ClassicTrackerConfig(component_min_area_fraction=1.5)


def test_fill_mask_fills_holes_or_takes_the_hull():
    corner = np.zeros((20, 20), bool)
    corner[5:15, 5] = corner[5, 5:15] = True  # an L: 19 of its box's 100 pixels
    assert fill_mask(corner, 0.1).sum() == 19  # dense enough: kept as it is
    hull = fill_mask(corner, 0.35)  # too sparse: its convex hull, the triangle
    assert hull[corner].all() and 50 <= hull.sum() <= 60 and not hull[14, 14]
    ring = np.zeros((20, 20), bool)
    ring[4:16, 4:16] = True
    ring[7:13, 7:13] = False
    assert fill_mask(ring, 0.35).sum() == 144  # the hole is filled
    assert not fill_mask(np.zeros((5, 5), bool), 0.35).any()


def blurred_mover(margin: int = 8, speed: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Speed (h, w) of a 20 × 20 mover at ``speed`` px per step whose motion dense flow blurred
    ``margin`` px into the still background (falling off linearly), and the motion mask (speed ≥ 1)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    outside = np.maximum(np.maximum(20 - ys, ys - 39), np.maximum(30 - xs, xs - 49))  # px outside the square
    speeds = np.clip(speed * (1.0 - outside / margin), 0.0, speed).astype(np.float32)
    speeds[outside <= 0] = speed
    return speeds, speeds >= 1.0


def test_trim_to_core_cuts_the_blurred_margin_to_the_movers_outline():
    speed, moving = blurred_mover()
    region = moving_components(moving)[0]
    ys, xs = np.nonzero(region)
    assert xs.min() <= 23 and xs.max() >= 56  # the motion mask (speed ≥ 1) reaches 7 px past the mover
    core = trim_to_core(region, moving, speed, min_area=20)
    ys, xs = np.nonzero(core)
    # cut where the speed falls under 0.4 of the region's median (the margin is most of the region's
    # pixels, so that is 5 px past the mover here, not 7), and never into the mover
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (25, 54, 15, 44)
    assert not (core & ~region).any()
    # off, or nothing large enough left: the region as it was
    np.testing.assert_array_equal(trim_to_core(region, moving, speed, 20, ClassicTrackerConfig(core_fraction=0.0)),
                                  region)
    np.testing.assert_array_equal(trim_to_core(region, moving, speed, min_area=10_000), region)


def test_detect_moving_regions_reports_the_core():
    speed, moving = blurred_mover()
    velocity = np.stack([speed, np.zeros_like(speed)], axis=-1)
    (detection,) = detect_moving_regions(moving, ClassicTrackerConfig(), velocity, velocity)
    width = detection.box[2] - detection.box[0]
    assert width == 30, detection.box  # 20 px and 5 px of blur each side, not the 34 px of the motion mask


def test_mask_window_and_largest_component_against_pixel_references():
    from recon4d.tracking.classic.boxes import mask_window
    from recon4d.tracking.classic.segment import largest_component

    rng = np.random.default_rng(5)
    for _ in range(50):
        mask = np.zeros((40, 60), bool)
        for _ in range(int(rng.integers(1, 4))):
            y, x = rng.integers(0, 36), rng.integers(0, 56)
            mask[y:y + rng.integers(1, 12), x:x + rng.integers(1, 12)] = True
        margin = int(rng.integers(0, 6))
        ys, xs = np.nonzero(mask)
        rows, cols = mask_window(mask, margin)
        assert (rows.start, rows.stop) == (max(ys.min() - margin, 0), min(ys.max() + 1 + margin, 40))
        assert (cols.start, cols.stop) == (max(xs.min() - margin, 0), min(xs.max() + 1 + margin, 60))
        assert np.array_equal(mask[rows, cols][mask[rows, cols]], mask[mask])
        labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[1]
        sizes = np.bincount(labels.ravel())[1:]
        part = largest_component(mask)
        assert part.sum() == sizes.max() and np.unique(labels[part]).size == 1 and not (part & ~mask).any()
    assert not largest_component(np.zeros((5, 5), bool)).any()


def test_hsv_bins_match_opencv_histogram():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    mask = rng.random((20, 30)) < 0.5
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    reference = cv2.calcHist([hsv], [0, 1, 2], mask.astype(np.uint8), [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    np.testing.assert_allclose(bin_histogram(hsv_bins(image), mask), reference / reference.sum(), atol=1e-7)


def test_trim_to_colours_cuts_the_trail_and_keeps_a_plain_mover():
    """A red mover's motion mask with a trail of ground texture behind it and a smeared margin
    is cut back to the red pixels; a mask coloured like its surroundings is left alone."""
    rng = np.random.default_rng(4)
    image = rng.integers(90, 170, (60, 100, 3)).astype(np.uint8)
    mover = np.zeros((60, 100), bool)
    mover[20:40, 50:66] = True
    image[mover] = (220, 30, 30)
    mask = np.zeros((60, 100), bool)
    mask[18:42, 38:68] = True  # the mover, a 12 px trail on its left, a 2 px margin around it
    trimmed = trim_to_colours(image, mask)
    assert np.array_equal(trimmed, mover)
    patch = np.zeros((60, 100), bool)
    patch[10:30, 10:30] = True
    assert np.array_equal(trim_to_colours(image, patch), patch)
    assert not trim_to_colours(image, np.zeros((60, 100), bool)).any()


def person(mask: np.ndarray, x: int, top: int = 14, width: int = 8, height: int = 30) -> np.ndarray:
    """Draw a standing person into an (h, w) bool mask: a ``width`` × (height − 5) body under a 4 px head,
    its left edge at ``x``; returns the mask."""
    mask[top:top + 5, x + width // 2 - 2:x + width // 2 + 2] = True
    mask[top + 5:top + height, x:x + width] = True
    return mask


def side_by_side(gap: int = 2) -> np.ndarray:
    """Two people ``gap`` px apart joined by a band at chest height (arms, the closing of the motion mask)."""
    mask = person(person(np.zeros((HEIGHT, WIDTH), bool), 20), 28 + gap)
    mask[24:30, 27:29 + gap] = True
    return mask


def test_profile_cut_finds_the_valley_between_two_heads_only():
    pair = side_by_side()
    column = profile_cut(pair, 0.15)
    assert column is not None and 28 <= column <= 30  # between the bodies (20-27 and 30-37)
    assert profile_cut(person(np.zeros((HEIGHT, WIDTH), bool), 30), 0.15) is None  # one head, a shoulder each side
    car = np.zeros((HEIGHT, WIDTH), bool)
    car[30:40, 10:60] = True
    car[22:30, 20:45] = True  # a cabin on a body: a step down each side, no second top
    assert profile_cut(car, 0.15) is None
    assert profile_cut(pair, 0.9) is None  # the valley is shallower than 90 % of the height
    thin = person(np.zeros((HEIGHT, WIDTH), bool), 30, width=12)
    thin[10:19, 41] = True  # a 1 px spike (a raised finger, flow noise) is no second top
    assert profile_cut(thin, 0.15) is None


def test_split_by_profile_cuts_people_walking_side_by_side():
    pair = side_by_side()
    members = split_by_profile(pair, 20, 0.15)
    assert len(members) == 2
    np.testing.assert_array_equal(members[0] | members[1], pair)
    assert not (members[0] & members[1]).any()
    assert members[0][:, 20:28].any() and not members[0][:, 30:].any()
    assert members[1][:, 30:38].any() and not members[1][:, :28].any()
    assert len(split_by_profile(pair, 20, 0.0)) == 1  # off
    assert len(split_by_profile(pair, 500, 0.15)) == 1  # a side under min_area pixels
    three = person(side_by_side(), 44)
    three[24:30, 37:45] = True
    assert len(split_by_profile(three, 20, 0.15)) == 3


def test_detect_moving_regions_splits_merged_people_into_pieces_of_one_split():
    moving = side_by_side()
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[moving] = (2.0, 0.0)  # both walk alike: no motion test can split them
    old = detect_moving_regions(moving, ClassicTrackerConfig(close_fraction=0.01), flow, flow)
    assert len(old) == 1 and old[0].piece == 0
    found = detect_moving_regions(moving, ClassicTrackerConfig(close_fraction=0.01, profile_split_depth=0.15), flow, flow)
    assert len(found) == 2
    assert profile_group(found[0].piece) == profile_group(found[1].piece) > 0
    assert found[0].piece != found[1].piece
    with pytest.raises(Recon4dError):
        ClassicTrackerConfig(profile_split_depth=1.5)
