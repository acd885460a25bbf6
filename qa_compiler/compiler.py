"""Compile scenes into DSR multiple-choice records: sample, answer, filter, add distractors.

    scene --quality gate--> SceneIndex --> plan_question --QuestionType.compute--> Answer
          --(max_phases, min_margin, duplicates)--> make_distractors --> QARecord

:func:`compile_scene` makes up to ``n_per_scene`` questions from one scene within a bounded
number of attempts and returns them with a :class:`CompileReport` that counts every failed
attempt by reason (``sampler.REASONS``): attempts = generated + failures, always.
Generation is deterministic for (seed, video_id) and independent of the order of scenes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import multiprocessing
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from recon4d.qa_compiler.distractors import MODES, DistractorError, make_distractors, place_answer
from recon4d.qa_compiler.observers import CAMERA, entity_label
from recon4d.qa_compiler.quality_gate import GateReport, GateResult, apply_quality_gate, noisy_scenes
from recon4d.qa_compiler.questions import Answer, QuestionPlan, Skip, get_type, registered
from recon4d.qa_compiler.records import QUESTION_TYPES, QARecord
from recon4d.qa_compiler.rules import get_profile, load_kernels
from recon4d.quality import EXACT_CAMERA_INLIERS, MIN_POSE_INLIERS
from recon4d.qa_compiler.sampler import (
    REASONS,
    SamplingConfig,
    SceneIndex,
    choose_type,
    plan_question,
    scene_rng,
    stable_hash,
)
from recon4d.types import Scene
from recon4d.workers import usable_cpus


@dataclass(frozen=True)
class CompileConfig:
    """Settings of the QA compiler (``recon4d qa``); defaults follow the DSR generator."""

    n_per_scene: int = 10
    """Questions wanted per scene (the reference's ``--qa_num``)."""
    types: tuple[str, ...] = QUESTION_TYPES
    """Question types to draw from (any subset of the registered types)."""
    profile: str = "dsr"
    """Answer rule profile: "dsr" (reference-exact) or "paper" (Table 8 as written)."""
    distractors: str = "mixed"
    """Distractor mode: "random" (reference), "hard" (perturbed answers) or "mixed" (default: least guessable)."""
    min_margin: float = 0.0
    """Drop questions whose answer margin (relative distance to a rule threshold) is below this."""
    seed: int = 0
    """Seed of every random choice; with the video id it fixes a scene's questions."""
    max_phases: int = 15
    """Drop answers with more phases than this (the reference's ``len_answer > 15``)."""
    type_weights: tuple[tuple[str, float], ...] | None = None
    """Target type distribution (name → weight; a mapping is accepted); None = uniform."""
    min_interval_s: float = 1.0
    """Shortest question interval in seconds (dir_pred: shortest shown part)."""
    min_interval_frames: int = 5
    """Fewest frames in a question interval (reference: 5)."""
    pred_horizon_s: float = 1.0
    """Direction prediction: hidden time after the last shown frame."""
    camera_target_prob: float = 0.5
    """Chance that a target slot is the camera (reference: 0.5)."""
    min_orient_conf: float = 0.6
    """Orientation confidence an agent needs to be an observer or orientation target (reference: 0.6)."""
    camera_orientation: bool = False
    """Also ask the orientation of the camera (the reference does); by default only agents'."""
    name_observed: bool = True
    """Name objects only by boxes of frames where the tracker found them, not boxes it carried there
    (``sampler.SamplingConfig.name_observed``; scenes that do not record it are unaffected)."""
    steady_names: bool = True
    """With ``name_observed``: only by boxes that agree with their neighbours' (``SamplingConfig.steady_names``)."""
    trusted_names: bool = True
    """With ``name_observed``: only at frames the quality record passes, also with the gate off
    (``SamplingConfig.trusted_names``)."""
    attempts_per_question: int = 20
    """Attempts allowed per wanted question before a scene gives up."""
    distractor_tries: int = 64
    """Rounds allowed to find three distractors before the attempt fails."""
    min_quality: float | None = 0.5
    """Quality gate (:mod:`~recon4d.qa_compiler.quality_gate`): compile only from objects whose quality
    score is at least this, over frames their quality record and the camera's trust; None
    compiles from everything (``--no-quality-gate``). Scenes without a record are not gated."""
    max_depth_jump_m: float = 1.0
    """Quality gate: largest change of a target's distance from the camera between consecutive frames."""
    min_pose_inliers: float | None = MIN_POSE_INLIERS
    """Quality gate: camera frames whose pose fewer background tracks agree with are not used (None: off)."""
    stability_draws: int = 8
    """Quality gate: scenes with the measured trajectory noise added that each answer is checked on (0: off)."""
    min_stability: float = 0.75
    """Quality gate: share of those scenes that must give the same answer, else the question is dropped."""
    exact_camera_inliers: float | None = EXACT_CAMERA_INLIERS
    """Quality gate: a camera the record trusts is taken as exact in those scenes only when the median
    share of background tracks agreeing with its kept poses is at least this; else its answers must hold
    under its own jitter (``quality_gate.camera_taken_as_exact``; None: a trusted camera is always exact)."""
    heading_sigma_deg: float = 0.0
    """Stable answers: each run of an agent's frames (with a noisy record) also gets one heading
    error drawn with this standard deviation (degrees) in the noisy copies; 0: only the heading
    error its position noise implies. Off by default. (The weights-free pipeline's headings
    against the truth, matched agents of ``pipeline_fidelity.py`` seeds 101–150, frames the
    record passes: median error 6°, 75th percentile 19°, 90th 40°; a held heading of a slow
    agent can be off by 37° with its noise implying none.) With 15°, from the same estimates
    (``benchmarks/referent_diagnose.py --gated``; ``pipeline_fidelity.py`` agrees): 131–150
    gated 0.837 @ 15.4 % → 0.860 @ 15.1 % (right 103 → 104, wrong 20 → 17), compiled under the
    gate 0.906 → 0.917 (606); 101–130 gated 0.925 @ 13.2 % unchanged, compiled 0.913 → 0.920
    (926); held-out set unchanged; but ``benchmarks/recon_fidelity.py`` (ground-truth tracks,
    whose headings are right) gated 0.902 @ 53.2 % → 0.926 @ 45.8 %: 33 right answers lost for
    11 wrong, the kept share under half. An error that only slow or held headings get is the
    next thing to try."""
    along_ray_factor: float = 1.0
    """Stable answers: the noisy copies' error along each object's viewing ray is this many times
    its record's ``noise_m`` (across the ray: once). Off (1) by default. (Measured with
    ``benchmarks/placement_diagnose.py``, 101–130: the error along the ray is 2.4 × ``noise_m``,
    across 1.6 ×; a depth error along the ray also turns a walk's heading. From the same estimates,
    ``benchmarks/referent_diagnose.py --gated``, 1 → 2 / 2.4: 131–150 gated 0.837 @ 15.4 % →
    0.873 @ 14.8 % / 0.894 @ 14.1 %, compiled under the gate 0.906 → 0.916 / 0.921; 101–130 gated
    0.925 @ 13.2 % → 0.921 @ 12.6 % / 0.925 @ 12.2 % (right 147 → 139 / 136), compiled 0.913 →
    0.919 / 0.923; ``benchmarks/recon_fidelity.py`` gated 0.902 @ 53.2 % → 0.902 @ 49.8 % /
    0.907 @ 48.8 %: the ground-truth tracks' kept share falls under half.)"""
    unmeasured_depth_factor: float = 1.0
    """Stable answers: a run of an object whose depth the reconstructor held or bridged linearly
    (``quality_gate.depth_unmeasured``: its motion along the viewing ray was not measured) also
    drifts along the ray in the noisy copies, at a speed drawn with this × its speed across the ray
    as standard deviation. 0: off. (Static-camera scenes only in 101–150: 141's person 4, held at
    8.10 m while walking away at 1.4 m/s, headed 90° where the truth is 127°. Alone, from the
    same estimates, ``benchmarks/referent_diagnose.py --gated``: 131–150 gated 0.837 @ 15.4 % →
    0.857 @ 14.9 %, compiled under the gate 0.906 → 0.917; 101–130 and ``benchmarks/recon_fidelity.py``
    unchanged; factors 0.5 and 2 the same. With ``size_depth_factor`` it adds 0.924 → 0.927
    compiled on 131–150 and nothing else.)"""
    size_depth_factor: float = 0.5
    """Stable answers: each frame of an object in the noisy copies also moves along its viewing ray
    by a random multiple (one per copy, standard deviation this) of the depth change that would give
    it the height it has in its other frames (``quality_gate.size_depth_offset``: depth × box height
    / focal is the same for a rigid object; a box that shrinks while the depth stays put, or a depth
    that jumps while the box does not, says one of them is wrong). 0: off. (From the same estimates,
    ``referent_diagnose.py --gated``, with ``unmeasured_depth_factor`` 1, off → 0.5: 131–150 gated
    0.857 @ 14.9 % → 0.927 @ 13.6 % (right 102 → 101 of 119 → 109), compiled under the gate 0.917 →
    0.927 (606); 101–130 gated 0.925 @ 13.2 % → 0.935 @ 12.9 % (right 147 → 145), compiled 0.914 →
    0.938 (926); ``recon_fidelity.py`` (ground-truth tracks) 0.902 @ 53.2 % → 0.911 @ 51.2 %.
    1: 0.925 @ 13.4 %, 0.929; 0.942 @ 12.9 %, 0.930; ``recon_fidelity`` 0.923 @ 47.8 %. Without the
    running median over the heights (box jitter turned into depth jitter) 0.5 kept 44.4 % there;
    a tolerance of 0.1–0.2 in log height before any doubt lost the gain on 131–150 (0.878).)"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self.types))
        known = registered()
        unknown = [t for t in self.types if t not in known]
        if unknown or not self.types:
            raise ValueError(f"unknown or no question types {unknown or list(self.types)}; valid: {', '.join(known)}")
        get_profile(self.profile)
        if self.distractors not in MODES:
            raise ValueError(f"unknown distractor mode {self.distractors!r}; valid: {', '.join(MODES)}")
        if self.n_per_scene < 0 or self.max_phases < 1 or self.attempts_per_question < 1:
            raise ValueError("n_per_scene must be >= 0, max_phases and attempts_per_question >= 1")
        if self.type_weights is not None:
            weights = dict(self.type_weights)
            bad = {k: v for k, v in weights.items() if k not in self.types or not float(v) >= 0}
            if bad or not sum(weights.values()) > 0:
                raise ValueError(
                    f"type_weights must map some of {list(self.types)} to non-negative weights "
                    f"with a positive sum; got {weights}"
                )
            object.__setattr__(self, "type_weights", tuple(sorted((k, float(v)) for k, v in weights.items())))
        if self.min_quality is not None and not 0.0 <= self.min_quality <= 1.0:
            raise ValueError(f"min_quality must lie in [0, 1] (or be None for no gate), got {self.min_quality}")
        if self.min_pose_inliers is not None and not 0.0 <= self.min_pose_inliers <= 1.0:
            raise ValueError(f"min_pose_inliers must lie in [0, 1] (or be None), got {self.min_pose_inliers}")
        if self.exact_camera_inliers is not None and not 0.0 <= self.exact_camera_inliers <= 1.0:
            raise ValueError(f"exact_camera_inliers must lie in [0, 1] (or be None), got {self.exact_camera_inliers}")
        if not self.max_depth_jump_m > 0:
            raise ValueError(f"max_depth_jump_m must be positive, got {self.max_depth_jump_m}")
        if self.stability_draws < 0 or not 0.0 <= self.min_stability <= 1.0:
            raise ValueError(f"stability_draws must be >= 0 and min_stability lie in [0, 1], got "
                             f"{self.stability_draws} and {self.min_stability}")
        self.sampling  # validates the sampling fields

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(
            min_interval_frames=self.min_interval_frames,
            min_interval_s=self.min_interval_s,
            pred_horizon_s=self.pred_horizon_s,
            camera_target_prob=self.camera_target_prob,
            min_orient_conf=self.min_orient_conf,
            camera_orientation=self.camera_orientation,
            name_observed=self.name_observed,
            steady_names=self.steady_names,
            trusted_names=self.trusted_names,
        )

    def to_json(self) -> dict:
        data = asdict(self)
        data["types"] = list(self.types)
        data["type_weights"] = None if self.type_weights is None else dict(self.type_weights)
        return data


@dataclass(frozen=True)
class CompileReport:
    """What a compile run made and why the other attempts failed.

    scenes:            video ids compiled.
    requested:         questions asked for (n_per_scene × scenes).
    attempts:          questions tried; attempts = generated + sum(failures).
    generated:         records produced.
    generated_by_type: type → records produced.
    failures:          reason (``sampler.REASONS``) → failed attempts.
    failures_by_type:  type → reason → failed attempts.
    gate:              what the quality gate refused and kept (:class:`GateReport` as JSON);
                       empty when the gate is off.
    min_quality:       the gate's threshold, or None when it is off.
    """

    scenes: tuple[str, ...] = ()
    requested: int = 0
    attempts: int = 0
    generated: int = 0
    generated_by_type: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    failures_by_type: dict = field(default_factory=dict)
    gate: dict = field(default_factory=dict)
    min_quality: float | None = None

    @property
    def total_failures(self) -> int:
        return sum(self.failures.values())

    @property
    def shortfall(self) -> int:
        """Questions requested but not produced."""
        return self.requested - self.generated

    @classmethod
    def merge(cls, reports: Iterable["CompileReport"]) -> "CompileReport":
        """Sum several reports (e.g. one per scene)."""
        reports = list(reports)
        by_type: dict[str, Counter] = {}
        for report in reports:
            for qtype, reasons in report.failures_by_type.items():
                by_type.setdefault(qtype, Counter()).update(reasons)
        return cls(
            scenes=tuple(s for r in reports for s in r.scenes),
            requested=sum(r.requested for r in reports),
            attempts=sum(r.attempts for r in reports),
            generated=sum(r.generated for r in reports),
            generated_by_type=dict(sum((Counter(r.generated_by_type) for r in reports), Counter())),
            failures=dict(sum((Counter(r.failures) for r in reports), Counter())),
            failures_by_type={k: dict(v) for k, v in by_type.items()},
            gate=GateReport.merge(GateReport.from_json(r.gate) for r in reports if r.gate).to_json()
            if any(r.gate for r in reports) else {},
            min_quality=next((r.min_quality for r in reports if r.min_quality is not None), None),
        )

    def to_json(self) -> dict:
        data = asdict(self)
        data["scenes"] = list(self.scenes)
        data["total_failures"] = self.total_failures
        data["shortfall"] = self.shortfall
        return data

    def summary(self) -> str:
        """A few human-readable lines for the CLI."""
        lines = [
            f"{self.generated}/{self.requested} questions from {len(self.scenes)} scene(s) in "
            f"{self.attempts} attempts ({self.total_failures} failed)"
        ]
        if self.generated_by_type:
            lines.append("by type: " + ", ".join(f"{k} {v}" for k, v in sorted(self.generated_by_type.items())))
        for reason, count in sorted(self.failures.items(), key=lambda item: -item[1]):
            lines.append(f"  {reason}: {count} ({REASONS.get(reason, '')})")
        if self.gate:
            lines.append(GateReport.from_json(self.gate).summary(self.min_quality))
        else:
            lines.append("quality gate off: every object and frame was used")
        return "\n".join(lines)


def gate_scene(scene: Scene, config: CompileConfig,
               rng: np.random.Generator | None = None) -> tuple[GateResult, list[Scene]]:
    """The quality gate with ``config``'s settings (``min_quality``, not None; ``max_depth_jump_m``,
    ``min_pose_inliers``, ``exact_camera_inliers``): its result (:func:`.quality_gate.apply_quality_gate`)
    and the ``stability_draws`` noisy copies of its view that answers must hold on
    (:func:`.quality_gate.noisy_scenes`, drawn from ``rng``; none when ``rng`` is None). The one place
    the gate's settings are passed on, for the compiler and the benchmarks that rebuild its view."""
    gate = apply_quality_gate(scene, config.min_quality, config.max_depth_jump_m, config.min_pose_inliers,
                              config.exact_camera_inliers)
    noisy = [] if rng is None else noisy_scenes(gate.scene, rng, config.stability_draws, config.exact_camera_inliers,
                                            config.heading_sigma_deg, config.along_ray_factor,
                                            config.unmeasured_depth_factor, config.size_depth_factor)
    return gate, noisy


