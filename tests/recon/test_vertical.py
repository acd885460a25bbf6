"""Tests of recon4d/recon/classic/vertical.py: camera tilt from the vanishing point of vertical lines."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from recon4d.recon.classic.vertical import common_direction, segment_normals, vertical_tilt

INTRINSICS = np.array([[554.0, 0, 320], [0, 554.0, 180], [0, 0, 1]])
HEIGHT_M = 2.0


def draw(rotation: np.ndarray, poles: bool = True, ground_lines: bool = True) -> np.ndarray:
    """(360, 640, 3) uint8: posts 3 m tall and lines on the ground seen by a camera whose rotation
    from the level frame (x right, y down, z forward, ground at y = +HEIGHT_M) is ``rotation``."""
    image = np.full((360, 640, 3), 60, np.uint8)

    def line(a, b):
        pa, pb = rotation @ a, rotation @ b
        if pa[2] < 0.5 or pb[2] < 0.5:
            return
        (ua, va), (ub, vb) = [INTRINSICS[:2, :2] @ (p[:2] / p[2]) + INTRINSICS[:2, 2] for p in (pa, pb)]
        cv2.line(image, (int(round(16 * ua)), int(round(16 * va))), (int(round(16 * ub)), int(round(16 * vb))),
                 (230, 230, 230), 3, cv2.LINE_AA, shift=4)  # sub-pixel ends

    if poles:
        for x, z in [(-4.0, 9.0), (-2.5, 14.0), (-1.0, 7.0), (1.5, 11.0), (3.0, 8.0), (5.0, 16.0), (0.5, 20.0),
                     (-2.0, 5.0), (2.0, 6.0)]:
            line(np.array([x, HEIGHT_M, z]), np.array([x, HEIGHT_M - 3.0, z]))
    if ground_lines:  # lines on the ground running away from the camera meet at the horizon, not below
        for x in (-3.0, -1.0, 1.0, 3.0):
            line(np.array([x, HEIGHT_M, 3.0]), np.array([x + 0.3 * x, HEIGHT_M, 40.0]))
    return image


def level_to_camera(tilt_deg: float, yaw_deg: float = 0.0) -> np.ndarray:
    """Rotation from the level frame to a camera turned by yaw, then tilted down by tilt."""
    return Rotation.from_euler("x", math.radians(tilt_deg)).as_matrix() @ Rotation.from_euler(
        "y", math.radians(yaw_deg)).as_matrix()


def test_segment_normals_are_perpendicular_to_the_rays_of_both_ends():
    segments = np.array([[100.0, 50.0, 120.0, 300.0], [400.0, 20.0, 390.0, 200.0]])
    normals = segment_normals(segments, INTRINSICS)
    inverse = np.linalg.inv(INTRINSICS)
    for segment, normal in zip(segments, normals):
        for end in (segment[:2], segment[2:]):
            assert abs(normal @ (inverse @ np.array([*end, 1.0]))) < 1e-12
        assert np.linalg.norm(normal) == pytest.approx(1.0)


@pytest.mark.parametrize("tilt_deg", [3.0, 12.0, 20.0])
def test_a_still_camera_reads_its_tilt_from_vertical_posts(tilt_deg):
    frames = np.repeat(draw(level_to_camera(tilt_deg))[None], 4, axis=0)
    found = vertical_tilt(frames, INTRINSICS, np.tile(np.eye(3, 4), (4, 1, 1)), np.random.default_rng(0))
    assert found is not None
    assert math.degrees(found.tilt_rad) == pytest.approx(tilt_deg, abs=0.5)
    assert abs(math.degrees(found.roll_rad)) < 0.5
    assert found.inliers >= 4 * 8  # every frame sees every post


def test_a_panning_camera_gives_camera_0s_tilt_from_every_frame():
    # The tilt changes from 8 to 14 deg as the camera pans 20 deg; the frames' rotations (relative
    # to camera 0, as camera_motion chains them) turn each frame's segments into camera 0's frame.
    n_frames = 6
    tilts, yaws = np.linspace(8.0, 14.0, n_frames), np.linspace(0.0, 20.0, n_frames)
    cameras = [level_to_camera(a, y) for a, y in zip(tilts, yaws)]
    frames = np.stack([draw(r) for r in cameras])
    world_to_cam = np.stack([np.hstack([r @ cameras[0].T, np.zeros((3, 1))]) for r in cameras])
    found = vertical_tilt(frames, INTRINSICS, world_to_cam, np.random.default_rng(0))
    assert found is not None and math.degrees(found.tilt_rad) == pytest.approx(8.0, abs=0.5)


def test_no_vertical_lines_give_no_tilt():
    rng = np.random.default_rng(0)
    identity = np.tile(np.eye(3, 4), (3, 1, 1))
    blank = np.full((3, 360, 640, 3), 90, np.uint8)
    assert vertical_tilt(blank, INTRINSICS, identity, rng) is None
    # only lines on the ground, near-vertical in the image: they meet at the horizon, above the
    # image centre, so they must not pass for the verticals of a camera tilted up
    ground = np.repeat(draw(level_to_camera(12.0), poles=False)[None], 3, axis=0)
    assert vertical_tilt(ground, INTRINSICS, identity, rng) is None


def test_one_post_alone_fixes_no_direction():
    normals = segment_normals(np.array([[320.0, 50.0 + i, 321.0, 300.0 + i] for i in range(10)]), INTRINSICS)
    assert common_direction(normals, np.ones(len(normals)), np.random.default_rng(0)) is None


@pytest.mark.parametrize(("roll_deg", "found"), [(3.0, True), (10.0, False)])
def test_a_rolled_camera_keeps_its_tilt_up_to_max_roll(roll_deg, found):
    # The ground prior has no roll: a vertical leaning further sideways than MAX_ROLL_DEG (slanted
    # edges such as the tapered sides of cups agree on one) is not believed.
    rotation = Rotation.from_euler("z", math.radians(roll_deg)).as_matrix() @ level_to_camera(12.0)
    frames = np.repeat(draw(rotation, ground_lines=False)[None], 3, axis=0)
    result = vertical_tilt(frames, INTRINSICS, np.tile(np.eye(3, 4), (3, 1, 1)), np.random.default_rng(0))
    assert (result is not None) == found
    if found:
        assert math.degrees(result.tilt_rad) == pytest.approx(12.0, abs=0.5)
        assert abs(math.degrees(result.roll_rad)) == pytest.approx(roll_deg, abs=0.5)
