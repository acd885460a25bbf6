"""Tests of tracking/classic/epipolar.py and the clean-up rule that uses it (cleanup.off_epipolar)."""

from __future__ import annotations

import numpy as np

from recon4d.tracking.classic.association import Track
from recon4d.tracking.classic.background import BackgroundMotion, prior_intrinsics, static_flow
from recon4d.tracking.classic.cleanup import off_epipolar
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.epipolar import epipolar_distance, epipolar_offset
from recon4d.tracking.classic.motion import MotionField

SIZE = (120, 80)  # (w, h)


def model() -> BackgroundMotion:
    translation = np.array([1.0, 0.05, 0.2])
    angle = np.radians(1.0)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    return BackgroundMotion("epipolar", (np.eye(3),), rotation, translation / np.linalg.norm(translation),
                            prior_intrinsics(SIZE, 60.0))


def test_epipolar_distance_is_zero_for_any_depth_and_measures_a_sideways_step():
    background = model()
    rng = np.random.default_rng(0)
    rho = rng.uniform(0.5, 4.0, (SIZE[1], SIZE[0]))
    flow = static_flow(background, rho)
    assert np.max(epipolar_distance(flow, background)) < 1e-3  # static: on the line whatever the depth
    # a pixel moved 2 px straight across its line is 2 px from it (slow reference: the line through
    # the points at two depths)
    y, x = 40, 60
    ray = np.linalg.solve(background.intrinsics, [x, y, 1.0])
    ends = []
    for inverse_depth in (0.5, 4.0):
        moved = background.intrinsics @ (background.rotation @ (ray / inverse_depth) + background.translation)
        ends.append(moved[:2] / moved[2])
    direction = (ends[1] - ends[0]) / np.linalg.norm(ends[1] - ends[0])
    normal = np.array([-direction[1], direction[0]])
    shifted = flow.copy()
    shifted[y, x] += 2.0 * normal
    where = np.zeros(flow.shape[:2], bool)
    where[y, x] = True
    np.testing.assert_allclose(epipolar_distance(shifted, background, where), [2.0], atol=1e-3)
    np.testing.assert_allclose(epipolar_distance(shifted, background)[y, x], 2.0, atol=1e-3)


def motion_with(region_flow: str, step: float = 1.5) -> tuple[MotionField, Track]:
    """Three frames of a translating camera over a scene at one depth, flow noise of 0.05 px, and
    a track on a 20 × 20 region whose flow is static but at the wrong depth ("along") or also
    steps ``step`` px down ("across")."""
    background = model()
    width, height = SIZE
    rho = np.full((height, width), 1.0)
    region = np.zeros((height, width), bool)
    region[30:50, 40:60] = True
    wrong_depth = np.where(region, 3.0, rho)
    flows = []
    rng = np.random.default_rng(1)
    for _ in range(2):
        flow = static_flow(background, wrong_depth) + rng.normal(0.0, 0.05, (height, width, 2)).astype(np.float32)
        if region_flow == "across":
            flow[region] += [0.0, step]
        flows.append(flow)
    forward = np.stack(flows)
    moving = np.stack([region] * 3)
    zeros = np.zeros((3, height, width, 2), np.float32)
    motion = MotionField(forward, -forward, [background, background], np.zeros((3, height, width), np.float32),
                         zeros, zeros, moving, np.ones(3, np.float32), [np.zeros((0, 2), np.float32)] * 3)
    track = Track()
    for t in range(3):
        track.add(t, region, np.ones(4, np.float32))
    return motion, track


def test_off_epipolar_drops_a_depth_error_and_keeps_a_mover():
    along, track = motion_with("along")
    offset, noise, used = epipolar_offset(track.masks, sorted(track.detected), along.forward_flow,
                                          along.backgrounds, along.moving)
    assert used == 2 and offset < 0.1 and 0.01 < noise < 0.1
    assert not off_epipolar(track, along, ClassicTrackerConfig())
    across, track = motion_with("across")
    assert off_epipolar(track, across, ClassicTrackerConfig())
    # a slow mover (0.25 px across per step, under min_epipolar_px) stands out of low flow noise
    slow, track = motion_with("across", step=0.25)
    assert off_epipolar(track, slow, ClassicTrackerConfig())
    assert not off_epipolar(track, slow, ClassicTrackerConfig(epipolar_noise_ratio=10.0))
    # a still or turning camera (planar model) cannot be judged: the track stays
    planar = MotionField(across.forward_flow, across.backward_flow,
                         [BackgroundMotion("planar", (np.eye(3),))] * 2, across.residual, across.image_flow,
                         across.velocity, across.moving, across.thresholds, across.moving_points)
    along_planar = MotionField(along.forward_flow, along.backward_flow, planar.backgrounds, along.residual,
                               along.image_flow, along.velocity, along.moving, along.thresholds, along.moving_points)
    assert off_epipolar(track, along_planar, ClassicTrackerConfig())
