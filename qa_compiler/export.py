"""Write compiled questions in the formats other tools read, and read them back (DESIGN §6).

    format     suffix    layout                                                        read back as
    dsr-json   .json     {videoID: [{Type, Question, A, B, C, D, Correct}, ...]}       items
    parquet    .parquet  columns videoID, question, options, answer, type              items
    qwen       .json     [{"video", "conversations": [{"from": "human"}, {"from": "gpt"}]}]  items
    jsonl      .jsonl    one ``QARecord.to_json()`` per line, with all the evidence    QARecords (exact)

An *item* is the part of a record the lossy formats keep: a dict with ``videoID`` (``video``
for qwen), ``type``, ``question``, ``options`` (the four bare answer texts, A–D) and
``answer`` (the letter).

Option strings differ per consumer, following what each one reads:

- parquet stores ``options`` as a list of ``"A. text"`` strings — the Video-MME / VSI-Bench
  convention (a ``videoID, question, options, answer`` table whose prompt is built with
  ``"\\n".join(options)``) that DSR-Bench's column names follow. Reading strips the prefixes
  when all four carry them, so bare options written by other tools read back too.
- qwen writes option lines ``"A text"`` (letter, space, text) by default, exactly as DSR
  Suite's ``qa_json_gen.py`` builds DSR-Train (and as DESIGN §6 shows); ``option_style="dotted"``
  writes ``"A. text"`` instead. Reading accepts both.

Every writer is atomic — it writes a hidden temporary file in the target's folder and renames
it over the target, so a crash or an error leaves either the old file or none, never half of
one — and deterministic: the same records give the same bytes (sorted keys where the order
carries no meaning, Python's shortest round-trip float repr, no timestamps, fixed parquet
settings). Parquet bytes additionally depend on the pyarrow version, which the file records
in its ``created_by`` field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np

from recon4d.optional import require
from recon4d.outputs import atomic_file
from recon4d.qa_compiler.records import LETTERS, QARecord

PARQUET_COLUMNS = ("videoID", "question", "options", "answer", "type")
QWEN_OPTION_STYLES = {"dsr": "{letter} {text}", "dotted": "{letter}. {text}"}
QWEN_VIDEO_SOURCES = ("id", "path")

# Fixed writer settings: with the same pyarrow these give byte-identical files for the same rows.
_PARQUET_SETTINGS = dict(
    compression="snappy", use_dictionary=True, write_statistics=True, version="2.6",
    data_page_version="1.0", row_group_size=65536, store_schema=True,
)
_DSR_KEYS = ("Question", *LETTERS, "Correct")


def _atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it to ``path``
    (:func:`recon4d.outputs.atomic_file`: locked, unique temporary, stale ones cleaned)."""
    with atomic_file(path, what="question file") as handle:
        write(handle)
    return Path(path)


def _plain(value):
    """``json`` fallback: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON; use numbers, strings and lists")


def _dumps(data, *, indent: int | None = None, sort_keys: bool = False) -> str:
    separators = (",", ": ") if indent is not None else (",", ":")
    return json.dumps(data, ensure_ascii=False, allow_nan=False, indent=indent, sort_keys=sort_keys,
                      separators=separators, default=_plain)


def _as_records(records: Iterable[QARecord]) -> list[QARecord]:
    records = list(records)
    for index, record in enumerate(records):
        if not isinstance(record, QARecord):
            raise TypeError(f"record {index} is a {type(record).__name__}, not a QARecord")
    return records


def _describe(index: int, record: QARecord) -> str:
    return f"record {index} (video {record.video_id!r}, type {record.qtype!r})"


def _letter(value, where: str) -> str:
    letter = value.strip() if isinstance(value, str) else value
    if letter not in LETTERS:
        raise ValueError(f"{where}: the answer must be one of the letters {', '.join(LETTERS)}, got {value!r}")
    return letter


def _options(values, where: str) -> list[str]:
    if not isinstance(values, (list, tuple)) or len(values) != 4 or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}: expected four option strings (A–D), got {values!r}")
    return list(values)


def _strip_letter_prefixes(options: list[str]) -> list[str]:
    """Drop ``"A. "``… prefixes when all four options carry their own letter's prefix."""
    prefixes = [f"{letter}. " for letter in LETTERS]
    if all(option.startswith(prefix) for option, prefix in zip(options, prefixes)):
        return [option[len(prefix):] for option, prefix in zip(options, prefixes)]
    return options


