"""QA data for training and evaluation: files of questions → items → frames → model samples.

Reads the exports of ``recon4d qa`` and the files others ship (VLM_FACTS §1.7–1.8):

    file                       what an item gets                              video
    Qwen conversation .json    the chat verbatim (``<video>`` + question, gpt letter)  ``video`` field
    recon4d .jsonl             question, options, answer, type, visible span  ``video_path`` of the record
    DSR-Bench .parquet         videoID, question, options, answer (+ type)    ``{videoID}.mp4``
    DSR JSON .json (object)    Type, Question, A–D, Correct                   ``{videoID}.mp4``

A relative video path is looked up under ``video_root`` first, then beside the file, then in the
working folder. Records that
cannot be parsed, and items whose video is missing or unreadable, are skipped and counted by
reason (:class:`ItemSet`); nothing is dropped silently.

Frames follow the reference (VLM_FACTS §1.7): 32 per item by ``np.linspace(0, n − 1, 32, dtype=int)``
over the whole file then ``np.unique`` (training), or ``round(linspace)`` as qwen-vl-utils samples
for evaluation (§1.8). ``sampling="visible"`` samples only the frames up to the record's last
visible frame, so a direction-prediction answer (the hidden last second) is never shown.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon4d.errors import Recon4dError, VideoError
from recon4d.qa_compiler.export import QWEN_OPTION_STYLES
from recon4d.qa_compiler.records import LETTERS, QARecord
from recon4d.video import VideoInfo, iter_frames, probe

TRAIN_MIN_PIXELS, TRAIN_MAX_PIXELS = 784, 230400
"""Per-frame pixel bounds of the reference training (``video_min/max_frame_pixels``)."""
EVAL_MIN_PIXELS, EVAL_MAX_PIXELS, EVAL_TOTAL_PIXELS = 128 * 28 * 28, 768 * 28 * 28, 24576 * 28 * 28
"""Pixel bounds of the reference evaluation (VLMEvalKit ``config.py``): per frame and per video."""
EVAL_INSTRUCTION = ("These are the frames of a video. Select the best answer to the following multiple-choice "
                    "question based on the video. Respond with only the letter (A, B, C, or D) of the correct "
                    "option.\n")
"""The reference evaluation's instruction (``spatial_reasoning.py``), between the video and the question."""
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi")
SAMPLINGS = ("whole", "visible")
ROUNDINGS = ("floor", "round")
TIMINGS = ("duration", "fixed")
NON_TEMPLATE = "non-template"
"""Type name of questions that no template made (``llm`` records, or no type given)."""


class DataError(Recon4dError, ValueError):
    """A question file cannot be used at all (unreadable, wrong layout, nothing usable in it)."""


@dataclass(frozen=True)
class FrameConfig:
    """How frames are chosen and turned into pixels (defaults: the reference training)."""

    n_frames: int = 32
    """Frames sampled per video."""
    sampling: str = "whole"
    """"whole": uniform over the whole file (the reference); "visible": only up to the record's last
    visible frame (direction prediction hides the last second)."""
    rounding: str = "floor"
    """"floor": ``linspace(..., dtype=int)`` (reference training); "round": ``round(linspace)`` (evaluation)."""
    min_pixels: int = TRAIN_MIN_PIXELS
    """Smallest frame area after Qwen's resize (multiples of 28)."""
    max_pixels: int = TRAIN_MAX_PIXELS
    """Largest frame area after Qwen's resize."""
    timing: str = "duration"
    """"duration": seconds per temporal grid = 2 / (frames / duration) (reference training);
    "fixed": 1.0 whatever the clip (the reference evaluation, fps 2)."""

    def __post_init__(self) -> None:
        problems = []
        if self.n_frames < 1:
            problems.append(f"n_frames must be at least 1 (got {self.n_frames})")
        for name, value, allowed in (("sampling", self.sampling, SAMPLINGS), ("rounding", self.rounding, ROUNDINGS),
                                     ("timing", self.timing, TIMINGS)):
            if value not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
        if not 0 < self.min_pixels <= self.max_pixels:
            problems.append(f"need 0 < min_pixels <= max_pixels (got {self.min_pixels}, {self.max_pixels})")
        if problems:
            raise DataError("invalid frame settings: " + "; ".join(problems) + ".")


