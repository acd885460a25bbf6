"""The ``sam2`` track backend: GroundingDINO boxes on one frame, SAM2 video masks through the clip.

DESIGN §4. Steps of :meth:`Sam2Tracker.track`:

1. Prompts: GroundingDINO (:mod:`recon4d.tracking.grounding`) on ``detect_frame`` with the
   category prompt, curated by :func:`~recon4d.tracking.grounding.select_detections`; or the
   user's boxes (``boxes`` option, ``--boxes``), which skip detection and may sit on
   different frames (each frame's boxes are one SAM2 session).
2. Masks: the SAM2 video predictor of the pip ``sam2`` package, prompted with each box on
   its frame, propagated forwards to the last frame and backwards to the first. Frames are
   fed from memory: :class:`ClipImages` turns a clip frame into the normalised
   ``image_size`` tensor the predictor's JPEG loader would make, on demand, so no temporary
   files are written and the video never sits on the device as a whole.
3. Long clips (``chunk_frames``): each direction is tracked in chunks of that many frames,
   each a fresh SAM2 session (so its memory bank and per-frame outputs stay bounded) that is
   prompted with the original boxes on the prompt frame and with the previous chunk's last
   masks on the chunk's first frame. Sessions use the clip's true frame indices, so SAM2's
   temporal encodings are those of an unchunked run, and the first chunk of each direction
   gives exactly the unchunked masks.
4. Output: masks (K, T, H, W) bool at the clip frame size (logits > 0), written frame by
   frame into one preallocated array; boxes (K, T, 4) from each mask's extent in
   source-video pixels, NaN and ``visible=False`` where the mask is empty.

Weights (``$RECON4D_HOME/weights``): ``grounding-dino/`` a transformers GroundingDINO folder
(config.json, *.safetensors, tokenizer and preprocessor files); ``sam2/`` one SAM2 checkpoint
``*.pt`` (``{"model": state_dict}``) and, for a checkpoint whose file name is not one of the
public ones (sam2[.1]_hiera_{tiny,small,base_plus,large}.pt), its hydra ``config.yaml``.

    Sam2Tracker.from_config({"objects": "person. dog."}, "cuda", weights_dir).track(clip) -> Tracks2D
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from recon4d._checks import check_shape
from recon4d._optional import require
from recon4d.errors import Recon4dError
from recon4d.tracking.classic import anchor_frame, load_user_boxes, validate_user_boxes
from recon4d.tracking.grounding import (
    DEFAULT_AGENT_CATEGORIES,
    DEFAULT_OBJECTS,
    GroundingDino,
    check_grounding_dino_weights,
    parse_categories,
    select_detections,
)
from recon4d.types import Clip, Tracks2D

__all__ = [
    "ClipImages",
    "ObjectPrompt",
    "Sam2Tracker",
    "Sam2TrackerConfig",
    "bundled_config_name",
    "check_grounding_dino_weights",
    "check_sam2_weights",
    "load_sam2_predictor",
    "mask_boxes",
    "new_inference_state",
    "propagate_masks",
]

ProgressFn = Callable[[int, int], None]

_SIZES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)


# --- loading SAM2 --------------------------------------------------------------------------------


def bundled_config_name(checkpoint: str | Path) -> str | None:
    """The sam2 package's config for a public checkpoint file name, e.g. sam2.1_hiera_large.pt →
    configs/sam2.1/sam2.1_hiera_l.yaml; None for any other name."""
    stem = Path(checkpoint).name.lower().replace("-", "_").removesuffix(".pt")
    for family in ("sam2.1", "sam2"):
        for size, short in _SIZES.items():
            if stem == f"{family}_hiera_{size}":
                return f"configs/{family}/{family}_hiera_{short}.yaml"
    return None


def _checkpoint_file(path: Path) -> Path:
    checkpoints = sorted(p for p in Path(path).glob("*.pt") if p.is_file())
    if len(checkpoints) != 1:
        found = ", ".join(p.name for p in checkpoints) or "none"
        raise Recon4dError(f"{path} must hold exactly one SAM2 checkpoint (*.pt), found {found}. Keep the one you "
                           "want (e.g. sam2.1_hiera_large.pt from facebookresearch/sam2) and remove the others.")
    return checkpoints[0]


def _targets(node) -> Iterator[str]:
    omegaconf = require("omegaconf", extra="track", purpose="reading SAM2 configs")
    if isinstance(node, omegaconf.DictConfig):
        for key in node:
            value = node[key]
            if key == "_target_":
                yield str(value)
            else:
                yield from _targets(value)
    elif isinstance(node, omegaconf.ListConfig):
        for value in node:
            yield from _targets(value)


def load_sam2_config(path: Path):
    """(OmegaConf model config of the video predictor, config name) for a ``sam2/`` directory.

    ``config.yaml`` beside the checkpoint wins; otherwise the sam2 package's config for the
    checkpoint's file name. The overrides are those ``sam2.build_sam.build_sam2_video_predictor``
    applies (SAM2VideoPredictor, dynamic multimask fallback, binarised prompt masks in the
    memory encoder, hole filling).
    """
    omegaconf = require("omegaconf", extra="track", purpose="reading SAM2 configs")
    sam2 = require("sam2", extra="track", purpose="SAM2 video masks")
    path = Path(path)
    checkpoint = _checkpoint_file(path)
    custom = path / "config.yaml"
    if custom.is_file():
        config_file, name = custom, "config.yaml"
    else:
        name = bundled_config_name(checkpoint)
        if name is None:
            raise Recon4dError(f"{checkpoint.name} is not a public SAM2 checkpoint name (sam2.1_hiera_tiny/small/"
                               f"base_plus/large.pt or sam2_hiera_*.pt), so its model config is unknown. Put the "
                               f"hydra config it was trained with at {custom} (e.g. a copy of "
                               "sam2/configs/sam2.1/sam2.1_hiera_l.yaml from the sam2 package).")
        config_file = Path(sam2.__file__).parent / name
    try:
        config = omegaconf.OmegaConf.load(config_file)
    except Exception as exc:
        raise Recon4dError(f"the SAM2 config {config_file} is not valid YAML ({exc}); fix or replace it.") from exc
    if "model" not in config:
        raise Recon4dError(f"the SAM2 config {config_file} has no top-level 'model' entry; use a config like "
                           "sam2/configs/sam2.1/sam2.1_hiera_l.yaml.")
    foreign = sorted({t for t in _targets(config.model) if not t.startswith("sam2.")})
    if foreign:
        # instantiating arbitrary targets would run arbitrary code from a weights folder
        raise Recon4dError(f"the SAM2 config {config_file} instantiates classes outside the sam2 package "
                           f"({', '.join(foreign)}); only sam2.* targets are allowed.")
    config = omegaconf.OmegaConf.merge(config, {"model": {
        "_target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
        "sam_mask_decoder_extra_args": {"dynamic_multimask_via_stability": True,
                                        "dynamic_multimask_stability_delta": 0.05,
                                        "dynamic_multimask_stability_thresh": 0.98},
        "binarize_mask_from_pts_for_mem_enc": True,
        # Hole filling needs the sam2 CUDA extension; without it SAM2 warns on every frame and
        # leaves the masks unchanged, so turn it off there instead.
        "fill_hole_area": 8 if importlib.util.find_spec("sam2._C") is not None else 0,
    }})
    omegaconf.OmegaConf.resolve(config)
    return config.model, name


def _check_state_dict(model, state: dict, source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = sorted(f"{k} {tuple(state[k].shape)} (model wants {tuple(expected[k].shape)})"
                        for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = [f"{what}: {some(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", mis_shaped)) if keys]
    if problems:
        raise Recon4dError(f"the SAM2 checkpoint {source} does not match its config ({'; '.join(problems)}). "
                           "Use the config the checkpoint was trained with (config.yaml beside it, or the public "
                           "file name so the bundled config is used), or re-download the checkpoint.")


def load_sam2_predictor(path: Path, device: str = "cpu"):
    """The SAM2 video predictor of a ``sam2/`` weights directory, strictly loaded, in eval mode.

    Returns (predictor, config name).
    """
    torch = require("torch", extra="track", purpose="SAM2 video masks")
    hydra_utils = require("hydra.utils", extra="track", purpose="building the SAM2 model")
    path = Path(path)
    config, name = load_sam2_config(path)
    checkpoint = _checkpoint_file(path)
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Recon4dError(f"the SAM2 checkpoint {checkpoint} cannot be read ({type(exc).__name__}: {exc}); it is "
                           "truncated or not a PyTorch checkpoint. Re-download it.") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise Recon4dError(f"the SAM2 checkpoint {checkpoint} has no 'model' state dict (keys: "
                           f"{sorted(payload)[:5] if isinstance(payload, dict) else type(payload).__name__}); use a "
                           "checkpoint from facebookresearch/sam2, which stores {'model': state_dict}.")
    try:
        predictor = hydra_utils.instantiate(config, _recursive_=True)
    except Exception as exc:
        raise Recon4dError(f"the SAM2 config {name} for {path} does not build a model ({exc}); fix config.yaml "
                           "or remove it to use the bundled config of a public checkpoint.") from exc
    _check_state_dict(predictor, payload["model"], checkpoint)
    predictor.load_state_dict(payload["model"], strict=True)
    return predictor.to(device).eval(), name


def check_sam2_weights(path: Path) -> str:
    """Load a ``sam2/`` weights directory on the CPU (strict) and summarise it; Recon4dError if it fails."""
    predictor, name = load_sam2_predictor(Path(path), "cpu")
    n = sum(p.numel() for p in predictor.parameters())
    size = f"{n / 1e6:.0f}M" if n >= 10e6 else f"{n / 1e6:.1f}M"
    return f"SAM2 ({Path(name).name}, {size} params, {predictor.image_size} px)"


# --- feeding frames --------------------------------------------------------------------------------


class ClipImages:
    """Clip frames as the SAM2 predictor's ``inference_state["images"]``: item t is frame t
    resized to ``image_size`` × ``image_size`` (bicubic, as the predictor's JPEG loader does
    with PIL) and ImageNet-normalised, (3, S, S) float32, made on first use.

    Only the last few frames are cached, so memory does not grow with the clip.
    """

    def __init__(self, frames: np.ndarray, image_size: int, device="cpu", cache: int = 2) -> None:
        self.frames = frames
        self.image_size = int(image_size)
        self.device = device
        self.cache_size = cache
        self._cache: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int):
        torch = require("torch", extra="track", purpose="SAM2 video masks")
        image_module = require("PIL.Image", extra="track", purpose="resizing frames for SAM2")
        index = int(index)
        if index in self._cache:
            return self._cache[index]
        size = (self.image_size, self.image_size)
        resized = np.asarray(image_module.fromarray(np.asarray(self.frames[index])).resize(
            size, image_module.Resampling.BICUBIC), np.float32) / 255.0
        tensor = torch.from_numpy(resized).permute(2, 0, 1)
        tensor = (tensor - torch.tensor(_IMAGE_MEAN)[:, None, None]) / torch.tensor(_IMAGE_STD)[:, None, None]
        tensor = tensor.to(self.device)
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[index] = tensor
        return tensor


def new_inference_state(predictor, frames: np.ndarray, offload_video_to_cpu: bool = False,
                        offload_state_to_cpu: bool = False) -> dict:
    """A SAM2 inference state over frames (T, H, W, 3) uint8 held in memory.

    The same dictionary ``SAM2VideoPredictor.init_state`` builds (sam2 1.1), with
    :class:`ClipImages` in place of the JPEG folder it would read; masks come out at H × W.
    """
    from collections import OrderedDict

    torch = require("torch", extra="track", purpose="SAM2 video masks")
    device = predictor.device
    return {
        "images": ClipImages(frames, predictor.image_size, torch.device("cpu") if offload_video_to_cpu else device),
        "num_frames": len(frames),
        "offload_video_to_cpu": offload_video_to_cpu,
        "offload_state_to_cpu": offload_state_to_cpu,
        "video_height": int(frames.shape[1]),
        "video_width": int(frames.shape[2]),
        "device": device,
        "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }


# --- propagation -----------------------------------------------------------------------------------


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(..., 4) float64 pixel-edge xyxy boxes (x2 = last column + 1) of masks (..., H, W) bool; NaN if empty."""
    masks = np.asarray(masks, bool)
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)  # (..., H), (..., W)
    height, width = masks.shape[-2:]
    x1 = np.argmax(cols, axis=-1)
    x2 = width - np.argmax(cols[..., ::-1], axis=-1)
    y1 = np.argmax(rows, axis=-1)
    y2 = height - np.argmax(rows[..., ::-1], axis=-1)
    boxes = np.stack([x1, y1, x2, y2], axis=-1).astype(np.float64)
    boxes[~cols.any(axis=-1)] = np.nan
    return boxes


