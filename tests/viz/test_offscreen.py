"""Tests of recon4d/viz/offscreen.py: the geometry round trip to the worker and its recovery."""

import numpy as np
import pytest

o3d = pytest.importorskip("open3d")

from recon4d.errors import Recon4dError  # noqa: E402
from recon4d.viz.offscreen import RenderCamera, render_geometries
from recon4d.viz.open3d_render import from_arrays, to_arrays  # noqa: E402


def _geometries():
    rng = np.random.default_rng(0)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(rng.uniform(-1, 1, (50, 3)) + [0, 0, 4]))
    cloud.colors = o3d.utility.Vector3dVector(np.tile([1.0, 0.0, 0.0], (50, 1)))
    lines = o3d.geometry.LineSet(o3d.utility.Vector3dVector([[0, 0, 3], [1, 0, 3]]), o3d.utility.Vector2iVector([[0, 1]]))
    lines.colors = o3d.utility.Vector3dVector([[0.0, 0.0, 1.0]])
    mesh = o3d.geometry.TriangleMesh.create_box(0.5, 0.5, 0.5).translate([-0.25, -0.25, 2.5])
    mesh.paint_uniform_color([0.0, 1.0, 0.0])
    return [cloud, lines, mesh]


def _camera(size=(96, 64)):
    intrinsics = np.array([[80.0, 0, size[0] / 2], [0, 80.0, size[1] / 2], [0, 0, 1]])
    return RenderCamera(intrinsics=intrinsics, cam_to_world=np.eye(4))


def test_arrays_round_trip_keeps_every_geometry():
    for geometry in _geometries():
        back = from_arrays(o3d, to_arrays(o3d, geometry))
        assert type(back) is type(geometry)
        for a, b in zip(to_arrays(o3d, geometry)[1:], to_arrays(o3d, back)[1:]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="cannot render"):
        to_arrays(o3d, o3d.geometry.VoxelGrid())


def test_render_draws_the_box_in_the_middle():
    image = render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0)
    assert isinstance(image, np.ndarray) and image.shape == (64, 96, 3)
    green = (image[..., 1] > 200) & (image[..., 0] < 60) & (image[..., 2] < 60)
    rows, cols = np.nonzero(green)
    assert green.sum() > 50 and abs(rows.mean() - 32) < 4 and abs(cols.mean() - 48) < 4


def test_stuck_worker_is_replaced(monkeypatch):
    import recon4d.viz.offscreen as offscreen

    monkeypatch.setattr(offscreen, "_WORKER_TIMEOUT_S", 1e-4)
    failures = render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0)
    assert isinstance(failures, list) and "render worker timed out" in failures[0]
    monkeypatch.setattr(offscreen, "_WORKER_TIMEOUT_S", 300.0)
    assert render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0).shape == (64, 96, 3)


def test_viewer_turns_failures_into_a_clear_error(monkeypatch):
    import recon4d.viz.viewer as viewer

    monkeypatch.setattr(viewer, "render_geometries", lambda *args: ["legacy: no EGL", "filament: no Vulkan"])
    scene = _tiny_scene()
    with pytest.raises(Recon4dError, match="legacy: no EGL; filament: no Vulkan.*apt-get install"):
        viewer.render_image(scene, frame=0, size=(64, 48), color_by="object")


def _tiny_scene():
    from recon4d.types import Scene

    n = 2
    return Scene(timestamps_s=np.arange(n, dtype=float), frame_index=np.arange(n),
                 cam_to_world=np.tile(np.eye(4), (n, 1, 1)), intrinsics=np.full((n, 3, 3), np.nan, np.float32), ids=np.zeros(0, np.int32), categories=(),
                 is_agent=np.zeros(0, bool), visible=np.zeros((0, n), bool), box_xyxy=np.zeros((0, n, 4), np.float32),
                 center_world=np.zeros((0, n, 3)), orientation=np.zeros((0, n, 3), np.float32),
                 orient_conf=np.zeros((0, n), np.float32))
