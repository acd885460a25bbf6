"""What a batch knows on disk: its settings, its output layout, and one state record per video.

    OUTDIR/
      batch.json          BatchSettings of the run (a --resume must match them)
      stores/ID.zarr      one scene store per manifest entry
      qa/ID.jsonl         its questions (with --qa-per-video N)
      state/ID.json       VideoState: running | done (+ store and QA sha256) | failed (+ reason, attempts)
      qa.jsonl            the merged export of every finished video's questions (manifest order)
      summary.json        done / skipped / failed with reasons

Every file is written atomically (:mod:`recon4d.outputs`), so a state record is either the old
one or the new one. A video counts as finished only when its record says ``done`` *and* the
store (and QA file) on disk still have the checksums the record names, so a store lost or
altered after the fact is processed again instead of trusted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from recon4d.errors import Recon4dError
from recon4d.pipeline import ProcessConfig

STATUSES = ("running", "done", "failed")


class BatchError(Recon4dError):
    """The batch cannot run as asked (output folder, resume, engine or settings)."""


@dataclass(frozen=True)
class BatchSettings:
    """Everything that decides what a batch writes (the engine and worker count do not)."""

    process: ProcessConfig = field(default_factory=ProcessConfig)
    """Pipeline settings shared by every video; each entry sets start, end and objects."""
    qa: object | None = None
    """``recon4d.qa_compiler.compiler.CompileConfig`` for questions per video, or None for none."""
    qa_format: str = "jsonl"
    """Format of the merged export ``OUTDIR/qa.<ext>`` (dsr-json, parquet, qwen, jsonl)."""
    retries: int = 2
    """Attempts after the first a failed video gets (within the run for crashes, on --resume for any)."""
    weights_dir: str | None = None
    """Weights root for learned backends (None: $RECON4D_HOME/weights)."""

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise BatchError(f"--retries must be >= 0, got {self.retries}.")

    @property
    def max_attempts(self) -> int:
        return 1 + self.retries

    def entry_config(self, entry) -> ProcessConfig:
        """The pipeline settings of one manifest entry."""
        return replace(self.process, start_s=entry.start_s, end_s=entry.end_s,
                       objects=entry.objects if entry.objects is not None else self.process.objects)

    def to_json(self) -> dict:
        return {"process": self.process.to_json(), "qa": self.qa.to_json() if self.qa is not None else None,
                "qa_format": self.qa_format, "retries": self.retries, "weights_dir": self.weights_dir}

    def differences(self, saved: dict) -> list[str]:
        """Settings that differ from ``saved`` (a ``to_json()``), retries excepted."""
        now = json.loads(json.dumps(self.to_json()))
        return sorted(key for key in ("process", "qa", "qa_format", "weights_dir") if now.get(key) != saved.get(key))


@dataclass(frozen=True)
class Layout:
    """Paths of a batch output folder."""

    root: Path

    def store(self, video_id: str) -> Path:
        return self.root / "stores" / f"{video_id}.zarr"

    def qa(self, video_id: str) -> Path:
        return self.root / "qa" / f"{video_id}.jsonl"

    def state(self, video_id: str) -> Path:
        return self.root / "state" / f"{video_id}.json"

    @property
    def settings(self) -> Path:
        return self.root / "batch.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def merged(self, fmt: str) -> Path:
        return self.root / f"qa{_SUFFIX[fmt]}"

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()


_SUFFIX = {"jsonl": ".jsonl", "dsr-json": ".json", "parquet": ".parquet", "qwen": ".qwen.json"}


@dataclass(frozen=True)
class VideoState:
    """The state record of one manifest entry (``state/ID.json``)."""

    id: str
    """The entry's id."""
    video: str
    """Its video path."""
    status: str
    """running, done or failed."""
    attempt: int
    """Number of the attempt this record describes (1 = first)."""
    store: str | None = None
    """The store, relative to the batch folder (done)."""
    store_sha256: str | None = None
    """The store's content checksum (``recon4d.store.store_checksum``) when done."""
    qa: str | None = None
    """The questions file, relative to the batch folder (done, with QA)."""
    qa_sha256: str | None = None
    """sha256 of the questions file's bytes."""
    qa_count: int | None = None
    """Number of questions in it."""
    reason: str | None = None
    """Why it failed (one paragraph)."""
    retryable: bool = False
    """A crash or internal error (worth another attempt in the same run); input errors are not."""
    seconds: float | None = None
    """Time the attempt took."""
    cpu_seconds: float | None = None
    """CPU time the worker process spent on the attempt (all its threads; the worker's start-up not included)."""
    host: str | None = None
    """Machine and process of the attempt ("host:pid")."""
    detail: str | None = None
    """Traceback of an internal error, for a bug report (never printed)."""
    history: tuple = ()
    """Earlier attempts' outcomes ({attempt, status, reason})."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        object.__setattr__(self, "history", tuple(dict(h) for h in self.history))

    def to_json(self) -> dict:
        data = asdict(self)
        data["history"] = [dict(h) for h in self.history]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "VideoState":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def outcome(self) -> dict:
        return {"attempt": self.attempt, "status": self.status, "reason": self.reason}


def write_state(layout: Layout, state: VideoState) -> None:
    from recon4d.outputs import write_json

    write_json(layout.state(state.id), state.to_json(), what="batch state record")


def read_state(layout: Layout, video_id: str) -> VideoState | None:
    """The entry's record, or None when it has none (or an unreadable one: then it is redone)."""
    path = layout.state(video_id)
    try:
        return VideoState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return None


def finished(layout: Layout, state: VideoState | None, with_qa: bool) -> bool:
    """Whether ``state`` is done and its outputs on disk still match the checksums it records."""
    from recon4d.store import file_sha256, store_checksum

    if state is None or state.status != "done" or not state.store or not state.store_sha256:
        return False
    try:
        if store_checksum(layout.root / state.store) != state.store_sha256:
            return False
        if with_qa:
            return bool(state.qa) and file_sha256(layout.root / state.qa) == state.qa_sha256
    except (Recon4dError, OSError):
        return False
    return True
