"""The ``sam2`` track backend: GroundingDINO boxes on one frame, SAM2 video masks through the clip.

DESIGN §4. Steps of :meth:`Sam2Tracker.track`:

1. Prompts: GroundingDINO (:mod:`recon4d.tracking.sam2.grounding`) on ``detect_frame`` with the
   category prompt, curated by :func:`~recon4d.tracking.sam2.grounding.select_detections`; or the
   user's boxes (``boxes`` option, ``--boxes``), which skip detection and may sit on
   different frames (each frame's boxes are one SAM2 session).
2. Masks: the SAM2 video predictor of the pip ``sam2`` package, prompted with each box on
   its frame, propagated forwards to the last frame and backwards to the first. Frames are
   fed from memory: :class:`~recon4d.tracking.sam2.video.ClipImages` turns a clip frame into the normalised
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
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon4d.optional import require
from recon4d.backends import config_from_options
from recon4d.errors import Recon4dError
from recon4d.tracking.classic.user_boxes import anchor_frame, load_user_boxes, validate_user_boxes
from recon4d.tracking.sam2.grounding import (
    DEFAULT_AGENT_CATEGORIES,
    DEFAULT_OBJECTS,
    GroundingDino,
    parse_categories,
    select_detections,
)
from recon4d.tracking.sam2.video import load_sam2_predictor, mask_boxes, propagate_masks
from recon4d.types import Clip, ProgressFn, Tracks2D

__all__ = ["ObjectPrompt", "Sam2Tracker", "Sam2TrackerConfig"]


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

        config = config_from_options(Sam2TrackerConfig, options, "sam2 tracker")
        weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
        return cls(config, weights_dir / "grounding-dino", weights_dir / "sam2", device)

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