def _load_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a UTF-8 JSON file ({exc}); expected a DSR JSON or Qwen-VL JSON "
                         "export") from None


def write_dsr_json(records: Iterable[QARecord], path) -> Path:
    """DSR Suite's QA file: ``{videoID: [{Type, Question, A, B, C, D, Correct}, ...]}``.

    Videos are sorted by id; each video's questions keep the order of ``records``.
    """
    grouped: dict[str, list[dict]] = {}
    for record in _as_records(records):
        entry = {"Type": record.qtype, "Question": record.question}
        entry.update(zip(LETTERS, record.options))
        entry["Correct"] = record.answer
        grouped.setdefault(record.video_id, []).append(entry)
    text = _dumps({video_id: grouped[video_id] for video_id in sorted(grouped)}, indent=4) + "\n"
    return _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _dsr_items(data, path) -> list[dict]:
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a DSR JSON export: expected an object {{videoID: [questions]}}, "
                         f"got a JSON {type(data).__name__}")
    items = []
    for video_id, entries in data.items():
        if not isinstance(entries, list):
            raise ValueError(f"{path}: video {video_id!r} must map to a list of questions, "
                             f"got {type(entries).__name__}")
        for n, entry in enumerate(entries):
            where = f"{path}: {video_id}[{n}]"
            missing = [key for key in _DSR_KEYS if not isinstance(entry, dict) or key not in entry]
            if missing:
                raise ValueError(f"{where} lacks {', '.join(missing)}; each DSR question needs the keys "
                                 f"{', '.join(_DSR_KEYS)} (Type optional)")
            items.append({
                "videoID": video_id,
                "type": entry.get("Type"),
                "question": entry["Question"],
                "options": _options([entry[letter] for letter in LETTERS], where),
                "answer": _letter(entry["Correct"], where),
            })
    return items


def read_dsr_json(path) -> list[dict]:
    """Items of a DSR JSON file, video by video in file order."""
    return _dsr_items(_load_json(path), path)


def write_parquet(records: Iterable[QARecord], path) -> Path:
    """Benchmark table ``videoID, question, options, answer, type``; options as ``"A. text"``.

    Written with fixed settings (snappy, format 2.6, data page v1, dictionary encoding,
    statistics, 65,536-row groups), so the same records give byte-identical files under the
    same pyarrow.
    """
    pa = require("pyarrow", extra="qa", purpose="writing benchmark parquet files")
    pq = require("pyarrow.parquet", extra="qa", purpose="writing benchmark parquet files")
    records = _as_records(records)
    string = pa.string()
    table = pa.table({
        "videoID": pa.array([r.video_id for r in records], string),
        "question": pa.array([r.question for r in records], string),
        "options": pa.array([[f"{letter}. {text}" for letter, text in zip(LETTERS, r.options)] for r in records],
                            pa.list_(string)),
        "answer": pa.array([r.answer for r in records], string),
        "type": pa.array([r.qtype for r in records], string),
    })
    return _atomic_write(path, lambda handle: pq.write_table(table, handle, **_PARQUET_SETTINGS))


