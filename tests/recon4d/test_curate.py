"""Tests of recon4d/curate.py: keep videos whose camera or objects move."""

from __future__ import annotations

import numpy as np
import pytest

from recon4d.curate import CurateConfig, CurationResult, MotionStats, curate, motion_statistics
from recon4d.errors import Recon4dError
from recon4d.video import write_video
from tests.conftest import missing_shared_data


def synthetic_frames(static_camera: bool, n_objects=None, seed: int = 0) -> np.ndarray:
    pytest.importorskip("open3d", reason="synthetic scenes need open3d (pip install 'recon4d[synth]')")
    pytest.importorskip("trimesh", reason="synthetic scenes need trimesh (pip install 'recon4d[synth]')")
    from recon4d.synth.scene import SynthConfig, generate_scene

    config = SynthConfig(seed=seed, n_frames=24, width=320, height=180, static_camera=static_camera,
                         n_objects=n_objects)
    return generate_scene(config).frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("curate")
    movers = synthetic_frames(static_camera=True)
    paths = {
        "still": write_video(folder / "still.mp4", np.repeat(movers[:1], 24, axis=0), 12.0),
        "empty": write_video(folder / "empty.mp4", synthetic_frames(static_camera=True, n_objects=0), 12.0),
        "movers": write_video(folder / "movers.mp4", movers, 12.0),
        "camera": write_video(folder / "camera.mp4", synthetic_frames(static_camera=False, n_objects=0), 12.0),
    }
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(b"this is not an mp4 file " * 64)
    paths["corrupt"] = corrupt
    paths["missing"] = folder / "missing.mp4"
    return paths


def test_static_videos_are_rejected(videos):
    for name in ("still", "empty"):
        result = curate([videos[name]])[0]
        assert not result.kept and result.reason.startswith("static"), (name, result)
        assert result.stats.camera_motion < 1e-3 and result.stats.object_motion == 0.0


def test_moving_objects_are_kept(videos):
    result = curate([videos["movers"]])[0]
    assert result.kept and "moving pixels" in result.reason
    assert result.stats.camera_motion < CurateConfig().min_camera_motion
    assert result.stats.object_motion > 10 * CurateConfig().min_object_motion


def test_moving_camera_is_kept(videos):
    path, kept, reason, stats = curate([videos["camera"]])[0]
    assert kept and "camera motion" in reason
    assert stats.camera_motion > 2 * CurateConfig().min_camera_motion
    assert stats.n_pairs == 8 and stats.mean_residual >= 0


def test_unreadable_videos_are_reported_not_raised(videos):
    calls = []
    results = curate([videos["corrupt"], videos["missing"], videos["still"]],
                     progress=lambda done, total: calls.append((done, total)))
    assert [r.kept for r in results] == [False, False, False]
    assert "unreadable" in results[0].reason and "could not be opened" in results[0].reason
    assert "does not exist" in results[1].reason
    assert results[0].stats is None and results[1].stats is None
    assert [r.path for r in results] == [str(videos[n]) for n in ("corrupt", "missing", "still")]
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert isinstance(results[2], CurationResult) and isinstance(results[2].stats, MotionStats)


def test_motion_statistics_options_and_single_frame(videos, tmp_path):
    stats = motion_statistics(videos["movers"], n_frames=4, long_side=160)
    assert stats.n_pairs == 2 and stats.path == str(videos["movers"])
    assert set(stats.to_json()) == {"path", "n_pairs", "camera_motion", "object_motion", "mean_residual"}
    one = write_video(tmp_path / "one.mp4", np.zeros((1, 32, 32, 3), np.uint8), 10.0)
    assert motion_statistics(one) == MotionStats(str(one), 0, 0.0, 0.0, 0.0)
    assert not curate([one])[0].kept


def test_thresholds_decide(videos):
    strict = CurateConfig(min_object_motion=1.0, min_camera_motion=10.0)
    assert not curate([videos["movers"]], strict)[0].kept
    with pytest.raises(Recon4dError, match="n_frames"):
        CurateConfig(n_frames=1)
    with pytest.raises(Recon4dError, match="min_object_motion"):
        CurateConfig(min_object_motion=2.0)


@pytest.mark.slow
def test_sample_videos_are_kept(shared_data):
    paths = sorted((shared_data / "videos").glob("*.mp4"))
    if not paths:
        missing_shared_data(f"the sample videos {shared_data / 'videos'}/*.mp4")
    for path, kept, reason, stats in curate(paths):
        assert kept, (path, reason)
