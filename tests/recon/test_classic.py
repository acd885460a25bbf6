"""Tests of the classic backend: recon4d/recon/classic/reconstructor.py and the modules it is built from
(recon4d/recon/classic/features.py, camera_motion.py, bundle_adjust.py, object_depth.py, config.py).

Pure helpers are checked on analytic data; the whole backend on small synthetic scenes
(320×180, 16 frames) against their ground truth. The thresholds are about twice what was
measured on these scenes (the comments give the measurements), so they catch regressions
without flaking on other BLAS/OpenCV builds.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from recon4d.recon.classic.bundle_adjust import bundle_adjust
from recon4d.recon.classic.features import BACKGROUND, NO_FEATURES, TrackerConfig, track_features
from recon4d.recon.classic.camera_motion import _fit_rotation, _triangulate, _unit, estimate_motion
from recon4d.recon.classic.config import ClassicConfig, ClassicReconstructionError
from recon4d.errors import Recon4dError, ShapeError
from recon4d.geometry import umeyama_sim3
from recon4d.recon.classic.object_depth import (
    CUE_BRIDGED,
    CUE_HELD,
    CUE_NONE,
    contact_depth,
    depth_outliers,
    fit_ground_plane,
    hidden_bottoms,
    hold_nearest,
    interpolate_gaps,
    object_depths,
    level_up,
    size_depth,
    tilt_and_height_from_people,
    tilt_from_object_sizes,
)
from recon4d.recon.classic.reconstructor import (
    ClassicReconstructor,
    ReconstructionWarning,
    prior_intrinsics,
    scale_intrinsics,
)
from recon4d.types import Clip, FrameSequence, Reconstruction, Tracks2D

SIZE = {"width": 320, "height": 180, "n_frames": 16}
MOVING_SEEDS = (0, 1, 2)


# --- helpers --------------------------------------------------------------------------------------


def make_clip(frames: np.ndarray, source_size=None) -> Clip:
    n_frames, height, width = frames.shape[:3]
    return Clip(frames, np.arange(n_frames) / 12.0, np.arange(n_frames), 12.0, "synthetic",
                source_size or (width, height))


def gt_tracks(scene, with_masks: bool = True, box_scale: float = 1.0) -> Tracks2D:
    return Tracks2D(scene.ids, scene.categories, scene.is_agent, scene.box_xyxy * box_scale, scene.visible,
                    scene.masks if with_masks else None)


def reconstruct(synthetic, config: ClassicConfig = ClassicConfig(), **track_options) -> Reconstruction:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        return ClassicReconstructor(config).reconstruct(make_clip(synthetic.frames),
                                                        gt_tracks(synthetic.scene, **track_options))


def rotation_angle_deg(rotations: np.ndarray) -> np.ndarray:
    cos = (np.trace(rotations, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def relative_to_first(cam_to_world: np.ndarray) -> np.ndarray:
    return np.linalg.inv(cam_to_world[0]) @ cam_to_world


def relative_rotation_errors_deg(estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T−1,) angle between estimated and true frame-to-frame rotations."""
    def steps(poses):
        return np.swapaxes(poses[:-1, :3, :3], 1, 2) @ poses[1:, :3, :3]
    return rotation_angle_deg(np.swapaxes(steps(estimated), 1, 2) @ steps(truth))


