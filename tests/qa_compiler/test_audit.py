"""Tests of qa_compiler/audit.py: blind text-only heuristics on question sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recon4d.qa_compiler.audit import HEURISTICS, audit, audit_file, option_phases
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene
from recon4d.qa_compiler.records import LETTERS
from tests.qa_compiler.test_questions import rich_scene


def _item(options, answer, qtype="abs_dis"):
    return {"qtype": qtype, "options": list(options), "answer": answer}


def test_option_phases_splits_numbered_sentences():
    assert option_phases("(1) Front|Left. (2) Behind.") == ["Front|Left.", "Behind."]
    assert option_phases("The latter is always faster.") == ["The latter is always faster."]


def test_a_leaky_set_is_flagged():
    rng = np.random.default_rng(0)
    items = []
    for i in range(200):
        letter = LETTERS[int(rng.integers(4))]
        options = [f"(1) {w}." for w in ("Left", "Right", "Above", "Below")]
        options[LETTERS.index(letter)] = "(1) Front|Left|Below. (2) Behind|Right."  # always longest
        items.append(_item(options, letter))
    result = audit(items)
    assert result["heuristics"]["longest"] == 1.0 and result["heuristics"]["shortest"] == 0.0
    assert result["heuristics"]["most_phases"] == 1.0
    assert {"longest", "shortest", "most_phases", "fewest_phases"} <= set(result["flagged"])
    assert result["worst"] in ("longest", "shortest", "most_phases", "fewest_phases")
    assert sum(result["letters"].values()) == pytest.approx(1.0)


def test_ties_share_the_credit():
    items = [_item(["(1) A.", "(1) B.", "(1) C.", "(1) D."], letter) for letter in LETTERS]
    result = audit(items)
    for name in ("longest", "shortest", "most_phases", "fewest_phases", "most_frequent_phrase"):
        assert result["heuristics"][name] == pytest.approx(0.25)
    assert result["heuristics"]["always_A"] == pytest.approx(0.25)
    assert set(result["heuristics"]) == set(HEURISTICS)


def test_compiled_mixed_distractors_stay_near_chance():
    records = []
    for seed in range(4):
        records += compile_scene(rich_scene(seed), CompileConfig(n_per_scene=60, distractors="mixed", seed=seed))[0]
    result = audit(records)
    assert result["n_items"] == len(records) == 240
    assert result["flagged"] == [], result["heuristics"]
    assert all(abs(share - 0.25) < 0.1 for share in result["letters"].values())
    assert set(result["by_type"]) <= {r.qtype for r in records}


def test_audit_reads_jsonl_records_and_dsr_json(tmp_path):
    records, _ = compile_scene(rich_scene(1), CompileConfig(n_per_scene=12))
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text("\n".join(json.dumps(r.to_json()) for r in records) + "\n")
    dsr = tmp_path / "qa.json"
    items = [{"Type": r.qtype, "Question": r.question, **dict(zip(LETTERS, r.options)), "Correct": r.answer}
             for r in records]
    dsr.write_text(json.dumps({"clip1": items}))
    from_records = audit(records)
    assert audit_file(jsonl)["heuristics"] == from_records["heuristics"]
    assert audit_file(dsr)["heuristics"] == from_records["heuristics"]


def test_audit_rejects_empty_or_unknown_input():
    with pytest.raises(ValueError, match="at least one"):
        audit([])
    with pytest.raises(ValueError, match="cannot audit"):
        audit([("A", "B")])
