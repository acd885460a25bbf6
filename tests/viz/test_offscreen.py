"""Tests of recon4d/viz/offscreen.py: the geometry round trip to the worker and its recovery."""

import numpy as np
import pytest

o3d = pytest.importorskip("open3d")

from recon4d.errors import Recon4dError  # noqa: E402
from recon4d.viz.offscreen import RenderCamera, render_geometries
from recon4d.viz.open3d_render import from_arrays, to_arrays  # noqa: E402


def _geometries():
    rng = np.random.default_rng(0)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(rng.uniform(-1, 1, (50, 3)) + [0, 0, 4]))
    cloud.colors = o3d.utility.Vector3dVector(np.tile([1.0, 0.0, 0.0], (50, 1)))
    lines = o3d.geometry.LineSet(o3d.utility.Vector3dVector([[0, 0, 3], [1, 0, 3]]), o3d.utility.Vector2iVector([[0, 1]]))
    lines.colors = o3d.utility.Vector3dVector([[0.0, 0.0, 1.0]])
    mesh = o3d.geometry.TriangleMesh.create_box(0.5, 0.5, 0.5).translate([-0.25, -0.25, 2.5])
    mesh.paint_uniform_color([0.0, 1.0, 0.0])
    return [cloud, lines, mesh]


def _camera(size=(96, 64)):
    intrinsics = np.array([[80.0, 0, size[0] / 2], [0, 80.0, size[1] / 2], [0, 0, 1]])
    return RenderCamera(intrinsics=intrinsics, cam_to_world=np.eye(4))


def test_arrays_round_trip_keeps_every_geometry():
    for geometry in _geometries():
        back = from_arrays(o3d, to_arrays(o3d, geometry))
        assert type(back) is type(geometry)
        for a, b in zip(to_arrays(o3d, geometry)[1:], to_arrays(o3d, back)[1:]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="cannot render"):
        to_arrays(o3d, o3d.geometry.VoxelGrid())


def test_render_draws_the_box_in_the_middle():
    image = render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0)
    assert isinstance(image, np.ndarray) and image.shape == (64, 96, 3)
    green = (image[..., 1] > 200) & (image[..., 0] < 60) & (image[..., 2] < 60)
    rows, cols = np.nonzero(green)
    assert green.sum() > 50 and abs(rows.mean() - 32) < 4 and abs(cols.mean() - 48) < 4


def test_stuck_worker_is_replaced(monkeypatch):
    import recon4d.viz.offscreen as offscreen

    monkeypatch.setattr(offscreen, "_WORKER_TIMEOUT_S", 1e-4)
    failures = render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0)
    assert isinstance(failures, list) and "render worker timed out" in failures[0]
    monkeypatch.setattr(offscreen, "_WORKER_TIMEOUT_S", 300.0)
    assert render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0).shape == (64, 96, 3)


def test_viewer_turns_failures_into_a_clear_error(monkeypatch):
    import recon4d.viz.viewer as viewer

    monkeypatch.setattr(viewer, "render_geometries", lambda *args: ["legacy: no EGL", "filament: no Vulkan"])
    scene = _tiny_scene()
    with pytest.raises(Recon4dError, match="legacy: no EGL; filament: no Vulkan.*apt-get install"):
        viewer.render_image(scene, frame=0, size=(64, 48), color_by="object")


def _tiny_scene():
    from recon4d.types import Scene

    n = 2
    return Scene(timestamps_s=np.arange(n, dtype=float), frame_index=np.arange(n),
                 cam_to_world=np.tile(np.eye(4), (n, 1, 1)), intrinsics=np.full((n, 3, 3), np.nan, np.float32), ids=np.zeros(0, np.int32), categories=(),
                 is_agent=np.zeros(0, bool), visible=np.zeros((0, n), bool), box_xyxy=np.zeros((0, n, 4), np.float32),
                 center_world=np.zeros((0, n, 3)), orientation=np.zeros((0, n, 3), np.float32),
                 orient_conf=np.zeros((0, n), np.float32))


# --- the worker shared across threads and forks, one deadline per exchange, bounded logs -------------

def _standin(monkeypatch, script: str) -> None:
    """Replace the render worker by ``python -c script`` (reads stdin, writes stdout like the worker)."""
    import sys

    import recon4d.viz.offscreen as offscreen

    monkeypatch.setattr(offscreen, "WORKER_COMMAND", (sys.executable, "-c", script))
    offscreen._stop_worker()


_READ_REQUEST = ("import os, sys, time, signal\n"
                 "head = sys.stdin.buffer.read(8)\n"
                 "sys.stdin.buffer.read(int.from_bytes(head, 'little'))\n")


@pytest.fixture()
def fresh_worker():
    import recon4d.viz.offscreen as offscreen

    offscreen._stop_worker()
    yield
    offscreen._stop_worker()


@pytest.mark.timeout(120)
def test_timeout_covers_the_whole_reply_not_each_read(monkeypatch, fresh_worker):
    """A worker that drips its reply one byte at a time used to pass every per-read check."""
    import time

    import recon4d.viz.offscreen as offscreen

    _standin(monkeypatch, _READ_REQUEST + "out = os.fdopen(1, 'wb', 0)\nout.write((100).to_bytes(8, 'little'))\n"
                                          "for _ in range(100):\n    out.write(b'x'); time.sleep(0.2)\n")
    monkeypatch.setattr(offscreen, "_WORKER_TIMEOUT_S", 1.0)
    started = time.monotonic()
    failures = render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0)
    assert time.monotonic() - started < 10
    assert isinstance(failures, list) and "timed out (no complete reply within 1 s)" in failures[0]


