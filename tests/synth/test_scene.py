"""Tests of recon4d/synth/scene.py: procedural scenes, their ground truth and the files written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("open3d", reason="synthetic scenes need open3d (pip install 'recon4d[synth]')")
pytest.importorskip("trimesh", reason="synthetic scenes need trimesh (pip install 'recon4d[synth]')")

from recon4d.errors import StoreError  # noqa: E402
from recon4d.geometry import forward_axis  # noqa: E402
from recon4d.store import file_sha256, open_scene  # noqa: E402
from recon4d.synth.scene import (  # noqa: E402
    CAMERA_KINDS,
    SynthConfig,
    SyntheticScene,
    generate_scene,
    heading_to_orientation,
    look_at,
    synth_intrinsics,
    write_synthetic,
)

SMALL = SynthConfig(seed=3, width=160, height=96, n_frames=12)


@pytest.fixture(scope="module")
def small() -> SyntheticScene:
    return generate_scene(SMALL)


@pytest.fixture(scope="module")
def default() -> SyntheticScene:
    return generate_scene(SynthConfig())


def camera_coords(scene, points_world: np.ndarray) -> np.ndarray:
    """World points (K, T, 3) in the OpenCV camera frame of each frame t."""
    rotation, origin = scene.cam_to_world[:, :3, :3], scene.cam_to_world[:, :3, 3]
    return np.einsum("tji,ktj->kti", rotation, points_world - origin[None])


def nan_equal(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"width": 161}, "width must be an even"),
        ({"height": 8}, "height must be an even"),
        ({"n_frames": 0}, "n_frames must be at least 1"),
        ({"n_frames": 2.5}, "n_frames must be an integer"),
        ({"fps": 0.0}, "fps must be a positive"),
        ({"fps": float("nan")}, "fps must be a positive"),
        ({"n_objects": 9}, "n_objects must be between 0 and 8"),
        ({"n_objects": -1}, "n_objects must be between 0 and 8"),
        ({"seed": -1}, "seed must be a non-negative"),
        ({"seed": None}, "seed must be an integer"),
        ({"fov_deg": 170.0}, "fov_deg must be between"),
        ({"min_visible_px": 0}, "min_visible_px must be at least 1"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SynthConfig(**kwargs)


def test_config_to_json_is_plain():
    config = SynthConfig(seed=np.int64(4), n_objects=3).to_json()
    assert config["seed"] == 4 and type(config["seed"]) is int
    assert set(config) >= {"seed", "n_frames", "fps", "width", "height", "n_objects", "static_camera",
                           "fov_deg", "min_visible_px"}


def test_import_does_not_load_heavy_dependencies():
    code = ("import sys, recon4d.synth.scene; "
            "print(sorted(m for m in ('open3d', 'trimesh', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- camera helpers and the orientation convention --------------------------------------------


def test_intrinsics_match_the_horizontal_fov():
    intrinsics = synth_intrinsics(640, 360, 60.0)
    assert np.degrees(2 * np.arctan(320 / intrinsics[0, 0])) == pytest.approx(60.0)
    assert intrinsics[0, 0] == intrinsics[1, 1]
    assert tuple(intrinsics[:2, 2]) == (320.0, 180.0)


def test_look_at_is_an_opencv_camera_without_roll():
    pose = look_at(np.array([1.0, -2.0, 3.0]), np.array([1.0, 5.0, 0.5]))
    rotation = pose[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    forward = np.array([0.0, 7.0, -2.5]) / np.hypot(7.0, 2.5)
    np.testing.assert_allclose(rotation[:, 2], forward)
    assert rotation[2, 0] == pytest.approx(0.0)  # image x stays horizontal
    assert rotation[2, 1] < 0  # image y (down) points down in the world


@pytest.mark.parametrize(
    "heading_rad, azimuth",
    [(-np.pi / 2, 0.0), (np.pi / 2, 180.0), (np.pi, 90.0), (0.0, 270.0)],
    ids=["towards-camera", "away", "image-left", "image-right"],
)
def test_heading_to_orientation_follows_design_convention(heading_rad, azimuth):
    # Camera looking along world +y, so world −x is image-left.
    level = look_at(np.array([0.0, 0.0, 1.0]), np.array([0.0, 5.0, 1.0]))
    heading_rad = np.array(heading_rad)
    np.testing.assert_allclose(heading_to_orientation(level, heading_rad), [azimuth, 0, 0], atol=1e-9)
    # Looking 30° down sees the upright agent from above: polar 30 whatever its heading.
    down = look_at(np.array([0.0, 0.0, 3.0]), np.array([0.0, 3.0 / np.tan(np.radians(30)), 0.0]))
    np.testing.assert_allclose(heading_to_orientation(down, heading_rad), [azimuth, 30, 0], atol=1e-9)


# --- generated scenes -----------------------------------------------------------------------------


def test_shapes_and_dtypes(small):
    scene, (t, h, w) = small.scene, (12, 96, 160)
    k = scene.n_objects
    assert 2 <= k <= 6
    assert small.frames.shape == (t, h, w, 3) and small.frames.dtype == np.uint8
    assert scene.local_points.shape == (t, h, w, 3) and scene.local_points.dtype == np.float32
    assert scene.conf.shape == (t, h, w) and scene.masks.shape == (k, t, h, w) and scene.masks.dtype == bool
    assert scene.cam_to_world.shape == (t, 4, 4) and scene.cam_to_world.dtype == np.float64
    assert scene.intrinsics.shape == (t, 3, 3)
    assert scene.box_xyxy.shape == (k, t, 4) and scene.center_world.shape == (k, t, 3)
    assert scene.orientation.shape == (k, t, 3) and scene.extent.shape == (k, t, 3)
    assert small.object_to_world.shape == (k, t, 4, 4) and small.pixel_counts.shape == (k, t)
    np.testing.assert_array_equal(scene.ids, np.arange(k))
    np.testing.assert_allclose(scene.timestamps_s, np.arange(t) / SMALL.fps)
    np.testing.assert_array_equal(scene.frame_index, np.arange(t))
    categories = np.array(scene.categories)
    assert scene.is_agent.any() and set(categories[scene.is_agent]) <= {"person", "dog"}
    assert set(categories[~scene.is_agent]) <= {"box", "ball", "cone"}
    assert set(scene.backends) == {"recon", "tracker", "orient"}
    assert scene.backends["recon"]["name"] == "synth-gt"
    assert scene.config == SMALL.to_json()


def test_same_seed_same_scene_other_seed_other_scene(small):
    again = generate_scene(SMALL)
    np.testing.assert_array_equal(again.frames, small.frames)
    np.testing.assert_array_equal(again.scene.local_points, small.scene.local_points)
    np.testing.assert_array_equal(again.scene.masks, small.scene.masks)
    np.testing.assert_array_equal(again.scene.cam_to_world, small.scene.cam_to_world)
    assert nan_equal(again.scene.center_world, small.scene.center_world)
    assert nan_equal(again.scene.orientation, small.scene.orientation)
    assert nan_equal(again.scene.box_xyxy, small.scene.box_xyxy)
    other = generate_scene(SynthConfig(seed=4, width=160, height=96, n_frames=12))
    assert not np.array_equal(other.frames, small.frames)
    assert not np.allclose(other.scene.cam_to_world, small.scene.cam_to_world)


def test_every_pixel_hits_a_surface_in_front_of_the_camera(small):
    points = small.scene.local_points
    assert np.isfinite(points).all()
    assert (small.depth > 0).all()
    np.testing.assert_array_equal(small.depth, points[..., 2])
    np.testing.assert_array_equal(small.scene.conf, 1.0)


def test_points_project_back_to_their_pixel_centres(small):
    """Pixel (row i, column j) sees the point that projects to (j + 0.5, i + 0.5)."""
    scene = small.scene
    points = scene.local_points.astype(np.float64)
    intrinsics = scene.intrinsics[0].astype(np.float64)
    np.testing.assert_array_equal(scene.intrinsics, np.broadcast_to(intrinsics, scene.intrinsics.shape))
    u = intrinsics[0, 0] * points[..., 0] / points[..., 2] + intrinsics[0, 2]
    v = intrinsics[1, 1] * points[..., 1] / points[..., 2] + intrinsics[1, 2]
    rows, cols = np.mgrid[0 : SMALL.height, 0 : SMALL.width]
    assert np.abs(u - (cols + 0.5)).max() < 0.01
    assert np.abs(v - (rows + 0.5)).max() < 0.01


def test_points_lie_on_the_surfaces_they_claim(small):
    """Object pixels lie inside their object's box; every other pixel on the ground (z = 0),
    a wall (|x| or |y| = 14 m) or the sky dome (~60 m from the origin)."""
    scene = small.scene
    rotation, origin = scene.cam_to_world[:, :3, :3], scene.cam_to_world[:, :3, 3]
    world = np.einsum("tij,thwj->thwi", rotation, scene.local_points.astype(np.float64))
    world += origin[:, None, None]
    masks = np.asarray(scene.masks)
    for k in range(scene.n_objects):
        pose = small.object_to_world[k]
        local = np.einsum("tji,thwj->thwi", pose[:, :3, :3], world - pose[:, None, None, :3, 3])[masks[k]]
        half = np.nanmax(scene.extent[k], axis=0) / 2
        assert (np.abs(local) <= half + 1e-3).all()
    background = world[~masks.any(axis=0)]
    on_ground = np.abs(background[:, 2]) < 1e-3
    on_wall = np.abs(np.abs(background[:, :2]).max(axis=1) - 14.0) < 1e-3
    on_sky = np.abs(np.linalg.norm(background, axis=1) - 59.0) < 1.01
    assert (on_ground | on_wall | on_sky).all()
    assert on_ground.mean() > 0.3 and on_wall.mean() > 0.1


def test_masks_boxes_and_visibility_agree(small):
    scene = small.scene
    masks = np.asarray(scene.masks)
    assert (masks.sum(axis=0) <= 1).all()  # one object per pixel
    np.testing.assert_array_equal(small.pixel_counts, masks.sum(axis=(2, 3)))
    np.testing.assert_array_equal(scene.visible, small.pixel_counts >= SMALL.min_visible_px)
    assert scene.visible.mean() > 0.8  # objects stay mostly in view
    for k, t in np.argwhere(scene.visible):
        rows, cols = np.nonzero(masks[k, t])
        expected = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]  # pixel edges
        np.testing.assert_array_equal(scene.box_xyxy[k, t], expected)
    hidden = ~scene.visible
    assert np.isnan(scene.box_xyxy[hidden]).all() and np.isnan(scene.center_world[hidden]).all()
    assert np.isnan(scene.extent[hidden]).all() and np.isfinite(scene.extent[scene.visible]).all()


def test_centres_project_inside_their_boxes(small):
    scene = small.scene
    camera = camera_coords(scene, scene.center_world)
    intrinsics = scene.intrinsics[0]
    u = intrinsics[0, 0] * camera[..., 0] / camera[..., 2] + intrinsics[0, 2]
    v = intrinsics[1, 1] * camera[..., 1] / camera[..., 2] + intrinsics[1, 2]
    # Heavily occluded views have partial boxes; judge views showing most of the object.
    typical = np.nanmedian(np.where(scene.visible, small.pixel_counts, np.nan), axis=1, keepdims=True)
    judged = scene.visible & (small.pixel_counts >= 0.7 * typical)
    x1, y1, x2, y2 = np.moveaxis(scene.box_xyxy, -1, 0)
    slack_x, slack_y = 0.1 * (x2 - x1) + 1, 0.1 * (y2 - y1) + 1
    inside = (u > x1 - slack_x) & (u < x2 + slack_x) & (v > y1 - slack_y) & (v < y2 + slack_y)
    assert judged.sum() > 0.6 * scene.visible.size
    assert inside[judged].all()


def test_agents_face_their_direction_of_travel(small):
    scene = small.scene
    agents = scene.is_agent
    seen = agents[:, None] & scene.visible
    assert np.isnan(scene.orientation[~agents]).all() and np.isnan(scene.orient_conf[~agents]).all()
    assert np.isnan(scene.orientation[~scene.visible]).all()
    np.testing.assert_array_equal(scene.orient_conf[seen], 1.0)
    # Forward axis back in the world from the camera-relative angles and cam_to_world.
    forward_world = np.einsum("tij,ktj->kti", scene.cam_to_world[:, :3, :3], forward_axis(scene.orientation))
    position = small.object_to_world[..., :3, 3]
    velocity = position[:, 2:] - position[:, :-2]  # central differences, frames 1..T-2
    direction = velocity / np.linalg.norm(velocity, axis=-1, keepdims=True)
    cos = np.sum(forward_world[:, 1:-1] * direction, axis=-1)
    judged = seen[:, 1:-1]
    assert judged.any()
    assert np.degrees(np.arccos(np.clip(cos[judged], -1, 1))).max() < 3.0
    assert np.abs(forward_world[..., 2][seen]).max() < 1e-5  # upright agents: level forward axis, no roll
    np.testing.assert_allclose(scene.orientation[..., 2][seen], 0.0, atol=1e-4)


def test_objects_rest_on_the_ground_and_move(small):
    scene = small.scene
    centre = small.object_to_world[..., :3, 3]
    extent = scene.extent[scene.visible].reshape(-1, 3)
    height = np.nanmax(scene.extent[..., 2], axis=1)[:, None]
    np.testing.assert_allclose(centre[..., 2], np.broadcast_to(height / 2, centre.shape[:2]), rtol=1e-6)
    assert (extent > 0.1).all() and (extent < 2.0).all()
    steps = np.linalg.norm(np.diff(centre, axis=1), axis=-1)
    assert (steps.sum(axis=1) > 0.05).all()  # every object travels
    camera_steps = np.linalg.norm(np.diff(scene.cam_to_world[:, :3, 3], axis=0), axis=-1)
    assert camera_steps.sum() > 0.3


def test_static_camera_never_moves():
    synthetic = generate_scene(SynthConfig(seed=5, width=96, height=64, n_frames=6, static_camera=True))
    poses = synthetic.scene.cam_to_world
    np.testing.assert_array_equal(poses, np.broadcast_to(poses[0], poses.shape))
    assert np.linalg.norm(np.diff(synthetic.object_to_world[..., :3, 3], axis=1), axis=-1).sum() > 0.1


def test_n_objects_and_progress_callback():
    calls = []
    synthetic = generate_scene(SynthConfig(seed=1, width=64, height=48, n_frames=4, n_objects=0),
                               progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert synthetic.scene.n_objects == 0 and synthetic.scene.masks.shape == (0, 4, 48, 64)
    three = generate_scene(SynthConfig(seed=1, width=64, height=48, n_frames=2, n_objects=3))
    assert three.scene.n_objects == 3


def test_lifting_gt_masks_over_gt_points_recovers_gt_centres(small):
    """The lifted centre is the mean of the *visible surface*, not the box centre: it sits up
    to about half the object's size nearer the camera along the line of sight, and off that
    line only where the visible surface is lopsided (a cone has most area low down).
    Partial occlusion moves it further, so the tight claims use well-seen views."""
    from recon4d.lift.lifting import LiftConfig, lift_objects

    scene = small.scene
    lifted = lift_objects(np.asarray(scene.masks), scene.local_points, scene.conf, scene.cam_to_world,
                          LiftConfig(depth_edge_rtol=None))
    np.testing.assert_array_equal(lifted.visible, small.pixel_counts > 0)
    visible = scene.visible
    size = np.where(visible, np.max(np.nan_to_num(scene.extent), axis=-1), np.nan)
    gt_camera = camera_coords(scene, scene.center_world)
    error = lifted.center_camera - gt_camera
    assert (np.linalg.norm(error[visible], axis=-1) < 0.6 * size[visible]).all()
    typical = np.nanmedian(np.where(visible, small.pixel_counts, np.nan), axis=1, keepdims=True)
    well_seen = visible & (small.pixel_counts >= 0.7 * typical)
    assert well_seen.sum() > 0.8 * visible.sum()
    line_of_sight = gt_camera / np.linalg.norm(gt_camera, axis=-1, keepdims=True)
    along = np.sum(error * line_of_sight, axis=-1)
    across = np.linalg.norm(error - along[..., None] * line_of_sight, axis=-1)
    assert (along[well_seen] < 0.01 * size[well_seen]).all()  # towards the camera
    assert (across[well_seen] < 0.3 * size[well_seen]).all()


# --- default size: appearance that trackers need ------------------------------------------------


def test_default_scene_has_trackable_texture_consistent_with_geometry(default):
    """Corners everywhere, and LK flow on the static background matches the flow implied by
    the ground-truth points and poses (textures are glued to the world)."""
    cv2 = pytest.importorskip("cv2")
    scene = default.scene
    assert default.frames.shape == (48, 360, 640, 3) and scene.visible.mean() > 0.8
    t0, t1 = 24, 25  # mid-clip, where the camera moves fastest
    gray0 = cv2.cvtColor(default.frames[t0], cv2.COLOR_RGB2GRAY)
    gray1 = cv2.cvtColor(default.frames[t1], cv2.COLOR_RGB2GRAY)
    background = ~np.asarray(scene.masks[:, t0]).any(axis=0)
    corners = cv2.goodFeaturesToTrack(gray0, 400, 0.01, 7, mask=background.astype(np.uint8))[:, 0]
    assert len(corners) >= 200
    tracked, status, _ = cv2.calcOpticalFlowPyrLK(gray0, gray1, corners, None)
    # Ground-truth flow: the point seen at a pixel, moved into the next camera and projected.
    cols, rows = corners[:, 0].astype(int), corners[:, 1].astype(int)
    points = scene.local_points[t0][rows, cols].astype(np.float64)
    world = points @ scene.cam_to_world[t0, :3, :3].T + scene.cam_to_world[t0, :3, 3]
    camera1 = (world - scene.cam_to_world[t1, :3, 3]) @ scene.cam_to_world[t1, :3, :3]
    k = scene.intrinsics[t1].astype(np.float64)
    expected = camera1[:, :2] / camera1[:, 2:] * [k[0, 0], k[1, 1]] + k[:2, 2]
    moved = expected - (np.stack([cols, rows], axis=1) + 0.5)  # flow of the pixel centre
    measured = tracked - corners
    ok = status[:, 0] == 1
    assert ok.mean() > 0.9
    error = np.linalg.norm(measured[ok] - moved[ok], axis=1)
    assert np.median(error) < 0.5 and np.linalg.norm(moved, axis=1).max() > 1.0
    for k_obj in np.flatnonzero(scene.visible[:, t0]):  # objects stand out from their surroundings
        mask = np.asarray(scene.masks[k_obj, t0])
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~mask
        inside, around = default.frames[t0][mask].mean(axis=0), default.frames[t0][ring].mean(axis=0)
        assert np.abs(inside - around).max() > 10


# --- files ---------------------------------------------------------------------------------------


def test_write_synthetic_writes_a_video_and_a_valid_store(tmp_path, small):
    from recon4d.video import probe

    paths = write_synthetic(tmp_path / "out", SMALL)
    assert paths.video == tmp_path / "out" / "video.mp4" and paths.scene == tmp_path / "out" / "scene.zarr"
    info = probe(paths.video)
    assert (info.n_frames, info.width, info.height) == (SMALL.n_frames, SMALL.width, SMALL.height)
    assert info.fps == pytest.approx(SMALL.fps)
    stored = open_scene(paths.scene)
    assert stored.source.path == str(paths.video) and stored.source.sha256 == file_sha256(paths.video)
    assert (stored.source.n_frames, stored.source.size, stored.source.fps) == (12, (160, 96), 12.0)
    assert stored.masks is not None and stored.local_points is not None and stored.conf is not None
    np.testing.assert_array_equal(np.asarray(stored.masks), small.scene.masks)
    points = np.asarray(stored.local_points, np.float32)  # stored as float16
    np.testing.assert_allclose(points, small.scene.local_points, rtol=1e-3)
    assert nan_equal(stored.center_world, small.scene.center_world)
    assert nan_equal(stored.box_xyxy, small.scene.box_xyxy)
    assert stored.categories == small.scene.categories and stored.config == SMALL.to_json()


def test_write_synthetic_refuses_to_overwrite(tmp_path):
    tiny = SynthConfig(seed=2, width=32, height=32, n_frames=2, n_objects=1)
    calls = []
    write_synthetic(tmp_path, tiny, progress=lambda done, total: calls.append(done))
    assert calls == [1, 2]
    with pytest.raises(StoreError, match="overwrite=True"):
        write_synthetic(tmp_path, tiny)
    paths = write_synthetic(tmp_path, SynthConfig(seed=7, width=32, height=32, n_frames=3, n_objects=1),
                            overwrite=True)
    assert open_scene(paths.scene).n_frames == 3


# --- footage-like scenes ----------------------------------------------------------------------------

VARIED = {kind: SynthConfig(seed=40 + i, width=160, height=96, n_frames=16, varied=True, camera=kind)
          for i, kind in enumerate(CAMERA_KINDS)}


@pytest.fixture(scope="module")
def varied():
    return {kind: generate_scene(config) for kind, config in VARIED.items()}


def test_camera_kind_resolution_and_conflicts():
    assert SynthConfig().camera_kind == "orbit" and SynthConfig(static_camera=True).camera_kind == "static"
    assert SynthConfig(camera="walk").camera_kind == "walk"
    drawn = {SynthConfig(seed=seed, varied=True).camera_kind for seed in range(40)}
    assert drawn == set(CAMERA_KINDS)
    assert SynthConfig(seed=9, varied=True).to_json()["camera_kind"] == SynthConfig(seed=9, varied=True).camera_kind
    with pytest.raises(ValueError, match="camera must be one of"):
        SynthConfig(camera="drone")
    with pytest.raises(ValueError, match="static_camera=True asks for a still camera"):
        SynthConfig(camera="pan", static_camera=True)


def test_varied_ground_truth_is_exact(varied):
    """For every camera kind: points project to their pixel centres, masks, boxes and
    visibility agree, object pixels lie in their object's box, and every other pixel on the
    ground, a wall, the sky or a prop."""
    for kind, synthetic in varied.items():
        scene, config = synthetic.scene, VARIED[kind]
        assert synthetic.camera_kind == kind and scene.config["camera_kind"] == kind
        points = scene.local_points.astype(np.float64)
        k = scene.intrinsics[0]
        u = k[0, 0] * points[..., 0] / points[..., 2] + k[0, 2]
        v = k[1, 1] * points[..., 1] / points[..., 2] + k[1, 2]
        rows, cols = np.mgrid[0 : config.height, 0 : config.width]
        assert np.abs(u - (cols + 0.5)).max() < 0.01 and np.abs(v - (rows + 0.5)).max() < 0.01
        masks = np.asarray(scene.masks)
        assert (masks.sum(axis=0) <= 1).all()
        np.testing.assert_array_equal(scene.visible, synthetic.pixel_counts >= config.min_visible_px)
        for obj, t in np.argwhere(scene.visible):
            r, c = np.nonzero(masks[obj, t])
            np.testing.assert_array_equal(scene.box_xyxy[obj, t], [c.min(), r.min(), c.max() + 1, r.max() + 1])
        assert np.isnan(scene.box_xyxy[~scene.visible]).all() and np.isnan(scene.center_world[~scene.visible]).all()
        rotation, origin = scene.cam_to_world[:, :3, :3], scene.cam_to_world[:, :3, 3]
        world = np.einsum("tij,thwj->thwi", rotation, points) + origin[:, None, None]
        for obj in range(scene.n_objects):
            pose = synthetic.object_to_world[obj]
            local = np.einsum("tji,thwj->thwi", pose[:, :3, :3], world - pose[:, None, None, :3, 3])[masks[obj]]
            assert (np.abs(local) <= synthetic_half_extent(synthetic, obj) + 1e-3).all()
        background = world[~masks.any(axis=0)]
        on_static = (np.abs(background[:, 2]) < 1e-3) | (np.abs(np.abs(background[:, :2]).max(axis=1) - 14.0) < 1e-3)
        on_static |= np.abs(np.linalg.norm(background, axis=1) - 59.0) < 1.01
        for prop in synthetic.props:
            pose = prop.pose
            local = (background - pose[:3, 3]) @ pose[:3, :3]
            on_static |= (np.abs(local) <= prop.body.extent / 2 + 1e-3).all(axis=1)
        assert on_static.all(), kind


def synthetic_half_extent(synthetic, obj: int) -> np.ndarray:
    return np.nanmax(synthetic.scene.extent[obj], axis=0) / 2 if synthetic.scene.visible[obj].any() else np.inf


def test_varied_cameras_behave_as_named(varied):
    steps = {kind: np.linalg.norm(np.diff(s.scene.cam_to_world[:, :3, 3], axis=0), axis=1) for kind, s in varied.items()}
    np.testing.assert_array_equal(varied["static"].scene.cam_to_world,
                                  np.broadcast_to(varied["static"].scene.cam_to_world[0], (16, 4, 4)))
    assert steps["pan"].max() == 0.0
    assert all(steps[kind].sum() > 0.3 for kind in ("orbit", "walk", "follow"))


def test_varied_agents_face_their_path_and_stand_still_when_stopped(varied):
    for synthetic in varied.values():
        scene = synthetic.scene
        forward_world = np.einsum("tij,ktj->kti", scene.cam_to_world[:, :3, :3], forward_axis(scene.orientation))
        position = synthetic.object_to_world[..., :3, 3]
        velocity = (position[:, 2:] - position[:, :-2]) * VARIED["orbit"].fps / 2
        speed = np.linalg.norm(velocity, axis=-1)
        moving = scene.is_agent[:, None] & scene.visible[:, 1:-1] & (speed > 0.2)
        cos = np.sum(forward_world[:, 1:-1] * velocity / np.maximum(speed, 1e-9)[..., None], axis=-1)
        assert np.degrees(np.arccos(np.clip(cos[moving], -1, 1))).max() < 5.0
        assert np.abs(forward_world[..., 2][scene.is_agent[:, None] & scene.visible]).max() < 1e-5


def test_varied_scenes_stop_cross_the_frame_and_hide_behind_props():
    """Over a few footage-like scenes: objects stop and restart, enter or leave the view, and
    disappear while in front of the camera and inside the image (hidden by props or others)."""
    stops = crossings = hidden = 0
    categories, props = set(), set()
    for seed in range(6):
        config = SynthConfig(seed=100 + seed, width=96, height=64, n_frames=48, varied=True, shadows=False)
        synthetic = generate_scene(config)
        scene = synthetic.scene
        categories |= set(scene.categories)
        props |= {prop.body.category for prop in synthetic.props}
        position = synthetic.object_to_world[..., :3, 3]
        speed = np.linalg.norm(np.diff(position, axis=1), axis=-1) * config.fps
        stops += int(((speed < 1e-9).any(axis=1) & (speed > 0.3).any(axis=1)).sum())
        crossings += int((np.diff(scene.visible.astype(int), axis=1) != 0).any(axis=1).sum())
        camera = np.einsum("tji,ktj->kti", scene.cam_to_world[:, :3, :3], position - scene.cam_to_world[None, :, :3, 3])
        k = scene.intrinsics[0]
        u, v = k[0, 0] * camera[..., 0] / camera[..., 2] + k[0, 2], k[1, 1] * camera[..., 1] / camera[..., 2] + k[1, 2]
        inside = (camera[..., 2] > 0) & (u > 0) & (u < config.width) & (v > 0) & (v < config.height)
        hidden += int((inside & ~scene.visible).sum())
    assert stops >= 2 and crossings >= 2 and hidden >= 5
    assert {"person", "dog", "car"} <= categories and len(props) >= 2