def eval_frame_config(n_frames: int = 32, min_pixels: int = EVAL_MIN_PIXELS, max_pixels: int = EVAL_MAX_PIXELS,
                      total_pixels: int = EVAL_TOTAL_PIXELS, sampling: str = "whole",
                      timing: str = "fixed") -> FrameConfig:
    """The reference evaluation's frames: per-frame maximum ``min(max, total / frames · 2)`` but at
    least 1.05 · min (qwen-vl-utils' video budget), rounded sampling, 1 s per temporal grid."""
    per_frame = max(min(max_pixels, total_pixels / n_frames * 2), int(min_pixels * 1.05))
    return FrameConfig(n_frames=n_frames, sampling=sampling, rounding="round", min_pixels=min_pixels,
                       max_pixels=int(per_frame), timing=timing)


@dataclass(frozen=True)
class QAItem:
    """One question (or conversation) with its resolved video."""

    id: str
    """Stable id: ``{file name}#{position in the file}``."""
    index: int
    """Position of the record in its file (0-based)."""
    video: Path
    """The video file, resolved."""
    video_id: str
    """The clip's id as the file names it."""
    turns: tuple[tuple[str, str], ...]
    """Training chat, (role, content) with role "user"/"assistant"; the user turn holds ``<video>``."""
    question: str | None = None
    """Question text (None for a free-form conversation)."""
    options: tuple[str, ...] | None = None
    """The four bare option texts A–D (None for a free-form conversation)."""
    answer: str | None = None
    """Correct letter, when known."""
    qtype: str = NON_TEMPLATE
    """Question type (one of the 12 templated types, or "non-template")."""
    visible_end_s: float | None = None
    """Time (s, source video) of the last frame a model may see; None = the whole file."""


@dataclass
class ItemSet:
    """Items read from a file, and what was skipped with the reason."""

    items: list[QAItem]
    """Usable items, in file order."""
    skipped: Counter = field(default_factory=Counter)
    """Reason → number of records skipped for it."""
    messages: list[str] = field(default_factory=list)
    """The first messages of each reason (what, where, why)."""
    infos: dict = field(default_factory=dict)
    """Resolved video path → :class:`~recon4d.video.VideoInfo`."""

    def skip(self, reason: str, message: str, count: int = 1) -> None:
        if self.skipped[reason] < 3:
            self.messages.append(message)
        self.skipped[reason] += count

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """"N items; M skipped (reason: k, ...)" and the first messages."""
        head = f"{len(self.items)} items"
        if not self.skipped:
            return head + ", none skipped"
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.skipped.items()))
        return f"{head}; {self.n_skipped} skipped ({reasons})\n" + "\n".join(f"  - {m}" for m in self.messages)


# ---------------------------------------------------------------------------------------- prompts
def training_prompt(question: str, options: tuple[str, ...]) -> str:
    """DSR-Train's human turn: ``<video>\\n{Q}\\nOptions:\\nA text\\nB text...`` (``qa_json_gen.py``)."""
    line = QWEN_OPTION_STYLES["dsr"]
    lines = "\n".join(line.format(letter=letter, text=text) for letter, text in zip(LETTERS, options))
    return f"<video>\n{question}\nOptions:\n{lines}"


def evaluation_prompt(question: str, options: tuple[str, ...]) -> str:
    """The reference evaluation's user turn: video, instruction, ``Question: {Q}``, "A. text" lines, "Answer: "."""
    lines = "\n".join(f"{letter}. {text}" for letter, text in zip(LETTERS, options))
    return f"<video>\n{EVAL_INSTRUCTION}Question: {question}\n{lines}\nAnswer: "


def split_training_prompt(prompt: str) -> tuple[str, tuple[str, ...]] | None:
    """(question, options) of a DSR-Train human turn, or None when it is not one."""
    body = prompt[len("<video>\n"):] if prompt.startswith("<video>\n") else None
    if body is None:
        return None
    question, sep, block = body.rpartition("\nOptions:\n")
    lines = block.split("\n")
    if not sep or len(lines) != 4:
        return None
    options = []
    for letter, line in zip(LETTERS, lines):
        for prefix in (f"{letter}. ", f"{letter} "):
            if line.startswith(prefix):
                options.append(line[len(prefix):])
                break
        else:
            return None
    return question, tuple(options)


