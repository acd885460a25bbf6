"""Classic recon's feature tracker reads the next frame in a worker thread (recon4d.workers.read_ahead)
where two CPUs are usable: the tracks are those of the frame-by-frame reading, and the frames are read
once each, in order, off the caller's thread."""

from __future__ import annotations

import threading

import cv2
import numpy as np

import recon4d.recon.classic.features as features_module
from recon4d.recon.classic.features import NO_FEATURES, TrackerConfig, track_features


class _Frames:
    """(T, H, W, 3) frames that record which thread read which frame (a decoder must be read in order)."""

    def __init__(self, frames: np.ndarray) -> None:
        self._frames, self.shape, self.dtype, self.ndim = frames, frames.shape, frames.dtype, 4
        self.reads: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, t: int) -> np.ndarray:
        self.reads.append((t, threading.current_thread().name))
        return self._frames[t]


def _panning(n_frames: int = 6, width: int = 160, height: int = 96) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (height, width + 4 * n_frames)).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return np.repeat(np.stack([base[:, 4 * t:4 * t + width] for t in range(n_frames)])[..., None], 3, axis=-1)


def test_read_ahead_gives_the_same_tracks_reading_each_frame_once_in_order(monkeypatch):
    frames = _panning()
    regions = np.zeros(frames.shape[1:3], np.int16)
    regions[30:60, 50:90] = 1
    regions[25:65, 45:95][regions[25:65, 45:95] == 0] = NO_FEATURES
    results, readers = [], []
    for threads in (1, 2):
        monkeypatch.setattr(features_module, "worker_threads", lambda setting, threads=threads: threads)
        recorded = _Frames(frames)
        results.append(track_features(recorded, lambda t: regions, TrackerConfig(max_corners=200)))
        assert [t for t, _ in recorded.reads] == list(range(len(frames)))
        readers.append({name for _, name in recorded.reads})
    assert results[0].n_tracks > 20
    np.testing.assert_array_equal(results[0].xy, results[1].xy)
    np.testing.assert_array_equal(results[0].label, results[1].label)
    assert readers[0] == {threading.current_thread().name}
    assert len(readers[1]) == 1 and threading.current_thread().name not in readers[1]


def test_the_global_shift_is_measured_on_the_reader_thread_with_the_same_tracks(monkeypatch):
    """With shift guesses on (a camera that turns), each frame's global shift is measured with its
    grey image on the reader thread, not between the caller's Lucas–Kanade calls: same tracks."""
    frames = _panning(n_frames=7)
    regions = np.zeros(frames.shape[1:3], np.int16)
    config = TrackerConfig(max_corners=200, shift_guess_px=2.0)
    measured = []
    original = features_module.global_shift

    def recording(prev, cur, config, background=None):
        shift = original(prev, cur, config, background)
        measured.append((threading.current_thread().name, shift is not None))
        return shift

    monkeypatch.setattr(features_module, "global_shift", recording)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(features_module, "worker_threads", lambda setting, threads=threads: threads)
        measured.clear()
        results.append(track_features(frames, lambda t: regions, config))
        names = {name for name, _ in measured}
        assert len(measured) == len(frames) - 1 and all(found for _, found in measured)  # 4 px a frame: used
        assert (names == {threading.current_thread().name}) if threads == 1 else \
            (len(names) == 1 and threading.current_thread().name not in names)
    np.testing.assert_array_equal(results[0].xy, results[1].xy)
    np.testing.assert_array_equal(results[0].label, results[1].label)
