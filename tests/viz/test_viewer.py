"""Tests of recon4d/viz/viewer.py on a small synthetic scene (points, masks and video present)."""

import numpy as np
import pytest

pytest.importorskip("open3d")

from recon4d.store import open_scene  # noqa: E402
from recon4d.synth.scene import SynthConfig, write_synthetic  # noqa: E402
from recon4d.viz.viewer import build_geometries, object_palette, render_image, scene_camera  # noqa: E402


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("viewer"), SynthConfig(seed=0, n_frames=8, width=160, height=96))


@pytest.fixture(scope="module")
def scene(paths):
    return open_scene(paths.scene)


def test_build_geometries_counts(scene):
    import open3d as o3d

    geometries = build_geometries(scene, frame=0, color_by="object")
    clouds = [g for g in geometries if isinstance(g, o3d.geometry.PointCloud)]
    lines = [g for g in geometries if isinstance(g, o3d.geometry.LineSet)]
    meshes = [g for g in geometries if isinstance(g, o3d.geometry.TriangleMesh)]
    visible = scene.visible[:, 0]
    agents = visible & scene.is_agent & np.isfinite(scene.orientation[:, 0]).all(axis=1)
    assert len(clouds) == 1 and len(clouds[0].points) > 0
    assert len(lines) == 2 + scene.n_objects  # camera path + current frustum + trajectories
    assert len(meshes) == visible.sum() + agents.sum() + 1  # spheres + arrows + axes


def test_build_geometries_rejects_bad_frame(scene):
    from recon4d.errors import Recon4dError

    with pytest.raises(Recon4dError, match="out of range"):
        build_geometries(scene, frame=scene.n_frames)


def test_render_from_scene_camera_puts_objects_where_they_are(scene):
    size = (320, 192)
    image = render_image(scene, frame=0, size=size, color_by="object", camera=scene_camera(scene, 0, size))
    assert image.shape == (192, 320, 3) and image.std() > 5
    palette = np.round(object_palette(scene.n_objects) * 255).astype(int)
    masks = np.asarray(scene.masks[:, 0])
    checked = 0
    for k in np.flatnonzero(scene.visible[:, 0]):
        matches = (np.abs(image.astype(int) - palette[k]).max(axis=-1) <= 3)
        mask_up = masks[k].repeat(2, axis=0).repeat(2, axis=1)
        if mask_up.sum() < 40:
            continue
        assert matches[mask_up].mean() > 0.5, f"object {k} not drawn over its mask"
        world = np.append(scene.center_world[k, 0], 1.0)
        camera = np.linalg.inv(scene.cam_to_world[0]) @ world
        uv = (scene_camera(scene, 0, size).intrinsics @ camera[:3])[:2] / camera[2]
        u, v = int(uv[0]), int(uv[1])
        window = matches[max(v - 6, 0):v + 7, max(u - 6, 0):u + 7]
        assert window.any(), f"object {k} colour not near its projected centre {uv}"
        checked += 1
    assert checked >= 1


def test_cli_screenshot_and_errors(paths, tmp_path, monkeypatch):
    import cv2
    from click.testing import CliRunner

    from recon4d.cli.main import main

    store = str(paths.scene)
    out = tmp_path / "shot.png"
    result = CliRunner().invoke(main, ["view", store, "--frame", "3", "--screenshot", str(out), "--size", "400x240",
                                       "--color", "object"])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out))
    assert image.shape == (240, 400, 3) and image.std() > 5
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["view", store, "--frame", "1", "--size", "200x120"])
    assert result.exit_code == 0 and (tmp_path / "scene_frame1.png").is_file()  # no display: a PNG
    result = CliRunner().invoke(main, ["view", store, "--frame", "99", "--screenshot", str(out)])
    assert result.exit_code == 1 and "out of range" in result.output
    result = CliRunner().invoke(main, ["view", store, "--size", "big"])
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output



def test_non_finite_poses_are_named_not_blamed_on_the_graphics_drivers(tmp_path):
    from dataclasses import replace

    from recon4d.errors import Recon4dError
    from recon4d.viz.viewer import build_geometries, scene_bounds
    from tests.conftest import make_scene

    scene = make_scene(n_frames=5, heavy=True)
    poses = scene.cam_to_world.copy()
    poses[2] = np.nan
    poses[4, 0, 3] = np.inf
    bad = replace(scene, cam_to_world=poses)
    with pytest.raises(Recon4dError, match=r"not finite numbers \(NaN or inf\) at 2 of 5 frames \(2, 4\)"):
        build_geometries(bad, frame=0)
    nothing = replace(scene, cam_to_world=np.full_like(poses, np.nan), visible=np.zeros_like(scene.visible),
                      center_world=np.full_like(scene.center_world, np.nan))
    with pytest.raises(Recon4dError, match="at 5 of 5 frames"):
        scene_bounds(nothing)
