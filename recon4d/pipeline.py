"""`recon4d process`: video → Clip → tracks → reconstruction → lifted centres → orientations → Scene.

    decode/sample --> Clip --track--> Tracks2D --reconstruct--> Reconstruction --lift--> LiftResult
                                                                                  --orient--> Orientations --> Scene

Tracking runs before reconstruction so a weights-free reconstructor can keep moving objects
out of its camera-motion estimate (a learned one ignores them); orientation runs last because
the motion orienter needs the lifted 3D trajectories. Each stage is a named backend from
:mod:`recon4d.backends`; ``auto`` picks a learned backend when its weights are installed and
the weights-free one otherwise. Every backend option (``-O STAGE.KEY=VALUE``) is parsed
against its backend's config, and the lifting options (``lift.KEY``) against
:class:`~recon4d.lift.lifting.LiftConfig`, before any stage runs (:func:`plan_stages`).

An object is visible in the scene where the tracker saw it *and* lifting found its centre;
masks at another size than the point maps are resized (nearest) for lifting and the store.
The resolved config, the backends' names and versions, the geometry's unit and every warning
go into the scene (and so into the store's attrs).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from recon4d import __version__
from recon4d.backends import STAGES, BackendSpec, resolve_backend
from recon4d.errors import OptionError, Recon4dError
from recon4d.lift.lifting import LiftConfig, lift_objects, resize_masks
from recon4d.lift.quality import RefineConfig, refine_objects
from recon4d.options import build_config, parse_options
from recon4d.types import Clip, LiftResult, Orientations, ProgressFn, Scene, SourceInfo, Tracks2D

ProgressFactory = Callable[[str], ProgressFn | None]
"""``progress(stage)`` → the progress callback of that stage, or None."""

OPTION_STAGES = (*STAGES, "lift")
"""Prefixes of ``-O STAGE.KEY=VALUE``: the three backends and the lifting options."""


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
    """How masks are lifted to 3D centres; ``backend_options["lift"]`` is folded into it."""
    refine: RefineConfig = field(default_factory=RefineConfig)
    """How lifted trajectories are cleaned and their quality recorded (:mod:`recon4d.lift.quality`)."""
    backend_options: dict = field(default_factory=dict)
    """Per-stage options passed to each backend's ``from_config`` ({"recon": {...}, ...}), values
    as Python objects or command-line strings (parsed against the backend's config fields);
    a "lift" entry sets fields of ``lift``."""
    objects: str | None = None
    """Categories to look for ("person. dog."); used by trackers that take a text prompt (sam2)."""

    def __post_init__(self) -> None:
        if self.fps is None and self.n_frames < 2:
            raise PipelineError(f"--frames must be at least 2 (got {self.n_frames}): a single frame has no motion.")
        if self.fps is not None and not self.fps > 0:
            raise PipelineError(f"--fps must be positive, got {self.fps}.")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise PipelineError(f"--device must be cpu or cuda, got {self.device!r}.")
        options = dict(self.backend_options)
        unknown = sorted(set(options) - set(OPTION_STAGES))
        if unknown:
            raise PipelineError(f"backend options name unknown stage(s) {unknown}; use -O STAGE.KEY=VALUE with "
                                f"STAGE one of {', '.join(OPTION_STAGES)}.")
        if "lift" in options:
            lift_options = {**asdict(self.lift), **options.pop("lift")}
            object.__setattr__(self, "lift", build_config(LiftConfig, lift_options, "lifting", prefix="lift."))
        object.__setattr__(self, "backend_options", {stage: dict(o) for stage, o in options.items()})

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


@dataclass(frozen=True)
class StagePlan:
    """A resolved backend and its checked options, ready to build."""

    stage: str
    spec: BackendSpec
    reason: str
    """Why this backend (``auto``'s choice, or chosen explicitly)."""
    options: dict
    """Options for ``from_config``, each value parsed against the backend config's field type."""
    notes: tuple[str, ...] = ()
    """Warnings about the request (an option the chosen backend does not use)."""

    def build(self, device: str, weights_dir: Path):
        cls = self.spec.load_class()
        if self.spec.needs_weights:
            return cls.from_config(self.options, device, weights_dir)
        return cls.from_config(self.options, device)


def plan_stages(config: ProcessConfig, weights_dir: Path) -> dict[str, StagePlan]:
    """Resolve the track, recon and orient backends and check their options, before anything runs.

    Raises a Recon4dError naming an unknown backend, missing weights, an unknown option key
    (with the valid ones) or a value that does not parse as its field's type.
    """
    plans = {}
    for stage, name in (("track", config.tracker), ("recon", config.recon), ("orient", config.orient)):
        resolved = resolve_backend(stage, name, weights_dir)
        options = dict(config.backend_options.get(stage, {}))
        notes = []
        if stage == "track" and config.boxes:
            options["boxes"] = [dict(b) for b in config.boxes]
        if stage == "track" and config.objects:
            if resolved.spec.name in _PROMPTED_TRACKERS:
                options["objects"] = config.objects
            elif name != "auto":
                raise OptionError(f"--objects names categories for a prompted tracker "
                                    f"({', '.join(_PROMPTED_TRACKERS)}), but --tracker {name} finds moving things "
                                    f"without a prompt; drop --objects or choose --tracker sam2.")
            else:
                notes.append(f"--objects {config.objects!r} is not used by the {resolved.spec.name} tracker "
                             f"(it finds moving things); install the sam2 weights to use a prompt")
        resolved.spec.build_config(options)  # the config's own checks run now, not mid-pipeline
        typed = parse_options(resolved.spec.load_config_class(), options, f"the {resolved.spec.name} backend",
                              extra=resolved.spec.extra_options, prefix=f"{stage}.")
        plans[stage] = StagePlan(stage, resolved.spec, resolved.reason, typed, tuple(notes))
    return plans


_PROMPTED_TRACKERS = ("sam2",)


def resolved_config(config: ProcessConfig, plans: dict[str, StagePlan]) -> dict:
    """``config.to_json()`` with each stage's backend options as parsed (typed) values."""
    data = config.to_json()
    data["backend_options"] = {stage: {k: plans[stage].options[k] for k in options}
                               for stage, options in config.backend_options.items()}
    return data


def process_clip(clip: Clip, config: ProcessConfig = ProcessConfig(), source: SourceInfo | None = None,
                 weights_dir: Path | None = None, progress: ProgressFactory | None = None,
                 log: Callable[[str], None] | None = None, backends: dict | None = None) -> ProcessResult:
    """Run tracking, reconstruction, lifting and orientation on a decoded clip.

    ``backends``: a dict the caller keeps across calls; built backends are stored in it by stage,
    name, options and device and reused, so a batch worker loads each model once, not per video.
    The stages run with one BLAS thread (:func:`~recon4d.workers.one_blas_thread`): the weights-free
    stages' BLAS calls are small and their own worker threads use the cores; and with a short GIL
    switch interval (:func:`~recon4d.workers.quick_gil_handoff`), so those threads do not idle
    waiting for the GIL.
    """
    from recon4d.workers import one_blas_thread, quick_gil_handoff

    with one_blas_thread(), quick_gil_handoff():
        return _process_clip(clip, config, source, weights_dir, progress, log, backends)


def _process_clip(clip: Clip, config: ProcessConfig, source: SourceInfo | None, weights_dir: Path | None,
                  progress: ProgressFactory | None, log: Callable[[str], None] | None,
                  backends: dict | None) -> ProcessResult:
    from recon4d.settings import weights_dir as default_weights_dir

    weights_dir = Path(weights_dir or default_weights_dir())
    plans = plan_stages(config, weights_dir)
    progress = progress or (lambda stage: None)
    log = log or (lambda message: None)
    stages: list[StageReport] = []
    caught: list[str] = []

    def warn(message: str) -> None:
        if message not in caught:
            caught.append(message)
            log(f"warning: {message}")

    def run(stage: str, call):
        plan = plans[stage]
        key = (stage, plan.spec.name, config.device, str(weights_dir), repr(sorted(plan.options.items())))
        if backends is not None and key in backends:
            backend = backends[key]
        else:
            backend = plan.build(config.device, weights_dir)
            if backends is not None:
                backends[key] = backend
        log(f"{stage}: {plan.spec.name} ({plan.reason})")
        for note in plan.notes:
            warn(f"{stage}: {note}")
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            result = call(backend, progress(stage))
        for warning in seen:
            warn(f"{stage}: {warning.message}")
        stages.append(StageReport(stage, plan.spec.name, plan.reason, time.perf_counter() - started))
        return result, _backend_info(backend, plan.spec)

    tracks, track_info = run("track", lambda b, p: b.track(clip, progress=p))
    _release_frames(clip)
    _return_freed_memory()
    recon, recon_info = run("recon", lambda b, p: b.reconstruct(clip, tracks, progress=p))

    started = time.perf_counter()
    refined = refine_objects(clip.timestamps_s, recon.cam_to_world, tracks, _lift(clip, tracks, recon, config.lift),
                             recon.intrinsics, clip.source_size, recon.camera_quality, config.refine, recon.unit)
    lifted = refined.lifted
    for message in refined.warnings:
        warn(f"lift: {message}")
    stages.append(StageReport("lift", "lift", config.lift.estimator, time.perf_counter() - started))

    orientations, orient_info = run("orient", lambda b, p: b.orient(clip, tracks, recon, lifted, progress=p))
    if tracks.n_objects == 0:
        warn("no moving objects were found; the scene has a camera path but no objects")
    lost = tracks.visible & ~lifted.visible
    if lost.any():
        warn(f"lift: {int(lost.sum())} of {int(tracks.visible.sum())} tracked object-frames have no valid 3D "
             "point under their mask and are not visible in the scene")

    scene = _assemble(clip, tracks, recon, lifted, orientations, resolved_config(config, plans), source,
                      {"track": track_info, "recon": recon_info, "orient": orient_info}, tuple(caught))
    scene = replace(scene, object_quality=refined.quality, camera_quality=recon.camera_quality)
    return ProcessResult(scene=scene, stages=tuple(stages), warnings=tuple(caught))


KEEP_FRAMES_BYTES = 64 << 20
"""Decoded frames of a clip up to this many bytes stay in memory after tracking (issue 11): for
a short clip, decoding them again for reconstruction costs more time than holding them costs memory
(pipeline_speed's 32 frames, 24 MB: recon 0.91 -> 0.82 s, 0.3 s less CPU); a longer clip's are
released (issue 12: their memory grows with the clip, this bound does not)."""


def _release_frames(clip: Clip) -> None:
    """Drop a clip's decoded frames after tracking when they can be decoded again and take more
    than :data:`KEEP_FRAMES_BYTES` (issue 12): reconstruction reads them once, in order, and
    orientation crops a few, so holding a long clip (~0.7 MiB a frame at 640×360) is not worth its
    memory from here on."""
    from recon4d.video import ReleasableFrames

    frames = clip.frames
    if isinstance(frames, ReleasableFrames) and int(np.prod(frames.shape)) * frames.dtype.itemsize > KEEP_FRAMES_BYTES:
        frames.release()


def _return_freed_memory() -> None:
    """Hand the heap pages freed by the last stage back to the kernel (glibc's malloc keeps them
    for reuse: after tracking a long clip ~100 MB that the next stage's large arrays, mapped
    apart, never reuse, so they add to the process's peak). A no-op without glibc."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _lift(clip: Clip, tracks: Tracks2D, recon, config: LiftConfig) -> LiftResult:
    """Lift the tracks' masks (boxes filled, when the tracker gives none) on the reconstruction;
    only frames where the tracker saw an object count."""
    n_objects, n_frames = tracks.n_objects, clip.n_frames
    if recon.local_points is None or n_objects == 0:
        return LiftResult.empty(n_objects, n_frames)
    height, width = recon.local_points.shape[1:3]
    masks = tracks.masks
    if masks is None:
        masks = box_masks(tracks.boxes_xyxy, clip.source_size, (width, height))
    return lift_objects(masks, recon.local_points, recon.conf, recon.cam_to_world, config, visible=tracks.visible)


class _ResizedMasks:
    """Lazy (K, T, H, W) view of masks (K, T, h, w) resized (nearest) to (H, W), read per frame."""

    def __init__(self, masks, size: tuple[int, int]):
        self._masks = masks
        self.shape = (*masks.shape[:2], *size)
        self.dtype = np.dtype(bool)
        self.ndim = 4

    def __getitem__(self, index) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        if len(index) > 2:
            raise IndexError("resized masks are indexed on (k, t) only")
        return resize_masks(np.asarray(self._masks[index], dtype=bool), self.shape[2:])

    def __array__(self, dtype=None, copy=None):
        masks = self[:, :]
        return masks if dtype is None else masks.astype(dtype)


def _assemble(clip, tracks, recon, lifted, orientations: Orientations, config: dict, source, backends,
              notes: tuple[str, ...]) -> Scene:
    visible = tracks.visible & lifted.visible  # seen and located: a visible object has a finite centre
    center = np.where(visible[..., None], lifted.center_world, np.nan)
    agent = tracks.is_agent[:, None, None]
    orientation = np.where(agent & visible[..., None], orientations.angles_deg, np.nan)
    orient_conf = np.where(tracks.is_agent[:, None] & visible, orientations.conf, np.nan)
    intrinsics = recon.intrinsics if recon.intrinsics is not None else np.full((clip.n_frames, 3, 3), np.nan)
    masks = tracks.masks if config["keep_masks"] else None
    points = recon.local_points if config["keep_points"] else None
    if masks is not None and points is not None and tuple(masks.shape[2:]) != tuple(points.shape[1:3]):
        masks = _ResizedMasks(masks, tuple(points.shape[1:3]))
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
        extent=np.where(visible[..., None], lifted.extent, np.nan),
        observed=None if tracks.observed is None else tracks.observed & visible,
        local_points=points,
        conf=recon.conf if config["keep_points"] else None,
        masks=masks,
        source=source,
        backends=backends,
        config=config,
        unit=recon.unit,
        warnings=notes,
    )


def available_memory_bytes() -> int | None:
    """Memory the kernel says is available for new allocations (Linux MemAvailable), else None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


BYTES_PER_PIXEL = 24
"""Bytes a sampled frame costs per pixel while it is processed: the RGB frame (3), its float32
point map (12) and confidence (4), masks and lifting buffers (a few more)."""


def check_memory(n_frames: int, size: tuple[int, int], path: Path) -> None:
    """Refuse, before decoding, a request whose frames cannot fit in the available memory."""
    available = available_memory_bytes()
    needed = n_frames * size[0] * size[1] * BYTES_PER_PIXEL
    if available is not None and needed > 0.8 * available:
        raise PipelineError(f"processing {n_frames} frames of {path} at {size[0]}x{size[1]} needs about "
                            f"{needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB of memory are available; "
                            "sample fewer frames (--frames, --fps) or a shorter interval (--start/--end).")


def _frames_to_decode(info, config: ProcessConfig) -> int:
    from recon4d.video import indices_for_interval, sample_indices, sample_indices_fps

    if config.fps is not None:
        return len(sample_indices_fps(info, config.fps, config.start_s, config.end_s))
    first, last = indices_for_interval(info, config.start_s, config.end_s)
    return len(sample_indices(info.n_frames, config.n_frames, first, last))


def _checked_boxes(config: ProcessConfig, info, log) -> tuple[ProcessConfig, list[str]]:
    """User boxes against the video's frame: outside is an error, crossing the border is clamped."""
    if not config.boxes:
        return config, []
    from recon4d.tracking.classic.user_boxes import fit_boxes_to_frame

    boxes, notes = fit_boxes_to_frame([dict(b) for b in config.boxes], (info.width, info.height))
    for note in notes:
        log(f"warning: {note}")
    return replace(config, boxes=tuple(boxes)), notes


def process_video(path: str | Path, config: ProcessConfig = ProcessConfig(), weights_dir: Path | None = None,
                  progress: ProgressFactory | None = None, log: Callable[[str], None] | None = None,
                  backends: dict | None = None) -> ProcessResult:
    """Decode ``path`` as ``config`` says and run :func:`process_clip` on it.

    Before anything is decoded: backends and options are checked (:func:`plan_stages`), user
    boxes are checked against the video's frame, and a request that cannot fit in memory is
    refused. Raises VideoError for unreadable videos and PipelineError for clips too short to
    process; ``backends`` as in :func:`process_clip`.
    """
    from recon4d.settings import weights_dir as default_weights_dir
    from recon4d.store import file_sha256
    from recon4d.video import probe, read_clip

    path = Path(path)
    plan_stages(config, Path(weights_dir or default_weights_dir()))  # bad options fail before decoding
    info = probe(path)
    notes = []
    config, box_notes = _checked_boxes(config, info, log or (lambda m: None))
    notes += box_notes
    if info.rotation_deg:
        notes.append(f"{path.name} asks to be shown rotated by {info.rotation_deg}° (a phone held upright); its frames "
                     f"are turned upright, and boxes and sizes are in upright pixels ({info.width}x{info.height})")
        (log or (lambda m: None))(f"note: {notes[-1]}")
    from recon4d.video import resize_to_budget

    check_memory(_frames_to_decode(info, config), resize_to_budget(info.width, info.height, config.pixel_budget), path)
    started = time.perf_counter()
    clip = read_clip(path, n_frames=config.n_frames, fps=config.fps, start_s=config.start_s, end_s=config.end_s,
                     pixel_budget=config.pixel_budget, releasable=True)
    if clip.n_frames < 2:
        raise PipelineError(
            f"{path} gives only {clip.n_frames} frame(s) for the requested interval "
            f"({info.n_frames} frames, {info.duration_s:.2f} s in the video); at least 2 are needed. "
            "Use a longer interval (--start/--end) or a longer video."
        )
    decode_seconds = time.perf_counter() - started
    source = SourceInfo(path=str(path), sha256=file_sha256(path), fps=info.fps, n_frames=info.n_frames,
                        size=(info.width, info.height))
    result = process_clip(clip, config, source=source, weights_dir=weights_dir, progress=progress, log=log,
                          backends=backends)
    if notes:
        result = replace(result, warnings=(*notes, *result.warnings),
                         scene=replace(result.scene, warnings=(*notes, *result.scene.warnings)))
    if config.end_s is not None and config.end_s > info.duration_s:
        message = (f"the requested interval ends at {config.end_s:.2f} s but {path.name} lasts "
                   f"{info.duration_s:.2f} s; processed up to its end")
        (log or (lambda m: None))(f"warning: {message}")
        result = replace(result, warnings=(message, *result.warnings),
                         scene=replace(result.scene, warnings=(message, *result.scene.warnings)))
    decode = StageReport("decode", "pyav", f"{clip.n_frames} frames at {clip.image_size[0]}x{clip.image_size[1]}",
                         decode_seconds)
    return replace(result, stages=(decode, *result.stages))