# ------------------------------------------------------------------------------------ reading files
def _strip_dotted(options: list[str]) -> tuple[str, ...]:
    prefixes = [f"{letter}. " for letter in LETTERS]
    if all(o.startswith(p) for o, p in zip(options, prefixes)):
        return tuple(o[len(p):] for o, p in zip(options, prefixes))
    return tuple(options)


def _bare_record(where: str, video: str, video_id: str, question, options, answer, qtype) -> dict:
    """Check one multiple-choice record; raises ValueError naming what is wrong."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: the question is missing or empty")
    if not isinstance(options, (list, tuple)) or len(options) != 4 or not all(isinstance(o, str) for o in options):
        raise ValueError(f"{where}: expected four option strings A–D, got {options!r}"[:300])
    if not isinstance(answer, str) or answer.strip() not in LETTERS:
        raise ValueError(f"{where}: the answer must be one of the letters A–D, got {answer!r}")
    options = _strip_dotted(list(options))
    return dict(video=video, video_id=video_id, question=question, options=options, answer=answer.strip(),
                qtype=qtype if isinstance(qtype, str) and qtype and qtype != "llm" else NON_TEMPLATE,
                turns=(("user", training_prompt(question, options)), ("assistant", answer.strip())))


def _qwen_record(n: int, sample, where: str) -> dict:
    if not isinstance(sample, dict) or not isinstance(sample.get("video"), str) or not sample["video"]:
        raise ValueError(f"{where}: a Qwen sample needs a 'video' path and 'conversations'")
    conversations = sample.get("conversations")
    roles = {"human": "user", "gpt": "assistant"}
    turns = []
    if not isinstance(conversations, list) or not conversations:
        raise ValueError(f"{where}: 'conversations' must be a non-empty list of turns")
    for turn in conversations:
        if not isinstance(turn, dict) or turn.get("from") not in roles or not isinstance(turn.get("value"), str):
            raise ValueError(f"{where}: every turn needs 'from' (human or gpt) and a string 'value'; got {turn!r}"[:300])
        turns.append((roles[turn["from"]], turn["value"]))
    if turns[0][0] != "user" or turns[-1][0] != "assistant":
        raise ValueError(f"{where}: the conversation must start with a human turn and end with a gpt turn")
    if sum(content.count("<video>") for _, content in turns) != 1:
        raise ValueError(f"{where}: the conversation must hold exactly one <video> marker")
    record = dict(video=sample["video"], video_id=Path(sample["video"]).stem, turns=tuple(turns))
    parsed = split_training_prompt(turns[0][1]) if len(turns) == 2 else None
    if parsed is not None and turns[1][1].strip() in LETTERS:
        record.update(question=parsed[0], options=parsed[1], answer=turns[1][1].strip())
    return record


def _jsonl_record(n: int, data, where: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: holds a JSON {type(data).__name__}, not a QARecord object")
    try:
        record = QARecord.from_json(data)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"{where}: not a QARecord ({exc})"[:300]) from None
    if not record.video_path:
        raise ValueError(f"{where}: the record has no video_path")
    out = _bare_record(where, record.video_path, record.video_id, record.question, list(record.options),
                       record.answer, record.qtype)
    out["visible_end_s"] = visible_end_s(record)
    out["predicts"] = record.qtype.endswith("dir_pred")
    return out


def visible_end_s(record: QARecord) -> float | None:
    """Source-video time of the record's last visible frame, when the record pins it.

    The record maps two scene frames to times (``frame_range`` ↔ ``interval_s``). Direction
    prediction shows frames up to the start of its interval, so its last visible frame is
    ``frame_range[0]``; other types show the whole clip (None).
    """
    last = record.visible_range[1]
    for frame, time_s in zip(record.frame_range, record.interval_s):
        if last == frame:
            return float(time_s)
    return None


def _read_json_records(path: Path, data, out: ItemSet) -> list[tuple[int, dict]]:
    records = []
    if isinstance(data, list):
        for n, sample in enumerate(data):
            try:
                records.append((n, _qwen_record(n, sample, f"{path.name}: sample {n}")))
            except ValueError as exc:
                out.skip("malformed record", str(exc))
        return records
    if isinstance(data, dict):
        n = 0
        for video_id, entries in data.items():
            for k, entry in enumerate(entries if isinstance(entries, list) else [entries]):
                where = f"{path.name}: {video_id}[{k}]"
                try:
                    if not isinstance(entry, dict):
                        raise ValueError(f"{where}: a DSR question must be an object")
                    records.append((n, _bare_record(where, f"{video_id}.mp4", str(video_id), entry.get("Question"),
                                                    [entry.get(letter) for letter in LETTERS], entry.get("Correct"),
                                                    entry.get("Type"))))
                except ValueError as exc:
                    out.skip("malformed record", str(exc))
                n += 1
        return records
    raise DataError(f"{path} holds a JSON {type(data).__name__}; expected a list (Qwen conversation JSON) or an "
                    "object (DSR JSON {videoID: [questions]}).")


def _read_parquet_records(path: Path, out: ItemSet) -> list[tuple[int, dict]]:
    from recon4d.optional import require

    pq = require("pyarrow.parquet", extra="qa", purpose="reading benchmark parquet files")
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable parquet file ({exc}); expected a benchmark table with columns "
                        "videoID, question, options, answer (type optional).") from None
    missing = [c for c in ("videoID", "question", "options", "answer") if c not in table.column_names]
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(missing)}; a DSR-Bench table has videoID, "
                        f"question, options, answer (type optional); found {', '.join(table.column_names)}.")
    records = []
    for n, row in enumerate(table.to_pylist()):
        try:
            video_id = str(row["videoID"])
            records.append((n, _bare_record(f"{path.name}: row {n}", f"{video_id}.mp4", video_id, row["question"],
                                            row["options"], row["answer"], row.get("type"))))
        except ValueError as exc:
            out.skip("malformed record", str(exc))
    return records


def read_records(path: Path, out: ItemSet) -> list[tuple[int, dict]]:
    """(position, record dict) of every parseable record of ``path``; the others are counted in ``out``."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet_records(path, out)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; expected a .json, .jsonl or .parquet question file.") from None
    if suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            where = f"{path.name}:{n + 1}"
            try:
                records.append((n, _jsonl_record(n, json.loads(line), where)))
            except json.JSONDecodeError as exc:
                out.skip("malformed record", f"{where}: not JSON ({exc})")
            except ValueError as exc:
                out.skip("malformed record", str(exc))
        return records
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON ({exc}); expected a Qwen conversation list or a DSR JSON "
                            "object.") from None
        return _read_json_records(path, data, out)
    raise DataError(f"cannot tell the format of {path} from its suffix {path.suffix!r}; expected .json (Qwen "
                    "conversations or DSR JSON), .jsonl (recon4d qa) or .parquet (DSR-Bench).")