def read_parquet(path) -> list[dict]:
    """Items of a benchmark parquet file (``type`` is None when the table has no such column)."""
    pq = require("pyarrow.parquet", extra="qa", purpose="reading benchmark parquet files")
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable parquet file ({exc}); expected a benchmark table "
                         f"with columns {', '.join(PARQUET_COLUMNS)}") from None
    missing = [c for c in PARQUET_COLUMNS[:4] if c not in table.column_names]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}; a benchmark table has "
                         f"{', '.join(PARQUET_COLUMNS)} (type optional), found {', '.join(table.column_names)}")
    items = []
    for n, row in enumerate(table.to_pylist()):
        where = f"{path}: row {n}"
        items.append({
            "videoID": row["videoID"],
            "type": row.get("type"),
            "question": row["question"],
            "options": _strip_letter_prefixes(_options(row["options"], where)),
            "answer": _letter(row["answer"], where),
        })
    return items


def _qwen_video(record: QARecord, source: str) -> str:
    if source == "id":
        return f"{record.video_id}.mp4"
    if not record.video_path:
        raise ValueError(f"record of video {record.video_id!r} has no video_path; write with video_source='id' "
                         "or fill video_path")
    return record.video_path


def write_qwen_json(records: Iterable[QARecord], path, *, option_style: str = "dsr",
                    video_source: str = "id") -> Path:
    """Qwen-VL fine-tune list: ``{"video", "conversations": [human prompt, gpt letter]}`` per question.

    option_style:  "dsr" writes option lines "A text" (DSR-Train); "dotted" writes "A. text".
    video_source:  "id" writes ``"{videoID}.mp4"`` (relative to the training video root, as
                   DSR-Train does); "path" writes each record's ``video_path``.
    """
    if option_style not in QWEN_OPTION_STYLES:
        raise ValueError(f"unknown option_style {option_style!r}; expected one of {', '.join(QWEN_OPTION_STYLES)}")
    if video_source not in QWEN_VIDEO_SOURCES:
        raise ValueError(f"unknown video_source {video_source!r}; expected one of {', '.join(QWEN_VIDEO_SOURCES)}")
    line = QWEN_OPTION_STYLES[option_style]
    samples = []
    for record in _as_records(records):
        options = "\n".join(line.format(letter=letter, text=text) for letter, text in zip(LETTERS, record.options))
        samples.append({
            "video": _qwen_video(record, video_source),
            "conversations": [
                {"from": "human", "value": f"<video>\n{record.question}\nOptions:\n{options}"},
                {"from": "gpt", "value": record.answer},
            ],
        })
    text = _dumps(samples, indent=4) + "\n"
    return _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _qwen_option(line: str, letter: str, where: str) -> str:
    for prefix in (f"{letter}. ", f"{letter} "):
        if line.startswith(prefix):
            return line[len(prefix):]
    if line in (letter, f"{letter}."):
        return ""
    raise ValueError(f"{where}: option line {line!r} should start with '{letter} ' or '{letter}. '")


def _qwen_items(data, path) -> list[dict]:
    if not isinstance(data, list):
        raise ValueError(f"{path} is not a Qwen-VL fine-tune export: expected a JSON list of samples, "
                         f"got a JSON {type(data).__name__}")
    expected = ("a sample {'video': ..., 'conversations': [{'from': 'human', 'value': '<video>\\n...'}, "
                "{'from': 'gpt', 'value': letter}]}")
    items = []
    for n, sample in enumerate(data):
        where = f"{path}: sample {n}"
        try:
            video = sample["video"]
            human, gpt = sample["conversations"][:2]
            prompt, reply = human["value"], gpt["value"]
            ok = human["from"] == "human" and gpt["from"] == "gpt" and isinstance(prompt, str)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{where} is not {expected}")
        if not prompt.startswith("<video>\n"):
            raise ValueError(f"{where}: the human turn must start with '<video>\\n', got {prompt[:40]!r}")
        question, sep, option_block = prompt[len("<video>\n"):].rpartition("\nOptions:\n")
        lines = option_block.split("\n")
        if not sep or len(lines) != 4:
            raise ValueError(f"{where}: the human turn must end with '\\nOptions:\\n' and four option lines A–D")
        items.append({
            "video": video,
            "question": question,
            "options": [_qwen_option(line, letter, where) for line, letter in zip(lines, LETTERS)],
            "answer": _letter(reply, where),
        })
    return items


