"""Compile every numba kernel of recon4d into numba's on-disk cache, once, after installing.

numba compiles a kernel the first time it is called and caches the machine code on disk
(``cache=True``); without this step the first ``recon4d process`` after an install spends
20-35 s compiling (the lifting kernel alone most of it) and every later run loads the
cache in well under a second. ``scripts/install.sh`` runs ``python -m recon4d.warmup``.

:func:`warm_up` calls each stage's public entry point on a tiny input of the types the
pipeline passes, so exactly the signatures a real run needs are compiled:

- lifting (``recon4d.lift``): :func:`~recon4d.lift.lifting.lift_objects` on bool masks and
  float16 point maps (the kernel reads raw bytes, one signature for every dtype);
- classic bundle adjustment (``recon4d.recon.classic.bundle_adjust``): a small solvable
  problem, so the normal equations, Schur complement and Cholesky kernels all run;
- the QA answer rules (``recon4d.qa_compiler``): one single and one batched call per kind.

The cache lands where numba puts it: ``NUMBA_CACHE_DIR`` if set, else ``__pycache__``
beside each module (or numba's user cache folder when that is read-only). A later run
loads it only with the same numba, CPU and source files.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from recon4d.lift.lifting import LiftConfig, lift_objects
from recon4d.qa_compiler import rules
from recon4d.recon.classic.bundle_adjust import bundle_adjust


def _lifting() -> None:
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 2, 12, 16), bool)
    masks[0, :, 2:8, 3:9] = True
    masks[1, :, 6:11, 8:15] = True
    points = np.stack(np.meshgrid(np.arange(16.0), np.arange(12.0)), -1) / 16.0
    depth = 2.0 + rng.random((2, 12, 16, 1))
    local_points = np.concatenate([np.broadcast_to(points, (2, 12, 16, 2)), np.ones((2, 12, 16, 1))], -1) * depth
    conf = rng.random((2, 12, 16)).astype(np.float32)
    lift_objects(masks, local_points.astype(np.float16), conf, np.tile(np.eye(4), (2, 1, 1)), LiftConfig())


def _bundle_adjustment() -> None:
    rng = np.random.default_rng(0)
    n_frames, n_points = 3, 40
    points = rng.uniform([-1.0, -1.0, 4.0], [1.0, 1.0, 6.0], (n_points, 3))
    world_to_cam = np.tile(np.eye(4)[:3], (n_frames, 1, 1))
    world_to_cam[:, 0, 3] = -0.2 * np.arange(n_frames)
    camera = np.einsum("tij,nj->nti", world_to_cam[:, :, :3], points) + world_to_cam[None, :, :, 3]
    xy = camera[..., :2] / camera[..., 2:] + rng.normal(0.0, 1e-3, (n_points, n_frames, 2))
    start = world_to_cam.copy()
    start[1:, :, 3] += 0.01
    bundle_adjust(start, points + 0.01, xy, np.ones((n_points, n_frames), bool), 500.0, n_iterations=2)


def _qa_rules() -> None:
    rng = np.random.default_rng(0)
    distances, speeds, vectors = rng.random((3, 6)), rng.random((2, 3, 6)), rng.normal(size=(3, 6, 3))
    rules.describe_distance(distances[0])
    rules.describe_distances(distances)
    rules.describe_speed_comparison(speeds[0, 0], speeds[1, 0])
    rules.describe_speed_comparisons(speeds[0], speeds[1])
    rules.describe_direction(vectors[0])
    rules.describe_directions(vectors)


KERNELS: dict[str, Callable[[], None]] = {
    "lift": _lifting,
    "bundle_adjust": _bundle_adjustment,
    "qa_rules": _qa_rules,
}
"""Stage name → a call that compiles (or loads) its kernels."""


def warm_up(progress: Callable[[str, float], None] | None = None) -> dict[str, float]:
    """Compile (or load from the cache) every kernel; returns seconds per stage.

    ``progress(stage, seconds)`` is called after each stage.
    """
    seconds = {}
    for name, run in KERNELS.items():
        started = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - started
        if progress is not None:
            progress(name, seconds[name])
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m recon4d.warmup", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    started = time.perf_counter()
    warm_up(lambda name, s: print(f"[warmup] {name}: {s:.1f}s", flush=True))
    print(f"[warmup] numba kernels compiled and cached in {time.perf_counter() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
