"""recon4d.viz.plots: the scene figure, and above all that the top-down view is not mirrored."""

import struct

import numpy as np
import pytest
from click.testing import CliRunner

from recon4d.cli.plot import plot_command
from recon4d.viz.plots import PlotError, plot_scene, scene_figure, scene_layout, step_speeds, topdown_xy
from recon4d.store import write_scene
from recon4d.types import Scene


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _yaw(angle_rad: float) -> np.ndarray:
    """World rotation about world z by angle_rad (the world frame here is arbitrary)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def left_moving_scene(world_yaw_rad: float = 0.7, n_frames: int = 10) -> Scene:
    """A static camera; object 1 walks to the camera's left, object 2 (a box) walks away from it.

    Built in OpenCV camera coordinates (x right, y down, z forward), then carried into a world
    frame rotated by ``world_yaw_rad`` so a plot that ignored the camera pose would be wrong.
    """
    to_world = _yaw(world_yaw_rad)
    cam_to_world = np.tile(np.eye(4), (n_frames, 1, 1))
    cam_to_world[:, :3, :3] = to_world
    cam_to_world[:, :3, 3] = [1.0, 2.0, 0.5]
    camera_points = np.zeros((2, n_frames, 3))
    camera_points[0, :, 0] = np.linspace(0.0, -3.0, n_frames)  # −x: to the camera's left
    camera_points[0, :, 2] = 5.0
    camera_points[1, :, 0] = 1.0
    camera_points[1, :, 1] = 0.5  # below the camera
    camera_points[1, :, 2] = np.linspace(4.0, 8.0, n_frames)
    center_world = camera_points @ to_world.T + cam_to_world[0, :3, 3]
    return Scene(
        timestamps_s=np.arange(n_frames) / 5.0,
        frame_index=np.arange(n_frames),
        cam_to_world=cam_to_world,
        intrinsics=np.full((n_frames, 3, 3), np.nan),
        ids=np.array([1, 2]),
        categories=("person", "box"),
        is_agent=np.array([True, False]),
        visible=np.ones((2, n_frames), bool),
        box_xyxy=np.zeros((2, n_frames, 4)),
        center_world=center_world,
        orientation=np.where(np.array([True, False])[:, None, None], 0.0, np.nan) * np.ones((2, n_frames, 3)),
        orient_conf=np.ones((2, n_frames)),
    )


def test_topdown_xy_puts_left_on_the_left():
    flu = np.array([[2.0, 1.0, 0.0], [2.0, -1.0, 0.0]])  # forward 2, left 1 / right 1
    np.testing.assert_allclose(topdown_xy(flu), [[-1.0, 2.0], [1.0, 2.0]])


def test_object_moving_left_is_drawn_moving_left():
    scene = left_moving_scene()
    layout = scene_layout(scene)
    walker = layout.topdown_xy[0]
    # Forward stays 5 m, the horizontal page coordinate falls from 0 to −3: leftwards.
    np.testing.assert_allclose(walker[:, 1], 5.0, atol=1e-9)
    np.testing.assert_allclose(walker[[0, -1], 0], [0.0, -3.0], atol=1e-9)
    np.testing.assert_allclose(layout.objects_flu[0, -1], [5.0, 3.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(layout.objects_flu[1, :, 2], -0.5, atol=1e-9)  # the box is below


def test_axes_data_match_the_layout():
    scene = left_moving_scene()
    figure, layout = scene_figure(scene)
    topdown = figure.axes[0]
    lines = {line.get_label(): line for line in topdown.get_lines()}
    walker = lines["1 person"]
    assert walker.get_xdata()[-1] == pytest.approx(-3.0) and walker.get_ydata()[-1] == pytest.approx(5.0)
    assert "left" in topdown.get_xlabel() and "forward" in topdown.get_ylabel()
    assert topdown.get_xlim()[0] < -3.0 < topdown.get_xlim()[1]
    assert not topdown.xaxis_inverted() and not topdown.yaxis_inverted()
    figure.clf()


def test_agent_observer_frame():
    # An agent facing the camera (azimuth 0) has its left on the image's right (+x).
    scene = left_moving_scene()
    layout = scene_layout(scene, observer="1", frame=0)
    box = layout.objects_flu[1]
    # The box is 1 m to the camera's right: the agent (at x=0, z=5, facing the camera) sees
    # it on its left, nearer to itself as the box walks towards z = 5.
    assert (box[:, 1] > 0).all()
    assert layout.topdown_xy[1, 0, 0] < 0
    np.testing.assert_allclose(layout.objects_flu[0, 0], 0.0, atol=1e-9)


def test_plot_scene_writes_png(tmp_path):
    out = tmp_path / "sub" / "scene.png"
    layout = plot_scene(left_moving_scene(), out, pair=("camera", 2))
    assert out.stat().st_size > 10_000
    assert png_size(out) == (1200, 900)
    assert layout.pair == ("camera", "2")
    np.testing.assert_allclose(layout.distance[0], np.sqrt(1 + 0.25 + 16), rtol=1e-9)


def test_default_pair_and_no_objects(tmp_path):
    scene = left_moving_scene()
    assert scene_layout(scene).pair == ("1", "2")
    empty = Scene(
        timestamps_s=scene.timestamps_s, frame_index=scene.frame_index, cam_to_world=scene.cam_to_world,
        intrinsics=scene.intrinsics, ids=np.zeros(0, int), categories=(), is_agent=np.zeros(0, bool),
        visible=np.zeros((0, 10), bool), box_xyxy=np.zeros((0, 10, 4)), center_world=np.zeros((0, 10, 3)),
        orientation=np.zeros((0, 10, 3)), orient_conf=np.zeros((0, 10)),
    )
    layout = plot_scene(empty, tmp_path / "empty.png")
    assert layout.pair is None and png_size(tmp_path / "empty.png") == (1200, 900)


def test_step_speeds_in_metres_per_second():
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 2, 0]], float)
    mid_s, speed = step_speeds(positions, np.array([0.0, 0.5, 1.5]))
    np.testing.assert_allclose(mid_s, [0.25, 1.0])
    np.testing.assert_allclose(speed, [2.0, 2.0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(frame=10), "outside"),
    (dict(observer="9"), "no object with id 9"),
    (dict(observer="2"), "not an agent"),
    (dict(observer="someone"), "neither"),
    (dict(pair=("1", "1")), "two different"),
    (dict(pair=("1",)), "two entities"),
])
def test_bad_arguments_raise(tmp_path, kwargs, message):
    with pytest.raises(PlotError, match=message):
        plot_scene(left_moving_scene(), tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()


def test_invisible_agent_observer_raises():
    scene = left_moving_scene()
    center = scene.center_world.copy()
    visible = scene.visible.copy()
    center[0, 3], visible[0, 3] = np.nan, False
    from dataclasses import replace

    with pytest.raises(PlotError, match="no centre or orientation at frame 3"):
        scene_layout(replace(scene, center_world=center, visible=visible), observer="1", frame=3)


def test_cli(tmp_path):
    store = write_scene(left_moving_scene(), tmp_path / "scene.zarr")
    out = tmp_path / "plot.png"
    result = CliRunner().invoke(plot_command, [str(store), "-o", str(out), "--observer", "1", "--frame", "2",
                                               "--pair", "camera,1"])
    assert result.exit_code == 0, result.output
    assert "object 1 at frame 2" in result.output and png_size(out) == (1200, 900)
    bad = CliRunner().invoke(plot_command, [str(store), "-o", str(out), "--pair", "1"])
    assert bad.exit_code == 2 and "A,B" in bad.output
