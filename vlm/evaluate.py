"""``recon4d eval``: accuracy per question type of a model, a text-only baseline, or given replies.

A model is evaluated as the reference evaluates DSR-Bench (VLM_FACTS §1.8): 32 frames by
``round(linspace)`` over the whole file, per-frame pixels within 128·28²–768·28² (and the
video's 24576·28² budget), one second per temporal grid, the reference prompt, greedy decoding,
then the letter extraction of :mod:`recon4d.vlm.scoring`. ``blind-text`` answers from the
question and options alone with a heuristic of the QA audit (``recon4d.qa_compiler.audit``),
the floor any model has to beat; ``score_replies`` scores another model's replies.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from recon4d.errors import OptionError
from recon4d.qa_compiler.records import LETTERS
from recon4d.vlm.data import (
    EVAL_MAX_PIXELS,
    EVAL_MIN_PIXELS,
    EVAL_TOTAL_PIXELS,
    DataError,
    ItemSet,
    eval_frame_config,
    load_items,
)
from recon4d.vlm.scoring import Prediction, predict, score

BLIND_MODEL = "blind-text"


@dataclass(frozen=True)
class EvalSettings:
    """How a model is evaluated (defaults: the reference evaluation)."""

    n_frames: int = 32
    """Frames per video."""
    min_pixels: int = EVAL_MIN_PIXELS
    """Smallest frame area after Qwen's resize."""
    max_pixels: int = EVAL_MAX_PIXELS
    """Largest frame area after Qwen's resize."""
    total_pixels: int = EVAL_TOTAL_PIXELS
    """Pixel budget of a whole video (bounds the per-frame area for many frames)."""
    sampling: str = "whole"
    """"whole" (reference) or "visible" (up to the record's last visible frame)."""
    timing: str = "fixed"
    """"fixed": 1 s per temporal grid (reference evaluation); "duration": as in training."""
    max_new_tokens: int = 2048
    """Generation length limit (the reference's)."""
    batch_size: int = 1
    """Prompts per generate call (left-padded)."""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"."""
    video_root: str | None = None
    """Folder relative video paths are looked up in first."""
    limit: int | None = None
    """Evaluate only the first N items (smoke runs)."""

    def __post_init__(self) -> None:
        # Checked before the data and the model load. qwen-vl-utils would let min_pixels win
        # silently (frames of ~100k pixels for a 56×56 request): slow, and not what was asked.
        problems = [f"{name} must be at least 1 (got {value})" for name, value in
                    (("frames", self.n_frames), ("max-new-tokens", self.max_new_tokens),
                     ("batch-size", self.batch_size)) if value < 1]
        if not 0 < self.min_pixels <= self.max_pixels:
            problems.append(f"need 0 < min-pixels <= max-pixels, got {self.min_pixels} and {self.max_pixels}; give "
                            f"both bounds when lowering one (e.g. --min-pixels 784 --max-pixels 3136 for tiny "
                            f"models; the reference evaluation uses {EVAL_MIN_PIXELS}–{EVAL_MAX_PIXELS})")
        if self.total_pixels < 1:
            problems.append(f"total-pixels must be at least 1 (got {self.total_pixels})")
        if problems:
            raise OptionError("invalid evaluation settings: " + "; ".join(problems) + ".")  # exit code 2


def _base_results(model: str, data: Path, items: ItemSet, settings: dict, predictions: list[Prediction]) -> dict:
    return {"model": model, "data": str(data), "settings": settings, "n_skipped": items.n_skipped,
            "skipped": dict(items.skipped), "skipped_examples": items.messages, **score(predictions),
            "predictions": [p.to_json() for p in predictions]}


def _limited(items: ItemSet, limit: int | None) -> list:
    return items.items if limit is None else items.items[:limit]


# ---------------------------------------------------------------------------------------- models
def load_model(model_dir: str | Path, device: str):
    """The model of a local folder in eval mode (bf16 on CUDA, float32 on CPU) and its tokenizer."""
    import torch

    from recon4d.vlm import GeometryQwen2_5_VL
    from recon4d.vlm.tokenizer import load_tokenizer

    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise DataError(f"{folder} is not a model folder (no config.json); give the model/ folder of a `recon4d "
                        f"train` run, a released DSR/GeoSR checkpoint folder, or --model {BLIND_MODEL}.")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = GeometryQwen2_5_VL.from_pretrained(folder, dtype=dtype).to(device).eval()
    tokenizer = load_tokenizer(folder, model.config.text_config.vocab_size, model.geometry.token_ids)
    return model, tokenizer, device


