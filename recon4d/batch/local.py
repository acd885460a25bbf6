"""The ``local`` batch engine: a pool of worker processes on this machine.

Each worker is a spawned process holding one :class:`~recon4d.batch.worker.VideoWorker` (so
models load once per process) and takes one job at a time over a pipe. The driver waits on
the pipes and on the processes themselves: a worker that dies mid-job (killed, out of
memory, a crash in native code) is noticed at once, its job is reported as failed with the
exit signal, and a fresh worker takes its place. Workers die with the driver (Linux
``PR_SET_PDEATHSIG``), so a killed driver leaves no orphan writing into the batch folder.
"""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass
from multiprocessing import connection, get_context

from recon4d.batch.worker import Job, VideoWorker

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _serve(conn, settings, outdir: str, threads: int) -> None:
    """Worker process main loop: build the worker, then answer jobs until told to stop."""
    _die_with_parent()
    try:
        worker = VideoWorker(settings, outdir, threads)
    except BaseException as exc:  # reported to the driver, which fails the job it gave
        conn.send(("broken", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(("done", worker.process(job)))


@dataclass
class _Slot:
    process: object
    conn: object
    pid: int | None = None
    job: Job | None = None


def _exit_reason(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class LocalEngine:
    """Run jobs on ``workers`` processes of this machine, each limited to ``threads`` threads."""

    name = "local"

    def __init__(self, workers: int, threads: int | None = None):
        self.workers = max(1, int(workers))
        cores = os.cpu_count() or 1
        self.threads = threads or max(1, cores // self.workers)
        self._context = get_context("spawn")

    def _start(self, settings, outdir) -> _Slot:
        parent, child = self._context.Pipe()
        previous = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
        os.environ.update({name: str(self.threads) for name in _THREAD_VARIABLES})
        try:
            process = self._context.Process(target=_serve, args=(child, settings, str(outdir), self.threads),
                                            daemon=True, name="recon4d-batch-worker")
            process.start()
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        child.close()
        return _Slot(process, parent)

    def run(self, scheduler, settings, outdir) -> None:
        """Give ``scheduler.next_job()`` jobs to idle workers until it has none and all are idle;
        report each outcome with ``scheduler.finished(job, state)`` or ``scheduler.died(job, host, why)``."""
        slots = [self._start(settings, outdir) for _ in range(self.workers)]
        try:
            self._loop(slots, scheduler, settings, outdir)
        finally:
            for slot in slots:
                self._stop(slot)

    def _loop(self, slots, scheduler, settings, outdir) -> None:
        while True:
            for index, slot in enumerate(slots):
                if slot.job is None and not slot.process.is_alive():  # a worker that could not start
                    self._stop(slot)
                    slots[index] = slot = self._start(settings, outdir)
                if slot.job is None:
                    job = scheduler.next_job()
                    if job is None:
                        break
                    slot.job = job
                    try:
                        slot.conn.send(job)
                    except (BrokenPipeError, OSError):
                        pass  # the worker is dead; its sentinel reports it below
            busy = [s for s in slots if s.job is not None]
            if not busy:
                return
            waitables = {}
            for slot in busy:
                waitables[slot.conn] = slot
                waitables[slot.process.sentinel] = slot
            for ready in connection.wait(list(waitables)):
                slot = waitables[ready]
                if slot.job is None:
                    continue
                self._receive(slot, scheduler)
                if slot.job is not None and not slot.process.is_alive():
                    job, host = slot.job, f"local:{slot.pid}"
                    slot.job = None
                    scheduler.died(job, host, _exit_reason(slot.process))
                    index = slots.index(slot)
                    self._stop(slot)
                    slots[index] = self._start(settings, outdir)

    def _receive(self, slot: _Slot, scheduler) -> None:
        try:
            while slot.conn.poll():
                kind, value = slot.conn.recv()
                if kind == "ready":
                    slot.pid = value
                elif kind == "done":
                    job, slot.job = slot.job, None
                    scheduler.finished(job, value)
                    return
                elif kind == "broken":
                    job, slot.job = slot.job, None
                    scheduler.died(job, f"local:{slot.pid}", f"the worker could not start: {value}")
                    return
        except (EOFError, OSError):
            pass  # the sentinel check reports the death

    @staticmethod
    def _stop(slot: _Slot) -> None:
        try:
            slot.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        slot.process.join(timeout=5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        slot.conn.close()
