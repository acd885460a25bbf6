"""Open-vocabulary boxes on one frame: GroundingDINO (transformers) plus deterministic box selection.

The detection half of the ``sam2`` track backend (DESIGN §4). GroundingDINO reads a text
prompt of categories, each lower-cased and ending with ". " ("person. dog. "), and scores
every query box against every prompt token. A query's score is its best token
probability; its phrase is the prompt words whose probability passes ``text_threshold``
(GroundingDINO's own rule, which may return part of a category or several categories), and
:func:`phrase_category` maps that phrase back to one prompt category.

:func:`select_detections` then keeps a deterministic subset, the curation the DSR paper
applies to its tracked objects: score ≥ box_threshold, box between ``min_area_frac`` and
``max_area_frac`` of the frame (1 % and 50 % in the paper), greedy per-category NMS, score
order with ties broken on coordinates, at most ``max_objects``.

    detector = GroundingDino.from_pretrained(weights_dir / "grounding-dino", "cpu")
    raw = detector.detect(frame, ("person", "dog"), box_threshold=0.35, text_threshold=0.25)
    keep = select_detections(raw.boxes_xyxy, raw.scores, raw.categories, (width, height), ...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from recon4d.optional import require
from recon4d.errors import Recon4dError
from recon4d.tracking.classic.user_boxes import AGENT_CATEGORIES

__all__ = [
    "DEFAULT_AGENT_CATEGORIES",
    "DEFAULT_OBJECTS",
    "Detections",
    "GroundingDino",
    "build_prompt",
    "check_grounding_dino_weights",
    "nms_per_label",
    "parse_categories",
    "phrase_category",
    "select_detections",
]

DEFAULT_OBJECTS = ("person", "dog", "cat", "horse", "bird", "car", "bicycle", "motorcycle", "ball", "cup",
                   "bottle", "chair", "backpack", "box")
"""Categories prompted when none are given: people and pets (agents) and the everyday
objects of the DSR footage (vehicles, balls, cups, furniture, bags)."""

DEFAULT_AGENT_CATEGORIES = tuple(sorted(AGENT_CATEGORIES | {"man", "woman", "child", "people", "elephant", "bear",
                                                            "zebra", "giraffe"}))
"""Categories that get ``is_agent=True`` (people and animals; the classic tracker's
AGENT_CATEGORIES plus a few synonyms and COCO animals)."""

_WORD = re.compile(r"[a-z0-9]+")


def parse_categories(objects: str | Sequence[str], where: str = "objects") -> tuple[str, ...]:
    """"person. dog." or ["person", "dog"] → ("person", "dog"): lower-cased, stripped, de-duplicated."""
    if isinstance(objects, str):
        items = objects.split(".")
    elif isinstance(objects, (list, tuple)) and all(isinstance(o, str) for o in objects):
        items = [part for o in objects for part in o.split(".")]
    else:
        raise Recon4dError(f"{where} must be a string like \"person. dog.\" or a list of category names, "
                           f"got {objects!r}.")
    categories = []
    for item in items:
        category = " ".join(item.lower().split())
        if category and category not in categories:
            categories.append(category)
    if not categories:
        raise Recon4dError(f"{where} names no category (got {objects!r}); give e.g. \"person. dog. ball.\".")
    return tuple(categories)


def build_prompt(categories: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """GroundingDINO's text prompt ("person. dog.") and each category's character span in it."""
    prompt, spans = "", []
    for category in categories:
        spans.append((len(prompt), len(prompt) + len(category)))
        prompt += f"{category}. "
    return prompt.strip(), spans


def phrase_category(phrase: str, categories: Sequence[str], category_scores: Sequence[float] | None = None) -> str:
    """The prompt category a GroundingDINO phrase stands for.

    A category whose words all appear in the phrase wins over one with only some of its
    words there; among equals the higher ``category_scores`` entry (the query's best token
    probability inside each category), then more matched words, then prompt order. A phrase
    with no category word in it is returned as it is (stripped); an empty one gives the
    category with the highest score ("object" without scores).
    """
    words = set(_WORD.findall(phrase.lower()))
    best, best_key = None, None
    for index, category in enumerate(categories):
        own = _WORD.findall(category.lower())
        matched = sum(w in words for w in own)
        if matched == 0:
            continue
        score = float(category_scores[index]) if category_scores is not None else 0.0
        key = (matched == len(own), score, matched, -index)
        if best_key is None or key > best_key:
            best, best_key = category, key
    if best is not None:
        return best
    phrase = " ".join(phrase.split())
    if not phrase and category_scores is not None and len(categories):
        # no prompt word passed text_threshold: the category the box scored highest on
        return categories[int(np.argmax(category_scores))]
    return phrase or "object"


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU (M,) of one xyxy box (4,) with boxes (M, 4)."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms_per_label(boxes: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS within each label over boxes (N, 4) already in priority order.

    Returns the kept indices (ascending, i.e. still in priority order); a box is suppressed
    when its IoU with a kept box of the same label exceeds ``iou_threshold``.
    """
    keep: list[int] = []
    for i in range(len(boxes)):
        same = [j for j in keep if labels[j] == labels[i]]
        if not same or not np.any(_iou(boxes[i], boxes[same]) > iou_threshold):
            keep.append(i)
    return np.asarray(keep, np.int64)