def scene_digest(scene: Scene) -> str:
    """sha256 of the scene content questions are compiled from (times, poses, objects)."""
    digest = hashlib.sha256()
    for name in ("timestamps_s", "frame_index", "cam_to_world", "ids", "is_agent", "visible",
                 "box_xyxy", "center_world", "orientation", "orient_conf"):
        array = np.ascontiguousarray(getattr(scene, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    digest.update("\0".join(scene.categories).encode("utf-8"))
    return digest.hexdigest()


def default_video_id(scene: Scene, fallback: str = "scene") -> str:
    """The clip's id in seeds and exports: the store's recorded ``source.video_id`` (file stem +
    8 hex digits of the video's sha256, unique per video), else ``fallback``."""
    return scene.source.video_id if scene.source is not None and scene.source.video_id else fallback


def _make_record(scene, qtype, plan, answer, question, options, letter, config, video_id, digest) -> QARecord:
    times = scene.timestamps_s
    first, last = plan.frame_range
    description = answer.description
    margin = description.margin
    quantities = dict(answer.quantities, phase_margins=[float(m) for m in description.margins])
    return QARecord(
        video_id=video_id,
        qtype=qtype.name,
        question=question,
        options=options,
        answer=letter,
        viewpoint=qtype.viewpoint,
        observer=entity_label(scene, plan.observer),
        observer_time_s=None if plan.frozen_at is None else float(times[plan.frozen_at]),
        interval_s=(float(times[first]), float(times[last])),
        frame_range=(int(first), int(last)),
        visible_range=tuple(int(i) for i in plan.visible_range),
        targets=tuple(entity_label(scene, t) for t in plan.targets),
        quantities=quantities,
        phases=tuple(description.phases),
        margin=0.0 if math.isnan(margin) else float(margin),
        profile=config.profile,
        distractors=config.distractors,
        seed=int(config.seed),
        store_sha256=digest,
        video_path=scene.source.path if scene.source is not None else "",
    )


def answer_stability(qtype, noisy, plan, profile, text: str) -> float:
    """Share of the noisy scenes on which the question gets the answer ``text``."""
    same = 0
    for scene in noisy:
        try:
            same += qtype.compute(scene, plan, profile).description.text == text
        except Skip:
            pass
    return same / len(noisy)


def fact_key(qtype: str, frame_range, targets, quantities: dict) -> tuple:
    """What a question asks, without its wording: type, interval, entities and the quantities deciding it.

    Two questions with the same key ask the same thing in other words: the arguments swapped
    ("A and B" / "B and A" swaps the series), or an absolute observer frozen at another time that does
    not change the answer (speeds and distances do not depend on it; a still camera's view neither). The
    compiler asks each fact once, so a scene with few usable entities gives fewer questions, not copies:
    copies of one wrong fact would weigh as several wrong answers. Series are compared to 1e-6.
    """
    series = frozenset((np.shape(v), tuple(np.round(np.asarray(v, dtype=float).ravel(), 6))) for v in quantities.values())
    return ("fact", qtype, tuple(int(i) for i in frame_range), frozenset(targets), series)


def _attempt(scene, index, name, rng, config, profile, seen, video_id, digest, noisy=()) -> tuple[QARecord, tuple]:
    """One question of type ``name`` and its :func:`fact_key`, or Skip with the reason it failed."""
    qtype = get_type(name)
    plan = plan_question(index, qtype, rng)
    answer = qtype.compute(scene, plan, profile)
    description = answer.description
    if len(description.phases) > config.max_phases:
        raise Skip("too_many_phases", f"{len(description.phases)} > {config.max_phases}")
    if not description.margin >= config.min_margin:
        raise Skip("below_min_margin", f"{description.margin:.3g} < {config.min_margin}")
    if noisy and (stability := answer_stability(qtype, noisy, plan, profile, description.text)) < config.min_stability:
        raise Skip("unstable_answer", f"same answer on {stability:.0%} of the noisy scenes")
    question = qtype.question(scene, plan)
    if question in seen:
        raise Skip("duplicate_question", question)
    fact = fact_key(qtype.name, plan.frame_range, [entity_label(scene, t) for t in plan.targets], answer.quantities)
    if fact in seen:
        raise Skip("duplicate_fact", question)
    try:
        wrong = make_distractors(description, answer.n_values, rng, config.distractors, profile, config.distractor_tries)
    except DistractorError as exc:
        raise Skip("distractor_failure", str(exc)) from None
    options, letter = place_answer(description.text, wrong, rng)
    return _make_record(scene, qtype, plan, answer, question, options, letter, config, video_id, digest), fact


def compile_scene(
    scene: Scene, config: CompileConfig = CompileConfig(), video_id: str | None = None
) -> tuple[list[QARecord], CompileReport]:
    """Compile up to ``config.n_per_scene`` questions from one scene.

    video_id: the clip's id in exports and in the seed; default: the store's ``source.video_id``.
    Types are drawn by inverse frequency of the questions made so far (reference
    ``prob_cal``), or towards ``config.type_weights``. A type that cannot succeed on this
    scene at all (a structural failure, e.g. ``no_agent_for_ori``) is counted once and no
    longer drawn. Returns the records and a report whose counts add up.
    """
    video_id = video_id or default_video_id(scene)
    rng = scene_rng(config.seed, video_id)
    profile = get_profile(config.profile)
    digest = scene_digest(scene)  # of the store as written, not of the gated view
    gate, noisy = None, []
    if config.min_quality is not None:
        # its own generator, so the questions drawn do not depend on the number of draws
        gate, noisy = gate_scene(scene, config, np.random.default_rng([int(config.seed) & (2**64 - 1),
                                                                        stable_hash(video_id), 1]))
        scene = gate.scene
    index = SceneIndex(scene, config.sampling)
    weights = None if config.type_weights is None else dict(config.type_weights)
    active = [t for t in config.types if weights is None or weights.get(t, 0.0) > 0]
    made: Counter = Counter()
    failures: dict[str, Counter] = {}
    records: list[QARecord] = []
    seen: set = set()  # question texts and fact keys
    attempts = 0
    while len(records) < config.n_per_scene and active and attempts < config.n_per_scene * config.attempts_per_question:
        name = choose_type(active, made, rng, weights)
        attempts += 1
        try:
            record, fact = _attempt(scene, index, name, rng, config, profile, seen, video_id, digest, noisy)
        except Skip as skip:
            failures.setdefault(name, Counter())[skip.reason] += 1
            if skip.structural:
                active.remove(name)
            continue
        records.append(record)
        seen.update((record.question, fact))
        made[name] += 1
    report = CompileReport(
        scenes=(video_id,),
        requested=config.n_per_scene,
        attempts=attempts,
        generated=len(records),
        generated_by_type=dict(made),
        failures=dict(sum(failures.values(), Counter())),
        failures_by_type={k: dict(v) for k, v in failures.items()},
        gate={} if gate is None else gate.report.to_json(),
        min_quality=config.min_quality,
    )
    return records, report


def _compile_store(path: Path, config: CompileConfig) -> tuple[str, list[QARecord], CompileReport]:
    """Open one store and compile it: (video id, records, report)."""
    from recon4d.store import open_scene

    scene = open_scene(path)
    video_id = default_video_id(scene, fallback=path.name.removesuffix(".zarr"))
    records, report = compile_scene(scene, config, video_id=video_id)
    return video_id, records, report


_MIN_PARALLEL_QUESTIONS = 400  # below this, starting worker processes (~0.1-0.2 s) costs more than it saves


def default_workers(n_stores: int, n_per_scene: int) -> int:
    """Processes :func:`compile_scenes` uses by default: one per CPU core this process may
    use, at most one per store; 1 for small jobs (under ~400 questions) and where processes
    cannot be forked (not Linux)."""
    if sys.platform != "linux" or n_stores * n_per_scene < _MIN_PARALLEL_QUESTIONS:
        return 1
    return max(1, min(n_stores, usable_cpus()))


def compile_scenes(
    paths: Iterable[str | Path],
    config: CompileConfig = CompileConfig(),
    progress: Callable[[str, CompileReport], None] | None = None,
    workers: int | None = 1,
) -> tuple[list[QARecord], CompileReport]:
    """Compile every scene store in ``paths``; returns all records and the summed report.

    A store's video id is its recorded ``source.video_id`` (else the store name without ``.zarr``).
    ``progress``, if given, is called after each scene, in input order, with (video id, that
    scene's report). ``workers``: processes that open and compile stores side by side
    (None: :func:`default_workers`); each scene is seeded on its own, so the records and
    their order are the same for any number of workers.
    """
    paths = [Path(p) for p in paths]
    workers = default_workers(len(paths), config.n_per_scene) if workers is None else workers
    records: list[QARecord] = []
    reports: list[CompileReport] = []
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(paths) > 1:
            load_kernels()  # compiled once here; forked workers inherit the machine code
            pool = stack.enter_context(ProcessPoolExecutor(
                min(workers, len(paths)), mp_context=multiprocessing.get_context("fork")))
            results = pool.map(_compile_store, paths, itertools.repeat(config))
        else:
            results = map(_compile_store, paths, itertools.repeat(config))
        for video_id, scene_records, report in results:
            records.extend(scene_records)
            reports.append(report)
            if progress is not None:
                progress(video_id, report)
    return records, CompileReport.merge(reports)


def _entity(scene: Scene, label: str) -> int:
    return CAMERA if label == "camera" else scene.object_index(int(label))


def plan_from_record(scene: Scene, record: QARecord) -> QuestionPlan:
    """The plan a templated record was compiled from, resolved against ``scene``.

    ``scene`` must have the record's frames and object ids (e.g. the same clip reconstructed
    another way); used to re-answer a question on other geometry.
    """
    frozen_at = None
    if record.observer_time_s is not None:
        frozen_at = int(np.argmin(np.abs(scene.timestamps_s - record.observer_time_s)))
    return QuestionPlan(
        qtype=record.qtype,
        observer=_entity(scene, record.observer),
        frozen_at=frozen_at,
        frame_range=tuple(record.frame_range),
        visible_range=tuple(record.visible_range),
        targets=tuple(_entity(scene, t) for t in record.targets),
    )


def reanswer(scene: Scene, record: QARecord, profile: str | None = None) -> Answer:
    """Answer ``record``'s question again from ``scene``'s geometry (label-fidelity studies)."""
    qtype = get_type(record.qtype)
    return qtype.compute(scene, plan_from_record(scene, record), get_profile(profile or record.profile))
