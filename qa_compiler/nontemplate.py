"""Non-template questions: an LLM writes them from observer-frame trajectories (DESIGN §6).

For each question an interval is drawn where at least one object is continuously visible;
up to ``max_targets`` such objects are described by their initial boxes, their centres are
expressed in the camera's FLU frame (absolute: frozen at the interval start; relative: per
frame) and sent to the model through :mod:`recon4d.qa_compiler.llm`. Every rejected reply
and every failed request is counted, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from recon4d.qa_compiler.compiler import default_video_id, scene_digest
from recon4d.qa_compiler.llm import LLMConfig, LLMError, generate_llm_question
from recon4d.qa_compiler.observers import CAMERA, entity_positions, observer_frame, to_observer
from recon4d.qa_compiler.questions import denote
from recon4d.qa_compiler.records import QARecord
from recon4d.qa_compiler.sampler import scene_rng
from recon4d.types import Scene


@dataclass
class LLMReport:
    """What the LLM step made: questions, rejected replies and failures by kind and reason."""

    generated: int = 0
    """Questions accepted."""
    rejected_replies: int = 0
    """Replies rejected (and re-asked) because they broke the format or the rules."""
    failures: Counter = field(default_factory=Counter)
    """Questions not made, by kind (timeout, unreachable, http_401, rejected, no_visible_interval...)."""
    rejection_reasons: list[str] = field(default_factory=list)
    """Why each rejected reply was rejected."""
    failure_reasons: Counter = field(default_factory=Counter)
    """Each distinct failure message (one paragraph) and how often it happened."""

    def fail(self, kind: str, reason: str) -> None:
        self.failures[kind] += 1
        self.failure_reasons[reason] += 1

    def merge(self, other: "LLMReport") -> None:
        self.generated += other.generated
        self.rejected_replies += other.rejected_replies
        self.failures.update(other.failures)
        self.rejection_reasons.extend(other.rejection_reasons)
        self.failure_reasons.update(other.failure_reasons)

    def to_json(self) -> dict:
        return {"generated": self.generated, "rejected_replies": self.rejected_replies,
                "failures": dict(self.failures), "rejection_reasons": list(self.rejection_reasons),
                "failure_reasons": [{"reason": r, "count": n} for r, n in self.failure_reasons.items()]}


def usable(scene: Scene) -> np.ndarray:
    """(K, T) bool: frames where an object is visible *and* has a finite 3D centre — a store
    written before visibility implied a centre can mark frames visible whose centre is NaN."""
    return scene.visible & np.isfinite(scene.center_world).all(axis=-1)


def _draw_interval(scene: Scene, rng: np.random.Generator, min_frames: int) -> tuple[int, int, np.ndarray] | None:
    """(first, last, objects usable in every frame of it), or None when no interval qualifies."""
    present = usable(scene)
    candidates = []
    for first in range(scene.n_frames - min_frames + 1):
        last = first + min_frames - 1
        together = present[:, first:last + 1].all(axis=1)
        if together.any():
            candidates.append(first)
    if not candidates:
        return None
    first = int(rng.choice(candidates))
    last = first + min_frames - 1
    while last + 1 < scene.n_frames and present[:, first:last + 2].all(axis=1).any() and rng.random() < 0.8:
        last += 1
    objects = np.flatnonzero(present[:, first:last + 1].all(axis=1))
    return first, last, objects


_GIVE_UP_AFTER = 3
"""Consecutive transport failures (timeout, unreachable...) after which a scene's remaining
questions are not asked: a dead server would otherwise cost a full timeout per question."""
_TRANSPORT = ("timeout", "unreachable", "connection")


def compile_llm_questions(scene: Scene, llm: LLMConfig, n: int, seed: int = 0, video_id: str | None = None,
                          min_frames: int = 5, max_targets: int = 3) -> tuple[list[QARecord], LLMReport]:
    """Ask the model for ``n`` non-template questions about ``scene``.

    Never raises for the model's failures: each is counted by kind with its reason in the
    report (after ``_GIVE_UP_AFTER`` consecutive transport failures the rest are counted as
    ``not_asked``)."""
    video_id = video_id or default_video_id(scene)
    rng = scene_rng(seed, video_id + ":llm")
    digest = scene_digest(scene)
    report = LLMReport()
    records: list[QARecord] = []
    transport_failures = 0
    for index in range(n):
        if transport_failures >= _GIVE_UP_AFTER:
            report.fail("not_asked", f"{n - index} question(s) of {video_id} not asked after {transport_failures} "
                                     "consecutive failures to reach the model")
            report.failures["not_asked"] += n - index - 1
            break
        drawn = _draw_interval(scene, rng, min_frames)
        if drawn is None:
            report.fail("no_visible_interval", f"{video_id}: no interval of {min_frames} frames where an object is "
                                               "visible with a 3D centre in every frame")
            continue
        first, last, objects = drawn
        targets = np.sort(rng.choice(objects, size=min(max_targets, len(objects)), replace=False))
        frames = np.arange(first, last + 1)
        absolute = bool(rng.random() < 0.5)
        frozen_at = first if absolute else None
        pose = observer_frame(scene, CAMERA, frames, frozen_at)
        trajectories = to_observer(entity_positions(scene, targets, frames), pose)
        names = [denote(scene, int(t), first, "initial") for t in targets]
        times = scene.timestamps_s[frames]
        observer_desc = f"camera at {times[0]:.1f}s" if absolute else "camera"
        try:
            question = generate_llm_question(llm, trajectories, names, observer_desc, times)
        except LLMError as exc:
            report.fail(exc.kind, str(exc))
            report.rejected_replies += len(exc.rejections)
            report.rejection_reasons.extend(r.reason for r in exc.rejections)
            transport_failures = transport_failures + 1 if exc.kind in _TRANSPORT else 0
            continue
        transport_failures = 0
        report.rejected_replies += len(question.rejections)
        report.rejection_reasons.extend(r.reason for r in question.rejections)
        records.append(question.to_record(
            video_id, viewpoint="absolute" if absolute else "relative", observer_desc=observer_desc,
            interval_s=(float(times[0]), float(times[-1])), observer="camera",
            observer_time_s=float(times[0]) if absolute else None, frame_range=(first, last),
            visible_range=(0, scene.n_frames - 1), targets=tuple(str(int(scene.ids[t])) for t in targets),
            quantities={"times_s": times.tolist(), "trajectories_flu": trajectories.tolist(), "model": llm.model},
            distractors="llm", seed=int(seed), store_sha256=digest,
            video_path=scene.source.path if scene.source else "",
        ))
        report.generated += 1
    return records, report