def evaluate_model(model_dir: str | Path, data: str | Path, settings: EvalSettings = EvalSettings(),
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """Generate a reply per item with the model in ``model_dir`` and score them (see module docstring)."""
    import torch

    from recon4d.vlm.processing import collate
    from recon4d.vlm.samples import SampleBuilder, SampleError, SampleSettings

    items = load_items(data, settings.video_root, require_options=True)
    model, tokenizer, device = load_model(model_dir, settings.device)
    frames = eval_frame_config(settings.n_frames, settings.min_pixels, settings.max_pixels, settings.total_pixels,
                               settings.sampling, settings.timing)
    builder = SampleBuilder(items, tokenizer.encode, model.geometry,
                            SampleSettings(frames, training=False, max_length=10 ** 9),
                            model.config.vision_config.spatial_merge_size)
    ids = model.geometry.token_ids
    todo = _limited(items, settings.limit)
    predictions: list[Prediction] = []
    for start in range(0, len(todo), settings.batch_size):
        chunk, samples = [], []
        for item in todo[start:start + settings.batch_size]:
            try:
                samples.append(builder(item))
                chunk.append(item)
            except SampleError as exc:
                items.skip("sample failed", str(exc))
        if samples:
            batch = {k: v.to(device) for k, v in collate(samples, pad_id=ids.endoftext, padding_side="left").items()}
            with torch.no_grad():
                out = model.generate(**batch, max_new_tokens=settings.max_new_tokens, do_sample=False,
                                     pad_token_id=ids.endoftext, eos_token_id=ids.im_end)
            for item, row in zip(chunk, out[:, batch["input_ids"].shape[1]:].tolist()):
                reply = row[:row.index(ids.im_end)] if ids.im_end in row else row
                predictions.append(predict(item.id, item.qtype, item.answer, tokenizer.decode(reply), item.options))
        if progress is not None:
            progress(min(start + settings.batch_size, len(todo)), len(todo))
    if not predictions:
        raise DataError(f"no item of {data} could be evaluated: {items.summary()}")
    details = {**asdict(settings), "per_frame_max_pixels": frames.max_pixels, "device": device}
    return _base_results(str(model_dir), Path(data), items, details, predictions)


# -------------------------------------------------------------------------------------- blind text
def evaluate_blind(data: str | Path, heuristic: str = "best", seed: int = 0, limit: int | None = None) -> dict:
    """Answer every item from its options alone with one audit heuristic; ties drawn at random per item.

    ``heuristic="best"`` takes the heuristic the audit finds most accurate on these items (an
    optimistic text-only floor, stated in the results); every heuristic's accuracy is included.
    """
    from recon4d.qa_compiler.audit import HEURISTICS, audit

    items = load_items(data, require_options=True, need_videos=False)
    todo = _limited(items, limit)
    records = [{"options": list(i.options), "answer": i.answer, "type": i.qtype} for i in todo]
    report = audit(records)
    if heuristic == "best":
        heuristic = max(report["heuristics"], key=lambda name: (report["heuristics"][name], name))
    if heuristic not in HEURISTICS:
        raise DataError(f"unknown blind-text heuristic {heuristic!r}; choose best or one of "
                        f"{', '.join(HEURISTICS)}.")
    scorer = HEURISTICS[heuristic]
    predictions = []
    for item in todo:
        scores = np.asarray(scorer(list(item.options)), dtype=float)
        tied = np.flatnonzero(np.isclose(scores, scores.max()))
        rng = np.random.default_rng([seed, zlib.crc32(item.id.encode())])
        letter = LETTERS[int(rng.choice(tied))]
        predictions.append(predict(item.id, item.qtype, item.answer, letter, item.options))
    settings = {"heuristic": heuristic, "seed": seed, "audit_heuristics": report["heuristics"],
                "note": "text only: no video is read"}
    return _base_results(BLIND_MODEL, Path(data), items, settings, predictions)


# -------------------------------------------------------------------------------------- given replies
REPLY_KEYS = ("response", "prediction", "pred", "output", "reply")


def read_replies(path: str | Path) -> list[dict]:
    """Reply records of a JSONL file, a JSON list, or a results JSON (its ``predictions``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"predictions file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read predictions file {path} ({exc}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is neither JSON nor JSONL ({exc}); give one reply object per line.") from None
    if isinstance(data, dict) and isinstance(data.get("predictions"), list):
        data = data["predictions"]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise DataError(f"{path} must hold reply objects ({{'id' or 'index', 'response'}}, one per item).")
    return data


def _reply(row: dict, where: str) -> str:
    for key in REPLY_KEYS:
        if isinstance(row.get(key), str):
            return row[key]
    raise DataError(f"{where} has no reply text (one of the keys {', '.join(REPLY_KEYS)}).")


def score_replies(predictions_file: str | Path, data: str | Path | None = None) -> dict:
    """Score another model's replies, no model loaded.

    With ``data``, replies are matched to its items by ``id`` (``FILE#n``) or ``index`` (position in
    the file); items without a reply score as wrong ("missing"). Without ``data`` every reply must
    carry its ``answer`` (and may carry ``type`` and ``options``).
    """
    rows = read_replies(predictions_file)
    predictions = []
    if data is None:
        for n, row in enumerate(rows):
            where = f"{predictions_file} reply {n}"
            answer = row.get("answer")
            if answer not in LETTERS:
                raise DataError(f"{where} carries no answer letter; pass the question file as DATA to score it.")
            predictions.append(predict(str(row.get("id", n)), row.get("type"), answer, _reply(row, where),
                                       row.get("options")))
        items = ItemSet(items=[])
        return _base_results("given replies", Path(predictions_file), items, {"predictions": str(predictions_file)},
                             predictions)
    items = load_items(data, require_options=True, need_videos=False)
    by_id = {item.id: item for item in items.items}
    by_index = {item.index: item for item in items.items}
    replies: dict[str, str] = {}
    unmatched = 0
    for n, row in enumerate(rows):
        item = by_id.get(str(row.get("id"))) or (by_index.get(row["index"]) if isinstance(row.get("index"), int)
                                                  else None)
        if item is None:
            unmatched += 1
            continue
        replies[item.id] = _reply(row, f"{predictions_file} reply {n}")
    if not replies:
        raise DataError(f"no reply of {predictions_file} matches an item of {data} (by 'id' such as "
                        f"{items.items[0].id!r} or by 'index').")
    for item in items.items:
        predictions.append(predict(item.id, item.qtype, item.answer, replies.get(item.id, ""), item.options))
    missing = len(items.items) - len(replies)
    results = _base_results("given replies", Path(data), items, {"predictions": str(predictions_file)}, predictions)
    results.update(missing_replies=missing, unmatched_replies=unmatched)
    return results


def write_results(results: dict, path: str | Path) -> Path:
    """The results as indented JSON, written atomically."""
    from recon4d.outputs import write_json

    return write_json(path, results, what="evaluation results")