def translation_direction_errors_deg(estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T−1,) angle between the camera displacements from frame 0 (scale-free), frames 1..T−1."""
    a = relative_to_first(estimated)[1:, :3, 3]
    b = relative_to_first(truth)[1:, :3, 3]
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def centre_errors(synthetic, recon: Reconstruction, masks=None, estimator: str = "mean"):
    """Lifted object centres vs truth after a Sim(3) fit: (ATE metres, RMS spread of truth, visible fraction)."""
    from recon4d.lift.lifting import LiftConfig, lift_objects

    scene = synthetic.scene
    lifted = lift_objects(scene.masks if masks is None else masks, recon.local_points, recon.conf, recon.cam_to_world,
                          LiftConfig(estimator=estimator))
    world_to_first = np.linalg.inv(scene.cam_to_world[0])
    truth = np.einsum("ij,ktj->kti", world_to_first[:3, :3], scene.center_world) + world_to_first[:3, 3]
    both = np.isfinite(lifted.center_world[..., 0]) & np.isfinite(truth[..., 0])
    scale, rotation, translation = umeyama_sim3(lifted.center_world[both], truth[both])
    aligned = scale * lifted.center_world[both] @ rotation.T + translation
    ate = float(np.sqrt(np.mean(np.sum((aligned - truth[both]) ** 2, axis=1))))
    spread = float(np.sqrt(np.mean(np.sum((truth[both] - truth[both].mean(axis=0)) ** 2, axis=1))))
    return ate, spread, both.sum() / scene.visible.sum()


@pytest.fixture(scope="module")
def moving():
    pytest.importorskip("open3d", reason="synthetic scenes need open3d (pip install 'recon4d[synth]')")
    pytest.importorskip("trimesh", reason="synthetic scenes need trimesh (pip install 'recon4d[synth]')")
    from recon4d.synth.scene import SynthConfig, generate_scene

    scenes = {seed: generate_scene(SynthConfig(seed=seed, **SIZE)) for seed in MOVING_SEEDS}
    return {seed: (synthetic, reconstruct(synthetic)) for seed, synthetic in scenes.items()}


@pytest.fixture(scope="module")
def static():
    pytest.importorskip("open3d", reason="synthetic scenes need open3d (pip install 'recon4d[synth]')")
    pytest.importorskip("trimesh", reason="synthetic scenes need trimesh (pip install 'recon4d[synth]')")
    from recon4d.synth.scene import SynthConfig, generate_scene

    synthetic = generate_scene(SynthConfig(seed=1, static_camera=True, **SIZE))
    return synthetic, reconstruct(synthetic)


# --- small pure helpers -----------------------------------------------------------------------------


def test_umeyama_recovers_a_random_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(4, 50, 3))
    rotation = Rotation.random(4, random_state=1).as_matrix()
    scale = rng.uniform(0.2, 5.0, size=4)
    translation = rng.normal(size=(4, 3)) * 10
    dst = scale[:, None, None] * np.einsum("bij,bnj->bni", rotation, src) + translation[:, None]
    got_scale, got_rotation, got_translation = umeyama_sim3(src, dst)
    np.testing.assert_allclose(got_scale, scale, rtol=1e-10)
    np.testing.assert_allclose(got_rotation, rotation, atol=1e-10)
    np.testing.assert_allclose(got_translation, translation, atol=1e-9)
    assert np.allclose(np.linalg.det(got_rotation), 1.0)


def test_umeyama_returns_a_proper_rotation_for_a_mirror_image():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 3))
    _, rotation, _ = umeyama_sim3(src, src * np.array([1.0, 1.0, -1.0]))
    assert np.isclose(np.linalg.det(rotation), 1.0)


def test_umeyama_rejects_mismatched_shapes():
    with pytest.raises(ShapeError):
        umeyama_sim3(np.zeros((5, 3)), np.zeros((4, 3)))


def test_prior_intrinsics_from_fov_focal_or_user_values():
    k = prior_intrinsics((1920, 1080), ClassicConfig(fov_deg=60.0))
    assert k[0, 0] == pytest.approx(960.0 / math.tan(math.radians(30.0)))
    assert k[0, 0] == k[1, 1] and (k[0, 2], k[1, 2]) == (960.0, 540.0)
    assert prior_intrinsics((1920, 1080), ClassicConfig(focal_px=1500.0))[1, 1] == 1500.0
    user = prior_intrinsics((1920, 1080), ClassicConfig(intrinsics=[1400, 1410, 950, 530]))
    np.testing.assert_allclose(user, [[1400, 0, 950], [0, 1410, 530], [0, 0, 1]])
    # Portrait video: the field of view spans the longer (vertical) side.
    assert prior_intrinsics((1080, 1920), ClassicConfig())[0, 0] == pytest.approx(k[0, 0])
    np.testing.assert_allclose(scale_intrinsics(k, (1920, 1080), (640, 360)), np.diag([1 / 3, 1 / 3, 1]) @ k)


@pytest.mark.parametrize("options, match", [
    ({"fov": 60}, "unknown option"),
    ({"camera_height_m": -1.0}, "camera_height_m must be a positive"),
    ({"fov_deg": 179.0}, "fov_deg must be in"),
    ({"intrinsics": [1.0, 2.0]}, "intrinsics must be"),
    ({"focal_px": 0.0}, "focal_px must be positive"),
    ({"max_features": 10}, "max_features"),
    ({"depth_outlier_rel": 0.0}, "depth_outlier_rel must be"),
])
def test_config_rejects_bad_options(options, match):
    with pytest.raises(ClassicReconstructionError, match=match):
        ClassicReconstructor.from_config(options, device="cpu")


def test_from_config_builds_the_backend():
    recon = ClassicReconstructor.from_config({"camera_height_m": 1.5, "intrinsics": [500, 500, 320, 180]}, "cuda")
    assert recon.name == "classic" and isinstance(recon.version, str)
    assert recon.config.camera_height_m == 1.5 and recon.config.intrinsics == (500.0, 500.0, 320.0, 180.0)
    assert issubclass(ClassicReconstructionError, Recon4dError)


def test_fit_rotation_recovers_a_turn_despite_outliers():
    rng = np.random.default_rng(2)
    a = _unit(rng.uniform(-0.5, 0.5, size=(200, 2)))
    turn = Rotation.from_euler("xyz", [2.0, -5.0, 1.0], degrees=True).as_matrix()
    b = a @ turn.T
    b[:30] = _unit(rng.uniform(-0.5, 0.5, size=(30, 2)))  # 15 % garbage
    rotation, residual = _fit_rotation(a, b, 1e-3, rng)
    assert rotation_angle_deg(rotation.T @ turn) < 1e-6
    assert np.median(residual) < 1e-9


def test_triangulate_is_exact_on_noiseless_views():
    rng = np.random.default_rng(3)
    points = rng.uniform([-2, -1, 4], [2, 1, 9], size=(40, 3))
    poses = np.stack([np.eye(3, 4)] + [
        np.concatenate([Rotation.from_euler("y", 3 * i, degrees=True).as_matrix(), [[-0.3 * i], [0.0], [0.05 * i]]],
                       axis=1)
        for i in range(1, 4)])
    camera = np.einsum("vij,nj->nvi", poses[:, :, :3], points) + poses[:, :, 3]
    observed = camera[..., :2] / camera[..., 2:]
    seen = np.ones((40, 4))
    seen[::3, 1] = 0.0  # a missing view changes nothing
    np.testing.assert_allclose(_triangulate(poses, observed, seen), points, atol=1e-8)


def test_fit_ground_plane_under_the_cameras():
    rng = np.random.default_rng(4)
    tilt = Rotation.from_euler("x", -10, degrees=True).as_matrix()  # camera looks down 10°
    world_to_cam = np.stack([np.concatenate([tilt, [[-0.2 * i], [0.0], [0.0]]], axis=1) for i in range(5)])
    ground_cam0 = np.column_stack([rng.uniform(-4, 4, 300), np.full(300, 1.3), rng.uniform(3, 15, 300)])
    ground = ground_cam0 @ tilt  # camera-0 coords → world (= R0ᵀ x)
    clutter = rng.uniform([-4, -3, 3], [4, 1, 15], size=(60, 3))
    plane = fit_ground_plane(np.concatenate([ground, clutter]), world_to_cam, 0.05, rng)
    assert plane is not None
    normal, offset = plane
    true_up = tilt.T @ np.array([0.0, -1.0, 0.0])
    assert np.degrees(np.arccos(normal @ true_up)) < 0.5
    assert offset == pytest.approx(1.3, rel=0.02)
    assert fit_ground_plane(clutter[:10], world_to_cam, 0.05, rng) is None


def test_contact_depth_of_a_level_camera_is_height_times_focal_over_row_offset():
    intrinsics = np.array([[200.0, 0, 160], [0, 200.0, 90], [0, 0, 1]])
    plane = np.array([[0.0, -1.0, 0.0, 1.6]] * 3)  # level camera 1.6 m up
    boxes = np.array([[[150, 60, 170, 130.5], [150, 60, 170, 178], [150, 60, 170, 80]]], float)
    depth = contact_depth(boxes, plane, intrinsics, np.full(3, 100.0), (320, 180), 3.0, np.zeros((1, 3), bool))
    assert depth[0, 0] == pytest.approx(1.6 * 200.0 / 40.0)
    assert np.isnan(depth[0, 1])  # bottom at the image border: the contact may be cut off
    assert np.isnan(depth[0, 2])  # above the horizon: no ground there
    hidden = contact_depth(boxes, plane, intrinsics, np.full(3, 100.0), (320, 180), 3.0, np.ones((1, 3), bool))
    assert np.isnan(hidden).all()


def test_size_depth_scales_inversely_with_box_height():
    boxes = np.array([[[100, 50, 120, 90], [100, 50, 120, 90], [100, 70, 110, 90], [0, 50, 20, 179]]], float)
    reference = np.array([[8.0, 8.0, np.nan, np.nan]])
    depth = size_depth(boxes, reference, (320, 180), 2.0, np.zeros((1, 4), bool))
    assert depth[0, 2] == pytest.approx(16.0)  # half the height: twice as far
    assert np.isnan(depth[0, 3])  # cut by the left and bottom borders


def test_interpolate_gaps_bridges_in_inverse_depth_without_extrapolating():
    depth = np.array([[np.nan, 2.0, np.nan, 4.0, np.nan]])
    np.testing.assert_allclose(interpolate_gaps(depth), [[np.nan, 2.0, 1 / (0.5 * (0.5 + 0.25)), 4.0, np.nan]])


def test_tilt_and_height_from_people_recovers_tilt_and_height():
    intrinsics = np.array([[280.0, 0, 160], [0, 280.0, 90], [0, 0, 1]])
    tilt, height = math.radians(12.0), 2.3
    up = level_up(tilt)
    forward = np.cross(up, np.array([1.0, 0.0, 0.0]))  # horizontal, away from the camera
    rng = np.random.default_rng(5)
    feet = (rng.uniform(-2, 2, 12)[:, None] * np.array([1.0, 0, 0]) + rng.uniform(4, 12, 12)[:, None] * forward
            - height * up)
    heads = feet + 1.7 * up
    def project(p):
        return intrinsics[:2, :2] @ (p[:, :2] / p[:, 2:]).T + intrinsics[:2, 2:]
    (uf, vf), (_, vh) = project(feet), project(heads)
    boxes = np.stack([uf - 5, vh - 0.5, uf + 5, vf + 0.5], axis=-1)[None]
    found = tilt_and_height_from_people(boxes, np.ones((1, 12), bool), intrinsics, camera_height_m=1.6)
    assert found is not None
    assert math.degrees(found[0]) == pytest.approx(12.0, abs=0.5)
    assert found[1] == pytest.approx(2.3, rel=0.05)
    assert tilt_and_height_from_people(boxes, np.zeros((1, 12), bool), intrinsics, 1.6) is None


def test_tilt_and_height_from_people_of_varied_heights_is_not_dragged_to_the_nominal_height():
    # People 1.55-1.85 m tall and 1 px box noise under a camera 2.6 m up, 12 deg down: the height
    # prior is only a tie-breaker, so it must not pull the camera towards 1.6 m (and the tilt with it).
    intrinsics = np.array([[554.0, 0, 320], [0, 554.0, 180], [0, 0, 1]])
    tilt, height = math.radians(12.0), 2.6
    up = level_up(tilt)
    forward = np.cross(up, np.array([1.0, 0.0, 0.0]))
    rng = np.random.default_rng(11)
    n = 60
    feet = (rng.uniform(-3, 3, n)[:, None] * np.array([1.0, 0, 0]) + rng.uniform(5, 14, n)[:, None] * forward
            - height * up)
    heads = feet + rng.uniform(1.55, 1.85, n)[:, None] * up
    def project(p):
        return intrinsics[:2, :2] @ (p[:, :2] / p[:, 2:]).T + intrinsics[:2, 2:]
    (uf, vf), (_, vh) = project(feet), project(heads)
    boxes = np.stack([uf - 8, vh - 0.5 + rng.normal(0, 1, n), uf + 8, vf + 0.5 + rng.normal(0, 1, n)], axis=-1)[None]
    found = tilt_and_height_from_people(boxes, np.ones((1, n), bool), intrinsics, camera_height_m=1.6)
    assert found is not None
    assert math.degrees(found[0]) == pytest.approx(12.0, abs=1.0)
    assert found[1] == pytest.approx(2.6, rel=0.1)


def synthetic_tracks(world_to_cam: np.ndarray, n_points: int = 400, seed: int = 6):
    """Normalised observations (N, T, 2) of random points 4–14 m ahead, with 0.1 px noise at f = 300."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([-6, -3, 4], [6, 2, 14], size=(n_points, 3))
    camera = np.einsum("tij,nj->nti", world_to_cam[:, :, :3], points) + world_to_cam[:, :, 3]
    observed = camera[..., :2] / camera[..., 2:] + rng.normal(scale=0.1 / 300.0, size=camera.shape[:2] + (2,))
    return observed, points


