"""Batch manifests: which videos to process, one entry per line (CSV with a header, or JSONL).

    video,start,end,objects,id                 {"video": "clips/a.mp4", "start": 2.0, "objects": "person. dog."}
    clips/a.mp4,2.0,8.5,person. dog.,kitchen   {"video": "/data/b.mkv", "id": "b-take2"}
    /data/b.mkv,,,,

``video`` is required; relative paths are resolved from the manifest's folder. ``start`` /
``end`` (seconds) bound the processed interval, ``objects`` is the prompt of prompted trackers
(sam2), ``id`` names the entry's outputs (``stores/ID.zarr``, ``qa/ID.jsonl``, ``state/ID.json``).
Without an ``id`` the entry gets ``STEM-<8 hex>``: the file stem plus a hash of the path as
written and the interval, so it is stable across runs and machines and two ``video.mp4`` in
different folders (or two intervals of one video) never share a name. Problems with the manifest
itself (syntax, unknown or missing columns, bad numbers, duplicate ids) are one
:class:`ManifestError` naming the file and line before anything runs; a video that does not exist
is a failure of that entry only, recorded with its reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from recon4d.errors import Recon4dError

COLUMNS = ("video", "start", "end", "objects", "id")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_BYTES = 512 * 1024 * 1024


class ManifestError(Recon4dError):
    """The manifest cannot be read: its syntax, a column, a value or an id is wrong."""


@dataclass(frozen=True)
class ManifestEntry:
    """One video of a batch."""

    id: str
    """Unique, file-name safe name of the entry's outputs."""
    video: str
    """Path of the video, resolved from the manifest's folder."""
    video_as_written: str
    """The path exactly as the manifest gives it (the default id hashes this)."""
    start_s: float | None = None
    """Start of the processed interval in seconds (None: the video's start)."""
    end_s: float | None = None
    """End of the processed interval in seconds (None: the video's end)."""
    objects: str | None = None
    """Categories for prompted trackers ("person. dog."), None for the batch default."""
    line: int = 0
    """Line of the manifest the entry comes from (1-based; the CSV header is line 1)."""

    def to_json(self) -> dict:
        return {"id": self.id, "video": self.video, "start": self.start_s, "end": self.end_s,
                "objects": self.objects, "line": self.line}


def default_id(video_as_written: str, start_s: float | None, end_s: float | None) -> str:
    """``STEM-<8 hex>`` with the hex from the path as written and the interval."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(video_as_written).stem).strip("._-") or "video"
    key = f"{video_as_written}|{start_s!r}|{end_s!r}"
    return f"{stem[:100]}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:8]}"


def _where(path: Path, line: int) -> str:
    return f"{path}, line {line}"


def _number(value, name: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ManifestError(f"{where}: {name} must be a number of seconds, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: {name} must be a number of seconds, got {value!r}.") from None
    if not math.isfinite(number) or number < 0:
        raise ManifestError(f"{where}: {name} must be a finite number of seconds >= 0, got {value!r}.")
    return number


def _text(value, name: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ManifestError(f"{where}: {name} must be a string, got {value!r}.")
    return value.strip() or None


def _entry(row: dict, manifest: Path, line: int) -> ManifestEntry:
    where = _where(manifest, line)
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ManifestError(f"{where}: unknown column(s) {unknown}; a manifest has the columns "
                            f"{', '.join(COLUMNS)} (only video is required).")
    video = _text(row.get("video"), "video", where)
    if not video:
        raise ManifestError(f"{where}: the video path is empty; every entry needs one.")
    start_s, end_s = _number(row.get("start"), "start", where), _number(row.get("end"), "end", where)
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ManifestError(f"{where}: end ({end_s}) must come after start ({start_s}).")
    given_id = _text(row.get("id"), "id", where)
    if given_id is not None and not _ID.match(given_id):
        raise ManifestError(f"{where}: id {given_id!r} cannot name files; use 1-128 letters, digits, '.', '_' or "
                            "'-', starting with a letter or digit.")
    resolved = Path(video).expanduser()
    if not resolved.is_absolute():
        resolved = manifest.absolute().parent / resolved
    return ManifestEntry(id=given_id or default_id(video, start_s, end_s), video=str(resolved),
                         video_as_written=video, start_s=start_s, end_s=end_s,
                         objects=_text(row.get("objects"), "objects", where), line=line)


def _csv_rows(text: str, manifest: Path):
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ManifestError(f"{_where(manifest, 1)}: not valid CSV ({exc}).") from None
    if header is None or not [h for h in header if h.strip()]:
        raise ManifestError(f"{manifest} is empty; a CSV manifest starts with a header line such as "
                            "'video,start,end,objects,id'.")
    header = [h.strip().lower() for h in header]
    if "video" not in header:
        raise ManifestError(f"{_where(manifest, 1)}: the header {header} has no 'video' column; a CSV manifest "
                            "starts with a header line such as 'video,start,end,objects,id'.")
    if len(set(header)) != len(header):
        raise ManifestError(f"{_where(manifest, 1)}: the header {header} repeats a column.")
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                raise ManifestError(f"{_where(manifest, line)}: {len(values)} values but the header has "
                                    f"{len(header)} columns ({', '.join(header)}); quote values that contain commas.")
            yield line, dict(zip(header, values))
    except csv.Error as exc:
        raise ManifestError(f"{_where(manifest, reader.line_num)}: not valid CSV ({exc}).") from None


def _jsonl_rows(text: str, manifest: Path):
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as exc:
            raise ManifestError(f"{_where(manifest, line)}: not valid JSON ({exc}); a JSONL manifest has one "
                                'object per line, e.g. {"video": "a.mp4", "start": 2.0}.') from None
        if not isinstance(row, dict):
            raise ManifestError(f"{_where(manifest, line)}: expected a JSON object such as "
                                f'{{"video": "a.mp4"}}, got {type(row).__name__}.')
        yield line, row


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """The entries of a CSV (``.csv``) or JSONL (``.jsonl``/``.ndjson``) manifest, in order.

    Raises ManifestError naming the file (and line) for anything wrong with the manifest; an
    entry whose video is missing is still returned (it fails on its own when processed).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ManifestError(f"{path}: a manifest is a .csv file (with a header line) or a .jsonl file (one JSON "
                            f"object per line); cannot tell the format of {path.name!r}.")
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ManifestError(f"{path} {what}; pass the manifest file (CSV or JSONL) listing the videos.")
    if path.stat().st_size > _MAX_BYTES:
        raise ManifestError(f"{path} is larger than {_MAX_BYTES >> 20} MiB; split it into several manifests.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is not UTF-8 text ({exc}); save the manifest as UTF-8.") from None
    except OSError as exc:
        raise ManifestError(f"{path} cannot be read ({exc.strerror}).") from None
    rows = _csv_rows(text, path) if suffix == ".csv" else _jsonl_rows(text, path)
    entries: list[ManifestEntry] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        entry = _entry(row, path, line)
        if entry.id.lower() in seen:
            raise ManifestError(f"{_where(path, line)}: id {entry.id!r} is already used on line {seen[entry.id.lower()]}"
                                " (ids name output files and must be unique, case-insensitively); give one of them "
                                "another id, or drop the repeated line.")
        seen[entry.id.lower()] = line
        entries.append(entry)
    if not entries:
        raise ManifestError(f"{path} lists no videos; add one line per video.")
    return entries