def _chunks(anchor: int, n_frames: int, chunk: int, step: int) -> Iterator[tuple[int, int]]:
    """(start frame, frames to track after it) of each chunk going ``step`` (±1) from ``anchor``."""
    last = n_frames - 1 if step > 0 else 0
    start = anchor
    while True:
        count = min(chunk - 1, abs(last - start))
        yield start, count
        start += step * count
        if start == last or count == 0:
            return


def propagate_masks(predictor, frames: np.ndarray, anchor: int, boxes_xyxy: np.ndarray,
                    chunk_frames: int | None = None, offload_video_to_cpu: bool = False,
                    offload_state_to_cpu: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Track K boxes given on frame ``anchor`` through frames (T, H, W, 3) uint8 with SAM2.

    boxes_xyxy: (K, 4) pixels of ``frames``. Yields (t, masks (K, H, W) bool) once for every
    frame t: ``anchor`` first, then forwards to T − 1, then backwards to 0. With
    ``chunk_frames`` each direction runs in sessions of at most that many frames (module
    docstring, step 3); None tracks each direction in one session.
    """
    torch = require("torch", extra="track", purpose="SAM2 video masks")
    check_shape("frames", frames, ("T", "H", "W", 3), dtype_kind="u")
    boxes_xyxy = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    n_frames, n_objects = len(frames), len(boxes_xyxy)
    if not 0 <= anchor < n_frames:
        raise Recon4dError(f"the prompt frame {anchor} is outside the clip's {n_frames} frames (0..{n_frames - 1}).")
    chunk = n_frames if chunk_frames is None else int(chunk_frames)
    if chunk < 2:
        raise Recon4dError(f"chunk_frames must be at least 2 (a chunk shares one frame with the previous), got {chunk}.")
    if n_objects == 0:
        order = [anchor, *range(anchor + 1, n_frames), *range(anchor - 1, -1, -1)]
        yield from ((t, np.zeros((0, *frames.shape[1:3]), bool)) for t in order)
        return
    on_cuda = predictor.device.type == "cuda"

    def precision():
        # bf16 on the GPU as SAM2's own examples run it; float32 on the CPU
        return torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else nullcontext()

    for step in (1, -1):
        if step < 0 and anchor == 0:
            break
        previous = None
        for start, count in _chunks(anchor, n_frames, chunk, step):
            state = new_inference_state(predictor, frames, offload_video_to_cpu, offload_state_to_cpu)
            with precision():
                for k, box in enumerate(boxes_xyxy):
                    predictor.add_new_points_or_box(state, frame_idx=anchor, obj_id=k, box=box)
                if start != anchor:
                    for k in range(n_objects):
                        if previous[k].any():
                            predictor.add_new_mask(state, frame_idx=start, obj_id=k, mask=torch.from_numpy(previous[k]))
            frames_out = predictor.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=count,
                                                      reverse=step < 0)
            while True:
                # step the predictor's generator under autocast, but yield outside it
                with precision():
                    item = next(frames_out, None)
                    if item is None:
                        break
                    t, obj_ids, logits = item
                    masks = (logits[:, 0] > 0).cpu().numpy()
                if list(obj_ids) != list(range(n_objects)):
                    raise RuntimeError(f"SAM2 returned objects {obj_ids}, expected 0..{n_objects - 1}")
                previous = masks
                if t != start or (start == anchor and step > 0):
                    yield int(t), masks
            del state, frames_out


# --- the backend -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sam2TrackerConfig:
    """Settings of :class:`Sam2Tracker`."""

    objects: tuple[str, ...] | str = DEFAULT_OBJECTS
    """Categories to detect: a prompt string ("person. dog.") or a list of names."""
    agent_categories: tuple[str, ...] = DEFAULT_AGENT_CATEGORIES
    """Categories that get ``is_agent=True`` (exact, lower-case match); default people and animals."""
    box_threshold: float = 0.35
    """Least GroundingDINO box score (best token probability) that is kept."""
    text_threshold: float = 0.25
    """Least token probability for a prompt word to be part of a box's phrase."""
    nms_iou: float = 0.5
    """Boxes of one category overlapping a better one by more than this IoU are dropped."""
    min_area_frac: float = 0.01
    """Boxes smaller than this fraction of the frame are dropped (DSR curation: 1 %)..."""
    max_area_frac: float = 0.5
    """...and so are boxes larger than this fraction (DSR curation: 50 %)."""
    max_objects: int = 10
    """At most this many objects are tracked (the best-scoring ones)."""
    detect_frame: int = 0
    """Sampled clip frame GroundingDINO runs on (masks are propagated both ways from it)."""
    offload_video_to_cpu: bool = False
    """Keep the (few cached) normalised frames in CPU memory rather than on the GPU."""
    offload_state_to_cpu: bool = False
    """Keep SAM2's per-frame memory in CPU memory (less GPU memory, a little slower)."""
    chunk_frames: int | None = None
    """Track in SAM2 sessions of at most this many frames, each re-prompted with the previous
    one's last masks, so memory stays bounded on long clips; None = one session per direction."""
    boxes: tuple = field(default=(), repr=False)
    """User boxes ({category, box, frame|time_s, is_agent}); when given, GroundingDINO is skipped."""

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise Recon4dError(f"Sam2TrackerConfig: {message}")

        object.__setattr__(self, "objects", parse_categories(self.objects, "objects"))
        object.__setattr__(self, "agent_categories", parse_categories(self.agent_categories, "agent_categories"))
        for name in ("box_threshold", "text_threshold", "nms_iou", "min_area_frac", "max_area_frac"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                fail(f"{name} must be a number in [0, 1], got {value!r}.")
        if self.min_area_frac > self.max_area_frac:
            fail(f"min_area_frac ({self.min_area_frac}) must not exceed max_area_frac ({self.max_area_frac}).")
        for name, least in (("max_objects", 1), ("detect_frame", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                fail(f"{name} must be an integer ≥ {least}, got {value!r}.")
        if self.chunk_frames is not None and (isinstance(self.chunk_frames, bool) or not isinstance(
                self.chunk_frames, int) or self.chunk_frames < 2):
            fail(f"chunk_frames must be an integer ≥ 2 (or null for no chunking), got {self.chunk_frames!r}.")
        for name in ("offload_video_to_cpu", "offload_state_to_cpu"):
            if not isinstance(getattr(self, name), bool):
                fail(f"{name} must be true or false, got {getattr(self, name)!r}.")
        boxes = self.boxes
        if isinstance(boxes, (str, Path)):
            boxes = load_user_boxes(boxes)
        object.__setattr__(self, "boxes", tuple(validate_user_boxes(list(boxes))) if boxes else ())


@dataclass(frozen=True, eq=False)
class ObjectPrompt:
    """One object to track: a box on one sampled frame of the clip."""

    frame: int
    box_xyxy: np.ndarray
    """(4,) float64 pixels of the clip frames (not the source video)."""
    category: str
    is_agent: bool


class Sam2Tracker:
    """GroundingDINO boxes + SAM2 video masks (module docstring)."""

    name = "sam2"
    version = "1"

    def __init__(self, config: Sam2TrackerConfig, grounding_dino_dir: Path, sam2_dir: Path,
                 device: str = "cpu") -> None:
        self.config = config
        self.grounding_dino_dir = Path(grounding_dino_dir)
        self.sam2_dir = Path(sam2_dir)
        self.device = device
        self._detector: GroundingDino | None = None
        self._predictor = None

    @classmethod
    def from_config(cls, options: dict, device: str = "cpu", weights_dir: Path | None = None) -> "Sam2Tracker":
        """Build from CLI/config options (Sam2TrackerConfig fields, ``boxes`` a list or a JSON
        file path); weights from ``weights_dir``/grounding-dino and /sam2 (default: the
        settings' weights directory). Models load on first use."""
        from recon4d.settings import weights_dir as default_weights_dir

        options = dict(options or {})
        names = {f.name for f in fields(Sam2TrackerConfig)}
        unknown = set(options) - names
        if unknown:
            raise Recon4dError(f"unknown option(s) {sorted(unknown)} for the sam2 tracker; "
                               f"valid options are {sorted(names)}.")
        weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
        return cls(Sam2TrackerConfig(**options), weights_dir / "grounding-dino", weights_dir / "sam2", device)

    @functools.cached_property
    def weights_sha256(self) -> str:
        """Checksums of the weight directories used, as ``grounding-dino:<sha256>;sam2:<sha256>``
        (``recon4d.weights.sha256_path``; only the sam2 part with user boxes), computed on first use."""
        from recon4d.weights import sha256_path

        used = [] if self.config.boxes else [("grounding-dino", self.grounding_dino_dir)]
        return ";".join(f"{name}:{sha256_path(path)}" for name, path in [*used, ("sam2", self.sam2_dir)])

    def _torch_device(self):
        torch = require("torch", extra="track", purpose="SAM2 video masks")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise Recon4dError(f"--device {self.device} was asked for but this torch build sees no CUDA device; "
                               "run with --device cpu (slow) or on a machine with a GPU.")
        return torch.device(self.device)

    def detector(self) -> GroundingDino:
        if self._detector is None:
            self._detector = GroundingDino.from_pretrained(self.grounding_dino_dir, self._torch_device())
        return self._detector

    def predictor(self):
        if self._predictor is None:
            self._predictor = load_sam2_predictor(self.sam2_dir, self._torch_device())[0]
        return self._predictor

    def prompts(self, clip: Clip) -> list[ObjectPrompt]:
        """The objects to track: the user boxes, or GroundingDINO's on ``detect_frame`` (best first)."""
        config = self.config
        width, height = clip.image_size
        to_frame = np.array([width / clip.source_size[0], height / clip.source_size[1]] * 2)
        if config.boxes:
            return [ObjectPrompt(anchor_frame(entry, clip), np.asarray(entry["box"], np.float64) * to_frame,
                                 entry["category"], bool(entry["is_agent"])) for entry in config.boxes]
        if config.detect_frame >= clip.n_frames:
            raise Recon4dError(f"detect_frame={config.detect_frame} but the clip has {clip.n_frames} sampled frames "
                               f"(0..{clip.n_frames - 1}); choose a frame inside the clip.")
        found = self.detector().detect(np.asarray(clip.frames[config.detect_frame]), config.objects,
                                       config.box_threshold, config.text_threshold)
        keep = select_detections(found.boxes_xyxy, found.scores, found.categories, clip.image_size,
                                 config.box_threshold, config.min_area_frac, config.max_area_frac, config.nms_iou,
                                 config.max_objects)
        agents = set(config.agent_categories)
        return [ObjectPrompt(config.detect_frame, found.boxes_xyxy[i], found.categories[i],
                             found.categories[i] in agents) for i in keep]

    def track(self, clip: Clip, progress: ProgressFn | None = None) -> Tracks2D:
        """Detect (or take the user's boxes) and track them through ``clip`` with SAM2.

        Returns Tracks2D with ids 0..K−1 (best detection first), boxes (K, T, 4) in
        source-video pixels (NaN where the mask is empty) and masks (K, T, H, W) bool at the
        clip frame size. K = 0 when nothing is found (a warning says so).
        """
        n_frames, (width, height) = clip.n_frames, clip.image_size
        prompts = self.prompts(clip)
        n_objects = len(prompts)
        masks = np.zeros((n_objects, n_frames, height, width), bool)
        anchors = sorted({prompt.frame for prompt in prompts})
        total = n_frames * max(1, len(anchors))
        if progress is not None:
            progress(0, total)
        if self.config.boxes and self.config.objects != DEFAULT_OBJECTS:
            warnings.warn("the objects option is ignored: user boxes replace GroundingDINO detection.", stacklevel=2)
        if n_objects == 0:
            warnings.warn(f"GroundingDINO found none of {', '.join(self.config.objects)} on frame "
                          f"{self.config.detect_frame} (box_threshold {self.config.box_threshold}, boxes "
                          f"{self.config.min_area_frac:.0%}–{self.config.max_area_frac:.0%} of the frame); "
                          "lower -O track.box_threshold, change --objects or give --boxes.", stacklevel=2)
        done = 0
        for anchor in anchors:
            rows = [k for k, prompt in enumerate(prompts) if prompt.frame == anchor]
            boxes = np.stack([prompts[k].box_xyxy for k in rows])
            for t, frame_masks in propagate_masks(self.predictor(), clip.frames, anchor, boxes,
                                                  self.config.chunk_frames, self.config.offload_video_to_cpu,
                                                  self.config.offload_state_to_cpu):
                masks[rows, t] = frame_masks
                done += 1
                if progress is not None:
                    progress(done, total)
        if progress is not None and n_objects == 0:
            progress(total, total)
        to_source = np.array([clip.source_size[0] / width, clip.source_size[1] / height] * 2)
        boxes_xyxy = mask_boxes(masks) * to_source
        return Tracks2D(ids=np.arange(n_objects), categories=tuple(p.category for p in prompts),
                        is_agent=np.array([p.is_agent for p in prompts], bool), boxes_xyxy=boxes_xyxy.astype(np.float32),
                        visible=masks.any(axis=(2, 3)), masks=masks)