def select_detections(boxes_xyxy: np.ndarray, scores: np.ndarray, labels: Sequence, image_size: tuple[int, int],
                      box_threshold: float = 0.35, min_area_frac: float = 0.01, max_area_frac: float = 0.5,
                      nms_iou: float = 0.5, max_objects: int = 10) -> np.ndarray:
    """Indices of the detections to track, best first (deterministic for equal inputs).

    boxes_xyxy: (N, 4) pixels of an image of ``image_size`` = (width, height); clipped to
                the image before areas are measured.
    scores:     (N,) detection scores; those below ``box_threshold`` are dropped.
    labels:     N category labels (any hashables); NMS runs within each label.

    Boxes covering less than ``min_area_frac`` or more than ``max_area_frac`` of the image are
    dropped (the DSR curation keeps 1 %–50 %), the rest sorted by score (descending; ties by
    x1, y1, x2, y2 ascending, then input order), thinned by per-label NMS at ``nms_iou`` and
    cut to ``max_objects``. Returns (M,) int64 indices into the inputs, M ≤ max_objects.
    """
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = list(labels)
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(f"boxes ({len(boxes)}), scores ({len(scores)}) and labels ({len(labels)}) must have one "
                         "entry per detection.")
    width, height = image_size
    clipped = np.clip(boxes, 0.0, [width, height, width, height])
    area = np.clip(clipped[:, 2] - clipped[:, 0], 0, None) * np.clip(clipped[:, 3] - clipped[:, 1], 0, None)
    area_frac = area / float(width * height)
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    candidates = np.flatnonzero(finite & (scores >= box_threshold) & (area_frac >= min_area_frac)
                                & (area_frac <= max_area_frac))
    if candidates.size == 0:
        return np.zeros(0, np.int64)
    cand = clipped[candidates]
    order = np.lexsort((candidates, cand[:, 3], cand[:, 2], cand[:, 1], cand[:, 0], -scores[candidates]))
    ranked = candidates[order]
    _, label_ids = np.unique(np.array([str(labels[i]) for i in ranked], dtype=object), return_inverse=True)
    kept = ranked[nms_per_label(clipped[ranked], label_ids, nms_iou)]
    return kept[:max_objects].astype(np.int64)