def resolve_video(name: str, data_file: Path, video_root: Path | None) -> tuple[Path | None, list[Path]]:
    """The existing file a record's video names, and every place looked (for the error)."""
    given = Path(name)
    # The working folder last: `recon4d qa` records a store's video path as it was given to
    # `recon4d process`/`synth`, i.e. relative to where those ran.
    bases = ([] if video_root is None else [Path(video_root)]) + [data_file.parent, Path.cwd()]
    candidates = [given] if given.is_absolute() else [base / given for base in bases]
    if not given.suffix:
        candidates = [c.with_suffix(s) for c in candidates for s in VIDEO_SUFFIXES]
    elif given.suffix.lower() == ".mp4" and not given.is_absolute():
        # DSR-Bench ids name "{videoID}.mp4"; the clips may be another container.
        candidates += [c.with_suffix(s) for c in candidates for s in VIDEO_SUFFIXES[1:]]
    for candidate in candidates:
        if candidate.is_file():
            return candidate, candidates
    return None, candidates


def _usable_video(record: dict, path: Path, video_root, probes: dict, where: str
                  ) -> tuple[Path | None, tuple[str, str] | None]:
    """The record's resolved, probed video, or None and (reason, message)."""
    video, looked = resolve_video(record["video"], path, None if video_root is None else Path(video_root))
    if video is None:
        places = ", ".join(str(p) for p in looked[:4]) + (" ..." if len(looked) > 4 else "")
        return None, ("video missing", f"{where}: video {record['video']!r} not found (looked at {places}); pass "
                                       "--video-root or fix the path")
    if video not in probes:
        try:
            probes[video] = probe(video)
        except VideoError as exc:
            probes[video] = str(exc)
    if isinstance(probes[video], str):
        return None, ("video unreadable", f"{where}: {probes[video]}")
    if record.get("predicts") and record.get("visible_end_s") is None:
        return None, ("hidden span unknown", f"{where}: a direction-prediction record whose visible range does not "
                                             "match its interval; it cannot be shown without its answer")
    return video, None


