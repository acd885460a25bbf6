"""Headless rendering of Open3D geometry, in a worker process.

An OpenGL/Vulkan context on Mesa's software drivers loads Mesa's LLVM into the process; a
later import of a library with its own LLVM (triton, which torch and transformers import)
then crashes the interpreter (seen here: render, then ``import triton`` → SIGSEGV). So
:func:`render_geometries` sends plain arrays to one long-lived worker process
(``python -m recon4d.viz.render_worker``, started on first use, stopped at exit, killed and
replaced when it stalls) and the caller's process never holds a GL context.

In the worker the legacy ``Visualizer`` on an EGL offscreen context (``libegl1
libgl1-mesa-dri``; ~0.1 s a frame on the CPU) is tried first, then Filament's
``OffscreenRenderer`` (Vulkan; Mesa's lavapipe without a GPU, ``libvulkan1
mesa-vulkan-drivers``), which took 1–6 s a frame on lavapipe here and stalled after a few
renders in one process. open3d is imported inside the functions that need it (STYLE §6).
"""

from __future__ import annotations

import numpy as np

from recon4d.viz.open3d_render import RenderCamera, to_arrays


_WORKER = {}
_WORKER_TIMEOUT_S = 300.0


def _stop_worker() -> None:
    """Close the worker's stdin (it exits), wait for it and release its pipes and log."""
    worker, log = _WORKER.pop("process", None), _WORKER.pop("log", None)
    if worker is not None:
        worker.stdin.close()
        try:
            worker.wait(timeout=10)
        except Exception:  # a stuck worker is killed rather than waited on forever
            worker.kill()
            worker.wait()
        worker.stdout.close()
    if log is not None:
        log.close()


def _render_in_worker(payload: list, camera: RenderCamera, size: tuple[int, int], point_size: float):
    """Send one render to the worker process (started on first use); the image, or failure reasons."""
    import pickle
    import select
    import subprocess
    import sys
    import tempfile

    from recon4d.viz.render_worker import read_frame, write_frame

    worker = _WORKER.get("process")
    if worker is None or worker.poll() is not None:
        log = tempfile.TemporaryFile()
        worker = subprocess.Popen([sys.executable, "-m", "recon4d.viz.render_worker"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log)
        if not _WORKER:
            import atexit

            atexit.register(_stop_worker)
        _WORKER.update(process=worker, log=log)
    try:
        write_frame(worker.stdin, pickle.dumps((payload, camera, size, point_size)))
        ready, _, _ = select.select([worker.stdout], [], [], _WORKER_TIMEOUT_S)
        reply = read_frame(worker.stdout) if ready else None
    except (BrokenPipeError, OSError):
        reply = None
    if reply is None:
        worker.kill()
        worker.wait()
        log = _WORKER["log"]
        log.seek(0)
        tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
        _stop_worker()
        why = "timed out" if worker.returncode in (-9, None) else f"exited with code {worker.returncode}"
        return [f"the render worker {why}" + (f": {' / '.join(tail)}" if tail else "")]
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
