"""recon4d.workers: work ahead in threads hands back results in order, holds at most ``threads``
items in flight, raises a failure at its item and runs on the caller's thread when asked."""

from __future__ import annotations

import threading
import time

import pytest

from recon4d.workers import ahead, read_ahead, usable_cpus, worker_threads


def test_results_come_in_order_from_worker_threads():
    names = set()

    def work(item: int) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.002 * (item % 3))  # later items may finish first
        return item * item

    assert list(ahead(range(20), work, 3, name="test-ahead")) == [i * i for i in range(20)]
    assert names and all(name.startswith("test-ahead") for name in names)


def test_one_thread_runs_on_the_callers_thread():
    names = set()
    assert list(ahead(range(5), lambda i: names.add(threading.current_thread().name) or i, 1)) == list(range(5))
    assert names == {threading.current_thread().name}


def test_inputs_are_read_on_the_caller_and_at_most_threads_ahead():
    read, readers = [], set()

    def inputs():
        for i in range(10):
            readers.add(threading.current_thread().name)
            read.append(i)
            yield i

    stream = ahead(inputs(), lambda i: i, 2)
    for consumed in range(10):
        assert next(stream) == consumed
        assert len(read) <= consumed + 2  # the item handed back and the next one in flight
    assert readers == {threading.current_thread().name}


def test_a_failure_is_raised_at_its_item_and_later_items_are_dropped():
    started = []

    def work(item: int) -> int:
        started.append(item)
        if item == 3:
            raise ValueError("item 3")
        return item

    stream = ahead(range(100), work, 2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3"):
        next(stream)
    assert max(started) <= 5


def test_thread_counts():
    assert usable_cpus() >= 1
    assert worker_threads(3) == 3 and worker_threads(1) == 1
    assert worker_threads(0) == (2 if usable_cpus() >= 2 else 1)


def test_read_ahead_runs_the_producer_on_one_worker_in_order():
    produced, producers = [], set()

    def items():
        for i in range(12):
            producers.add(threading.current_thread().name)
            produced.append(i)
            yield i

    stream = read_ahead(items(), depth=2, name="test-reader")
    for consumed in range(12):
        assert next(stream) == consumed
        assert len(produced) <= consumed + 1 + 2  # at most depth items ahead
    assert list(stream) == []
    assert len(producers) == 1 and next(iter(producers)).startswith("test-reader")
    assert produced == list(range(12))


def test_read_ahead_depth_zero_stays_on_the_caller_and_failures_surface():
    names = set()
    assert list(read_ahead((names.add(threading.current_thread().name) or i for i in range(3)), 0)) == [0, 1, 2]
    assert names == {threading.current_thread().name}

    def failing():
        yield 1
        raise ValueError("producer broke")

    stream = read_ahead(failing(), 1)
    assert next(stream) == 1
    with pytest.raises(ValueError, match="producer broke"):
        next(stream)


def test_worker_threads_share_the_main_malloc_arena(monkeypatch):
    import ctypes

    import recon4d.workers as workers_module

    calls = []

    class FakeLibc:
        def mallopt(self, parameter, value):
            calls.append((parameter, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    workers_module.share_malloc_arena.cache_clear()
    try:
        assert list(ahead(range(3), lambda i: i, 2)) == [0, 1, 2]
        assert calls == [(workers_module.M_ARENA_MAX, 1)]  # once, before the workers start
        list(read_ahead(range(3)))
        assert len(calls) == 1
        workers_module.share_malloc_arena.cache_clear()
        monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's setting wins
        assert workers_module.share_malloc_arena() is False and len(calls) == 1
    finally:
        workers_module.share_malloc_arena.cache_clear()


def _blas_thread_counts() -> list[int]:
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_one_blas_thread_sets_every_loaded_blas_to_one_and_restores_it(monkeypatch):
    import cv2  # noqa: F401  (its wheel bundles a third OpenBLAS)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    import recon4d.workers as workers_module

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with threadpool_limits(limits=3, user_api="blas"):
        before = _blas_thread_counts()
        assert len(before) >= 2 and set(before) == {3}  # numpy's and scipy's OpenBLAS at least
        with workers_module.one_blas_thread():
            assert set(_blas_thread_counts()) == {1}
            with workers_module.one_blas_thread():  # nested: still one, and one after the inner block
                pass
            assert set(_blas_thread_counts()) == {1}
        assert _blas_thread_counts() == before
        with pytest.raises(ValueError), workers_module.one_blas_thread():
            raise ValueError("a failing block restores the counts too")
        assert _blas_thread_counts() == before
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the user's setting wins
        with workers_module.one_blas_thread():
            assert _blas_thread_counts() == before

def test_queued_items_start_while_the_caller_holds_a_result():
    """``queued`` more items wait for a free worker: with 2 workers and 1 queued, while the caller
    holds item 0, items 1 and 2 both get computed (not only the one in flight), in order."""
    started = []
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            started.append(item)
        time.sleep(0.001 * ((item * 7) % 3))  # later items may finish first
        return -item

    stream = ahead(range(30), work, 2, queued=1)
    assert next(stream) == 0
    deadline = time.monotonic() + 10.0
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert sorted(started) == [0, 1, 2]  # the third waited in the queue, then ran with no request
    assert list(stream) == [-i for i in range(1, 30)]
    plain = ahead(range(30), work, 2)
    started.clear()
    assert next(plain) == 0
    time.sleep(0.05)
    assert sorted(started) == [0, 1]  # without a queue: only the item in flight


def test_quick_gil_handoff_shortens_the_switch_interval_and_restores_it():
    import sys

    from recon4d.workers import quick_gil_handoff

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        with quick_gil_handoff(0.001):
            assert sys.getswitchinterval() == pytest.approx(0.001, rel=0.01)
            with quick_gil_handoff(0.001):  # nested: the outer block still holds it after
                pass
            assert sys.getswitchinterval() == pytest.approx(0.001, rel=0.01)
        assert sys.getswitchinterval() == pytest.approx(0.005, rel=0.01)
        with pytest.raises(ValueError), quick_gil_handoff(0.001):
            raise ValueError("a failing block restores it too")
        assert sys.getswitchinterval() == pytest.approx(0.005, rel=0.01)
        sys.setswitchinterval(0.0005)
        with quick_gil_handoff(0.001):  # never lengthened
            assert sys.getswitchinterval() == pytest.approx(0.0005, rel=0.01)
    finally:
        sys.setswitchinterval(before)