def load_items(path: str | Path, video_root: str | Path | None = None, require_options: bool = False,
               need_videos: bool = True) -> ItemSet:
    """Read ``path``, resolve and probe every video; skip (and count) what cannot be used.

    ``require_options`` (evaluation): items without question, four options and an answer letter
    are skipped too. ``need_videos=False`` (text-only baselines, scoring given replies): videos are
    neither looked up nor probed. Raises :class:`DataError` when the file is unreadable or nothing
    is usable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"question file {path} does not exist; give a .json, .jsonl or .parquet file written by "
                        "`recon4d qa` (or a Qwen conversation JSON / DSR-Bench parquet).")
    if video_root is not None and not Path(video_root).is_dir():
        raise DataError(f"video root {video_root} is not a folder; pass the folder that holds the videos.")
    out = ItemSet(items=[])
    records = read_records(path, out)
    probes: dict[Path, VideoInfo | str] = {}
    for n, record in records:
        where = f"{path.name} record {n}"
        if require_options and record.get("options") is None:
            out.skip("not multiple choice", f"{where}: no question with four options and an answer letter")
            continue
        video = Path(record["video"])
        if need_videos:
            video, reason = _usable_video(record, path, video_root, probes, where)
            if video is None:
                out.skip(*reason)
                continue
            out.infos[video] = probes[video]
        out.items.append(QAItem(
            id=f"{path.name}#{n}", index=n, video=video, video_id=record["video_id"], turns=record["turns"],
            question=record.get("question"), options=record.get("options"), answer=record.get("answer"),
            qtype=record.get("qtype", NON_TEMPLATE), visible_end_s=record.get("visible_end_s")))
    if not out.items:
        raise DataError(f"{path} holds no usable item: {out.summary()}. Check the file and the video paths "
                        "(--video-root).")
    return out


# -------------------------------------------------------------------------------------------- frames
def frame_indices(info: VideoInfo, frames: FrameConfig, visible_end_s: float | None = None) -> np.ndarray:
    """(n,) sorted unique frame indices of one item (see :class:`FrameConfig`)."""
    last = info.n_frames - 1
    if frames.sampling == "visible" and visible_end_s is not None:
        last = min(last, max(0, math.floor(visible_end_s * info.fps + 1e-6)))
    if frames.rounding == "floor":
        picked = np.linspace(0, last, frames.n_frames, dtype=int)
    else:
        picked = np.rint(np.linspace(0, last, frames.n_frames)).astype(int)
    return np.unique(picked)


def seconds_per_grid(indices: np.ndarray, info: VideoInfo, frames: FrameConfig, temporal_patch: int = 2) -> float:
    """Seconds per temporal grid: ``2 / (frames / duration)`` with the duration of the frames shown
    ((last + 1) / fps: the whole file's ``n / fps`` in the reference's whole-file sampling), or 1.0."""
    if frames.timing == "fixed":
        return 1.0
    duration = (int(indices[-1]) + 1) / info.fps
    return temporal_patch / (len(indices) / duration)


def read_frames(video: Path, indices: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames at ``indices``; raises VideoError when the file breaks."""
    frames = [rgb for _, _, rgb in iter_frames(video, indices)]
    return np.stack(frames)


def video_view_key(item: QAItem, info: VideoInfo, indices: np.ndarray, frames: FrameConfig) -> str:
    """Identity of the pixels one item's video produces: file (path, size, mtime), frames, pixel bounds.

    Questions on the same clip with the same frames share it (the geometry cache is keyed by it).
    """
    stat = os.stat(item.video)
    text = json.dumps([str(Path(item.video).resolve()), stat.st_size, stat.st_mtime_ns, indices.tolist(),
                       frames.min_pixels, frames.max_pixels])
    return hashlib.sha256(text.encode()).hexdigest()[:40]