def orbit(n_frames: int, step_m: float, turn_deg: float) -> np.ndarray:
    """world_to_cam (T, 3, 4): moving right by step_m per frame while turning turn_deg about y."""
    poses = []
    for t in range(n_frames):
        rotation = Rotation.from_euler("y", -turn_deg * t, degrees=True).as_matrix()
        centre = np.array([step_m * t, 0.1 * step_m * t, 0.0])
        poses.append(np.concatenate([rotation, (-rotation @ centre)[:, None]], axis=1))
    return np.stack(poses)


def perturbed_start(truth: np.ndarray, points: np.ndarray, rng: np.random.Generator):
    """A bundle adjustment's start: poses of frames 1.. turned ~0.6° and moved ~2 cm off ``truth``,
    map points moved ~5 cm off ``points``; frame 0 stays (it fixes the gauge)."""
    start = truth.copy()
    start[1:, :, :3] = Rotation.from_rotvec(rng.normal(scale=0.01, size=(len(truth) - 1, 3))).as_matrix() @ truth[1:, :, :3]
    start[1:, :, 3] += rng.normal(scale=0.02, size=(len(truth) - 1, 3))
    return start, points + rng.normal(scale=0.05, size=points.shape)


def test_estimate_motion_on_clean_tracks_of_a_moving_camera():
    truth = orbit(10, 0.25, 1.5)
    observed, _ = synthetic_tracks(truth)
    motion = estimate_motion(observed, np.ones(len(observed), bool), 300.0)
    assert motion.mode == "parallax" and motion.n_lost == 0
    np.testing.assert_allclose(motion.world_to_cam[0], np.eye(3, 4), atol=1e-12)
    assert rotation_angle_deg(np.swapaxes(motion.world_to_cam[:, :, :3], 1, 2) @ truth[:, :, :3]).max() < 0.05
    def centres(w2c):
        return -np.einsum("tji,tj->ti", w2c[:, :, :3], w2c[:, :, 3])
    a, b = centres(motion.world_to_cam)[1:], centres(truth)[1:]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 1.0
    assert np.isfinite(motion.points[:, 0]).mean() > 0.8


def test_estimate_motion_of_a_turning_or_still_camera():
    turning = orbit(8, 0.0, 2.0)
    observed, _ = synthetic_tracks(turning)
    motion = estimate_motion(observed, np.ones(len(observed), bool), 300.0)
    assert motion.mode == "rotation"
    assert np.abs(motion.world_to_cam[:, :, 3]).max() == 0.0
    assert rotation_angle_deg(np.swapaxes(motion.world_to_cam[:, :, :3], 1, 2) @ turning[:, :, :3]).max() < 0.1
    still, _ = synthetic_tracks(orbit(8, 0.0, 0.0))
    motion = estimate_motion(still, np.ones(len(still), bool), 300.0)
    assert motion.mode == "static"
    np.testing.assert_array_equal(motion.world_to_cam, np.tile(np.eye(3, 4), (8, 1, 1)))


