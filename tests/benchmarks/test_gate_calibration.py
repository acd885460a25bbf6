"""Tests of benchmarks/gate_calibration.py: the curve and the refusal counts on hand-made question rows."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gate_calibration as gc  # noqa: E402


def row(agree, score, frames_ok=True, stability=1.0, implausible=False, without_record=True):
    return {"agree": agree, "min_score": score, "frames_ok": frames_ok, "frames_ok_without_record": without_record,
            "stability": stability, "implausible": implausible}


ROWS = [row(True, 0.9), row(True, 0.6, stability=0.875), row(False, 0.3, implausible=True), row(False, 0.9, False),
        row(False, 0.7, stability=0.5), row(True, 0.2, False, without_record=False)]


def test_the_curve_keeps_what_answers_scores_and_holds():
    points = {(p["min_quality"], p["min_stability"]): p for p in gc.curve(ROWS)}
    everything = points[(0.0, 0.0)]  # the frame checks alone: rows 0, 1, 2, 4
    assert everything["kept"] == 4 and everything["agreement"] == 0.5 and everything["implausible_kept"] == 1
    default = points[(0.5, 0.75)]  # rows 0 and 1
    assert default["kept"] == 2 and default["agreement"] == 1.0 and default["implausible_kept"] == 0
    strict = points[(0.5, 1.0)]  # row 1 holds on only 7 of 8 copies
    assert strict["kept"] == 1 and strict["kept_fraction"] == round(1 / 6, 4)
    assert points[(0.9, 1.0)]["agreement"] == 1.0 and points[(0.9, 1.0)]["kept"] == 1


def test_refusals_count_right_and_wrong_per_part():
    counts = gc.refusals(ROWS, 0.5, 0.75)
    assert counts["score_below_min_quality"] == {"right": 1, "wrong": 1}
    assert counts["frame_checks"] == {"right": 1, "wrong": 1}
    assert counts["frame_checks_of_the_record"] == {"right": 0, "wrong": 1}  # row 5 fails without the record too
    assert counts["unstable_answer"] == {"right": 0, "wrong": 1}
