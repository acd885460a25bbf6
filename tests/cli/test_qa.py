"""`recon4d qa` end to end on three synthetic scenes: all 12 types, all four formats, read back."""

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from recon4d.cli.main import main
from recon4d.qa_compiler.export import read_records
from recon4d.qa_compiler.records import QUESTION_TYPES
from recon4d.store import write_scene
from recon4d.synth.scene import SynthConfig, generate_scene
from tests.qa_compiler.conftest import chat_server  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def scene_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    paths = []
    for seed in (0, 1, 2):
        scene = generate_scene(SynthConfig(seed=seed, n_frames=36, width=192, height=108, n_objects=4)).scene
        assert scene.is_agent.any(), "the test needs agents for orientation questions"
        paths.append(str(write_scene(replace(scene, local_points=None, conf=None, masks=None),
                                     root / f"synth{seed}.zarr")))
    return paths


def _run(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("fmt, name", [("jsonl", "qa.jsonl"), ("dsr-json", "qa.json"), ("parquet", "qa.parquet"),
                                       ("qwen", "qwen.json")])
def test_all_types_and_formats_read_back(tmp_path, scene_paths, fmt, name):
    out = tmp_path / name
    _run(["qa", *scene_paths, "-o", str(out), "--format", fmt, "-n", "40", "--seed", "5",
          "--report", str(tmp_path / "report.json")])
    items = read_records(out, fmt=fmt)
    assert len(items) == 120
    report = json.loads((tmp_path / "report.json").read_text())["report"]
    assert report["generated"] == 120 and report["attempts"] == 120 + report["total_failures"]
    assert set(report["generated_by_type"]) == set(QUESTION_TYPES)
    if fmt == "jsonl":
        assert {r.qtype for r in items} == set(QUESTION_TYPES)
        assert len({r.video_id for r in items}) == 3 and len({r.store_sha256 for r in items}) == 3
    elif fmt != "qwen":
        assert {i["type"] for i in items} == set(QUESTION_TYPES)
    assert (tmp_path / (name + ".config.json")).exists()


def test_same_seed_same_bytes_other_seed_other_questions(tmp_path, scene_paths):
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        _run(["qa", *scene_paths, "-o", str(tmp_path / f"{run}.parquet"), "-n", "12", "--seed", str(seed)])
        _run(["qa", *scene_paths, "-o", str(tmp_path / f"{run}.jsonl"), "-n", "12", "--seed", str(seed)])
    for suffix in ("parquet", "jsonl"):
        assert (tmp_path / f"a.{suffix}").read_bytes() == (tmp_path / f"b.{suffix}").read_bytes()
        assert (tmp_path / f"a.{suffix}").read_bytes() != (tmp_path / f"c.{suffix}").read_bytes()


def test_min_margin_and_types_options(tmp_path, scene_paths):
    out = tmp_path / "qa.jsonl"
    result = _run(["qa", *scene_paths, "-o", str(out), "-n", "10", "--types", "abs_dis,rel_dir",
                   "--min-margin", "0.1", "--profile", "paper", "--distractors", "hard"])
    records = read_records(out)
    assert {r.qtype for r in records} <= {"abs_dis", "rel_dir"}
    assert all(r.margin >= 0.1 and r.profile == "paper" and r.distractors == "hard" for r in records)
    assert "below_min_margin" in result.output


def test_unknown_type_is_a_clean_error(tmp_path, scene_paths):
    result = CliRunner().invoke(main, ["qa", scene_paths[0], "-o", str(tmp_path / "q.jsonl"), "--types", "abs_nope"])
    assert result.exit_code == 2 and "abs_nope" in result.output and "Traceback" not in result.output


def test_audit_command(tmp_path, scene_paths):
    out = tmp_path / "qa.parquet"
    _run(["qa", *scene_paths, "-o", str(out), "-n", "20"])
    result = _run(["qa", "audit", str(out)])
    audit = json.loads(result.output)
    assert audit["n_items"] == 60 and set(audit["letters"]) == set("ABCD")
    assert "longest" in audit["heuristics"]


def test_llm_questions_through_a_local_server(tmp_path, scene_paths, chat_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MY_KEY", "sk-local")
    reply = ("Which object moves closer to the observer?\nA. The first one.\nB. The second one.\n"
             "C. Both equally.\nD. Neither.\nB")
    chat_server.reply("not six lines")
    for _ in range(3):
        chat_server.reply(reply)
    out = tmp_path / "qa.jsonl"
    result = _run(["qa", *scene_paths, "-o", str(out), "-n", "2", "--llm-url", chat_server.url,
                   "--llm-model", "local", "--llm-key-env", "MY_KEY"])
    records = read_records(out)
    llm = [r for r in records if r.qtype == "llm"]
    assert len(llm) == 3 and all(r.answer == "B" for r in llm)
    assert "1 rejected replies" in result.output
    assert chat_server.requests[0]["headers"]["Authorization"] == "Bearer sk-local"
    assert "trajectories_flu" in llm[0].quantities
