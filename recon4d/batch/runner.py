"""`recon4d batch`: many videos → one store each (+ questions), exactly once, on a pool or on Ray.

    manifest --read--> entries --classify (state records)--> jobs --engine (local pool | Ray actors)-->
        state/ID.json done|failed --> merged export OUTDIR/qa.* --> summary.json

The driver holds an exclusive lock on the batch folder for the whole run, so two drivers never
share one. Before any worker starts it validates everything it can (manifest, settings,
backends, output folder, a ``--resume`` against the saved settings) and removes temporaries a
killed earlier run left. Then each entry is classified by its state record:

- ``done`` with outputs matching their checksums → skipped (counted as such);
- ``failed`` after ``1 + retries`` attempts → not tried again, reported failed with its reason;
- ``failed`` with attempts left, or ``running`` (its driver died) → tried again (a ``running``
  attempt is re-run under the same number: an interrupted run is not the video's fault);
- no record → first attempt.

Within a run, an attempt that failed on a crash (the worker died, an internal error) is given
again while attempts remain; an input error (an unreadable video, too few frames) is not,
since it would fail the same way — ``--resume`` gives those another try. The merged export is
rebuilt from the per-video files in manifest order, so no question appears twice.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from recon4d.batch.manifest import ManifestEntry, read_manifest
from recon4d.batch.state import BatchError, BatchSettings, Layout, VideoState, finished, read_state, write_state
from recon4d.batch.worker import Job, died


@dataclass(frozen=True)
class VideoOutcome:
    """How one manifest entry ended in this run."""

    id: str
    video: str
    status: str
    """done (this run), skipped (done before), failed."""
    attempts: int
    reason: str | None = None
    store: str | None = None
    qa_count: int | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "video": self.video, "status": self.status, "attempts": self.attempts,
                "reason": self.reason, "store": self.store, "qa_count": self.qa_count}


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run did; also written to ``OUTDIR/summary.json``."""

    outdir: str
    engine: str
    workers: int
    seconds: float
    videos: tuple[VideoOutcome, ...]
    merged_qa: str | None = None
    questions: int = 0

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.videos)

    @property
    def videos_per_min(self) -> float:
        done = self.count("done")
        return 60.0 * done / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {"outdir": self.outdir, "engine": self.engine, "workers": self.workers,
                "seconds": round(self.seconds, 3), "total": len(self.videos), "done": self.count("done"),
                "skipped": self.count("skipped"), "failed": self.count("failed"),
                "videos_per_min": round(self.videos_per_min, 3), "merged_qa": self.merged_qa,
                "questions": self.questions, "videos": [v.to_json() for v in self.videos]}


@dataclass
class _Scheduler:
    """Hands jobs to the engine and records outcomes; retries crashes while attempts remain."""

    layout: Layout
    settings: BatchSettings
    queue: deque
    on_final: Callable[[VideoState], None]
    outcomes: dict = field(default_factory=dict)

    def next_job(self) -> Job | None:
        return self.queue.popleft() if self.queue else None

    def finished(self, job: Job, state: VideoState) -> None:
        if state.status == "failed" and state.retryable and job.attempt < self.settings.max_attempts:
            self.queue.append(Job(job.entry, job.attempt + 1, (*job.history, state.outcome())))
            return
        self.outcomes[job.entry.id] = state
        self.on_final(state)

    def died(self, job: Job, host: str | None, why: str) -> None:
        self.finished(job, died(job, host, why, self.layout))


def _classify(entries, layout: Layout, settings: BatchSettings):
    """(jobs to run, entries already finished, entries out of attempts with their last state)."""
    jobs, skipped, exhausted = [], [], []
    with_qa = settings.qa is not None
    for entry in entries:
        state = read_state(layout, entry.id)
        if state is None:
            jobs.append(Job(entry, 1))
        elif state.status == "done" and finished(layout, state, with_qa):
            skipped.append((entry, state))
        elif state.status == "running":
            jobs.append(Job(entry, state.attempt, state.history))
        elif state.status == "failed" and state.attempt >= settings.max_attempts:
            exhausted.append((entry, state))
        else:  # failed with attempts left, or done but its outputs changed since
            jobs.append(Job(entry, state.attempt + 1, (*state.history, state.outcome())))
    return jobs, skipped, exhausted


def _clean_outputs(entries, layout: Layout) -> None:
    """Remove temporaries of each entry's outputs (called while no worker runs)."""
    from recon4d.outputs import clean_stale

    for entry in entries:
        for path in (layout.store(entry.id), layout.qa(entry.id), layout.state(entry.id)):
            clean_stale(path)
    for path in (layout.settings, layout.summary, *(layout.merged(f) for f in ("jsonl", "dsr-json", "parquet", "qwen"))):
        clean_stale(path)


