import json
import subprocess
import sys

from click.testing import CliRunner

from recon4d import __version__
from recon4d.cli.main import main
from recon4d.store import write_scene
from tests.conftest import make_scene


def _loaded_modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_and_help_stay_light():
    heavy = {"torch", "open3d", "transformers", "ray", "cv2"}
    assert not heavy & _loaded_modules("import recon4d, recon4d.types, recon4d.store, recon4d.geometry")
    loaded = _loaded_modules(
        "from click.testing import CliRunner\nfrom recon4d.cli.main import main\n"
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output")
    assert not heavy & loaded


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_inspect_json(tmp_path):
    scene = make_scene(n_frames=6, n_objects=3, heavy=False)
    path = write_scene(scene, tmp_path / "s.zarr")
    result = CliRunner().invoke(main, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["n_frames"] == 6 and summary["duration_s"] == scene.duration_s
    assert summary["backends"] == {"recon": "test"}
    assert [o["id"] for o in summary["objects"]] == scene.ids.tolist()
    assert [o["visible_frames"] for o in summary["objects"]] == scene.visible.sum(1).tolist()


def test_inspect_table(tmp_path):
    path = write_scene(make_scene(), tmp_path / "s.zarr")
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "person" in result.output and "2 objects" in result.output


def test_inspect_bad_store_is_one_clean_error(tmp_path):
    (tmp_path / "x.zarr").mkdir()
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "x.zarr")])
    assert result.exit_code == 1
    assert "is not a recon4d scene store" in result.output
    assert "Traceback" not in result.output


def test_synth_then_inspect(tmp_path):
    out = tmp_path / "s"
    result = CliRunner().invoke(main, ["synth", "-o", str(out), "--seed", "3", "--frames", "8", "--size", "160x96",
                                       "--objects", "3"])
    assert result.exit_code == 0, result.output
    assert (out / "video.mp4").exists() and (out / "synth_config.json").exists()
    summary = json.loads(CliRunner().invoke(main, ["inspect", str(out / "scene.zarr"), "--json"]).output)
    assert summary["n_frames"] == 8 and len(summary["objects"]) == 3 and summary["has_masks"]
    again = CliRunner().invoke(main, ["synth", "-o", str(out), "--seed", "3", "--frames", "8", "--size", "160x96"])
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_synth_camera_kinds_and_plain(tmp_path):
    out = tmp_path / "p"
    result = CliRunner().invoke(main, ["synth", "-o", str(out), "--seed", "4", "--frames", "6", "--size", "96x64",
                                       "--camera", "pan", "--objects", "2"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "synth_config.json").read_text())
    assert config["camera_kind"] == "pan" and config["varied"] is True and "camera: pan" in result.output
    plain = CliRunner().invoke(main, ["synth", "-o", str(tmp_path / "q"), "--seed", "4", "--frames", "4",
                                      "--size", "96x64", "--plain"])
    assert plain.exit_code == 0 and json.loads((tmp_path / "q" / "synth_config.json").read_text())["camera_kind"] == "orbit"
    bad = CliRunner().invoke(main, ["synth", "-o", str(tmp_path / "r"), "--camera", "drone"])
    assert bad.exit_code == 2 and "walk" in bad.output
    both = CliRunner().invoke(main, ["synth", "-o", str(tmp_path / "r"), "--camera", "walk", "--static-camera"])
    assert both.exit_code == 2 and "still camera" in both.output and "Traceback" not in both.output


def test_synth_rejects_bad_size(tmp_path):
    result = CliRunner().invoke(main, ["synth", "-o", str(tmp_path / "s"), "--size", "big"])
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output


def test_synth_rejects_odd_size(tmp_path):
    result = CliRunner().invoke(main, ["synth", "-o", str(tmp_path / "s"), "--size", "161x96"])
    assert result.exit_code == 2 and "even" in result.output and "Traceback" not in result.output


def test_curate_keeps_moving_and_lists_unreadable(tmp_path):
    import numpy as np

    from recon4d.synth.scene import SynthConfig, write_synthetic
    from recon4d.video import write_video

    moving = write_synthetic(tmp_path / "m", SynthConfig(seed=0, n_frames=24, width=160, height=96)).video
    frame = (np.random.default_rng(0).random((96, 160, 3)) * 255).astype(np.uint8)
    still = write_video(tmp_path / "still.mp4", iter([frame] * 24), 12.0)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    out = tmp_path / "kept.txt"
    result = CliRunner().invoke(main, ["curate", str(moving), str(still), str(broken), "-o", str(out),
                                       "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert out.read_text().split() == [str(moving)]
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["kept"] for r in report] == [True, False, False]
    assert "unreadable" in report[2]["reason"]


def _scene_with_quality():
    from dataclasses import replace

    from tests.conftest import make_quality

    scene = make_scene(n_frames=6, n_objects=3, heavy=False)
    objects, camera = make_quality(3, 6)
    return replace(scene, object_quality=objects, camera_quality=camera,
                   warnings=("recon: the camera pose is not trusted in 2 of 6 frames", "lift: object 8 is not trusted"))


def test_inspect_prints_quality_and_the_pipeline_warnings(tmp_path):
    scene = _scene_with_quality()
    path = write_scene(scene, tmp_path / "q.zarr")
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 warning(s) from the pipeline" in result.output
    assert "the camera pose is not trusted in 2 of 6 frames" in result.output
    assert "scale from ground-plane" in result.output and "quality" in result.output
    assert "object 8: issue 1" in result.output.replace("\n", " ")  # issues listed under the table, by id
    summary = json.loads(CliRunner().invoke(main, ["inspect", str(path), "--json"]).output)
    assert summary["warnings"] == list(scene.warnings)
    assert summary["camera_quality"]["motion"] == "parallax"
    first = summary["objects"][0]["quality"]
    assert first["score"] == float(scene.object_quality.score[0])
    assert first["trusted_frames"] == int(scene.object_quality.frame_ok[0].sum())
    plain = CliRunner().invoke(main, ["inspect", str(write_scene(make_scene(), tmp_path / "p.zarr"))])
    assert "no warnings recorded" in plain.output and "no quality record" in plain.output


def test_qa_quality_gate_options(tmp_path):
    from dataclasses import replace

    from tests.qa_compiler.test_quality_gate import rich_scene, with_record

    scene = with_record(rich_scene(seed=3), score=[0.9, 0.3, 0.9, 0.9])
    path = write_scene(replace(scene, extent=None), tmp_path / "g.zarr")
    out = tmp_path / "qa.jsonl"
    gated = CliRunner().invoke(main, ["qa", str(path), "-o", str(out), "-n", "20", "--report",
                                      str(tmp_path / "r.json")])
    assert gated.exit_code == 0, gated.output
    assert "quality gate (min quality 0.5)" in gated.output and "kept 3/4 objects" in gated.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["report"]["gate"]["counts"]["object_below_min_quality"] == 1
    assert report["config"]["min_quality"] == 0.5
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert not any("2" in r["targets"] for r in records)
    lenient = CliRunner().invoke(main, ["qa", str(path), "-o", str(out), "-n", "20", "--min-quality", "0.2"])
    assert "kept 4/4 objects" in lenient.output
    off = CliRunner().invoke(main, ["qa", str(path), "-o", str(out), "-n", "20", "--no-quality-gate"])
    assert off.exit_code == 0 and "quality gate off" in off.output
    bad = CliRunner().invoke(main, ["qa", str(path), "-o", str(out), "--min-quality", "2"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
