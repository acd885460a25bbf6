"""Headless rendering of Open3D geometry, in a worker process.

An OpenGL/Vulkan context on Mesa's software drivers loads Mesa's LLVM into the process; a
later import of a library with its own LLVM (triton, which torch and transformers import)
then crashes the interpreter (seen here: render, then ``import triton`` → SIGSEGV). So
:func:`render_geometries` sends plain arrays to one long-lived worker process
(``python -m recon4d.viz.render_worker``, started on first use, stopped at exit, killed and
replaced when it stalls) and the caller's process never holds a GL context.

The worker is shared safely: one request at a time (a lock, so threads wait their turn), and
a process forked from its owner starts its own worker instead of talking through the owner's
pipes (a PID check, and the lock is renewed in the child). Every exchange has one deadline
for sending the request and reading the whole reply (``_WORKER_TIMEOUT_S``), however slowly
the bytes come. The worker's stderr is drained by a thread into the last
``_STDERR_LINES`` lines, which failure messages quote; a worker that dies from SIGKILL
without being killed here is reported as most likely killed by the out-of-memory killer.

In the worker the legacy ``Visualizer`` on an EGL offscreen context (``libegl1
libgl1-mesa-dri``; ~0.1 s a frame on the CPU) is tried first, then Filament's
``OffscreenRenderer`` (Vulkan; Mesa's lavapipe without a GPU, ``libvulkan1
mesa-vulkan-drivers``), which took 1–6 s a frame on lavapipe here and stalled after a few
renders in one process. open3d is imported inside the functions that need it (STYLE §6).
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time

import numpy as np

from recon4d.viz.open3d_render import RenderCamera, to_arrays

_WORKER_TIMEOUT_S = 300.0
"""Deadline of one whole exchange with the worker: request written and reply read."""
_STDERR_LINES = 200
"""Lines of the worker's stderr kept for failure messages (older ones are dropped)."""
_STDERR_LINE_CHARS = 500
WORKER_COMMAND = (sys.executable, "-m", "recon4d.viz.render_worker")
"""How the worker is started (tests substitute stand-ins)."""

_LOCK = threading.Lock()
_STATE: dict = {}


class _Worker:
    """One worker process owned by the process that started it, and the tail of its stderr."""

    def __init__(self, command) -> None:
        import subprocess

        self.owner_pid = os.getpid()
        self.process = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self.killed_here = False
        self._drain = threading.Thread(target=self._read_stderr, name="render-worker-stderr", daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        for line in iter(self.process.stderr.readline, b""):
            self.stderr_tail.append(line.decode(errors="replace").rstrip()[:_STDERR_LINE_CHARS])

    def usable(self) -> bool:
        return self.owner_pid == os.getpid() and self.process.poll() is None

    def exchange(self, request: bytes, timeout_s: float) -> tuple[bytes | None, str]:
        """Send one framed request and read the framed reply before the deadline.
        Returns (reply, "") or (None, "timeout" | "closed")."""
        deadline = time.monotonic() + timeout_s
        framed = len(request).to_bytes(8, "little") + request
        if not _write_all(self.process.stdin.fileno(), framed, deadline):
            return None, "timeout" if time.monotonic() >= deadline else "closed"
        header = _read_exactly(self.process.stdout.fileno(), 8, deadline)
        if header is None or isinstance(header, str):
            return None, header or "closed"
        body = _read_exactly(self.process.stdout.fileno(), int.from_bytes(header, "little"), deadline)
        if body is None or isinstance(body, str):
            return None, body or "closed"
        return body, ""

    def stop(self, kill: bool = False) -> None:
        """End the worker (close its stdin, or kill it) and release its pipes."""
        if kill and self.process.poll() is None:
            self.killed_here = True
            self.process.kill()
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except Exception:  # a stuck worker is killed rather than waited on forever
            self.killed_here = True
            self.process.kill()
            self.process.wait()
        self._drain.join(timeout=5)
        self.process.stdout.close()
        self.process.stderr.close()

    def failure(self, why: str, timeout_s: float) -> str:
        """Why the exchange failed, in words, with the last lines of the worker's stderr."""
        code = self.process.returncode
        if why == "timeout":
            text = f"the render worker timed out (no complete reply within {timeout_s:g} s)"
        elif code is not None and code < 0 and -code == signal.SIGKILL and not self.killed_here:
            text = ("the render worker was killed by SIGKILL, most likely by the out-of-memory killer "
                    "(render fewer points or a smaller image)")
        elif code is not None and code < 0:
            text = f"the render worker died from signal {signal.Signals(-code).name}"
        else:
            text = f"the render worker exited with code {code}"
        tail = [line for line in self.stderr_tail if line.strip()][-3:]
        return text + (f": {' / '.join(tail)}" if tail else "")


def _write_all(fd: int, data: bytes, deadline: float) -> bool:
    import select

    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
            return False
        try:
            written = os.write(fd, view[: 1 << 16])
        except (BrokenPipeError, OSError):
            return False
        view = view[written:]
    return True


def _read_exactly(fd: int, size: int, deadline: float) -> bytes | str:
    """``size`` bytes from ``fd``, or "timeout" when the deadline passes first, "closed" at EOF."""
    import select

    chunks, missing = [], size
    while missing:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return "timeout"
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return "closed"
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _wait_quietly(process, timeout_s: float) -> None:
    import subprocess

    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass


def _forget_after_fork() -> None:
    """In a forked child: a fresh lock (the parent's may be held) and no worker (the parent's
    pipes are not ours to use or close)."""
    global _LOCK
    _LOCK = threading.Lock()
    _STATE.clear()


def _stop_worker() -> None:
    worker = _STATE.pop("worker", None)
    if worker is not None and worker.owner_pid == os.getpid():
        worker.stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _render_in_worker(payload: list, camera: RenderCamera, size: tuple[int, int], point_size: float):
    """Send one render to the worker process (started on first use); the image, or failure reasons."""
    import pickle

    with _LOCK:
        worker = _STATE.get("worker")
        if worker is None or not worker.usable():
            if worker is not None and worker.owner_pid == os.getpid():
                worker.stop(kill=True)
            if not _STATE.get("atexit"):
                import atexit

                atexit.register(_stop_worker)
                _STATE["atexit"] = True
            worker = _STATE["worker"] = _Worker(WORKER_COMMAND)
        timeout_s = _WORKER_TIMEOUT_S
        reply, why = worker.exchange(pickle.dumps((payload, camera, size, point_size)), timeout_s)
        if reply is None:
            if why == "closed":  # it closed its end: let it finish dying, so its own exit status is read
                _wait_quietly(worker.process, 5.0)
            worker.stop(kill=worker.process.poll() is None)
            _STATE.pop("worker", None)
            return [worker.failure(why, timeout_s)]
    status, result = pickle.loads(reply)
    if status == "error":
        return [f"the render worker failed: {result}"]
    return result


def render_geometries(o3d, geometries: list, camera: RenderCamera, size: tuple[int, int],
                      point_size: float) -> np.ndarray | list[str]:
    """(height, width, 3) uint8 render of Open3D ``geometries`` (point clouds, line sets,
    triangle meshes) from ``camera`` at ``size`` = (width, height); or, when no renderer
    works, the list of reasons why."""
    return _render_in_worker([to_arrays(o3d, g) for g in geometries], camera, size, point_size)
