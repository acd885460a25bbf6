"""recon4d/lift/own_motion.py: does a track's box move against the background? And its weight in the quality record."""

import numpy as np
import pytest

from recon4d.lift.own_motion import box_rays, fit_still_and_moving, motion_evidence, own_motion_trust, window_starts
from recon4d.lift.quality import RefineConfig, refine_objects
from recon4d.types import LiftResult, Tracks2D

FOCAL, WIDTH, HEIGHT = 500.0, 640, 360
N_FRAMES, FPS = 24, 8.0
K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
TIMES = np.arange(N_FRAMES) / FPS


def yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def cameras(kind: str) -> np.ndarray:
    """(T, 4, 4) cam_to_world: "pan" turns 1.5° a frame in place, "walk" moves 0.15 m a frame sideways."""
    poses = np.tile(np.eye(4), (N_FRAMES, 1, 1))
    for t in range(N_FRAMES):
        if kind == "pan":
            poses[t, :3, :3] = yaw(np.radians(1.5 * t))
        elif kind == "walk":
            poses[t, 0, 3] = 0.15 * t
    return poses


def boxes_of(world: np.ndarray, cam_to_world: np.ndarray, size_m=(0.8, 0.8), jitter_px=0.0, seed=0) -> np.ndarray:
    """(T, 4) boxes of a thing at world centres (T, 3), its box centre jittered by ``jitter_px``."""
    world_to_cam = np.linalg.inv(cam_to_world)
    camera = np.einsum("tij,tj->ti", world_to_cam[:, :3, :3], world) + world_to_cam[:, :3, 3]
    u = FOCAL * camera[:, 0] / camera[:, 2] + WIDTH / 2 + np.random.default_rng(seed).normal(0, jitter_px, N_FRAMES)
    v = FOCAL * camera[:, 1] / camera[:, 2] + HEIGHT / 2 + np.random.default_rng(seed + 1).normal(0, jitter_px, N_FRAMES)
    half = 0.5 * FOCAL * np.asarray(size_m)[:, None] / camera[:, 2]
    return np.stack([u - half[0], v - half[1], u + half[0], v + half[1]], axis=1)


def still_patch(depth=8.0) -> np.ndarray:
    return np.tile([1.0, 0.5, depth], (N_FRAMES, 1))


def mover(speed=1.0, depth=8.0) -> np.ndarray:
    return np.stack([speed * TIMES - 1.0, np.full(N_FRAMES, 0.5), np.full(N_FRAMES, depth)], axis=1)


def test_box_rays_point_through_box_centres():
    poses = cameras("pan")
    world = mover()
    rays = box_rays(boxes_of(world, poses), np.tile(K, (N_FRAMES, 1, 1)), poses)
    expected = world - poses[:, :3, 3]
    np.testing.assert_allclose(rays, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-9)


def test_window_starts_keep_windows_without_long_gaps():
    frames = np.array([0, 1, 2, 3, 10, 11, 12, 13])
    np.testing.assert_array_equal(window_starts(frames, 4, 5), [0, 4])
    assert len(window_starts(frames[:3], 4, 5)) == 0


def test_fits_put_a_still_and_a_moving_point_on_exact_rays():
    # Rays from a camera moving sideways through a still point meet: the still fit is on every ray
    # (near the point; the weak prior pulls it a little). Through a moving point they do not
    # meet: the still fit misses them, the moving fit lies on them.
    origins = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])[None]
    times = np.arange(4.0)[None]

    def off_rays(points, targets):
        rays = targets - origins
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
        return np.linalg.norm(np.cross(points - origins, rays), axis=-1).max()

    point = np.tile([1.0, 0.5, 6.0], (4, 1))[None]
    rays = (point - origins) / np.linalg.norm(point - origins, axis=-1, keepdims=True)
    still, _ = fit_still_and_moving(origins, rays, times, point[:, 0] + 0.3)
    assert off_rays(still, point) < 0.01 and np.abs(still - point).max() < 0.02
    path = (np.array([1.0, 0.5, 6.0]) + np.outer(times[0] - 1.5, [-0.5, 0.3, 0.0]))[None]
    rays = (path - origins) / np.linalg.norm(path - origins, axis=-1, keepdims=True)
    still, moving = fit_still_and_moving(origins, rays, times, path.mean(axis=1))
    assert off_rays(moving, path) < 0.01 < 0.1 < off_rays(still, path)


