"""Decoding a late window of a long video, with and without seeking. Prints one JSON object.

A 640×360, 30 fps video of --seconds seconds (random blocks, x264 default keyframe interval
250) is written first, not timed; then the last --window seconds are sampled (8 frames) with
``iter_frames(..., seek=True)`` and ``seek=False``, best of 3 each.

    python benchmarks/video_seek.py [--seconds 120] [--window 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from recon4d.video import iter_frames, probe, write_video


def frames(n: int, rng: np.random.Generator):
    for _ in range(n):
        yield np.repeat(np.repeat((rng.random((18, 32, 3)) * 255).astype(np.uint8), 20, 0), 20, 1)


def best_of(call, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--window", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "long.mp4", frames(int(args.seconds * 30), np.random.default_rng(0)), 30.0)
        info = probe(path)
        first = info.n_frames - int(args.window * 30)
        indices = np.linspace(first, info.n_frames - 1, 8).astype(int)
        seek_s = best_of(lambda: list(iter_frames(path, indices, seek=True)))
        plain_s = best_of(lambda: list(iter_frames(path, indices, seek=False)))
    print(json.dumps({"benchmark": "video_seek", "video": f"{info.width}x{info.height}, {info.n_frames} frames",
                      "window": f"frames {indices[0]}-{indices[-1]}", "seek_s": round(seek_s, 4),
                      "from_start_s": round(plain_s, 4), "speedup": round(plain_s / seek_s, 1)}, indent=2))


if __name__ == "__main__":
    main()