@dataclass(frozen=True, eq=False)
class Detections:
    """GroundingDINO's boxes on one frame that passed ``box_threshold``.

    boxes_xyxy: (N, 4) float64 pixels of the detected frame.
    scores:     (N,) float64, best token probability of each box.
    phrases:    N phrases (prompt words over ``text_threshold``).
    categories: N prompt categories the phrases map to (:func:`phrase_category`).
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    phrases: tuple[str, ...]
    categories: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.scores)


def _load_grounding_dino(path: Path):
    """(processor, model) from a transformers GroundingDINO directory on the CPU, strictly."""
    transformers = require("transformers", extra="track", purpose="GroundingDINO detection")
    path = Path(path)
    if not (path / "config.json").is_file():
        raise Recon4dError(f"{path} is not a GroundingDINO directory: it has no config.json. Copy the whole model "
                           "folder (config.json, model.safetensors, tokenizer and preprocessor files) there, e.g. "
                           "with `recon4d weights import grounding-dino PATH`.")
    try:
        processor = transformers.AutoProcessor.from_pretrained(str(path), local_files_only=True)
        model, info = transformers.GroundingDinoForObjectDetection.from_pretrained(
            str(path), local_files_only=True, output_loading_info=True)
    except Exception as exc:
        raise Recon4dError(f"the GroundingDINO weights in {path} do not load ({type(exc).__name__}: {exc}). "
                           "Re-copy the full transformers model folder (config.json, *.safetensors, tokenizer and "
                           "preprocessor files), e.g. IDEA-Research/grounding-dino-base.") from exc
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k) for k in (info.get(kind) or ()))
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            problems.append(f"{kind.replace('_', ' ')}: {shown}")
    if problems:
        raise Recon4dError(f"the GroundingDINO checkpoint in {path} does not match its config.json "
                           f"({'; '.join(problems)}). The files are from different models or corrupted; "
                           "re-download the model folder.")
    return processor, model.eval()


def _params(model) -> str:
    n = sum(p.numel() for p in model.parameters())
    return f"{n / 1e6:.0f}M" if n >= 10e6 else f"{n / 1e6:.1f}M"


def check_grounding_dino_weights(path: Path) -> str:
    """Load a GroundingDINO directory on the CPU (strict) and summarise it; Recon4dError if it fails."""
    _, model = _load_grounding_dino(Path(path))
    backbone = getattr(model.config.backbone_config, "model_type", "?")
    return f"GroundingDINO ({backbone}, {_params(model)} params)"


class GroundingDino:
    """A loaded GroundingDINO model and its processor (tokenizer + image processor)."""

    def __init__(self, processor, model, device: str = "cpu") -> None:
        self.processor = processor
        self.model = model.to(device)
        self.device = device

    @classmethod
    def from_pretrained(cls, path: Path, device: str = "cpu") -> "GroundingDino":
        """Load a transformers GroundingDINO directory strictly (missing/unexpected keys raise)."""
        processor, model = _load_grounding_dino(Path(path))
        return cls(processor, model, device)

    def detect(self, image: np.ndarray, categories: Sequence[str], box_threshold: float = 0.35,
               text_threshold: float = 0.25) -> Detections:
        """Boxes of ``categories`` in ``image`` (H, W, 3) uint8 RGB with score ≥ box_threshold.

        Boxes are in pixels of ``image``, in query order (selection sorts them).
        """
        torch = require("torch", extra="track", purpose="GroundingDINO detection")
        prompt, spans = build_prompt(categories)
        inputs = self.processor(images=image, text=prompt, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        probs = outputs.logits[0].float().sigmoid().cpu().numpy()  # (Q, max_text_len)
        centre = outputs.pred_boxes[0].float().cpu().numpy().astype(np.float64)  # (Q, 4) cx cy w h in [0, 1]
        height, width = image.shape[:2]
        boxes = np.concatenate([centre[:, :2] - centre[:, 2:] / 2, centre[:, :2] + centre[:, 2:] / 2], axis=1)
        boxes *= [width, height, width, height]
        input_ids = inputs["input_ids"][0].cpu().numpy()
        n_tokens = min(len(input_ids), probs.shape[1])
        token_category = self._token_categories(prompt, spans, n_tokens)
        scores = probs[:, :n_tokens].max(axis=1) if n_tokens else np.zeros(len(probs))
        keep = np.flatnonzero(scores >= box_threshold)
        phrases, mapped = [], []
        for q in keep:
            # GroundingDINO's phrase: the words (not CLS/SEP or ".") whose probability passes text_threshold
            words = [i for i in range(n_tokens) if token_category[i] >= 0 and probs[q, i] > text_threshold]
            phrase = self.processor.tokenizer.decode([int(input_ids[i]) for i in words], skip_special_tokens=True)
            per_category = [max((probs[q, i] for i in range(n_tokens) if token_category[i] == c), default=0.0)
                            for c in range(len(categories))]
            phrases.append(phrase.strip())
            mapped.append(phrase_category(phrase, categories, per_category))
        return Detections(boxes_xyxy=boxes[keep], scores=scores[keep].astype(np.float64), phrases=tuple(phrases),
                          categories=tuple(mapped))

    def _token_categories(self, prompt: str, spans: list[tuple[int, int]], n_tokens: int) -> np.ndarray:
        """(n_tokens,) index of the category each prompt token belongs to; -1 for special tokens and "."."""
        encoded = self.processor.tokenizer(prompt, return_offsets_mapping=True)
        owner = np.full(n_tokens, -1, np.int64)
        for i, (start, end) in enumerate(encoded["offset_mapping"][:n_tokens]):
            if end <= start:
                continue
            for c, (span_start, span_end) in enumerate(spans):
                if span_start <= start and end <= span_end:
                    owner[i] = c
                    break
        return owner
