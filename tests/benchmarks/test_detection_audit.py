"""Tests of benchmarks/detection_audit.py's frame judge and miss causes on hand-drawn masks whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from detection_audit import CAUSES, judge_frame, miss_cause  # noqa: E402


def _rect(x0: int, y0: int, x1: int, y1: int, shape=(100, 160)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_merge_split_good_and_halo():
    people = [_rect(10, 20, 25, 80), _rect(40, 20, 55, 80)]  # two side by side
    car = _rect(90, 40, 150, 70)
    group = _rect(8, 18, 57, 82)  # one detection around both people
    halves = [_rect(90, 40, 104, 70), _rect(136, 40, 150, 70)]  # the car's two ends, its middle missed
    judged = judge_frame([group, *halves], [np.zeros((100, 160), bool), *people, car])
    merge, *ends = judged["detections"]
    assert merge["holds"] == [1, 2] and not merge["good"]  # indices into the objects given
    assert abs(merge["halo"] - 576 / 3136) < 1e-3  # the 9 columns between them more than 3 px from both
    assert all(end["holds"] == [] and not end["good"] and end["halo"] == 0.0 for end in ends)
    assert [o["g"] for o in judged["objects"]] == [1, 2, 3]  # the empty mask is not an object
    assert [o["merged"] for o in judged["objects"]] == [True, True, False]
    assert [o["split"] for o in judged["objects"]] == [False, False, True]
    assert not any(o["found"] for o in judged["objects"])


def test_good_detection_and_background_halo():
    person = _rect(10, 20, 30, 80)
    judged = judge_frame([_rect(11, 21, 30, 80), _rect(100, 5, 120, 15)], [person])
    on, off = judged["detections"]
    assert on["good"] and on["holds"] == [0] and on["halo"] == 0.0
    assert not off["good"] and off["halo"] == 1.0
    assert judged["objects"] == [{"g": 0, "found": True, "merged": False, "split": False}]
    assert judge_frame([], [person])["objects"] == [{"g": 0, "found": False, "merged": False, "split": False}]


def test_miss_cause_order_and_thresholds():
    def row(found=False, merged=False, split=False):
        return {"g": 0, "found": found, "merged": merged, "split": split}

    # a good detection wins over everything, then a merge, then a split, whatever the pixels say
    assert miss_cause(row(found=True, merged=True), 0.0, 0.0) == "found"
    assert miss_cause(row(merged=True, split=True), 0.0, 1.0) == "merged"
    assert miss_cause(row(split=True), 0.0, 0.0) == "split"
    # missed outright: too little texture, then too little flagged, else lost by segmentation
    assert miss_cause(row(), 0.29, 1.0) == "untextured"
    assert miss_cause(row(), 0.3, 0.14) == "weak"
    assert miss_cause(row(), 1.0, 0.15) == "segment"
    assert CAUSES == ("found", "merged", "split", "untextured", "weak", "segment")


def test_judged_objects_get_their_causes():
    people = [_rect(10, 20, 25, 80), _rect(40, 20, 55, 80)]
    lone = _rect(100, 20, 115, 80)
    judged = judge_frame([_rect(8, 18, 57, 82)], [*people, lone])
    flagged = {0: 1.0, 1: 1.0, 2: 0.05}
    assert [miss_cause(o, 1.0, flagged[o["g"]]) for o in judged["objects"]] == ["merged", "merged", "weak"]
