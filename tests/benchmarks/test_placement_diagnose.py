"""Tests of benchmarks/placement_diagnose.py's summary: the quality record's noise against the error it describes."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from placement_diagnose import summarise  # noqa: E402


def _row(along, across):
    """One matched object's row as ``diagnose`` writes it (only what ``summarise`` reads)."""
    return {"gt_cat": "person", "frames": 10, "depth_sq": 1.0, "across_sq": 0.5, "bad_box_sq": 0.0,
            "good_box_depth_sq": 1.0, "covered_frames": 10, "covered_sq": 1.5, "ok_frames": 8, "ok_sq": 1.0,
            "cues": {"contact": 10}, "dist_ratio": 1.0, "trusted_along_over_noise": along,
            "trusted_across_over_noise": across}


def test_summary_gives_the_median_error_over_recorded_noise_of_the_objects_that_have_one():
    scenes = [{"objects": [_row(6.0, 4.0), _row(2.0, 1.0)], "centre_error_rel": 0.5, "tracks": []},
              {"objects": [_row(10.0, 3.0), _row(None, None)], "centre_error_rel": 0.7, "tracks": []}]
    calibration = summarise(scenes)["noise_calibration"]
    assert calibration == {"objects": 3, "along_over_noise_median": 6.0, "across_over_noise_median": 3.0}
