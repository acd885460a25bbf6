"""One batch worker: processes manifest entries one at a time, writing each one's outputs.

For one entry (a :class:`Job`) the worker writes, in this order and each atomically:

    state/ID.json  running (attempt n)  ->  stores/ID.zarr  ->  qa/ID.jsonl  ->  state/ID.json  done | failed

so whatever moment the worker or the driver is killed at, the entry is either recorded done
with outputs whose checksums match the record, or it is processed again on ``--resume``; the
store and the questions file are replaced whole, never duplicated or left half written. The
same worker object serves every entry it is given (a process of the local pool, a Ray actor),
so learned backends load their models once per worker, not once per video.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from recon4d.batch.manifest import ManifestEntry
from recon4d.batch.state import BatchSettings, Layout, VideoState, write_state
from recon4d.errors import Recon4dError


@dataclass(frozen=True)
class Job:
    """One attempt at one manifest entry."""

    entry: ManifestEntry
    """What to process."""
    attempt: int
    """1 for the first attempt."""
    history: tuple = ()
    """Outcomes of earlier attempts, kept in the state record."""


def limit_threads(threads: int) -> None:
    """Cap the worker's compute threads (numba, OpenCV, torch), so N workers share the cores
    instead of each starting one thread per core."""
    threads = max(1, int(threads))
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):
        pass
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


class VideoWorker:
    """Processes jobs of one batch; holds the batch settings and the output layout."""

    def __init__(self, settings: BatchSettings, outdir: str | Path, threads: int | None = None):
        from recon4d.settings import quiet_library_progress

        self.settings = settings
        self.layout = Layout(Path(outdir))
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self.backends: dict = {}
        """Backends built so far (models loaded once per worker, reused for every video)."""
        quiet_library_progress()
        if threads is not None:
            limit_threads(threads)

    def pid(self) -> int:
        return os.getpid()

    def process(self, job: Job) -> VideoState:
        """Run the pipeline (and QA) on ``job``'s entry; return and record its state."""
        entry, layout = job.entry, self.layout
        base = VideoState(id=entry.id, video=entry.video, status="running", attempt=job.attempt, host=self.host,
                          history=job.history)
        write_state(layout, base)
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            state = self._run(entry, base)
        except Recon4dError as exc:
            state = _failed(base, str(exc), retryable=False)
        except Exception as exc:  # a bug or a crash of a third-party library: worth another attempt
            state = _failed(base, f"internal error ({type(exc).__name__}: {exc}); the traceback is in the state "
                                  "record's 'detail'", retryable=True, detail=traceback.format_exc())
        state = _with_seconds(state, time.perf_counter() - started, time.process_time() - cpu_started)
        write_state(layout, state)
        return state

    def _run(self, entry: ManifestEntry, base: VideoState) -> VideoState:
        from recon4d.outputs import check_output
        from recon4d.pipeline import process_video
        from recon4d.store import is_store, store_checksum, write_scene

        settings, layout = self.settings, self.layout
        store_path = layout.store(entry.id)
        check_output(store_path, "dir", overwrite=True, replaceable=is_store, what="scene store")
        weights_dir = Path(settings.weights_dir) if settings.weights_dir else None
        result = process_video(entry.video, settings.entry_config(entry), weights_dir=weights_dir,
                               backends=self.backends)
        write_scene(result.scene, store_path, overwrite=True)
        state = _done(base, layout.relative(store_path), store_checksum(store_path))
        if settings.qa is not None:
            state = self._questions(entry, state)
        return state

    def _questions(self, entry: ManifestEntry, state: VideoState) -> VideoState:
        from recon4d.qa_compiler.compiler import compile_scene
        from recon4d.qa_compiler.export import export
        from recon4d.store import file_sha256, open_scene

        layout = self.layout
        scene = open_scene(layout.store(entry.id))
        records, _ = compile_scene(scene, self.settings.qa, video_id=entry.id)
        path = export(records, layout.qa(entry.id), "jsonl")
        return _replace(state, qa=layout.relative(path), qa_sha256=file_sha256(path), qa_count=len(records))


def _replace(state: VideoState, **changes) -> VideoState:
    from dataclasses import replace

    return replace(state, **changes)


def _done(base: VideoState, store: str, sha256: str) -> VideoState:
    return _replace(base, status="done", store=store, store_sha256=sha256)


def _failed(base: VideoState, reason: str, retryable: bool, detail: str | None = None) -> VideoState:
    return _replace(base, status="failed", reason=" ".join(reason.split()), retryable=retryable, detail=detail)


def _with_seconds(state: VideoState, seconds: float, cpu_seconds: float) -> VideoState:
    return _replace(state, seconds=round(seconds, 3), cpu_seconds=round(cpu_seconds, 3))


def died(job: Job, host: str | None, why: str, layout: Layout) -> VideoState:
    """The record of an attempt whose worker died (written by the driver)."""
    state = VideoState(id=job.entry.id, video=job.entry.video, status="failed", attempt=job.attempt,
                       reason=f"the worker processing it died ({why}); the attempt left nothing behind",
                       retryable=True, host=host, history=job.history)
    write_state(layout, state)
    return state
