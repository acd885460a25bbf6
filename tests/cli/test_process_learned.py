"""`recon4d process` with every learned backend, on tiny random weights the test writes."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("sam2")
pytest.importorskip("transformers")

from recon4d.cli.main import main  # noqa: E402
from recon4d.store import open_scene  # noqa: E402
from tests.models.tiny_pi3 import write_tiny_pi3  # noqa: E402
from tests.orient.tiny_orient_anything import write_tiny_orient_anything  # noqa: E402
from tests.tracking.tiny_sam2 import write_tiny_grounding_dino, write_tiny_sam2  # noqa: E402


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    weights = home / "weights"
    write_tiny_pi3(weights / "pi3")
    write_tiny_grounding_dino(weights / "grounding-dino")
    write_tiny_sam2(weights / "sam2")
    write_tiny_orient_anything(weights / "orient-anything")
    return home


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    result = CliRunner().invoke(main, ["synth", "-o", str(out), "--seed", "1", "--frames", "8", "--size", "224x126"])
    assert result.exit_code == 0, result.output
    return out / "video.mp4"


def test_process_with_all_learned_backends_writes_a_valid_store(home, video, tmp_path):
    out = tmp_path / "learned.zarr"
    args = ["process", str(video), "-o", str(out), "--frames", "6", "--recon", "pi3", "--tracker", "sam2",
            "--orient", "orient-anything", "--objects", "person. box.", "-O", "track.box_threshold=0",
            "-O", "track.text_threshold=0", "-O", "track.max_area_frac=1.0", "-O", "track.min_area_frac=0.0",
            "-O", "orient.conf_threshold=0", "-O", "recon.chunk_frames=4", "-O", "recon.overlap=2",
            "-O", "lift.depth_edge_rtol=none", "--keep-points", "--keep-masks"]
    result = CliRunner().invoke(main, args, env={"RECON4D_HOME": str(home)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    scene = open_scene(out)
    assert {stage: info["name"] for stage, info in scene.backends.items()} == {
        "recon": "pi3", "track": "sam2", "orient": "orient-anything"}
    assert all(info["weights_sha256"] for info in scene.backends.values())
    assert scene.n_frames == 6 and scene.n_objects >= 1
    assert set(scene.categories) <= {"person", "box"}
    np.testing.assert_allclose(scene.cam_to_world[0], np.eye(4), atol=1e-9)
    assert np.isfinite(scene.intrinsics).all()
    assert scene.local_points.shape[0] == 6 and np.isfinite(np.asarray(scene.local_points)).all()
    visible = scene.visible
    # Random depth is a depth edge almost everywhere: the edge test is off (-O lift.depth_edge_rtol=none)
    # so that centres lift; visible means located.
    assert visible.any() and np.isnan(scene.center_world[~visible]).all()
    assert np.isfinite(scene.center_world[visible]).all() and scene.unit == "arbitrary"
    agents = scene.is_agent
    assert np.isnan(scene.orientation[~agents]).all()
    if (visible & agents[:, None]).any():
        assert np.isfinite(scene.orientation[visible & agents[:, None]]).all()  # gating off
    config = json.loads(out.with_name(out.name + ".config.json").read_text())
    assert config["objects"] == "person. box." and config["backend_options"]["recon"]["chunk_frames"] == 4
    assert config["lift"]["depth_edge_rtol"] is None


def test_auto_uses_installed_weights(home, video, tmp_path):
    out = tmp_path / "auto.zarr"
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(out), "--frames", "4",
                                       "-O", "recon.chunk_frames=4"], env={"RECON4D_HOME": str(home)})
    assert result.exit_code == 0, result.output
    for stage, name in (("track", "sam2"), ("recon", "pi3"), ("orient", "orient-anything")):
        assert f"{stage}: {name} (weights found under" in result.output
    assert open_scene(out).backends["recon"]["name"] == "pi3"


def test_missing_weights_name_the_file_and_the_flag(video, tmp_path):
    runner = CliRunner()
    for flag, value, alternative, component in (("--recon", "pi3", "--recon classic", "pi3"),
                                                ("--tracker", "sam2", "--tracker classic", "grounding-dino"),
                                                ("--orient", "orient-anything", "--orient motion", "orient-anything")):
        result = runner.invoke(main, ["process", str(video), "-o", str(tmp_path / "x.zarr"), flag, value],
                               env={"RECON4D_HOME": str(tmp_path / "empty")})
        assert result.exit_code == 1, result.output
        message = " ".join(result.output.split())
        assert str(tmp_path / "empty" / "weights" / component) in message and alternative in message
        assert "Traceback" not in result.output
        assert not (tmp_path / "x.zarr").exists()


def test_objects_with_classic_tracker_is_refused(video, tmp_path):
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(tmp_path / "x.zarr"), "--tracker",
                                       "classic", "--objects", "dog."], env={"RECON4D_HOME": str(tmp_path)})
    # options that conflict are a usage error (README "Exit codes")
    assert result.exit_code == 2 and "--objects" in result.output and "--tracker sam2" in result.output


def test_bad_backend_option_is_a_usage_error(video, tmp_path):
    result = CliRunner().invoke(main, ["process", str(video), "-O", "nostage.x=1"])
    assert result.exit_code == 2 and "STAGE.KEY=VALUE" in result.output