def read_qwen_json(path) -> list[dict]:
    """Items of a Qwen-VL fine-tune file: ``video``, ``question``, ``options``, ``answer``."""
    return _qwen_items(_load_json(path), path)


def write_jsonl(records: Iterable[QARecord], path) -> Path:
    """One ``QARecord.to_json()`` per line (keys sorted; an infinite margin is ``null``).

    Streams: ``records`` may be a generator. A record that cannot be written (a NaN or an
    unserialisable object in its quantities) raises ``ValueError`` and leaves no file.
    """
    def write(handle: BinaryIO) -> None:
        for index, record in enumerate(records):
            if not isinstance(record, QARecord):
                raise TypeError(f"record {index} is a {type(record).__name__}, not a QARecord")
            try:
                line = _dumps(record.to_json(), sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{_describe(index, record)} cannot be written as JSON: {exc} "
                                 "(quantities must be finite numbers, strings and lists)") from exc
            handle.write(line.encode("utf-8") + b"\n")

    return _atomic_write(path, write)


def read_jsonl(path) -> list[QARecord]:
    """The records of a ``jsonl`` export, exactly as written (quantities come back as lists)."""
    path = Path(path)
    expected = f"one QARecord per line with the fields {', '.join(f.name for f in fields(QARecord))}"
    records = []
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
                data = json.loads(line) if line.strip() else None
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{where} is not UTF-8 JSON ({exc}); expected {expected}") from None
            if data is None:
                continue
            if not isinstance(data, dict):
                raise ValueError(f"{where} holds a JSON {type(data).__name__}; expected {expected}")
            try:
                records.append(QARecord.from_json(data))
            except (TypeError, KeyError, ValueError) as exc:
                raise ValueError(f"{where} is not a QARecord ({exc}); expected {expected}") from None
    return records


@dataclass(frozen=True)
class ExportFormat:
    """One export format: name, usual suffix, writer ``write(records, path, **options)`` and reader."""

    name: str
    suffix: str
    write: Callable[..., Path]
    read: Callable[..., list]


FORMATS = {
    fmt.name: fmt
    for fmt in (
        ExportFormat("dsr-json", ".json", write_dsr_json, read_dsr_json),
        ExportFormat("parquet", ".parquet", write_parquet, read_parquet),
        ExportFormat("qwen", ".json", write_qwen_json, read_qwen_json),
        ExportFormat("jsonl", ".jsonl", write_jsonl, read_jsonl),
    )
}


def _format(fmt: str) -> ExportFormat:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def export(records: Iterable[QARecord], path, fmt: str, **options) -> Path:
    """Write ``records`` to ``path`` in format ``fmt`` (a key of ``FORMATS``); returns the path."""
    return _format(fmt).write(records, path, **options)


def read_records(path, fmt: str | None = None) -> list:
    """Read an export back: QARecords for ``jsonl``, item dicts for the other formats.

    Without ``fmt`` the format follows the suffix (.jsonl, .parquet, .json); a ``.json`` file
    is a DSR JSON export when it holds an object and a Qwen-VL export when it holds a list.
    """
    path = Path(path)
    if fmt is not None:
        return _format(fmt).read(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".parquet"):
        return FORMATS[suffix[1:]].read(path)
    if suffix == ".json":
        data = _load_json(path)
        if isinstance(data, dict):
            return _dsr_items(data, path)
        if isinstance(data, list):
            return _qwen_items(data, path)
        raise ValueError(f"{path} holds a JSON {type(data).__name__}; expected an object (DSR JSON) "
                         "or a list (Qwen-VL fine-tune JSON)")
    raise ValueError(f"cannot tell the export format of {path} from its suffix {path.suffix!r}; expected "
                     f".json, .jsonl or .parquet, or pass fmt= one of {', '.join(FORMATS)}")
