"""Independent per-item work done ahead of its consumer in worker threads, results in order.

The weights-free stages run on the CPU with OpenCV and numpy, which release the GIL in their
large calls, so a second thread uses a second core where a loop's items are independent
(the frame pairs of the tracker's motion). :func:`ahead` keeps at most ``threads`` items in
flight, so memory does not grow with the clip, and hands back each result in order;
:func:`read_ahead` runs a sequential producer (a video decoder, a frame-by-frame reader) one
worker thread ahead of its consumer; :func:`worker_threads` turns a setting into a thread
count (0: automatic, from the CPUs this process may use).

    for pair in ahead(((gray[t], gray[t + 1]) for t in range(n - 1)), lambda ab: flow(*ab), 2): ...
    for gray in read_ahead(to_gray(frames[t]) for t in range(n)): ...
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from recon4d.settings import blas_threads_set, malloc_arenas_set

__all__ = [
    "ahead",
    "one_blas_thread",
    "quick_gil_handoff",
    "read_ahead",
    "share_malloc_arena",
    "usable_cpus",
    "worker_threads",
]

Item = TypeVar("Item")
Result = TypeVar("Result")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_threads(setting: int) -> int:
    """Threads for a ``setting`` of N > 0 (N) or 0 (automatic: 2 where at least 2 CPUs are usable, else 1).

    Two, not one per CPU: the work handed out is a sequence's next items, and more in flight
    only holds more memory where the GIL-bound parts already keep the cores busy."""
    if setting > 0:
        return setting
    return 2 if usable_cpus() >= 2 else 1


M_ARENA_MAX = -8
"""glibc's mallopt parameter: the most malloc arenas."""


@functools.cache
def share_malloc_arena() -> bool:
    """Let threads allocate from glibc's main malloc arena (``mallopt(M_ARENA_MAX, 1)``), unless the user set
    ``MALLOC_ARENA_MAX``; whether it was set. Called before worker threads start.

    glibc gives each thread that allocates an arena of its own, and pages freed there stay with it
    (``malloc_trim`` cannot return what is fragmented): the tracker's motion workers, which allocate
    a few MB per frame pair, raised ``recon4d process`` 300 frames' peak from 815 to 846 MiB
    (benchmarks/memory.py: 1.91 → 2.03 MiB per frame, over issue 12's 2.0); with one arena, 814.
    The workers make a few large allocations per item, so sharing one lock costs nothing measurable.
    A no-op without glibc."""
    if malloc_arenas_set():
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Within the block every loaded BLAS (numpy's and scipy's OpenBLAS, the one OpenCV's wheel
    bundles) runs each call on its caller's thread; their thread counts are restored after
    (threadpoolctl). Left alone where the user set ``OPENBLAS_NUM_THREADS``.

    recon4d's BLAS calls are small (3 × 3 solves, (n, 81) @ (81, 9) window fits): a second
    BLAS thread never shortened them, but OpenBLAS's idle threads spin waiting for the next
    call and took a core from the tracker's motion workers (31 frame pairs of pipeline_speed's
    clip in one thread: 5.2 s CPU with numpy's 2 BLAS threads, 2.7 s with one, the same wall
    time; the same bits). Not thread-safe against BLAS calls already running elsewhere: enter
    it before starting the workers that call BLAS."""
    if blas_threads_set():
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


GIL_SWITCH_INTERVAL_S = 0.001
"""Seconds a thread holding the GIL runs before one that waits for it may take it, within
:func:`quick_gil_handoff` (Python's default: 0.005)."""

_handoff_lock = threading.Lock()
_handoff_depth = 0
_handoff_previous = 0.0


@contextlib.contextmanager
def quick_gil_handoff(interval_s: float = GIL_SWITCH_INTERVAL_S) -> Iterator[None]:
    """Within the block the interpreter hands the GIL to a waiting thread after ``interval_s``
    (``sys.setswitchinterval``, never lengthened), restored when the last of the blocks open in any
    thread ends.

    The stages' worker threads come back from each OpenCV or numpy call (which release the GIL)
    to a few lines of Python; with the default 5 ms switch interval such a thread waited for
    the GIL while another ran Python, and its core idled (the tracker on pipeline_speed's clip,
    2 CPUs, real-time priority, 6 runs alternated: median wall 1.94 -> 1.87 s at 1 ms). The
    interval only decides when threads switch, never what they compute: the same results."""
    global _handoff_depth, _handoff_previous
    with _handoff_lock:
        if _handoff_depth == 0:
            _handoff_previous = sys.getswitchinterval()
            sys.setswitchinterval(min(_handoff_previous, interval_s))
        _handoff_depth += 1
    try:
        yield
    finally:
        with _handoff_lock:
            _handoff_depth -= 1
            if _handoff_depth == 0:
                sys.setswitchinterval(_handoff_previous)


def ahead(inputs: Iterable[Item], work: Callable[[Item], Result], threads: int,
          name: str = "recon4d-worker", queued: int = 0) -> Iterator[Result]:
    """``work(item)`` of each of ``inputs`` in order, up to ``threads`` items computed ahead in worker threads.

    ``inputs`` is read on the caller's thread (lazy frame caches need not be thread-safe), up
    to ``threads`` + ``queued`` items ahead of the result being consumed: ``queued`` more wait
    for the next free worker, so a worker that finishes starts the next item while the caller is
    still busy with an earlier result (each one holds its result in memory meanwhile); ``work``
    runs on the workers and must not share unsynchronised state between calls. With ``threads``
    ≤ 1 everything runs on the caller's thread, one item at a time. An exception of ``work`` is
    raised here, at its item; items not yet started are then dropped (as when the consumer
    stops early).
    """
    if threads <= 1:
        for item in inputs:
            yield work(item)
        return
    items = iter(inputs)
    share_malloc_arena()
    with ThreadPoolExecutor(threads, thread_name_prefix=name) as pool:
        pending: deque = deque()
        try:
            while True:
                for item in items:
                    pending.append(pool.submit(work, item))
                    if len(pending) >= threads + max(queued, 0):
                        break
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


_END = object()


def read_ahead(items: Iterable[Item], depth: int = 1, name: str = "recon4d-reader") -> Iterator[Item]:
    """The items of ``items`` in order, produced in one worker thread up to ``depth`` items ahead.

    For producers that must run in order and on one thread at a time (a video decoder, a
    generator): the worker advances ``items`` while the caller works on the item it was given.
    ``depth`` ≤ 0 iterates on the caller's thread. An exception of the producer is raised here,
    at its item; when the caller stops early, nothing more is produced.
    """
    if depth <= 0:
        yield from items
        return
    source = iter(items)
    share_malloc_arena()
    with ThreadPoolExecutor(1, thread_name_prefix=name) as pool:
        pending: deque = deque()
        try:
            while True:
                while len(pending) <= depth:  # one worker: the next() calls run one after another, in order
                    pending.append(pool.submit(next, source, _END))
                item = pending.popleft().result()
                if item is _END:
                    return
                yield item
        finally:
            for future in pending:
                future.cancel()