def test_oom_kill_is_reported_as_such(monkeypatch, fresh_worker):
    _standin(monkeypatch, _READ_REQUEST + "print('allocating 80 GB', file=sys.stderr, flush=True)\n"
                                          "os.kill(os.getpid(), signal.SIGKILL)\n")
    failures = render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0)
    assert "killed by SIGKILL, most likely by the out-of-memory killer" in failures[0]
    assert "allocating 80 GB" in failures[0]


def test_stderr_is_kept_bounded_and_quoted(monkeypatch, fresh_worker):
    import recon4d.viz.offscreen as offscreen

    _standin(monkeypatch, _READ_REQUEST + "for i in range(20000):\n    print(f'noise {i} ' + 'x' * 2000, file=sys.stderr)\n"
                                          "print('the real reason', file=sys.stderr)\nsys.exit(3)\n")
    failures = render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0)
    assert failures[0].startswith("the render worker exited with code 3") and failures[0].endswith("the real reason")
    assert len(failures[0]) < 2000
    worker = offscreen._Worker(offscreen.WORKER_COMMAND)  # its own copy of the same stand-in
    worker.process.stdin.write(b"\0" * 8)
    worker.process.stdin.flush()
    worker.process.wait()
    worker.stop()
    assert len(worker.stderr_tail) == offscreen._STDERR_LINES
    assert all(len(line) <= offscreen._STDERR_LINE_CHARS for line in worker.stderr_tail)


def _green_centre_ok(image) -> bool:
    if not isinstance(image, np.ndarray):
        return False
    green = (image[..., 1] > 200) & (image[..., 0] < 60) & (image[..., 2] < 60)
    rows, cols = np.nonzero(green)
    return bool(green.sum() > 50 and abs(rows.mean() - 32) < 4 and abs(cols.mean() - 48) < 4)


@pytest.mark.timeout(300)
def test_threads_share_the_worker_one_request_at_a_time(fresh_worker):
    """Four threads at once, each asking for its own image size: each must get its own image back."""
    from concurrent.futures import ThreadPoolExecutor

    sizes = [(96, 64), (80, 56), (112, 72), (64, 48)] * 4

    def render(size):
        camera = RenderCamera(np.array([[80.0, 0, size[0] / 2], [0, 80.0, size[1] / 2], [0, 0, 1]]), np.eye(4))
        return size, render_geometries(o3d, _geometries(), camera, size, 3.0)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(render, sizes))
    for (width, height), image in results:
        assert isinstance(image, np.ndarray) and image.shape == (height, width, 3), (width, height)
        green = (image[..., 1] > 200) & (image[..., 0] < 60) & (image[..., 2] < 60)
        rows, cols = np.nonzero(green)
        assert abs(rows.mean() - height / 2) < 4 and abs(cols.mean() - width / 2) < 4


def test_a_forked_child_starts_its_own_worker(fresh_worker):
    """Parent and child render at the same time: the child must not talk through the parent's pipes."""
    import os

    import recon4d.viz.offscreen as offscreen

    assert _green_centre_ok(render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0))
    parent_worker = offscreen._STATE["worker"].process.pid
    pid = os.fork()
    if pid == 0:  # the child: exit status says whether its renders were right and its worker its own
        status = 1
        try:
            ok = all(_green_centre_ok(render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0))
                     for _ in range(3))
            status = 0 if ok and offscreen._STATE["worker"].process.pid != parent_worker else 2
        finally:
            os._exit(status)
    mine = [render_geometries(o3d, _geometries(), _camera(), (96, 64), 3.0) for _ in range(3)]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert all(_green_centre_ok(image) for image in mine)
    assert offscreen._STATE["worker"].process.pid == parent_worker


@pytest.mark.timeout(120)
def test_a_child_forked_while_a_thread_renders_does_not_inherit_the_held_lock(monkeypatch, fresh_worker):
    """A fork while another thread is mid-exchange copies the lock in its held state: without
    a fresh lock in the child, the child's first render waits forever."""
    import os
    import signal
    import threading
    import time

    import recon4d.viz.offscreen as offscreen

    _standin(monkeypatch, "import os, pickle, sys, time\n"
                          "while head := sys.stdin.buffer.read(8):\n"
                          "    sys.stdin.buffer.read(int.from_bytes(head, 'little'))\n"
                          "    time.sleep(1.5)\n"
                          "    reply = pickle.dumps(('ok', os.getpid()))\n"
                          "    sys.stdout.buffer.write(len(reply).to_bytes(8, 'little') + reply)\n"
                          "    sys.stdout.buffer.flush()\n")
    results = []
    busy = threading.Thread(target=lambda: results.append(render_geometries(o3d, [], _camera(), (8, 8), 1.0)))
    busy.start()
    deadline = time.monotonic() + 30
    while not offscreen._LOCK.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert offscreen._LOCK.locked()
    pid = os.fork()
    if pid == 0:  # the child: its own worker answers within the alarm, or the alarm kills it
        status = 1
        try:
            signal.alarm(20)
            answer = render_geometries(o3d, [], _camera(), (8, 8), 1.0)
            status = 0 if isinstance(answer, int) and answer != os.getpid() else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    busy.join()
    assert os.waitstatus_to_exitcode(status) == 0, "the child hung on the lock its parent's thread held"
    assert isinstance(results[0], int)
