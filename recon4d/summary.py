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


def _number(value) -> float | None:
    """A JSON-ready float: None for NaN."""
    value = float(value)
    return None if np.isnan(value) else value


def object_quality_summary(scene: Scene, k: int) -> dict | None:
    """Object k's quality record as plain data (None when the scene has none); spans in seconds."""
    quality = scene.object_quality
    if quality is None:
        return None
    times = scene.timestamps_s
    record = {name: _number(getattr(quality, name)[k]) for name in quality.FIELDS}
    for name in ("depth_jumps", "id_switch_steps"):
        record[name] = int(getattr(quality, name)[k])
    record["trusted_frames"] = int(quality.frame_ok[k].sum())
    record["trusted_spans_s"] = [[float(times[a]), float(times[b])] for a, b in visible_spans(quality.frame_ok[k])]
    record["issues"] = quality.issues[k]
    return record


def camera_quality_summary(scene: Scene) -> dict | None:
    """The camera's quality record as plain data (None when the scene has none)."""
    quality = scene.camera_quality
    if quality is None:
        return None
    with np.errstate(invalid="ignore"):
        inliers = np.nanmedian(quality.inlier_ratio) if np.isfinite(quality.inlier_ratio).any() else np.nan
        error = np.nanmedian(quality.reprojection_px) if np.isfinite(quality.reprojection_px).any() else np.nan
    return {"motion": quality.motion, "scale_source": quality.scale_source, "score": _number(quality.score),
            "trusted_frames": int(quality.frame_ok.sum()), "frozen_frames": int(quality.frozen.sum()),
            "median_inlier_ratio": _number(inliers), "median_reprojection_px": _number(error)}


def summarize_scene(scene: Scene) -> dict:
    """A JSON-ready summary: frames, duration, backends, camera path and quality, objects with their
    spans and quality, and the warnings the pipeline raised."""
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
                "quality": object_quality_summary(scene, k),
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
        "camera_quality": camera_quality_summary(scene),
        "objects": objects,
        "warnings": list(scene.warnings),
    }
