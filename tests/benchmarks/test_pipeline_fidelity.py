from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from pipeline_fidelity import parse_stage_options  # noqa: E402

from recon4d.pipeline import PipelineError, ProcessConfig  # noqa: E402


def test_stage_options_go_to_their_stage_and_bare_keys_to_the_tracker():
    options = parse_stage_options(["scene_share=0.25", "recon.still_track_px=15", "lift.erode_px=2",
                                   "track.motion_threads=1"])
    assert options == {"track": {"scene_share": "0.25", "motion_threads": "1"},
                       "recon": {"still_track_px": "15"}, "lift": {"erode_px": "2"}}
    assert parse_stage_options([]) == {}


def test_stage_options_reject_a_pair_without_a_value_and_an_unknown_stage_reaches_the_tracker():
    with pytest.raises(SystemExit, match="key=value"):
        parse_stage_options(["recon.still_track_px"])
    # "nope." is no stage: the whole key is the tracker's, whose config rejects it by name when built
    assert parse_stage_options(["nope.x=1"]) == {"track": {"nope.x": "1"}}


def test_stage_options_build_a_process_config():
    config = ProcessConfig(n_frames=4, backend_options=parse_stage_options(["recon.still_track_px=15"]))
    assert config.backend_options == {"recon": {"still_track_px": "15"}}
    with pytest.raises(PipelineError):
        ProcessConfig(n_frames=4, backend_options={"nope": {}})
