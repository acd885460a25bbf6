"""Issue 12 item 5 (tracker speed on two cores): frame pairs' motion, frames' detections and final
masks computed in worker threads (``motion_threads``) give exactly the serial results, in order,
and failures reach the caller."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

import recon4d.tracking.classic.motion as motion_module
from recon4d.errors import Recon4dError
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.motion import compute_motion, motion_threads, pair_motions, to_working, working_frames
from recon4d.tracking.classic.association import associate
from recon4d.tracking.classic.segment import detect_moving_regions
from recon4d.tracking.classic.tracker import ClassicTracker
from recon4d.types import Clip
from tests.tracking.plane_scenes import walking_scene


def _scene(n_frames: int = 7):
    return walking_scene(seed=2, n_frames=n_frames, width=192, height=108)


def _assert_same_motion(a, b) -> None:
    for name in ("forward_flow", "backward_flow", "moving", "thresholds", "image_flow", "velocity", "residual"):
        left, right = getattr(a, name), getattr(b, name)
        if left is None or right is None:
            assert left is None and right is None
            continue
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right), err_msg=name)
    assert len(a.moving_points) == len(b.moving_points)
    for left, right in zip(a.moving_points, b.moving_points):
        np.testing.assert_array_equal(left, right)
    for left, right in zip(a.backgrounds, b.backgrounds):
        assert left.kind == right.kind
        for plane_a, plane_b in zip(left.planes, right.planes):
            np.testing.assert_array_equal(plane_a, plane_b)


def test_threaded_pairs_equal_serial_pairs_in_order():
    gray = to_working(_scene().frames, (192, 108))[1]
    serial = list(pair_motions(gray, ClassicTrackerConfig(), threads=1))
    threaded = list(pair_motions(gray, ClassicTrackerConfig(), threads=3))
    assert len(serial) == len(threaded) == len(gray) - 1
    for left, right in zip(serial, threaded):
        for name in ("flow_ab", "flow_ba", "residual", "object_flow", "consistent", "points_a", "points_b",
                     "point_residual"):
            np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)


@pytest.mark.parametrize("compact", [False, True])
def test_threaded_motion_field_equals_serial(compact):
    frames = _scene().frames
    fields = [compute_motion(working_frames(frames, (192, 108))[1], ClassicTrackerConfig(motion_threads=threads),
                             compact=compact) for threads in (1, 2)]
    assert np.asarray(fields[0].moving).any()  # a scene with motion, or the comparison says little
    _assert_same_motion(*fields)


def test_pairs_run_in_worker_threads_only_when_asked(monkeypatch):
    seen, opencv_threads = [], []
    original = motion_module.pair_motion

    def recording(gray_a, gray_b, config, dis=None):
        seen.append((threading.current_thread().name, id(dis)))
        opencv_threads.append(cv2.getNumThreads())
        return original(gray_a, gray_b, config, dis)

    monkeypatch.setattr(motion_module, "pair_motion", recording)
    gray = to_working(_scene(5).frames, (96, 54))[1]
    original_threads = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        before = cv2.getNumThreads()
        list(pair_motions(gray, ClassicTrackerConfig(), threads=1))
        serial = list(seen)
        seen.clear()
        list(pair_motions(gray, ClassicTrackerConfig(), threads=2))
        after = cv2.getNumThreads()
    finally:
        cv2.setNumThreads(original_threads)
    assert {name for name, _ in serial} == {threading.current_thread().name}
    assert set(opencv_threads[:4]) == {before}
    assert all(name.startswith("recon4d-motion") for name, _ in seen)
    assert len(seen) == 4 and len({dis for _, dis in seen}) == 2  # one DIS per worker, reused
    assert set(opencv_threads[4:]) == {1}  # the workers are the parallelism: OpenCV's pool is off meanwhile...
    assert after == before  # ...and back afterwards

def test_a_failing_pair_reaches_the_caller(monkeypatch):
    original = motion_module.pair_motion

    def failing(gray_a, gray_b, config, dis=None):
        if int(gray_a[0, 0]) == 255:
            raise Recon4dError("pair failed")
        return original(gray_a, gray_b, config, dis)

    monkeypatch.setattr(motion_module, "pair_motion", failing)
    gray = to_working(_scene(6).frames, (96, 54))[1].copy()
    gray[3, 0, 0] = 255
    gray[:3, 0, 0] = np.minimum(gray[:3, 0, 0], 254)
    gray[4:, 0, 0] = np.minimum(gray[4:, 0, 0], 254)
    stream = pair_motions(gray, ClassicTrackerConfig(), threads=2)
    assert len([next(stream) for _ in range(3)]) == 3
    with pytest.raises(Recon4dError, match="pair failed"):
        next(stream)


def test_thread_count_setting():
    assert motion_threads(ClassicTrackerConfig(motion_threads=3)) == 3
    assert motion_threads(ClassicTrackerConfig(motion_threads=1)) == 1
    assert motion_threads(ClassicTrackerConfig()) in (1, 2)
    with pytest.raises(Recon4dError, match="motion_threads"):
        ClassicTrackerConfig(motion_threads=-1)


def test_tracker_tracks_are_the_same_with_threads():
    scene = walking_scene(seed=1, n_frames=10, width=256, height=144)
    n_frames = len(scene.frames)
    clip = Clip(frames=scene.frames, timestamps_s=np.arange(n_frames) / 6.0, frame_index=np.arange(n_frames),
                fps=6.0, source="walking", source_size=(256, 144))
    tracks = [ClassicTracker(ClassicTrackerConfig(motion_threads=threads)).track(clip) for threads in (1, 2)]
    assert tracks[0].n_objects == tracks[1].n_objects
    np.testing.assert_array_equal(tracks[0].boxes_xyxy, tracks[1].boxes_xyxy)
    np.testing.assert_array_equal(tracks[0].visible, tracks[1].visible)
    for k in range(tracks[0].n_objects):
        np.testing.assert_array_equal(np.asarray(tracks[0].masks[k]), np.asarray(tracks[1].masks[k]))


class _Detections:
    """Each frame's detections found when read (like the tracker's), recording the reading thread."""

    def __init__(self, motion, config) -> None:
        self._motion, self._config, self.threads = motion, config, []

    def __len__(self) -> int:
        return len(self._motion.moving)

    def __getitem__(self, t: int) -> list:
        self.threads.append(threading.current_thread().name)
        moving = self._motion.moving[t]
        return detect_moving_regions(moving, self._config, self._motion.image_flow[t], self._motion.velocity[t]) \
            if moving.any() else []


def test_association_finds_detections_ahead_on_workers_with_the_same_tracks():
    scene = walking_scene(seed=1, n_frames=10, width=256, height=144)
    config = ClassicTrackerConfig()
    images, gray = working_frames(scene.frames, (256, 144))
    motion = compute_motion(gray, config, compact=True)
    runs = []
    for threads in (1, 2):
        detections = _Detections(motion, config)
        runs.append((associate(detections, motion, images, config, threads), detections.threads))
    (serial, serial_threads), (threaded, worker_threads) = runs
    assert set(serial_threads) == {threading.current_thread().name}
    assert len(worker_threads) == len(scene.frames) and all(name.startswith("recon4d-detect") for name in worker_threads)
    assert len(serial) == len(threaded) > 0
    for a, b in zip(serial, threaded):
        assert sorted(a.boxes) == sorted(b.boxes) and a.detected == b.detected
        for t in a.boxes:
            np.testing.assert_array_equal(a.boxes[t], b.boxes[t])
            np.testing.assert_array_equal(a.masks[t], b.masks[t])


@pytest.mark.parametrize("threads", [1, 2])
def test_pairs_run_with_one_blas_thread(monkeypatch, threads):
    from threadpoolctl import threadpool_info, threadpool_limits

    def counts():
        return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    blas_threads = []
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    original = motion_module.pair_motion

    def recording(gray_a, gray_b, config, dis=None):
        blas_threads.append(counts())
        return original(gray_a, gray_b, config, dis)

    monkeypatch.setattr(motion_module, "pair_motion", recording)
    gray = to_working(_scene(4).frames, (96, 54))[1]
    with threadpool_limits(limits=2, user_api="blas"):
        list(pair_motions(gray, ClassicTrackerConfig(), threads=threads))
        assert blas_threads == [{1}] * 3  # OpenBLAS's idle threads would spin beside the workers...
        assert counts() == {2}  # ...and it is back afterwards


def test_a_pair_waits_queued_for_the_next_free_worker(monkeypatch):
    """While the caller works on a pair, both workers stay busy: with 2 threads the next two pairs are
    computed (one was queued), not only the one in flight; the pairs still equal the serial ones."""
    import time

    started = []
    original = motion_module.pair_motion

    def recording(gray_a, gray_b, config, dis=None):
        started.append(int(gray_a[0, 0]))
        return original(gray_a, gray_b, config, dis)

    gray = to_working(_scene(8).frames, (96, 54))[1].copy()
    gray[:, 0, 0] = np.arange(len(gray))  # which pair a call is
    serial = list(pair_motions(gray, ClassicTrackerConfig(), threads=1))
    monkeypatch.setattr(motion_module, "pair_motion", recording)
    stream = pair_motions(gray, ClassicTrackerConfig(), threads=2)
    first = next(stream)
    deadline = time.monotonic() + 30.0
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert sorted(started) == [0, 1, 2]
    threaded = [first, *stream]
    assert len(threaded) == len(serial) == len(gray) - 1
    for left, right in zip(serial, threaded):
        for name in ("flow_ab", "flow_ba", "residual", "object_flow", "consistent", "points_a", "points_b"):
            np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)
