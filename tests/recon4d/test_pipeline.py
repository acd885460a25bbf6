"""`process_video` / `recon4d process` end to end on synthetic videos and bad inputs."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from recon4d.cli.main import main
from recon4d.errors import VideoError
from recon4d.pipeline import PipelineError, ProcessConfig, box_masks, process_video
from recon4d.store import open_scene
from recon4d.synth.scene import SynthConfig, write_synthetic
from recon4d.video import write_video


@pytest.fixture(scope="module")
def moving_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("moving")
    return write_synthetic(root, SynthConfig(seed=1, n_frames=24, width=320, height=180, n_objects=3))


@pytest.fixture(scope="module")
def static_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    return write_synthetic(root, SynthConfig(seed=2, n_frames=24, width=320, height=180, n_objects=2,
                                             static_camera=True))


def _rotation_deg(a, b):
    relative = a[:3, :3].T @ b[:3, :3]
    return np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1)))


def test_box_masks_cover_the_box_in_clip_pixels():
    boxes = np.array([[[10, 20, 30, 40], [np.nan] * 4]], np.float32)  # source 100x80
    masks = box_masks(boxes, (100, 80), (50, 40))
    assert masks.shape == (1, 2, 40, 50)
    assert masks[0, 0].sum() == 10 * 10 and masks[0, 0, 10:20, 5:15].all()
    assert not masks[0, 1].any()


def test_moving_scene_end_to_end(moving_video):
    result = process_video(moving_video.video, ProcessConfig(n_frames=16))
    scene = result.scene
    assert scene.n_frames == 16 and scene.backends["recon"]["name"] == "classic"
    assert scene.backends["track"]["name"] == "classic" and scene.backends["orient"]["name"] == "motion"
    assert scene.n_objects >= 1
    gt = open_scene(moving_video.scene)
    rotation = _rotation_deg(scene.cam_to_world[0], scene.cam_to_world[-1])
    gt_rotation = _rotation_deg(gt.cam_to_world[0], gt.cam_to_world[-1])
    assert abs(rotation - gt_rotation) < 0.3 * gt_rotation + 1.0
    assert np.isfinite(scene.center_world[scene.visible]).mean() > 0.5
    assert [s.stage for s in result.stages] == ["decode", "track", "recon", "lift", "orient"]


def test_static_camera_gives_a_near_static_camera(static_video):
    scene = process_video(static_video.video, ProcessConfig(n_frames=12)).scene
    moved = np.linalg.norm(scene.cam_to_world[:, :3, 3] - scene.cam_to_world[0, :3, 3], axis=-1).max()
    turned = max(_rotation_deg(scene.cam_to_world[0], pose) for pose in scene.cam_to_world)
    assert turned < 0.5 and moved < 0.05


def test_cli_process_then_inspect(tmp_path, moving_video):
    out = tmp_path / "scene.zarr"
    result = CliRunner().invoke(main, ["process", str(moving_video.video), "-o", str(out), "--frames", "12",
                                       "--keep-points", "--keep-masks"])
    assert result.exit_code == 0, result.output
    assert "objects:" in result.output and "time:" in result.output
    scene = open_scene(out)
    assert scene.local_points is not None and scene.config["n_frames"] == 12
    summary = json.loads(CliRunner().invoke(main, ["inspect", str(out), "--json"]).output)
    assert summary["backends"] == {"track": "classic", "recon": "classic", "orient": "motion"}


def _write(path, frames, fps=10.0):
    return write_video(path, iter(frames), fps)


def test_no_moving_objects_gives_an_empty_valid_scene(tmp_path):
    rng = np.random.default_rng(0)
    frame = (rng.random((96, 160, 3)) * 255).astype(np.uint8)
    video = _write(tmp_path / "still.mp4", [frame] * 20)
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(tmp_path / "s.zarr"), "--frames", "8"])
    assert result.exit_code == 0, result.output
    assert "no moving objects" in result.output
    assert open_scene(tmp_path / "s.zarr").n_objects == 0


def test_all_black_video_gives_an_empty_valid_scene(tmp_path):
    video = _write(tmp_path / "black.mp4", [np.zeros((96, 160, 3), np.uint8)] * 20)
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(tmp_path / "s.zarr"), "--frames", "8"])
    assert result.exit_code == 0, result.output
    scene = open_scene(tmp_path / "s.zarr")
    assert scene.n_objects == 0 and np.allclose(scene.cam_to_world, np.eye(4))


@pytest.mark.parametrize("case", ["corrupt", "one_frame", "short_interval", "missing"])
def test_bad_inputs_end_cleanly_without_a_store(tmp_path, case):
    out = tmp_path / "s.zarr"
    if case == "corrupt":
        video = tmp_path / "bad.mp4"
        video.write_bytes(np.random.default_rng(1).bytes(5000))
        expected = "could not be opened"
    elif case == "one_frame":
        video = _write(tmp_path / "one.mp4", [np.full((96, 160, 3), 80, np.uint8)])
        expected = "at least 2"
    elif case == "short_interval":
        video = _write(tmp_path / "short.mp4", [np.full((96, 160, 3), 80, np.uint8)] * 10)
        expected = "starts after the video ends"
    else:
        video = tmp_path / "nope.mp4"
        expected = "does not exist"
    args = ["process", str(video), "-o", str(out)]
    if case == "short_interval":
        args += ["--start", "5", "--end", "8"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert expected in result.output.lower() or expected in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "s.zarr.partial").exists()


def test_one_frame_request_is_a_config_error():
    with pytest.raises(PipelineError, match="at least 2"):
        ProcessConfig(n_frames=1)


def test_video_errors_propagate(tmp_path):
    with pytest.raises(VideoError):
        process_video(tmp_path / "missing.mp4")


def test_interval_past_the_end_is_clamped_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    frame = (rng.random((96, 160, 3)) * 255).astype(np.uint8)
    video = _write(tmp_path / "still.mp4", [frame] * 20)
    result = process_video(video, ProcessConfig(n_frames=4, start_s=0.5, end_s=9.0))
    assert any("lasts 2.00 s" in w for w in result.warnings)
    assert result.scene.timestamps_s[0] >= 0.5
