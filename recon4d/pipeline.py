"""`recon4d process`: video → Clip → tracks → reconstruction → lifted centres → orientations → Scene.

    decode/sample --> Clip --track--> Tracks2D --reconstruct--> Reconstruction --lift--> LiftResult
                                                                                  --orient--> Orientations --> Scene

Tracking runs before reconstruction so a weights-free reconstructor can keep moving objects
out of its camera-motion estimate (a learned one ignores them); orientation runs last because
the motion orienter needs the lifted 3D trajectories. Each stage is a named backend from
:mod:`recon4d.backends`; ``auto`` picks a learned backend when its weights are installed and
the weights-free one otherwise. The resolved config and the backends' names and versions go
into the scene (and so into the store's attrs).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from recon4d import __version__
from recon4d.backends import resolve_backend
from recon4d.errors import Recon4dError
from recon4d.lift.lifting import LiftConfig, lift_objects
from recon4d.types import Clip, Orientations, Scene, SourceInfo, Tracks2D

ProgressFactory = Callable[[str], Callable[[int, int], None] | None]


class PipelineError(Recon4dError):
    """The video cannot be turned into a scene (too short, bad options...)."""


@dataclass(frozen=True)
class ProcessConfig:
    """Everything `recon4d process` can be told; defaults give the weights-free pipeline on 32 frames."""

    n_frames: int = 32
    """Frames sampled uniformly over the interval (ignored when ``fps`` is set)."""
    fps: float | None = None
    """Sample at this rate instead of a fixed number of frames."""
    start_s: float | None = None
    """Start of the processed interval in seconds (default: the video's start)."""
    end_s: float | None = None
    """End of the processed interval in seconds (default: the video's end)."""
    pixel_budget: int = 255_000
    """Frames are resized to sides that are multiples of 14 within this many pixels (π³ default)."""
    recon: str = "auto"
    """Reconstruction backend name, or auto."""
    tracker: str = "auto"
    """Tracking backend name, or auto."""
    orient: str = "auto"
    """Orientation backend name, or auto."""
    boxes: tuple = ()
    """User boxes ({category, is_agent, box, frame|time_s}) that bypass object discovery."""
    keep_points: bool = False
    """Store the point maps and confidences (large)."""
    keep_masks: bool = False
    """Store the instance masks (bit-packed)."""
    device: str = "cpu"
    """Device for learned backends ("cpu" or "cuda")."""
    lift: LiftConfig = field(default_factory=LiftConfig)
    """How masks are lifted to 3D centres."""
    backend_options: dict = field(default_factory=dict)
    """Per-stage options passed to each backend's ``from_config`` ({"recon": {...}, ...})."""
    objects: str | None = None
    """Categories to look for ("person. dog."); used by trackers that take a text prompt (sam2)."""

    def __post_init__(self) -> None:
        if self.fps is None and self.n_frames < 2:
            raise PipelineError(f"--frames must be at least 2 (got {self.n_frames}): a single frame has no motion.")
        if self.fps is not None and not self.fps > 0:
            raise PipelineError(f"--fps must be positive, got {self.fps}.")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise PipelineError(f"--device must be cpu or cuda, got {self.device!r}.")

    def to_json(self) -> dict:
        data = asdict(self)
        data["boxes"] = [dict(b) for b in self.boxes]
        return data


@dataclass(frozen=True)
class StageReport:
    stage: str
    backend: str
    reason: str
    seconds: float


@dataclass(frozen=True)
class ProcessResult:
    """The scene and how it was made."""

    scene: Scene
    stages: tuple[StageReport, ...]
    warnings: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def box_masks(boxes_xyxy: np.ndarray, source_size: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Filled-box masks (K, T, H, W) at ``image_size`` from boxes (K, T, 4) in source pixels."""
    (src_w, src_h), (width, height) = source_size, image_size
    scale = np.array([width / src_w, height / src_h, width / src_w, height / src_h])
    boxes = boxes_xyxy * scale
    cols, rows = np.arange(width) + 0.5, np.arange(height) + 0.5
    finite = np.isfinite(boxes).all(axis=-1)
    boxes = np.where(finite[..., None], boxes, -1.0)
    inside_x = (cols >= boxes[..., 0:1]) & (cols < boxes[..., 2:3])  # (K, T, W)
    inside_y = (rows >= boxes[..., 1:2]) & (rows < boxes[..., 3:4])  # (K, T, H)
    return inside_y[..., :, None] & inside_x[..., None, :]


def _backend_info(backend, spec) -> dict:
    return {"name": spec.name, "version": str(getattr(backend, "version", __version__)),
            "weights_sha256": getattr(backend, "weights_sha256", None)}


def _stage(stage: str, name: str, config: ProcessConfig, weights_dir: Path):
    resolved = resolve_backend(stage, name, weights_dir)
    cls = resolved.spec.load_class()
    options = dict(config.backend_options.get(stage, {}))
    notes = []
    if stage == "track" and config.boxes:
        options["boxes"] = [dict(b) for b in config.boxes]
    if stage == "track" and config.objects:
        if resolved.spec.name in _PROMPTED_TRACKERS:
            options["objects"] = config.objects
        elif name != "auto":
            raise PipelineError(f"--objects names categories for a prompted tracker ({', '.join(_PROMPTED_TRACKERS)}), "
                                f"but --tracker {name} finds moving things without a prompt; drop --objects or "
                                f"choose --tracker sam2.")
        else:
            notes.append(f"--objects {config.objects!r} is not used by the {resolved.spec.name} tracker "
                         f"(it finds moving things); install the sam2 weights to use a prompt")
    if resolved.spec.needs_weights:
        return cls.from_config(options, config.device, weights_dir), resolved, notes
    return cls.from_config(options, config.device), resolved, notes


_PROMPTED_TRACKERS = ("sam2",)


def process_clip(clip: Clip, config: ProcessConfig = ProcessConfig(), source: SourceInfo | None = None,
                 weights_dir: Path | None = None, progress: ProgressFactory | None = None,
                 log: Callable[[str], None] | None = None) -> ProcessResult:
    """Run tracking, reconstruction, lifting and orientation on a decoded clip."""
    from recon4d.settings import weights_dir as default_weights_dir

    weights_dir = Path(weights_dir or default_weights_dir())
    progress = progress or (lambda stage: None)
    log = log or (lambda message: None)
    stages: list[StageReport] = []
    caught: list[str] = []

    def run(stage: str, name: str, call):
        backend, resolved, notes = _stage(stage, name, config, weights_dir)
        log(f"{stage}: {resolved.spec.name} ({resolved.reason})")
        for note in notes:
            caught.append(f"{stage}: {note}")
            log(f"warning: {stage}: {note}")
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            result = call(backend, progress(stage))
        for warning in seen:
            message = f"{stage}: {warning.message}"
            if message not in caught:
                caught.append(message)
                log(f"warning: {message}")
        stages.append(StageReport(stage, resolved.spec.name, resolved.reason, time.perf_counter() - started))
        return result, _backend_info(backend, resolved.spec)

    tracks, track_info = run("track", config.tracker, lambda b, p: b.track(clip, progress=p))
    recon, recon_info = run("recon", config.recon, lambda b, p: b.reconstruct(clip, tracks, progress=p))

    started = time.perf_counter()
    lifted = _lift(clip, tracks, recon, config.lift)
    stages.append(StageReport("lift", "lift", config.lift.estimator, time.perf_counter() - started))

    orientations, orient_info = run("orient", config.orient,
                                    lambda b, p: b.orient(clip, tracks, recon, lifted, progress=p))
    if tracks.n_objects == 0:
        message = "no moving objects were found; the scene has a camera path but no objects"
        caught.append(message)
        log(f"warning: {message}")

    scene = _assemble(clip, tracks, recon, lifted, orientations, config, source,
                      {"track": track_info, "recon": recon_info, "orient": orient_info})
    return ProcessResult(scene=scene, stages=tuple(stages), warnings=tuple(caught))


def _lift(clip: Clip, tracks: Tracks2D, recon, config: LiftConfig):
    n_objects, n_frames = tracks.n_objects, clip.n_frames
    if recon.local_points is None or n_objects == 0:
        from recon4d.lift.lifting import LiftResult

        return LiftResult(center_camera=np.full((n_objects, n_frames, 3), np.nan),
                          center_world=np.full((n_objects, n_frames, 3), np.nan),
                          visible=np.zeros((n_objects, n_frames), bool),
                          extent=np.full((n_objects, n_frames, 3), np.nan, np.float32),
                          n_points=np.zeros((n_objects, n_frames), np.int64))
    height, width = recon.local_points.shape[1:3]
    masks = tracks.masks
    if masks is None or tuple(masks.shape[2:]) != (height, width):
        masks = box_masks(tracks.boxes_xyxy, clip.source_size, (width, height))
    masks = np.asarray(masks, dtype=bool) & tracks.visible[:, :, None, None]
    return lift_objects(masks, recon.local_points, recon.conf, recon.cam_to_world, config)


def _assemble(clip, tracks, recon, lifted, orientations: Orientations, config, source, backends) -> Scene:
    visible = tracks.visible
    center = np.where((visible & lifted.visible)[..., None], lifted.center_world, np.nan)
    agent = tracks.is_agent[:, None, None]
    orientation = np.where(agent & visible[..., None], orientations.angles_deg, np.nan)
    orient_conf = np.where(tracks.is_agent[:, None] & visible, orientations.conf, np.nan)
    intrinsics = recon.intrinsics if recon.intrinsics is not None else np.full((clip.n_frames, 3, 3), np.nan)
    masks = tracks.masks if config.keep_masks else None
    points = recon.local_points if config.keep_points else None
    if masks is not None and points is not None and tuple(masks.shape[2:]) != tuple(points.shape[1:3]):
        masks = box_masks(tracks.boxes_xyxy, clip.source_size, (points.shape[2], points.shape[1]))
    return Scene(
        timestamps_s=clip.timestamps_s,
        frame_index=clip.frame_index,
        cam_to_world=recon.cam_to_world,
        intrinsics=intrinsics,
        ids=tracks.ids,
        categories=tracks.categories,
        is_agent=tracks.is_agent,
        visible=visible,
        box_xyxy=np.where(visible[..., None], tracks.boxes_xyxy, np.nan),
        center_world=center,
        orientation=orientation,
        orient_conf=orient_conf,
        extent=np.where((visible & lifted.visible)[..., None], lifted.extent, np.nan),
        local_points=points,
        conf=recon.conf if config.keep_points else None,
        masks=masks,
        source=source,
        backends=backends,
        config=config.to_json(),
    )


def process_video(path: str | Path, config: ProcessConfig = ProcessConfig(), weights_dir: Path | None = None,
                  progress: ProgressFactory | None = None, log: Callable[[str], None] | None = None) -> ProcessResult:
    """Decode ``path`` as ``config`` says and run :func:`process_clip` on it.

    Raises VideoError for unreadable videos and PipelineError for clips too short to process.
    """
    from recon4d.store import file_sha256
    from recon4d.video import probe, read_clip

    path = Path(path)
    info = probe(path)
    started = time.perf_counter()
    clip = read_clip(path, n_frames=config.n_frames, fps=config.fps, start_s=config.start_s, end_s=config.end_s,
                     pixel_budget=config.pixel_budget)
    if clip.n_frames < 2:
        raise PipelineError(
            f"{path} gives only {clip.n_frames} frame(s) for the requested interval "
            f"({info.n_frames} frames, {info.duration_s:.2f} s in the video); at least 2 are needed. "
            "Use a longer interval (--start/--end) or a longer video."
        )
    decode_seconds = time.perf_counter() - started
    source = SourceInfo(path=str(path), sha256=file_sha256(path), fps=info.fps, n_frames=info.n_frames,
                        size=(info.width, info.height))
    result = process_clip(clip, config, source=source, weights_dir=weights_dir, progress=progress, log=log)
    if config.end_s is not None and config.end_s > info.duration_s:
        message = (f"the requested interval ends at {config.end_s:.2f} s but {path.name} lasts "
                   f"{info.duration_s:.2f} s; processed up to its end")
        (log or (lambda m: None))(f"warning: {message}")
        result = replace(result, warnings=(message, *result.warnings))
    decode = StageReport("decode", "pyav", f"{clip.n_frames} frames at {clip.image_size[0]}x{clip.image_size[1]}",
                         decode_seconds)
    return replace(result, stages=(decode, *result.stages))
