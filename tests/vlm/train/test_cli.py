"""`recon4d train` → `recon4d eval` end to end on CPU, the text-only floor, the 7B dry run, and bad input."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.vlm.train.conftest import REPO, TINY_YAML, run_cli

EVAL_SMALL = ["--min-pixels", "784", "--max-pixels", "3136", "--max-new-tokens", "4"]


def clean_error(result, *words):
    """Exit code 1 or 2, one "error:" paragraph naming ``words``, no traceback."""
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output and "error:" in result.output.lower(), result.output
    for word in words:
        assert word in result.output, (word, result.output)


@pytest.mark.slow
def test_train_then_eval_end_to_end(qa_copy, tmp_path, capsys):
    started = time.perf_counter()
    trained = run_cli(["train", TINY_YAML, "--data", qa_copy / "qa.jsonl", "-o", tmp_path / "run"])
    assert trained.exit_code == 0, trained.output
    assert "trained steps 0→30 on 24 items (skipped: none)" in trained.output
    evaluated = run_cli(["eval", tmp_path / "run" / "model", qa_copy / "qa.jsonl", *EVAL_SMALL,
                         "-o", tmp_path / "results.json"])
    elapsed = time.perf_counter() - started
    assert evaluated.exit_code == 0, evaluated.output
    results = json.loads((tmp_path / "results.json").read_text())
    types = {json.loads(line)["qtype"] for line in (qa_copy / "qa.jsonl").read_text().splitlines()}
    assert results["n_items"] == 24 and set(results["per_type"]) == types
    assert results["settings"]["max_new_tokens"] == 4 and results["settings"]["timing"] == "fixed"
    for qtype in results["per_type"]:
        assert qtype in evaluated.output
    assert "all (items)" in evaluated.output and "mean of types" in evaluated.output
    # It learned to answer with a letter (the untrained micro model never does). Not every answer: 30 steps
    # leave an odd answer at the edge (an empty one in 1 of ~15 CI runs, from float summation order).
    letters = sum(p["rule"] == "letter" for p in results["predictions"])
    assert letters >= 20, results["predictions"]
    with capsys.disabled():
        print(f"\n[train 30 steps + eval 24 questions on CPU: {elapsed:.0f} s]\n{evaluated.output}")


def test_blind_text_floor_needs_no_video(qa_set, tmp_path):
    result = run_cli(["eval", "--model", "blind-text", qa_set / "qa.parquet", "-o", tmp_path / "blind.json"])
    assert result.exit_code == 0, result.output
    blind = json.loads((tmp_path / "blind.json").read_text())
    assert blind["model"] == "blind-text" and blind["n_items"] == 24 and blind["n_skipped"] == 0
    heuristic = blind["settings"]["heuristic"]
    assert blind["settings"]["audit_heuristics"][heuristic] == max(blind["settings"]["audit_heuristics"].values())
    assert all(p["rule"] == "letter" for p in blind["predictions"])
    run_cli(["eval", "blind-text", qa_set / "qa.parquet", "-o", tmp_path / "again.json"])
    assert json.loads((tmp_path / "again.json").read_text())["predictions"] == blind["predictions"]
    fixed = run_cli(["eval", "--model", "blind-text", qa_set / "qa.jsonl", "--heuristic", "always_A"])
    assert fixed.exit_code == 0
    share = sum(1 for line in (qa_set / "qa.jsonl").read_text().splitlines() if json.loads(line)["answer"] == "A")
    assert f"{100 * share / 24:5.1f}%" in fixed.output


def test_dry_run_prints_the_7b_parameter_counts():
    for fusion, total in (("gsm", "9,159,344,128"), ("geosr", "9,236,453,888")):
        result = run_cli(["train", REPO / "configs" / "qwen2_5_vl_7b.yaml", "--dry-run", "--set", f"model.fusion={fusion}"])
        assert result.exit_code == 0, result.output
        lines = {line[:18].strip(): line[18:].split() for line in result.output.splitlines()[2:]}
        assert lines["total"][0] == total, result.output
        assert "meta device" in result.output and "geometry" in result.output
    assert lines["Q-Formers"] == ["466,316,800", "466,316,800", "0"]  # trainable, none frozen
    assert lines["geometry encoder"] == ["304,371,712", "0", "304,371,712"]  # frozen
    assert lines["Qwen ViT"] == ["631,975,680", "0", "631,975,680"]


def test_bad_input_is_a_paragraph_or_a_counted_skip(qa_copy, tmp_path, monkeypatch):
    records = json.loads((qa_copy / "qa.json").read_text())
    for record in records:
        record["video"] = str(qa_copy / "scene" / "video.mp4")
    records[0]["video"] = "lost.mp4"
    records[1] = {"video": "x.mp4", "conversations": "hello"}
    (qa_copy / "conv.json").write_text(json.dumps(records))
    one_step = ["--set", "run.max_steps=1"]
    counted = run_cli(["train", TINY_YAML, "--data", qa_copy / "conv.json", "-o", tmp_path / "a", *one_step])
    assert counted.exit_code == 0, counted.output
    assert "22 items; 2 skipped (malformed record: 1, video missing: 1)" in counted.output
    assert "lost.mp4" in counted.output and "sample 1" in counted.output
    (qa_copy / "empty.json").write_text("[]")
    empty = run_cli(["train", TINY_YAML, "--data", qa_copy / "empty.json", "-o", tmp_path / "b"])
    clean_error(empty, "no usable item")
    assert "training" not in empty.output  # no progress bar before the error
    (qa_copy / "bad.yaml").write_text("optim:\n  learnig_rate: 1.0\n")
    clean_error(run_cli(["train", qa_copy / "bad.yaml", "--data", qa_copy / "qa.jsonl", "-o", tmp_path / "c"]),
                "unknown key optim.learnig_rate", "learning_rate")
    clean_error(run_cli(["train", TINY_YAML, "--data", qa_copy / "qa.jsonl", "-o", tmp_path / "d",
                         "--set", "run.batch_size=two"]), "run.batch_size must be a whole number")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root writes anyway: behave as a user for whom it is read-only
        real_access = os.access
        monkeypatch.setattr("recon4d.outputs.os.access",
                            lambda path, mode, **kw: False if str(path) == str(locked) else real_access(path, mode))
    clean_error(run_cli(["train", TINY_YAML, "--data", qa_copy / "qa.jsonl", "-o", locked / "run"]),
                "not writable", str(locked))
    assert list(locked.iterdir()) == []
    done = run_cli(["train", TINY_YAML, "--data", qa_copy / "qa.jsonl", "-o", tmp_path / "a", *one_step])
    clean_error(done, "already holds a run", "--resume", "--overwrite")
    clean_error(run_cli(["eval", tmp_path / "nowhere", qa_copy / "qa.jsonl"]), "not a model folder")
    # Lowering only --max-pixels leaves the reference's min-pixels above it: refused, not silently overridden.
    pixels = run_cli(["eval", tmp_path / "nowhere", qa_copy / "qa.jsonl", "--max-pixels", "3136"])
    clean_error(pixels, "min-pixels <= max-pixels", "--min-pixels 784")
    assert pixels.exit_code == 2  # a usage error: the command line alone is wrong
    clean_error(run_cli(["eval", "--predictions", qa_copy / "qa.jsonl"]), "no reply text")
    usage = run_cli(["eval", qa_copy / "qa.jsonl"])
    assert usage.exit_code == 2 and "give MODEL and DATA" in usage.output
