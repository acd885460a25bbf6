"""Tests of recon4d/backends.py: the backend protocols, typed configs on registry entries, and
options checked before any stage runs."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from click.testing import CliRunner

from recon4d.backends import PROTOCOLS, STAGES, backend_names, get_backend
from recon4d.cli.main import main
from recon4d.options import OptionError
from recon4d.pipeline import PipelineError, ProcessConfig, plan_stages, process_video


def _protocol_members(protocol) -> dict:
    return {name: value for name, value in vars(protocol).items()
            if not name.startswith("_") and callable(value)}


@pytest.mark.parametrize("stage", STAGES)
def test_every_backend_implements_its_stage_protocol_and_has_a_documented_config(stage):
    protocol = PROTOCOLS[stage]
    for name in backend_names(stage):
        spec = get_backend(stage, name)
        cls = spec.load_class()
        assert isinstance(cls.name, str) and isinstance(cls.version, str)
        assert callable(getattr(cls, "from_config", None))
        for method, proto in _protocol_members(protocol).items():
            implemented = getattr(cls, method, None)
            assert callable(implemented), f"{cls.__name__} lacks {method}"
            wanted = list(inspect.signature(proto).parameters)
            have = list(inspect.signature(implemented).parameters)
            assert have[: len(wanted)] == wanted, f"{cls.__name__}.{method}{have} vs protocol {wanted}"
        config_cls = spec.load_config_class()
        assert dataclasses.is_dataclass(config_cls) and config_cls.__dataclass_params__.frozen
        assert spec.build_config({}) == config_cls()


def test_options_are_parsed_against_the_chosen_backends_config(tmp_path):
    config = ProcessConfig(recon="classic", tracker="classic", orient="motion",
                           backend_options={"recon": {"bundle_adjust": "no", "intrinsics": "[500, 500, 80, 45]"},
                                            "orient": {"v_min": "0.2"}, "lift": {"estimator": "median"}})
    plans = plan_stages(config, tmp_path)
    assert plans["recon"].options == {"bundle_adjust": False, "intrinsics": (500.0, 500.0, 80.0, 45.0)}
    recon = plans["recon"].build("cpu", tmp_path)
    assert recon.config.bundle_adjust is False and recon.config.intrinsics == (500.0, 500.0, 80.0, 45.0)
    assert plans["orient"].build("cpu", tmp_path).config.v_min == 0.2
    assert config.lift.estimator == "median" and "lift" not in config.backend_options


def test_a_wrong_value_is_a_one_paragraph_error_naming_option_type_and_value():
    with pytest.raises(OptionError) as info:
        get_backend("recon", "pi3").build_config({"chunk_frames": "'8'"})
    message = str(info.value)
    assert "recon.chunk_frames" in message and "an integer" in message and "\"'8'\"" in message
    assert "write it as -O recon.chunk_frames=VALUE" in message and "without quotes" in message  # what to do
    assert "\n" not in message
    with pytest.raises(OptionError, match="classic reconstructor: option recon.bundle_adjust must be true or false"):
        get_backend("recon", "classic").build_config({"bundle_adjust": "maybe"})


def test_lift_options_reach_the_lifting_config_and_are_checked():
    assert ProcessConfig(backend_options={"lift": {"erode_px": "2", "extent_quantiles": "0.1,0.9"}}).lift.erode_px == 2
    with pytest.raises(OptionError, match=r"unknown option\(s\) \['lift.radius'\].*'lift.erode_px'"):
        ProcessConfig(backend_options={"lift": {"radius": "2"}})
    with pytest.raises(OptionError, match="lifting: option lift.min_points must be an integer"):
        ProcessConfig(backend_options={"lift": {"min_points": "few"}})
    with pytest.raises(PipelineError, match="unknown stage"):
        ProcessConfig(backend_options={"render": {"x": 1}})


def test_bad_options_fail_before_any_stage_runs(tmp_path):
    """The video does not exist: decoding would fail, but the option is checked first."""
    missing = tmp_path / "missing.mp4"
    with pytest.raises(OptionError, match="recon.fov"):
        process_video(missing, ProcessConfig(recon="classic", backend_options={"recon": {"fov": "60"}}))
    with pytest.raises(OptionError, match="track.max_planes"):
        process_video(missing, ProcessConfig(tracker="classic", backend_options={"track": {"max_planes": "two"}}))


@pytest.mark.parametrize("option, expected", [
    ("recon.chunk_frames='8'", "unknown option(s) ['recon.chunk_frames'] for the classic reconstructor"),
    ("recon.bundle_adjust=perhaps", "the classic reconstructor: option recon.bundle_adjust must be true or false"),
    ("lift.estimator=mode", "lifting: option lift.estimator must be one of 'mean', 'median', 'trimmed'"),
    ("orient.v_min=fast", "the motion orienter: option orient.v_min must be a number"),
])
def test_cli_rejects_bad_options_with_one_paragraph_and_exit_2(tmp_path, option, expected):
    """A bad -O key or value is a usage error (exit 2, the README's rule), found before the video is read."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: the options are checked first")
    result = CliRunner().invoke(main, ["process", str(video), "--recon", "classic", "--tracker", "classic",
                                       "--orient", "motion", "-O", option, "-o", str(tmp_path / "s.zarr")])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s.zarr").exists()


def test_frame_sequence_is_computed_per_frame():
    from recon4d.types import FrameSequence, Reconstruction

    calls = []

    def frame(t):
        calls.append(t)
        return np.full((2, 3, 3), t, np.float64)

    points = FrameSequence(4, (2, 3, 3), np.float32, frame)
    recon = Reconstruction(cam_to_world=np.tile(np.eye(4), (4, 1, 1)), local_points=points, unit="metric")
    assert recon.local_points.shape == (4, 2, 3, 3) and calls == []
    second = points[2]
    assert second.dtype == np.float32 and second[0, 0, 0] == 2 and calls == [2]
    assert points[-1, 1, 2].tolist() == [3, 3, 3]
    assert [f[0, 0, 0] for f in points] == [0, 1, 2, 3]
    np.testing.assert_array_equal(points[1:3][:, 0, 0, 0], [1, 2])
    assert np.asarray(points).shape == (4, 2, 3, 3)
    with pytest.raises(IndexError):
        points[4]
