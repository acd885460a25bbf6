"""Benchmark mask lifting: numba kernel vs the vectorised numpy reference. Prints one JSON object.

Scene: T frames of W×H (π³'s 518×294 by default) of float32 points on a random smooth depth
field with 0.2 % noise (fully random depths would make every pixel a depth edge and leave
nothing to lift), uniform random float32 confidence, and K elliptical object blobs drifting
across the frame, each covering 2–15 % of it. Both paths run ``LiftConfig`` defaults but the
estimator (conf > 0.1, depth edges at 0.03, extent quantiles 0.05/0.95). Timings are warm
(one call first, which also compiles), best of ``--repeats``; GB/s counts the bytes of
masks + points + conf read. The load average is reported because the figures are wall-clock
on a shared machine.

    python benchmarks/lift.py [--frames 32] [--width 518] [--height 294] [--objects 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from recon4d.lift.lifting import LiftConfig, _lift_numpy, lift_objects


def make_scene(n_frames: int, height: int, width: int, n_obj: int, seed: int = 0):
    """masks (K, T, H, W) bool, points (T, H, W, 3) float32, conf (T, H, W) float32, cam_to_world."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    focal = 0.8 * width
    masks = np.zeros((n_obj, n_frames, height, width), dtype=bool)
    points = np.empty((n_frames, height, width, 3), dtype=np.float32)
    for t in range(n_frames):
        phase = rng.uniform(0, 2 * np.pi, 2)
        depth = 4.0 + np.sin(u / 60.0 + phase[0]) + 0.5 * np.cos(v / 45.0 + phase[1])
        depth *= 1.0 + 0.002 * rng.standard_normal((height, width)).astype(np.float32)
        points[t, ..., 0] = (u - width / 2) * depth / focal
        points[t, ..., 1] = (v - height / 2) * depth / focal
        points[t, ..., 2] = depth
    for k in range(n_obj):
        area = rng.uniform(0.02, 0.15) * height * width
        aspect = rng.uniform(0.5, 2.0)
        semi_u = np.sqrt(area * aspect / np.pi)
        semi_v = area / (np.pi * semi_u)
        start = rng.uniform([semi_u, semi_v], [width - semi_u, height - semi_v])
        velocity = rng.uniform(-2.0, 2.0, 2)
        for t in range(n_frames):
            cu, cv = np.clip(start + t * velocity, 0, [width - 1, height - 1])
            masks[k, t] = ((u - cu) / semi_u) ** 2 + ((v - cv) / semi_v) ** 2 <= 1.0
    conf = rng.random((n_frames, height, width), dtype=np.float32)
    cam_to_world = np.tile(np.eye(4), (n_frames, 1, 1))
    return masks, points, conf, cam_to_world


def best_times(fns: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each function; rounds alternate between them so that a burst of
    load on a shared machine hits all of them alike. Each is called once first (warm-up)."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def with_threads(n_threads: int, fn):
    """``fn`` run with numba limited to ``n_threads`` threads."""
    import numba

    def run():
        previous = numba.get_num_threads()
        numba.set_num_threads(n_threads)
        try:
            return fn()
        finally:
            numba.set_num_threads(previous)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--width", type=int, default=518)
    parser.add_argument("--height", type=int, default=294)
    parser.add_argument("--objects", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import numba

    masks, points, conf, cam_to_world = make_scene(args.frames, args.height, args.width, args.objects)
    n_bytes = masks.nbytes + points.nbytes + conf.nbytes
    report = {
        "benchmark": "lift_objects",
        "frames": args.frames,
        "width": args.width,
        "height": args.height,
        "objects": args.objects,
        "mask_coverage": [round(float(f), 4) for f in masks.mean(axis=(1, 2, 3))],
        "input_bytes": int(n_bytes),
        "numba_threads": numba.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "versions": {"numpy": np.__version__, "numba": numba.__version__},
        "timing": f"wall clock, warm, best of {args.repeats} interleaved rounds after one warm-up call",
        "estimators": {},
    }
    for estimator in ("mean", "median"):
        config = LiftConfig(estimator=estimator)
        fast = lift_objects(masks, points, conf, cam_to_world, config)
        slow = _lift_numpy(masks, points, conf, cam_to_world, config)
        agree = bool(
            np.array_equal(fast.n_points, slow.n_points)
            and np.allclose(fast.center_camera, slow.center_camera, rtol=1e-9, atol=1e-12, equal_nan=True)
        )
        fast_call = lambda: lift_objects(masks, points, conf, cam_to_world, config)  # noqa: E731
        best = best_times(
            {
                "numba": fast_call,
                "numba_1_thread": with_threads(1, fast_call),
                "numpy": lambda: _lift_numpy(masks, points, conf, cam_to_world, config),
            },
            args.repeats,
        )
        numba_s, numpy_s = best["numba"], best["numpy"]
        report["estimators"][estimator] = {
            "numba_s": round(numba_s, 5),
            "numba_1_thread_s": round(best["numba_1_thread"], 5),
            "numpy_reference_s": round(numpy_s, 5),
            "numba_frames_per_s": round(args.frames / numba_s, 1),
            "numpy_frames_per_s": round(args.frames / numpy_s, 1),
            "numba_GB_per_s": round(n_bytes / numba_s / 1e9, 3),
            "numpy_GB_per_s": round(n_bytes / numpy_s / 1e9, 3),
            "speedup": round(numpy_s / numba_s, 2),
            "speedup_1_thread": round(numpy_s / best["numba_1_thread"], 2),
            "results_agree": agree,
            "mean_points_per_object_frame": round(float(fast.n_points.mean()), 1),
        }
    report["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