def test_a_moving_camera_is_never_frozen_when_the_map_is_lost():
    """A 1-fps walk: the tracks of frames 0–6 end at 6, a few link 6 to 7, new ones start at 7.
    PnP has no map point at 7; the old code turned in place there and froze for good."""
    truth = orbit(12, 0.25, 1.0)
    observed, _ = synthetic_tracks(truth, n_points=1200)
    group = np.arange(len(observed)) % 3
    seen = np.zeros(observed.shape[:2], bool)
    seen[group == 0, :7] = True
    seen[group == 1, 6:8] = True
    seen[group == 2, 7:] = True
    motion = estimate_motion(np.where(seen[..., None], observed, np.nan), np.ones(len(observed), bool), 300.0)
    assert motion.mode == "parallax" and not motion.frozen.any()
    assert motion.restarted[7] and not motion.restarted[:7].any() and not motion.restarted[9:].any()
    centres = -np.einsum("tji,tj->ti", motion.world_to_cam[:, :, :3], motion.world_to_cam[:, :, 3])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert (steps > 0.5 * np.median(steps)).all()  # it keeps moving
    true_centres = -np.einsum("tji,tj->ti", truth[:, :, :3], truth[:, :, 3])
    direction = np.diff(centres[7:], axis=0)
    true_direction = np.diff(true_centres[7:], axis=0)
    cos = (direction * true_direction).sum(1) / np.linalg.norm(direction, axis=1) / np.linalg.norm(true_direction, axis=1)
    assert cos.min() > 0.99


def still_camera_with_a_big_mover(n_frames=16, width=320, height=180, seed=0) -> Clip:
    """A tripod shot: a static textured background, with an untracked textured panel over 60 % of
    the view looming towards the camera (pouring water, a shirt, steam: movers nobody tracked)."""
    import cv2

    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (3, 3), 0)
    panel = cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (3, 3), 0)
    frames = []
    for t in range(n_frames):
        scale = 1.0 + 0.02 * t
        warp = np.array([[scale, 0, (1 - scale) * width * 0.4], [0, scale, (1 - scale) * height * 0.5]])
        frame = background.copy()
        frame[:, : int(0.6 * width)] = cv2.warpAffine(panel, warp, (width, height),
                                                      borderMode=cv2.BORDER_REFLECT)[:, : int(0.6 * width)]
        frames.append(frame)
    return make_clip(np.stack(frames))


def test_a_still_camera_is_exactly_still_despite_untracked_movers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        recon = ClassicReconstructor().reconstruct(still_camera_with_a_big_mover(), None)
    # Measured before the still test: the looming panel made the camera move (0.48 off the identity).
    np.testing.assert_array_equal(recon.cam_to_world, np.tile(np.eye(4), (16, 1, 1)))
    quality = recon.camera_quality
    assert quality.motion == "static" and quality.frame_ok.all() and not quality.frozen.any()
    assert quality.scale_source == "level-prior"


def test_still_steps_counts_still_tracks_not_the_median():
    from recon4d.recon.classic.camera_quality import still_steps

    xy = np.zeros((100, 3, 2))
    xy[:70, 2] += 5.0 / 300.0  # 70 % of the tracks move 5 px at frame 2, 30 % stay
    seen = np.ones((100, 3), bool)
    assert still_steps(xy, seen, 300.0, 0.25).tolist() == [True, True, False]
    xy[:55, 2] = 0.0  # 85 % still now
    assert still_steps(xy, seen, 300.0, 0.25).all()
    assert still_steps(xy, np.zeros((100, 3), bool), 300.0, 0.25).tolist() == [True, False, False]


def test_camera_quality_of_a_moving_camera(moving):
    for _, recon in moving.values():
        quality = recon.camera_quality
        assert quality.motion == "parallax" and quality.scale_source in ("ground-plane", "people-height")
        assert quality.frame_ok.all() and not quality.frozen.any()
        # Measured: inlier ratios 0.97–1.0, median reprojection 0.1–0.3 px.
        assert np.nanmin(quality.inlier_ratio) > 0.8 and np.nanmax(quality.reprojection_px) < 1.0
        assert quality.score == pytest.approx(1.0)


def test_pose_inlier_ratio_counts_tracks_that_fit_the_relative_pose():
    from recon4d.recon.classic.camera_quality import pose_inlier_ratio, reprojection_px

    truth = orbit(4, 0.25, 1.0)
    observed, points = synthetic_tracks(truth)
    seen = np.ones(observed.shape[:2], bool)
    assert np.allclose(pose_inlier_ratio(truth, observed, seen, 300.0, 2.0), 1.0)
    broken = observed.copy()
    broken[:100, 3] += 0.05  # a quarter of the tracks jump 15 px at frame 3
    ratio = pose_inlier_ratio(truth, broken, seen, 300.0, 2.0)
    assert ratio[3] == pytest.approx(0.75, abs=0.02) and ratio[1] == pytest.approx(1.0)
    assert np.nanmax(reprojection_px(truth, points, observed, seen, 300.0)) < 0.3


def test_bundle_adjust_removes_perturbations():
    truth = orbit(6, 0.3, 1.0)
    observed, points = synthetic_tracks(truth, n_points=200)
    rng = np.random.default_rng(7)
    start, noisy_points = perturbed_start(truth, points, rng)
    seen = np.ones(observed.shape[:2], bool)

    def rms_px(poses, world):
        camera = np.einsum("tij,nj->nti", poses[:, :, :3], world) + poses[:, :, 3]
        return np.sqrt(np.mean(np.sum((camera[..., :2] / camera[..., 2:] - observed) ** 2, -1))) * 300.0

    poses, refined = bundle_adjust(start, noisy_points, observed, seen, 300.0)
    assert rms_px(start, noisy_points) > 2.0
    assert rms_px(poses, refined) < 0.2  # the 0.1 px noise floor
    np.testing.assert_array_equal(poses[0], start[0])


# --- feature tracks -----------------------------------------------------------------------------------