def _prepare_folder(outdir: Path, settings: BatchSettings, resume: bool) -> Layout:
    """Check the batch folder (new, empty, or an earlier run's with --resume) and save the settings."""
    from recon4d.outputs import check_output, write_json

    layout = Layout(outdir)
    check_output(outdir, "dir", overwrite=True, what="batch output folder")
    saved = None
    if layout.settings.exists():
        try:
            saved = json.loads(layout.settings.read_text())
        except (OSError, ValueError):
            raise BatchError(f"{layout.settings} is damaged; it records an earlier batch's settings. Remove it to "
                             "start the batch afresh in this folder (state records are kept).") from None
        if not resume:
            raise BatchError(f"{outdir} holds an earlier batch run; pass --resume to continue it (finished videos are "
                             "skipped, failed ones retried), or choose a new output folder.")
        changed = settings.differences(saved.get("settings", {}) if isinstance(saved, dict) else {})
        if changed:
            raise BatchError(f"--resume asks for other settings than the run in {outdir} ({', '.join(changed)} "
                             "differ, see batch.json); resume with the same options, or use a new output folder.")
    elif outdir.is_dir() and any(outdir.iterdir()):
        raise BatchError(f"{outdir} is not empty and is not a batch output folder (no batch.json); choose a new or "
                         "empty folder so nothing of yours is mixed with the batch's files.")
    for sub in ("stores", "qa", "state"):
        (outdir / sub).mkdir(parents=True, exist_ok=True)
    write_json(layout.settings, {"format": "recon4d.batch", "version": 1, "settings": settings.to_json()},
               what="batch settings")
    return layout


def check_settings(settings: BatchSettings) -> None:
    """Resolve the backends the batch will use and check their options (unknown names, bad -O
    values and missing weights fail now, before any worker starts)."""
    from recon4d.pipeline import plan_stages
    from recon4d.settings import weights_dir as default_weights_dir

    weights_dir = Path(settings.weights_dir) if settings.weights_dir else default_weights_dir()
    plan_stages(settings.process, weights_dir)


def uses_learned_backends(settings: BatchSettings) -> bool:
    """Whether any stage resolves to a backend that loads weights (so a GPU is worth asking for)."""
    from recon4d.backends import resolve_backend
    from recon4d.settings import weights_dir as default_weights_dir

    weights_dir = Path(settings.weights_dir) if settings.weights_dir else default_weights_dir()
    config = settings.process
    return any(resolve_backend(stage, name, weights_dir).spec.needs_weights
               for stage, name in (("track", config.tracker), ("recon", config.recon), ("orient", config.orient)))


def _merge_questions(entries: list[ManifestEntry], outcomes: dict, layout: Layout, fmt: str) -> tuple[str, int]:
    from recon4d.qa_compiler.export import export, read_jsonl

    records = []
    for entry in entries:
        state = outcomes.get(entry.id)
        if state is not None and state.status == "done" and state.qa:
            records.extend(read_jsonl(layout.root / state.qa))
    path = export(records, layout.merged(fmt), fmt)
    return layout.relative(path), len(records)


def run_batch(manifest: str | Path, outdir: str | Path, settings: BatchSettings, engine, resume: bool = False,
              progress: Callable[[int, int], None] | None = None,
              log: Callable[[str], None] | None = None) -> BatchSummary:
    """Process every entry of ``manifest`` into ``outdir`` with ``engine`` (Local/RayEngine).

    Raises ManifestError / BatchError / OutputError (one paragraph, before any worker starts)
    when the manifest, the settings or the folder are wrong; a video that fails is not an
    exception but an outcome in the summary.
    """
    from recon4d.outputs import output_lock, write_json

    started = time.perf_counter()
    log = log or (lambda message: None)
    entries = read_manifest(manifest)
    check_settings(settings)
    outdir = Path(outdir)
    with output_lock(outdir):
        layout = _prepare_folder(outdir, settings, resume)
        _clean_outputs(entries, layout)
        jobs, skipped, exhausted = _classify(entries, layout, settings)
        total, done_count = len(entries), len(skipped) + len(exhausted)
        if progress:
            progress(done_count, total)
        if skipped or exhausted:
            log(f"resume: {len(skipped)} video(s) already done, {len(exhausted)} out of attempts, {len(jobs)} to run")

        def on_final(state: VideoState) -> None:
            nonlocal done_count
            done_count += 1
            if state.status == "failed":
                log(f"failed: {state.id} ({state.video}) after {state.attempt} attempt(s): {state.reason}")
            if progress:
                progress(done_count, total)

        scheduler = _Scheduler(layout, settings, deque(jobs), on_final)
        if jobs:
            engine.run(scheduler, settings, layout.root)
        outcomes = dict(scheduler.outcomes)
        videos = []
        for entry in entries:
            previous = next((s for e, s in skipped if e.id == entry.id), None)
            out_of_attempts = next((s for e, s in exhausted if e.id == entry.id), None)
            state = outcomes.get(entry.id) or previous or out_of_attempts
            if state is None:  # the engine stopped early; the record says where it got
                state = read_state(layout, entry.id) or VideoState(entry.id, entry.video, "failed", 0,
                                                                  reason="never run")
            status = "skipped" if previous is not None else ("done" if state.status == "done" else "failed")
            reason = state.reason
            if out_of_attempts is not None:
                reason = f"not tried again: {state.attempt} attempt(s) used (--retries {settings.retries}); last: {reason}"
            outcomes[entry.id] = state
            videos.append(VideoOutcome(entry.id, entry.video, status, state.attempt, reason if status == "failed" else None,
                                       state.store, state.qa_count))
        merged, questions = (None, 0)
        if settings.qa is not None:
            merged, questions = _merge_questions(entries, outcomes, layout, settings.qa_format)
        _clean_outputs(entries, layout)
        summary = BatchSummary(outdir=str(outdir), engine=engine.name, workers=getattr(engine, "workers", 0) or 0,
                               seconds=time.perf_counter() - started, videos=tuple(videos), merged_qa=merged,
                               questions=questions)
        write_json(layout.summary, summary.to_json(), what="batch summary")
    return summary


__all__ = ["BatchSummary", "VideoOutcome", "run_batch", "check_settings", "uses_learned_backends", "write_state"]
