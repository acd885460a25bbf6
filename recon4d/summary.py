"""What is in a scene, as plain data: the content of `recon4d inspect`."""

from __future__ import annotations

import numpy as np

from recon4d.types import Scene


def visible_spans(visible: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive True frames as inclusive (first, last) index pairs.

    visible: (T,) bool.
    """
    padded = np.concatenate([[False], np.asarray(visible, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(start), int(stop) - 1) for start, stop in zip(edges[::2], edges[1::2])]


def path_length(points: np.ndarray) -> float:
    """Length of a polyline (T, 3), summing only steps between two finite points."""
    steps = np.linalg.norm(np.diff(np.asarray(points, np.float64), axis=0), axis=-1)
    return float(np.nansum(steps))


def summarize_scene(scene: Scene) -> dict:
    """A JSON-ready summary: frames, duration, backends, camera path, objects and their spans."""
    times = scene.timestamps_s
    objects = []
    for k in range(scene.n_objects):
        spans = visible_spans(scene.visible[k])
        objects.append(
            {
                "id": int(scene.ids[k]),
                "category": scene.categories[k],
                "is_agent": bool(scene.is_agent[k]),
                "visible_frames": int(scene.visible[k].sum()),
                "visible_spans_s": [[float(times[a]), float(times[b])] for a, b in spans],
                "path_length": path_length(scene.center_world[k]),
            }
        )
    return {
        "n_frames": scene.n_frames,
        "duration_s": scene.duration_s,
        "fps": scene.source.fps if scene.source else None,
        "source": scene.source.path if scene.source else None,
        "backends": {stage: info.get("name") for stage, info in scene.backends.items()},
        "camera_path_length": path_length(scene.cam_to_world[:, :3, 3]),
        "has_points": scene.local_points is not None,
        "has_masks": scene.masks is not None,
        "objects": objects,
    }
