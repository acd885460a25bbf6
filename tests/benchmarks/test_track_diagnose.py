"""Tests of benchmarks/track_diagnose.py's motion cache (cache_motion) with a stand-in motion stream."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from track_diagnose import cache_motion  # noqa: E402

from recon4d.tracking.classic import tracker  # noqa: E402
from recon4d.tracking.classic.config import ClassicTrackerConfig  # noqa: E402


def test_cache_motion_streams_once_then_reads_the_field(tmp_path, monkeypatch):
    calls = []

    def stream(gray, config, progress=None, compact=False):
        calls.append(compact)
        motion = SimpleNamespace(moving=np.zeros((3, 4, 5), bool), backgrounds=[])

        def frames():
            for t in range(3):
                yield t
            motion.backgrounds.append("filled at the end")  # as stream_motion fills them when it ends

        return motion, frames()

    monkeypatch.setattr(tracker, "stream_motion", stream)
    cache_motion(tmp_path)
    config = ClassicTrackerConfig()
    motion, finished = tracker.stream_motion(None, config, compact=True)
    assert list(finished) == [0, 1, 2] and calls == [True]
    again, finished = tracker.stream_motion(None, config, compact=True)
    assert list(finished) == [0, 1, 2] and calls == [True]  # read from the cache, not streamed again
    assert again.backgrounds == ["filled at the end"] and again.moving.shape == (3, 4, 5)
    cache_motion(tmp_path)  # wrapping twice keeps one cache around the original stream
    tracker.stream_motion(None, config, compact=False)
    assert calls == [True, False]
    assert tracker.stream_motion.original is stream