def textured_frames(n_frames: int, shift_px: int, height=120, width=200, seed=8) -> np.ndarray:
    """Smooth random texture panned by ``shift_px`` columns per frame."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (height, width + shift_px * n_frames)).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frames = [base[:, t * shift_px : t * shift_px + width] for t in range(n_frames)]
    return np.repeat(np.stack(frames)[..., None], 3, axis=-1)


def test_track_features_follows_a_pan_and_respects_regions():
    frames = textured_frames(5, 3)
    regions = np.zeros((120, 200), np.int16)
    regions[40:80, 60:120] = 1  # an "object"
    regions[35:85, 55:125][regions[35:85, 55:125] == 0] = NO_FEATURES
    tracks = track_features(frames, lambda t: regions, TrackerConfig(max_corners=300))
    assert tracks.xy.shape == (tracks.n_tracks, 5, 2) and tracks.xy.dtype == np.float32
    both = tracks.seen[:, 0] & tracks.seen[:, 1]
    shift = tracks.xy[both, 1] - tracks.xy[both, 0]
    np.testing.assert_allclose(np.median(shift, axis=0), [-3.0, 0.0], atol=0.05)
    cols = np.floor(np.nan_to_num(tracks.xy[..., 0])).astype(int).clip(0, 199)
    rows = np.floor(np.nan_to_num(tracks.xy[..., 1])).astype(int).clip(0, 119)
    under = np.where(tracks.seen, regions[rows, cols], -2)
    background = tracks.label == BACKGROUND
    assert background.any() and (tracks.label == 1).any()
    assert np.isin(under[background][tracks.seen[background]], [BACKGROUND, NO_FEATURES]).all()


def test_track_features_of_a_blank_video_is_empty():
    tracks = track_features(np.zeros((3, 60, 80, 3), np.uint8), lambda t: np.zeros((60, 80), np.int16))
    assert tracks.n_tracks == 0 and tracks.xy.shape == (0, 3, 2)


# --- the backend on synthetic scenes -------------------------------------------------------------


def test_output_shapes_and_dtypes(moving):
    synthetic, recon = moving[0]
    n_frames, height, width = synthetic.frames.shape[:3]
    assert recon.cam_to_world.shape == (n_frames, 4, 4) and recon.cam_to_world.dtype == np.float64
    np.testing.assert_array_equal(recon.cam_to_world[0], np.eye(4))
    assert recon.local_points.shape == (n_frames, height, width, 3) and recon.local_points.dtype == np.float32
    assert recon.conf.shape == (n_frames, height, width) and recon.conf.dtype == np.float32
    assert recon.intrinsics.shape == (n_frames, 3, 3) and recon.intrinsics.dtype == np.float32
    assert isinstance(recon.local_points, FrameSequence) and isinstance(recon.conf, FrameSequence)  # streamed
    points, conf = np.asarray(recon.local_points), np.asarray(recon.conf)
    np.testing.assert_array_equal(recon.local_points[3], points[3])  # a frame read again is the same
    assert 0.0 <= conf.min() and conf.max() <= 1.0
    unknown = ~np.isfinite(points).all(axis=-1)
    assert (conf[unknown] == 0).all()
    assert (points[~unknown][:, 2] > 0).all()


def test_intrinsics_are_in_source_pixels(moving):
    synthetic, _ = moving[0]
    clip = make_clip(synthetic.frames, source_size=(1280, 720))
    tracks = gt_tracks(synthetic.scene, box_scale=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        recon = ClassicReconstructor().reconstruct(clip, tracks)
    np.testing.assert_allclose(recon.intrinsics[0], prior_intrinsics((1280, 720)), rtol=1e-6)
    assert recon.local_points.shape[1:3] == synthetic.frames.shape[1:3]


def test_static_camera_stays_put(static):
    _, recon = static
    # Measured: exactly the identity (every frame pair is below static_px).
    np.testing.assert_array_equal(recon.cam_to_world, np.tile(np.eye(4), (len(recon.cam_to_world), 1, 1)))


def test_static_camera_objects_come_from_the_people_prior(static):
    synthetic, recon = static
    ate, spread, visible = centre_errors(synthetic, recon)
    # Measured on seeds 0–5: ATE 0.24–0.41 m for a 1.5–2 m spread, 92–100 % visible (seed 1: 16 %, 96 %).
    assert visible > 0.9
    assert ate < 0.3 * spread


@pytest.mark.parametrize("seed", MOVING_SEEDS)
def test_moving_camera_rotation_and_translation_direction(moving, seed):
    synthetic, recon = moving[seed]
    rotation_errors = relative_rotation_errors_deg(recon.cam_to_world, synthetic.scene.cam_to_world)
    direction_errors = translation_direction_errors_deg(recon.cam_to_world, synthetic.scene.cam_to_world)
    # Measured on seeds 0–2: per-step error median 0.007–0.035°, max ≤ 0.05°; direction error
    # median 0.3–0.8°, max ≤ 2.7°. Bounds: about twice that.
    assert np.median(rotation_errors) < 0.07 and rotation_errors.max() < 0.1
    assert np.median(direction_errors) < 1.5 and direction_errors.max() < 5.0


@pytest.mark.parametrize("seed", MOVING_SEEDS)
def test_moving_camera_object_centres_after_sim3(moving, seed):
    synthetic, recon = moving[seed]
    ate, spread, visible = centre_errors(synthetic, recon)
    # Measured on seeds 0–2: ATE 0.14–0.21 m against a ~2 m RMS spread (7–10 %), 93–100 % visible.
    assert visible > 0.9
    assert ate < 0.15 * spread


def test_true_camera_height_gives_metric_scale(moving):
    synthetic, _ = moving[1]
    truth = synthetic.scene.cam_to_world
    recon = reconstruct(synthetic, ClassicConfig(camera_height_m=float(np.median(truth[:, 2, 3])),
                                                 scale_from_people=False))
    # Measured: 0.98 of the true path length (seeds 0–2: 0.97–0.98).
    assert path_m(recon.cam_to_world) / path_m(truth) == pytest.approx(0.975, abs=0.025)
    assert recon.camera_quality.scale_source == "ground-plane"


def path_m(poses):
    return np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1).sum()


def test_people_standing_on_the_ground_give_metric_scale(moving):
    # The synthetic cameras fly 1.8-2.8 m up, not at the assumed 1.6 m: with whole boxes of people
    # (1.55-1.85 m tall) the scale comes from them. Camera-height scale alone: 0.6-0.7 of the path.
    for seed, (synthetic, recon) in moving.items():
        if recon.camera_quality.scale_source != "people-height":
            continue
        ratio = path_m(recon.cam_to_world) / path_m(synthetic.scene.cam_to_world)
        assert ratio == pytest.approx(1.0, abs=0.12), seed
    assert any(recon.camera_quality.scale_source == "people-height" for _, recon in moving.values())


def test_people_heights_and_people_scale():
    from recon4d.recon.classic.object_depth import MIN_PEOPLE_BOXES, people_heights, people_scale, plane_in_cameras

    intrinsics = np.array([[300.0, 0, 160], [0, 300.0, 90], [0, 0, 1]])
    up = level_up(math.radians(10.0))
    forward = np.cross(up, np.array([1.0, 0.0, 0.0]))
    rng = np.random.default_rng(2)
    n, camera_height, tall = 12, 2.0, rng.uniform(1.6, 1.8, 12)
    feet = rng.uniform(-1, 1, n)[:, None] * np.array([1.0, 0, 0]) + rng.uniform(5, 9, n)[:, None] * forward - camera_height * up
    heads = feet + tall[:, None] * up
    def project(p):
        return intrinsics[:2, :2] @ (p[:, :2] / p[:, 2:]).T + intrinsics[:2, 2:]
    (uf, vf), (_, vh) = project(feet), project(heads)
    boxes = np.stack([uf - 6, vh - 0.5, uf + 6, vf + 0.5], axis=-1)[:, None]  # (K=n, T=1, 4)
    # The world is the camera frame; the ground n · X + h = 0 with n = up, h = camera height.
    world_to_cam = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1)[None]
    plane_camera = plane_in_cameras(world_to_cam, up, camera_height)
    np.testing.assert_allclose(plane_camera, [[*up, camera_height]])
    # Head and feet are at slightly different depths (the head is above the feet, not on their
    # depth plane); measured error < 2 % at 5-9 m.
    np.testing.assert_allclose(people_heights(boxes, np.ones((n, 1), bool), plane_camera, intrinsics), tall, rtol=0.02)
    # The same scene in units half a metre long: people_scale brings it back to metres.
    half = world_to_cam.copy()
    points = rng.normal(size=(5, 3))
    got_w2c, got_points, (normal, offset), applied = people_scale(half, points / 0.5, (up, camera_height / 0.5), boxes,
                                                                  np.ones((n, 1), bool), intrinsics)
    assert applied and offset == pytest.approx(camera_height * 1.7 / np.median(tall), rel=0.02)
    np.testing.assert_allclose(got_points, points * 1.7 / np.median(tall), rtol=0.02)
    few = np.zeros((n, 1), bool)
    few[: MIN_PEOPLE_BOXES - 1] = True
    assert not people_scale(half, points, (up, camera_height / 0.5), boxes, few, intrinsics)[3]
    mixed = boxes.copy()
    mixed[::2, :, 1] = (mixed[::2, :, 1] + mixed[::2, :, 3]) / 2  # half of them sitting / cut: heights disagree
    assert not people_scale(half, points, (up, camera_height / 0.5), mixed, np.ones((n, 1), bool), intrinsics)[3]


def test_box_only_tracks_place_objects(moving):
    synthetic, _ = moving[2]
    recon = reconstruct(synthetic, with_masks=False)
    scene = synthetic.scene
    box_masks = np.zeros_like(scene.masks)
    for k, t in zip(*np.nonzero(scene.visible)):
        x1, y1, x2, y2 = scene.box_xyxy[k, t].astype(int)
        box_masks[k, t, y1:y2, x1:x2] = True
    ate, spread, visible = centre_errors(synthetic, recon, masks=box_masks, estimator="median")
    # Boxes overlap, so the far object's box holds the near one's depth; measured ATE 0.7–1.2 m
    # (seeds 0–2) against a ~2 m spread. This only checks that the path works and is not absurd.
    assert visible > 0.85
    assert ate < 0.75 * spread


# --- failure modes ----------------------------------------------------------------------------------


def test_black_clip_warns_and_keeps_the_camera_still():
    clip = make_clip(np.zeros((5, 90, 160, 3), np.uint8), source_size=(320, 180))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recon = ClassicReconstructor().reconstruct(clip, None)
    messages = [str(w.message) for w in caught if issubclass(w.category, ReconstructionWarning)]
    assert any("too few background features" in m for m in messages)
    np.testing.assert_array_equal(recon.cam_to_world, np.tile(np.eye(4), (5, 1, 1)))
    assert np.isfinite(np.asarray(recon.local_points)).all()


def test_one_frame_clip_is_the_identity_with_prior_depth():
    frames = np.random.default_rng(9).integers(0, 255, (1, 90, 160, 3), dtype=np.uint8)
    with pytest.warns(ReconstructionWarning, match="no camera motion to measure"):
        recon = ClassicReconstructor().reconstruct(make_clip(frames))
    np.testing.assert_array_equal(recon.cam_to_world, np.eye(4)[None])
    bottom = recon.local_points[0, -1, 80]
    assert bottom[1] == pytest.approx(1.6, rel=1e-5)  # the level-camera ground, 1.6 m below


def test_empty_tracks_and_progress():
    frames = textured_frames(4, 2, height=90, width=160)
    tracks = Tracks2D(np.zeros(0), (), np.zeros(0, bool), np.zeros((0, 4, 4)), np.zeros((0, 4), bool))
    calls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        recon = ClassicReconstructor().reconstruct(make_clip(frames), tracks,
                                                   lambda done, total: calls.append((done, total)))
    assert recon.n_frames == 4
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1][0] == calls[-1][1]


def test_empty_clip_and_mismatched_tracks_raise():
    frames = textured_frames(3, 1, height=60, width=80)
    with pytest.raises(ClassicReconstructionError, match="no frames"):
        ClassicReconstructor().reconstruct(make_clip(frames[:0]))
    wrong_length = Tracks2D([1], ("person",), [True], np.zeros((1, 2, 4)), np.ones((1, 2), bool))
    with pytest.raises(ShapeError, match="tracks cover 2 frames"):
        ClassicReconstructor().reconstruct(make_clip(frames), wrong_length)
    wrong_size = Tracks2D([1], ("person",), [True], np.zeros((1, 3, 4)), np.ones((1, 3), bool),
                          np.zeros((1, 3, 30, 40), bool))
    with pytest.raises(ShapeError, match="masks must be at the clip's frame size"):
        ClassicReconstructor().reconstruct(make_clip(frames), wrong_size)


def moving_objects_boxes(tilt_deg: float, camera_height: float, heights_m, cut_fraction: float = 0.0):
    """Boxes (K, T, 4) of objects of the given heights walking from 12 m to 5 m in front of a camera without
    roll tilted down by ``tilt_deg``, their bottoms cut by ``cut_fraction`` of their height; intrinsics."""
    intrinsics = np.array([[554.0, 0, 320], [0, 554.0, 180], [0, 0, 1]])
    up = level_up(math.radians(tilt_deg))
    forward = np.cross(up, np.array([1.0, 0.0, 0.0]))
    n = 16
    boxes = []
    for i, height_m in enumerate(heights_m):
        distance = np.linspace(12.0, 5.0, n) + i
        feet = (np.linspace(-2, 2, n) * (1 if i % 2 else -1))[:, None] * np.array([1.0, 0, 0]) + \
            distance[:, None] * forward - camera_height * up
        heads = feet + height_m * up
        def project(p):
            return intrinsics[:2, :2] @ (p[:, :2] / p[:, 2:]).T + intrinsics[:2, 2:]
        (uf, vf), (_, vh) = project(feet), project(heads)
        bottom = vf - cut_fraction * (vf - vh)
        boxes.append(np.stack([uf - 10, vh, uf + 10, bottom], axis=-1))
    return np.stack(boxes), intrinsics


@pytest.mark.parametrize("cut", [0.0, 0.15])
def test_tilt_from_object_sizes_needs_no_heights_and_ignores_cut_feet(cut):
    # A dog (0.6 m) and a car (1.5 m) coming nearer under a camera 2.4 m up, 11 deg down; the fit
    # assumes 1.6 m and knows no heights, and boxes cut at the feet by 15 % of their height (feet
    # still on the ground) or stretched by a shadow keep the horizon where it is.
    boxes, intrinsics = moving_objects_boxes(11.0, 2.4, [0.6, 1.5], cut)
    rotations = np.tile(np.eye(3, 4), (boxes.shape[1], 1, 1))
    found = tilt_from_object_sizes(boxes, np.ones(boxes.shape[:2], bool), intrinsics, rotations, 1.6)
    assert found is not None and math.degrees(found) == pytest.approx(11.0, abs=1.0)


def test_tilt_from_object_sizes_is_none_without_objects_changing_distance():
    boxes, intrinsics = moving_objects_boxes(11.0, 2.4, [0.6])
    still = np.repeat(boxes[:, :1], boxes.shape[1], axis=1)  # one place all along: no depth change
    rotations = np.tile(np.eye(3, 4), (boxes.shape[1], 1, 1))
    assert tilt_from_object_sizes(still, np.ones(still.shape[:2], bool), intrinsics, rotations, 1.6) is None
    assert tilt_from_object_sizes(boxes, np.zeros(boxes.shape[:2], bool), intrinsics, rotations, 1.6) is None


def test_a_still_camera_without_people_takes_its_tilt_from_moving_objects():
    boxes, intrinsics = moving_objects_boxes(9.0, 2.0, [0.6, 1.4], 0.1)
    k, t = boxes.shape[:2]
    tracks = Tracks2D(np.arange(k), ("dog", "object"), np.array([True, False]), boxes.astype(np.float32),
                      np.ones((k, t), bool))
    recon = ClassicReconstructor()
    blank = np.full((t, 360, 640, 3), 128, np.uint8)  # no vertical lines to read the tilt from
    prior, source = recon._ground_prior(tracks, boxes, np.zeros((k, t), bool), intrinsics, (640, 360), 2.0,
                                        np.tile(np.eye(3, 4), (t, 1, 1)), blank)
    assert source == "size-prior" and math.degrees(prior[0]) == pytest.approx(9.0, abs=1.0)
    assert prior[1] == recon.config.camera_height_m
    people = Tracks2D(tracks.ids, ("person", "person"), tracks.is_agent, tracks.boxes_xyxy, tracks.visible)
    assert recon._ground_prior(people, boxes, np.zeros((k, t), bool), intrinsics, (640, 360), 2.0,
                               np.tile(np.eye(3, 4), (t, 1, 1)), blank)[1] == "people-prior"


def test_tilt_and_height_from_people_under_a_camera_that_tilts_as_it_pans():
    # A tripod panning 20 deg while its tilt goes from 8 to 16 deg (as the synthetic "pan" camera
    # does): each box must be judged in its own frame's camera. The still-camera fit (rotations
    # ignored, the code before) averaged the tilts and missed camera 0's by several degrees.
    intrinsics = np.array([[554.0, 0, 320], [0, 554.0, 180], [0, 0, 1]])
    n_frames, height = 24, 2.0
    tilts = np.radians(np.linspace(8.0, 16.0, n_frames))
    yaws = np.radians(np.linspace(0.0, 20.0, n_frames))
    rng = np.random.default_rng(3)
    # world = camera 0: its level frame turned down by tilts[0]
    level_to_cam0 = Rotation.from_euler("x", tilts[0]).as_matrix()
    rotations = np.stack([Rotation.from_euler("x", a).as_matrix() @ Rotation.from_euler("y", y).as_matrix()
                          @ level_to_cam0.T for a, y in zip(tilts, yaws)])
    boxes = np.full((2, n_frames, 4), np.nan)
    for k in range(2):
        for t in range(n_frames):
            # a person in front of the camera of frame t, 5-12 m away, in the level frame of camera 0
            level_cam_t = Rotation.from_euler("y", yaws[t]).as_matrix()
            ahead = level_cam_t.T @ np.array([rng.uniform(-1.5, 1.5), 0.0, rng.uniform(5.0, 12.0)])
            feet = np.array([ahead[0], height, ahead[2]])
            head = feet - np.array([0.0, 1.7, 0.0])
            (uf, vf), (_, vh) = [(intrinsics[:2, :2] @ (q[:2] / q[2]) + intrinsics[:2, 2])
                                 for q in (rotations[t] @ level_to_cam0 @ feet, rotations[t] @ level_to_cam0 @ head)]
            boxes[k, t] = [uf - 10, vh - 0.5, uf + 10, vf + 0.5]
    usable = np.ones((2, n_frames), bool)
    still = tilt_and_height_from_people(boxes, usable, intrinsics, 1.6)  # what the code before did
    assert abs(math.degrees(still[0]) - 8.0) > 2.0
    found = tilt_and_height_from_people(boxes, usable, intrinsics, 1.6, rotations=rotations)
    assert found is not None
    assert math.degrees(found[0]) == pytest.approx(8.0, abs=0.5)
    assert found[1] == pytest.approx(2.0, rel=0.05)
    # a tilt known from elsewhere: only the height is searched
    fixed = tilt_and_height_from_people(boxes, usable, intrinsics, 1.6, rotations=rotations, tilt_rad=tilts[0])
    assert fixed[0] == pytest.approx(tilts[0]) and fixed[1] == pytest.approx(2.0, rel=0.05)


def behind_a_prop(boxes: np.ndarray, frames: slice, fraction: float) -> np.ndarray:
    """``boxes`` (K, T, 4) with the bottoms of ``frames`` raised by ``fraction`` of the box height
    (the feet behind a prop), the tops where they were."""
    out = boxes.copy()
    out[:, frames, 3] -= fraction * (out[:, frames, 3] - out[:, frames, 1])
    return out


def test_hidden_bottoms_marks_a_walk_behind_a_prop_and_nothing_else():
    boxes, _ = moving_objects_boxes(8.0, 1.7, [1.7, 0.6])  # walking from 12 m to 5 m: bottoms drop steadily
    assert not hidden_bottoms(boxes).any()
    tilting = boxes + np.linspace(0, 60, boxes.shape[1])[None, :, None] * np.array([0, 1, 0, 1])  # the view tilts
    assert not hidden_bottoms(tilting).any()
    hidden = hidden_bottoms(behind_a_prop(boxes, slice(6, 10), 0.3))
    expected = np.zeros(boxes.shape[:2], bool)
    expected[:, 6:10] = True
    np.testing.assert_array_equal(hidden, expected)
    to_the_end = hidden_bottoms(behind_a_prop(boxes, slice(6, None), 0.3))
    assert to_the_end[:, 6:].all() and not to_the_end[:, :6].any()
    # A bottom that drops abruptly with no rise before it (a merge below, a track that starts hidden)
    # is not called hidden; a long gap unseen ends a hidden span.
    assert not hidden_bottoms(behind_a_prop(boxes, slice(0, 6), 0.3)).any()
    gap = behind_a_prop(boxes, slice(6, None), 0.3)
    gap[:, 9:13] = np.nan
    assert hidden_bottoms(gap)[:, 6:9].all() and not hidden_bottoms(gap)[:, 13:].any()


def test_a_bottom_hidden_behind_a_prop_does_not_push_the_object_away():
    # A still camera 1.6 m up, level, watches a person walk from 12 m to 5 m; in frames 6-9 a prop
    # hides the lower 30 % of the body. The raised bottom would meet the ground 1/0.7 times
    # farther (measured before hidden_bottoms: 40-45 % too far); bridged over the span, the depth
    # stays within 5 % of the truth.
    boxes, intrinsics = moving_objects_boxes(0.0, 1.6, [1.7])
    n_frames = boxes.shape[1]
    hidden = behind_a_prop(boxes, slice(6, 10), 0.3)
    clip = make_clip(np.full((n_frames, 360, 640, 3), 128, np.uint8))
    tracks = Tracks2D(np.array([1]), ("person",), np.array([True]), hidden.astype(np.float32),
                      np.ones((1, n_frames), bool))
    config = ClassicConfig(focal_px=float(intrinsics[0, 0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        recon = ClassicReconstructor(config).reconstruct(clip, tracks)
    truth = np.linspace(12.0, 5.0, n_frames)
    for t in np.flatnonzero(boxes[0, :, 3] < 350):  # the last feet leave the image (sizes from 20 px boxes)
        x1, y1, x2, y2 = hidden[0, t]
        depth = recon.local_points[t][int(0.5 * (y1 + y2)), int(0.5 * (x1 + x2)), 2]
        assert depth == pytest.approx(truth[t], rel=0.05), t


def test_a_bottom_hidden_to_the_end_holds_the_last_depth():
    depth = np.array([[5.0, 5.2, np.nan, np.nan, np.nan], [np.nan, 4.0, np.nan, 6.0, np.nan]])
    hidden = np.array([[False, False, True, True, False], [True, False, True, False, True]])
    held = hold_nearest(depth, hidden)
    np.testing.assert_array_equal(held, [[5.0, 5.2, 5.2, 5.2, np.nan], [4.0, 4.0, 4.0, 6.0, 6.0]])
    # In object_depths, a bridge between placed frames wins; only the frames no cue reaches are held,
    # with their own cue, and frames that are not hidden stay unknown.
    contact = np.array([[8.0, np.nan, np.nan, 10.0, np.nan, np.nan]])
    unknown = np.full_like(contact, np.nan)
    behind = np.array([[False, True, True, False, True, False]])
    found, cue = object_depths(contact, unknown, unknown, behind)
    assert found[0, 4] == 10.0 and cue[0, 4] == CUE_HELD and np.isnan(found[0, 5]) and cue[0, 5] == CUE_NONE
    assert cue[0, 1] == cue[0, 2] == CUE_BRIDGED
    # No track drops out of the scene behind a prop: a person hidden at the feet from frame 6 to
    # the end stays placed in every frame, at the depth of its last whole frame (before: no depth
    # from frame 6 on, so not lifted there).
    boxes, intrinsics = moving_objects_boxes(0.0, 1.6, [1.7])
    n_frames = boxes.shape[1]
    hidden_boxes = behind_a_prop(boxes, slice(6, None), 0.3)
    clip = make_clip(np.full((n_frames, 360, 640, 3), 128, np.uint8))
    tracks = Tracks2D(np.array([1]), ("person",), np.array([True]), hidden_boxes.astype(np.float32),
                      np.ones((1, n_frames), bool))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        recon = ClassicReconstructor(ClassicConfig(focal_px=float(intrinsics[0, 0]))).reconstruct(clip, tracks)
    centres = [recon.local_points[t][int(0.5 * (y1 + y2)), int(0.5 * (x1 + x2)), 2]
               for t, (x1, y1, x2, y2) in enumerate(hidden_boxes[0])]
    assert np.isfinite(centres).all()
    np.testing.assert_allclose(centres[6:], centres[5], rtol=1e-6)


def test_depth_outliers_flags_a_one_frame_jump_not_a_steady_approach():
    times = np.arange(16) / 6.0
    approach = np.linspace(12.0, 5.0, 16)  # 2.6 m/s, the ends judged from one side only
    depth = np.stack([approach, approach.copy(), np.full(16, np.nan)])
    depth[1, 7] *= 0.6  # one box merged with something below: its contact 40 % nearer
    depth[2, [3, 4, 5]] = [8.0, 4.0, 8.0]  # too few frames to judge
    flags = depth_outliers(depth, times)
    assert not flags[0].any() and not flags[2].any()
    # The jump is caught; a good frame whose neighbours include it may be too (a cheap mistake:
    # it is bridged from its neighbours, about where it was).
    assert flags[1, 7] and flags[1].sum() <= 2
    # Neighbours farther than max_gap_s away do not count: alone in its second, nothing is judged.
    sparse = np.full((1, 16), np.nan)
    sparse[0, [0, 1, 2, 15]] = [10.0, 10.0, 10.0, 5.0]
    assert not depth_outliers(sparse, times)[0, 15]


def test_a_box_on_something_else_for_a_frame_keeps_its_depth():
    # A still camera 1.6 m up, level, watches a person walk from 12 m to 5 m; in frame 7 the box
    # lands on something 40 px lower (top and bottom move together, so no hidden bottom). Its
    # contact would be ~30 % too near (measured before depth_outliers, and as now by default);
    # with depth_outlier_rel set it is bridged from its neighbours and stays within 5 % of the truth.
    boxes, intrinsics = moving_objects_boxes(0.0, 1.6, [1.7])
    n_frames = boxes.shape[1]
    moved = boxes.copy()
    moved[0, 7, [1, 3]] += 40.0
    clip = make_clip(np.full((n_frames, 360, 640, 3), 128, np.uint8))
    tracks = Tracks2D(np.array([1]), ("person",), np.array([True]), moved.astype(np.float32),
                      np.ones((1, n_frames), bool))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReconstructionWarning)
        recon = ClassicReconstructor(ClassicConfig(focal_px=float(intrinsics[0, 0]),
                                                   depth_outlier_rel=0.1)).reconstruct(clip, tracks)
        plain = ClassicReconstructor(ClassicConfig(focal_px=float(intrinsics[0, 0]))).reconstruct(clip, tracks)
    truth = np.linspace(12.0, 5.0, n_frames)
    assert not hidden_bottoms(moved).any()
    x1, y1, x2, y2 = moved[0, 7]
    assert plain.local_points[7][int(0.5 * (y1 + y2)), int(0.5 * (x1 + x2)), 2] < 0.8 * truth[7]  # off: unchanged
    for t in range(n_frames - 1):  # in the last frame the feet leave the image
        x1, y1, x2, y2 = moved[0, t]
        depth = recon.local_points[t][int(0.5 * (y1 + y2)), int(0.5 * (x1 + x2)), 2]
        assert depth == pytest.approx(truth[t], rel=0.05), t