@pytest.mark.parametrize("kind", ["static", "pan", "walk"])
def test_a_still_patch_has_no_motion_evidence_and_a_mover_has(kind):
    # A piece of the background the tracker took for a mover: its box follows the background
    # (jittering by 2 px as its outline changes), so its rays meet in one still point; a slow
    # mover (0.5 m/s at 8 m, 4 px a frame) with the same jitter does not.
    poses = cameras(kind)
    intrinsics = np.tile(K, (N_FRAMES, 1, 1))
    still = motion_evidence(TIMES, boxes_of(still_patch(), poses, jitter_px=2.0), intrinsics, poses, still_patch())
    moving = motion_evidence(TIMES, boxes_of(mover(0.5), poses, jitter_px=2.0), intrinsics, poses, mover(0.5))
    assert still < 1.6 < 2.5 < moving


def test_a_mover_coming_straight_at_the_camera_shows_its_motion_by_its_edges():
    # A person (0.5 × 1.7 m) walking 2.7 m/s straight at a still camera along the ray through
    # its box centre: the centre stays put (no evidence from it alone), the box grows about it.
    # A still patch whose edges flicker by 2 px on their own must not gain evidence from them.
    poses = cameras("static")
    intrinsics = np.tile(K, (N_FRAMES, 1, 1))
    coming = np.stack([np.zeros(N_FRAMES), np.zeros(N_FRAMES), 12.0 - 2.7 * TIMES], axis=1)
    boxes = boxes_of(coming, poses, size_m=(0.5, 1.7))
    alone = motion_evidence(TIMES, boxes, intrinsics, poses, coming, edges=False)
    with_edges = motion_evidence(TIMES, boxes, intrinsics, poses, coming)
    assert alone < 1.3 and with_edges > 2.5
    patch = boxes_of(still_patch(), poses, jitter_px=2.0)
    patch += np.random.default_rng(7).normal(0.0, 2.0, patch.shape)
    assert motion_evidence(TIMES, patch, intrinsics, poses, still_patch()) < 1.6


def test_motion_evidence_needs_a_window_of_lifted_frames():
    poses = cameras("pan")
    boxes = boxes_of(mover(), poses)
    lifted = mover()
    lifted[::2] = np.nan  # every other frame unlifted: no 8 lifted frames within 16
    assert np.isnan(motion_evidence(TIMES, boxes, np.tile(K, (N_FRAMES, 1, 1)), poses, lifted, 8, 12))


def test_own_motion_trust():
    np.testing.assert_allclose(own_motion_trust(np.array([0.9, 1.0, 1.5, 2.0, 5.0, np.nan]), 2.0),
                               [0.0, 0.0, 0.5, 1.0, 1.0, 1.0])


def refine_two(kind: str, config: RefineConfig):
    """The trajectory step on a still background patch (object 0) and a mover (object 1) seen by a ``kind`` camera."""
    poses = cameras(kind)
    centres = np.stack([still_patch(), mover(1.0)])
    boxes = np.stack([boxes_of(centres[0], poses, jitter_px=2.0), boxes_of(centres[1], poses, jitter_px=2.0, seed=5)])
    visible = np.ones((2, N_FRAMES), bool)
    tracks = Tracks2D(np.arange(2), ("object", "object"), np.zeros(2, bool), boxes, visible)
    world_to_cam = np.linalg.inv(poses)
    camera = np.einsum("tij,ktj->kti", world_to_cam[:, :3, :3], centres) + world_to_cam[None, :, :3, 3]
    lifted = LiftResult(center_camera=camera, center_world=centres, visible=visible,
                        extent=np.full(centres.shape, np.nan, np.float32), n_points=np.full((2, N_FRAMES), 100))
    return refine_objects(TIMES, poses, tracks, lifted, np.tile(K, (N_FRAMES, 1, 1)), (WIDTH, HEIGHT), None, config)


@pytest.mark.parametrize("kind", ["pan", "walk"])
def test_the_quality_record_drops_a_still_patch_and_keeps_the_mover(kind):
    # Both tracks are clean (steady, persistent, no jumps): without the own-motion test both pass
    # the default gate (0.5); with it the patch of background does not, and its issues say why.
    on = refine_two(kind, RefineConfig()).quality
    off = refine_two(kind, RefineConfig(own_motion_full=None)).quality
    assert off.score[0] > 0.8 and off.score[1] > 0.8
    assert on.score[0] < 0.5 and on.score[1] == pytest.approx(off.score[1])
    assert on.motion_evidence[0] < 1.6 and on.motion_evidence[1] > 2.0
    assert "barely moves against the background" in on.issues[0] and "barely moves" not in on.issues[1]
    assert np.isfinite(off.motion_evidence).all()  # recorded even when it does not weigh in


def test_own_motion_config_is_checked():
    with pytest.raises(ValueError, match="own_motion_full"):
        RefineConfig(own_motion_full=1.0)
    with pytest.raises(ValueError, match="own_motion_window"):
        RefineConfig(own_motion_window=2)
