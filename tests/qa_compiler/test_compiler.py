"""Tests of qa_compiler/compiler.py: configs, determinism, reports and filters."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon4d.qa_compiler.compiler import CompileConfig, CompileReport, compile_scene, compile_scenes, scene_digest
from recon4d.qa_compiler.records import LETTERS, QUESTION_TYPES, QARecord
from recon4d.qa_compiler.sampler import REASONS
from tests.conftest import make_scene
from tests.qa_compiler.test_questions import build_scene, rich_scene

CHI2_3DOF_P001 = 16.27
T9 = np.arange(9) * 0.5


def _dumps(records):
    return [json.dumps(r.to_json(), sort_keys=True, allow_nan=False) for r in records]


def _adds_up(report: CompileReport) -> None:
    assert report.attempts == report.generated + report.total_failures
    assert sum(report.generated_by_type.values()) == report.generated
    assert set(report.failures) <= set(REASONS)
    by_type = Counter()
    for reasons in report.failures_by_type.values():
        by_type.update(reasons)
    assert dict(by_type) == report.failures


def test_same_seed_same_records_other_seed_other_records():
    scene = rich_scene(0)
    first, report = compile_scene(scene, CompileConfig(n_per_scene=24, seed=5))
    again, _ = compile_scene(scene, CompileConfig(n_per_scene=24, seed=5))
    other, _ = compile_scene(scene, CompileConfig(n_per_scene=24, seed=6))
    assert len(first) == 24 and _dumps(first) == _dumps(again)
    assert _dumps(first) != _dumps(other)
    _adds_up(report)


def test_records_carry_their_evidence():
    scene = rich_scene(2)
    records, _ = compile_scene(scene, CompileConfig(n_per_scene=36, distractors="mixed"), video_id="vid")
    assert {r.qtype for r in records} <= set(QUESTION_TYPES)
    digest = scene_digest(scene)
    for r in records:
        assert r.video_id == "vid" and r.store_sha256 == digest and r.video_path == "clip2.mp4"
        assert r.distractors == "mixed" and r.profile == "dsr" and r.seed == 0
        assert r.answer_text in r.options and len(set(r.options)) == 4
        assert len(r.phases) == len(r.quantities["phase_margins"]) and r.margin == min(r.quantities["phase_margins"])
        assert (r.observer_time_s is None) == (r.viewpoint == "relative")
        assert r.interval_s == (scene.timestamps_s[r.frame_range[0]], scene.timestamps_s[r.frame_range[1]])
        if r.qtype.endswith("dir_pred"):
            assert r.visible_range == (0, r.frame_range[0])  # the last second is not shown
            assert r.interval_s[1] - r.interval_s[0] >= 1.0
        else:
            assert r.visible_range == (0, scene.n_frames - 1)
        assert QARecord.from_json(json.loads(json.dumps(r.to_json()))) == r


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_frames=st.integers(5, 40), n_objects=st.integers(0, 4))
def test_no_nan_in_any_record_and_the_report_adds_up(seed, n_frames, n_objects):
    scene = make_scene(n_frames=n_frames, n_objects=n_objects, heavy=False, seed=seed)
    config = CompileConfig(n_per_scene=8, seed=seed, min_interval_s=0.3, pred_horizon_s=0.2, min_orient_conf=0.2)
    records, report = compile_scene(scene, config)
    _dumps(records)  # allow_nan=False raises on NaN/inf anywhere
    _adds_up(report)
    assert report.attempts <= config.n_per_scene * config.attempts_per_question


def test_scene_without_agents_reports_orientation_failures_once_per_type():
    scene = build_scene(T9, [{"center": np.zeros(3)}, {"center": np.ones(3)}])
    records, report = compile_scene(scene, CompileConfig(n_per_scene=5, types=("abs_ori", "rel_ori")))
    assert records == []
    assert report.failures == {"no_agent_for_ori": 2} and report.attempts == 2
    assert report.shortfall == 5 and "no_agent_for_ori: 2" in report.summary()


def test_min_margin_drops_ambiguous_questions_and_counts_them():
    scene = rich_scene(4)
    kept, report = compile_scene(scene, CompileConfig(n_per_scene=30, min_margin=0.15))
    assert kept and all(r.margin >= 0.15 for r in kept)
    assert report.failures.get("below_min_margin", 0) > 0
    none, report = compile_scene(scene, CompileConfig(n_per_scene=5, min_margin=1e9))
    assert none == [] and report.failures["below_min_margin"] > report.attempts // 2
    _adds_up(report)


def test_max_phases_and_duplicates_are_counted():
    scene = rich_scene(5)
    records, report = compile_scene(scene, CompileConfig(n_per_scene=20, max_phases=1))
    assert all(len(r.phases) == 1 for r in records) and report.failures["too_many_phases"] > 0
    tiny = build_scene(np.arange(5) * 0.5, [{"center": np.stack([np.arange(5.0) + 3, np.zeros(5), np.zeros(5)], -1)}])
    records, report = compile_scene(tiny, CompileConfig(n_per_scene=10, types=("rel_dis",)))
    assert len({r.question for r in records}) == len(records)
    assert report.failures["duplicate_question"] > 0


def test_a_fact_is_asked_once_whatever_the_wording():
    # A still camera and one walking object: a speed comparison of the object and the camera over one interval is
    # the same fact whatever the absolute observer's time or the argument order; before fact_key the compiler
    # filled its quota with such copies (a wrong one then weighed as many wrong answers).
    times = np.arange(5) * 0.5
    walker = {"center": np.stack([np.arange(5.0) * np.array([1, 1, 1, 0.5, 0.2]), np.zeros(5), np.full(5, 4.0)], -1)}
    records, report = compile_scene(build_scene(times, [walker]),
                                    CompileConfig(n_per_scene=40, types=("abs_spd_comp",), min_margin=0.0))
    facts = [(r.frame_range, frozenset(r.targets)) for r in records]
    assert records and len(set(facts)) == len(facts)
    assert report.failures["duplicate_fact"] > 0
    _adds_up(report)


def test_types_are_balanced_and_letters_uniform():
    records, reports = [], []
    for seed in range(4):
        scene_records, report = compile_scene(rich_scene(seed), CompileConfig(n_per_scene=60, seed=seed, distractors="random"))
        records += scene_records
        reports.append(report)
    report = CompileReport.merge(reports)
    _adds_up(report)
    counts = [report.generated_by_type.get(t, 0) for t in QUESTION_TYPES]
    assert max(counts) - min(counts) <= 8, report.generated_by_type  # inverse-frequency balance
    letters = Counter(r.answer for r in records)
    expected = len(records) / 4
    assert sum((letters[x] - expected) ** 2 / expected for x in LETTERS) < CHI2_3DOF_P001, letters


def test_type_weights_steer_the_mix():
    scene = rich_scene(6)
    only, _ = compile_scene(scene, CompileConfig(n_per_scene=10, type_weights={"abs_dis": 1.0}))
    assert {r.qtype for r in only} == {"abs_dis"}
    config = CompileConfig(n_per_scene=80, types=("abs_dis", "rel_dis"), type_weights={"abs_dis": 3, "rel_dis": 1})
    mixed, _ = compile_scene(scene, config)
    share = Counter(r.qtype for r in mixed)["abs_dis"] / len(mixed)
    assert share == pytest.approx(0.75, abs=0.08)
    assert config.to_json()["type_weights"] == {"abs_dis": 3.0, "rel_dis": 1.0}


def test_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="question types"):
        CompileConfig(types=("abs_dis", "abs_nope"))
    with pytest.raises(ValueError, match="rule profile"):
        CompileConfig(profile="strict")
    with pytest.raises(ValueError, match="distractor mode"):
        CompileConfig(distractors="tricky")
    with pytest.raises(ValueError, match="type_weights"):
        CompileConfig(types=("abs_dis",), type_weights={"rel_dis": 1.0})
    with pytest.raises(ValueError):
        CompileConfig(min_interval_frames=1)


def test_compile_scenes_reads_stores_and_is_order_independent(tmp_path):
    from recon4d.store import open_scene, write_scene

    paths = [write_scene(rich_scene(seed), tmp_path / f"s{seed}.zarr") for seed in (7, 8)]
    config = CompileConfig(n_per_scene=6, seed=1)
    records, report = compile_scenes(paths, config)
    reversed_records, _ = compile_scenes(paths[::-1], config)
    assert report.scenes == ("clip7-00000000", "clip8-00000000") and report.generated == 12  # source.video_id
    assert sorted(_dumps(records)) == sorted(_dumps(reversed_records))
    alone, _ = compile_scene(open_scene(paths[1]), config)
    assert _dumps(alone) == _dumps(records[6:])
    assert alone[0].store_sha256 == scene_digest(rich_scene(8))
    assert json.dumps(report.to_json())


def test_compile_scenes_gives_the_same_records_with_worker_processes(tmp_path):
    from recon4d.errors import StoreError
    from recon4d.store import write_scene

    paths = [write_scene(rich_scene(seed), tmp_path / f"s{seed}.zarr") for seed in (3, 4, 5)]
    config = CompileConfig(n_per_scene=8, seed=2)
    seen = []
    serial, report = compile_scenes(paths, config, workers=1)
    parallel, parallel_report = compile_scenes(paths, config, progress=lambda v, r: seen.append(v), workers=2)
    assert _dumps(parallel) == _dumps(serial) and len(serial) == 24
    assert parallel_report == report and seen == list(report.scenes) and seen[0].startswith("clip3")  # input order
    with pytest.raises(StoreError, match="does not exist"):  # a worker's error reaches the caller
        compile_scenes([*paths, tmp_path / "missing.zarr"], config, workers=2)
