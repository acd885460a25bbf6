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
    """What the LLM step made: questions, rejected replies and failures by reason."""

    generated: int = 0
    rejected_replies: int = 0
    failures: Counter = field(default_factory=Counter)
    rejection_reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"generated": self.generated, "rejected_replies": self.rejected_replies,
                "failures": dict(self.failures), "rejection_reasons": list(self.rejection_reasons)}


def _draw_interval(scene: Scene, rng: np.random.Generator, min_frames: int) -> tuple[int, int, np.ndarray] | None:
    """(first, last, objects visible in every frame of it), or None when no interval qualifies."""
    candidates = []
    for first in range(scene.n_frames - min_frames + 1):
        last = first + min_frames - 1
        together = scene.visible[:, first:last + 1].all(axis=1)
        if together.any():
            candidates.append(first)
    if not candidates:
        return None
    first = int(rng.choice(candidates))
    last = first + min_frames - 1
    while last + 1 < scene.n_frames and scene.visible[:, first:last + 2].all(axis=1).any() and rng.random() < 0.8:
        last += 1
    objects = np.flatnonzero(scene.visible[:, first:last + 1].all(axis=1))
    return first, last, objects


def compile_llm_questions(scene: Scene, llm: LLMConfig, n: int, seed: int = 0, video_id: str | None = None,
                          min_frames: int = 5, max_targets: int = 3) -> tuple[list[QARecord], LLMReport]:
    """Ask the model for ``n`` non-template questions about ``scene``."""
    video_id = video_id or default_video_id(scene)
    rng = scene_rng(seed, video_id + ":llm")
    digest = scene_digest(scene)
    report = LLMReport()
    records: list[QARecord] = []
    for _ in range(n):
        drawn = _draw_interval(scene, rng, min_frames)
        if drawn is None:
            report.failures["no_visible_interval"] += 1
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
            report.failures["llm_error"] += 1
            report.rejected_replies += len(exc.rejections)
            report.rejection_reasons.extend(r.reason for r in exc.rejections)
            continue
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
