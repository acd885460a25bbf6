"""Choose what each question is about: type, interval, observer, viewpoint time and targets.

Sampling follows the public DSR Suite generator (``data/qa_temp.py``):

* the type is drawn with weight 1/(n_t + 1), n_t the number of questions of type t made so
  far for the scene (``prob_cal``: inverse-frequency balancing); with a target
  distribution p (K types) the weight is p_t / (n_t / (K p_t) + 1), which is the same for
  uniform p and pulls the counts towards n_t ∝ p_t otherwise;
* the observer is the camera or an agent, uniformly (``agents_with_cam``);
* an interval is two frames at least ``min_interval_frames - 1`` apart (the reference
  redraws until ``idx_3 - idx_2 >= 4``), here also at least ``min_interval_s`` long;
* targets: each slot is the camera with probability 0.5 if no earlier slot took it, else a
  random object (the reference's ``objects = ['rand', 'rand']`` loop with ``break``);
* an absolute viewpoint freezes the observer at a time t_v drawn from every frame where its
  pose is known, inside or outside the interval.

A question names each object by its box at one frame (the interval's first, the last shown
frame of a direction prediction, an absolute observer's t_v: ``questions.denote``). With
``name_observed`` (the default) that frame must be one where the tracker found the object
itself (``Scene.observed_frames``), not a box it carried there: a box coasted over an occlusion
lies on the occluder, one carried back before the first detection on whatever the flow moved it
onto; with ``steady_names`` (the default) its box must also agree with its neighbours' (a merge,
a piece, a jump to something else changes it: :mod:`~recon4d.qa_compiler.referents`), and with
``trusted_names`` (the default) the scene's quality record must pass the frame (even when the
gate is off: the gate decides what a question may use, this only where it may name an object).
Scenes that do not record it (ground truth, older stores) name objects at any visible frame, as
before.

Where the reference cuts an interval short when a target disappears, here a target must be
present in every frame of the interval (DESIGN §5), and the interval is drawn uniformly
among those where the observer and enough targets are known, so attempts rarely fail.
Every failure raises :class:`~recon4d.qa_compiler.questions.Skip` with one of ``REASONS``.
All randomness comes from one ``numpy.random.Generator`` per scene (:func:`scene_rng`).
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from recon4d.qa_compiler.observers import CAMERA, oriented, pose_known, present
from recon4d.qa_compiler.questions import ABSOLUTE, QuestionPlan, QuestionType, Skip
from recon4d.qa_compiler.referents import referent_frames
from recon4d.types import Scene

REASONS = {
    "interval_too_short": "no interval of the scene is long enough (dir_pred: shown part plus horizon)",
    "no_agent_for_ori": "orientation question on a scene without an oriented agent",
    "not_enough_targets": "the scene has fewer entities than the question type needs",
    "observer_not_visible": "the chosen agent observer has no known pose where it is needed",
    "target_not_visible": "no interval has enough targets present in every frame",
    "box_unknown": "a named object has no bounding box at the frame it is denoted by",
    "non_finite_quantity": "a position or pose needed by the answer is NaN",
    "degenerate_direction": "a direction/displacement vector is zero, so it has no direction",
    "too_many_phases": "the answer has more phases than max_phases",
    "below_min_margin": "the answer is closer to a rule threshold than min_margin",
    "duplicate_question": "the same question text was already generated for this scene",
    "duplicate_fact": ("a question of the same type over the same interval and entities, decided by the same "
                       "quantities, was already generated for this scene (only the wording, the argument order "
                       "or an observer time that does not change the answer differ)"),
    "distractor_failure": "three valid distinct distractors were not found within the tries",
    "unstable_answer": "quality gate: the answer changes under the trajectory noise the scene's quality record measured",
}
"""Failure reason → meaning; every failed attempt is counted under one of these."""

_EPS_S = 1e-9


@dataclass(frozen=True)
class SamplingConfig:
    """How intervals, observers and targets are drawn (defaults follow the DSR generator)."""

    min_interval_frames: int = 5
    """Fewest frames in an interval (the reference needs idx_end - idx_start >= 4)."""
    min_interval_s: float = 1.0
    """Shortest interval in seconds; for dir_pred, the shortest part shown before the hidden second."""
    pred_horizon_s: float = 1.0
    """Direction prediction: the displacement spans at least this long after the last shown frame."""
    camera_target_prob: float = 0.5
    """Chance that a target slot is the camera (the reference flips a fair coin per slot)."""
    min_orient_conf: float = 0.6
    """Orientation confidence an agent needs to be an observer or an orientation target (reference: 0.6)."""
    camera_orientation: bool = False
    """Allow the camera as the target of orientation questions (DSR Suite does, half the time)."""
    name_observed: bool = True
    """Name objects only by boxes of frames where the tracker found them (``Scene.observed_frames``)."""
    steady_names: bool = True
    """With ``name_observed``: only by boxes that agree with their neighbours (``referents.steady_boxes``)."""
    trusted_names: bool = True
    """With ``name_observed``: only at frames the scene's quality record passes (``ObjectQuality.frame_ok``)."""

    def __post_init__(self) -> None:
        if self.min_interval_frames < 2:
            raise ValueError(f"min_interval_frames must be >= 2, got {self.min_interval_frames}")
        if self.min_interval_s < 0 or self.pred_horizon_s <= 0:
            raise ValueError("min_interval_s must be >= 0 and pred_horizon_s > 0")
        if not 0.0 <= self.camera_target_prob <= 1.0:
            raise ValueError(f"camera_target_prob must lie in [0, 1], got {self.camera_target_prob}")


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process (unlike ``hash()``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def scene_rng(seed: int, video_id: str) -> np.random.Generator:
    """The generator of one scene: seeded from (seed, video_id), independent of scene order."""
    return np.random.default_rng([int(seed) & (2**64 - 1), stable_hash(video_id)])


def pick(rng: np.random.Generator, values: np.ndarray):
    """A uniform element of ``values``: the draw ``rng.choice(values)`` makes, without its checks."""
    return values[int(rng.integers(len(values)))]


def pick_weighted(rng: np.random.Generator, p: np.ndarray) -> int:
    """An index drawn with probabilities ``p`` (summing to 1): the draw ``rng.choice(len(p), p=p)`` makes.

    numpy's ``choice`` draws one uniform number and finds it in the normalised cumulative
    sum; doing the same here skips its argument checks (most of its ~30 µs a call).
    """
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return bisect.bisect_right(cdf.tolist(), rng.random())


def choose_type(
    names: Sequence[str], counts: Mapping[str, int], rng: np.random.Generator,
    target: Mapping[str, float] | None = None,
) -> str:
    """Draw a type by inverse frequency (reference ``prob_cal``), towards ``target`` shares if given."""
    made = np.array([counts.get(name, 0) for name in names], dtype=np.float64)
    share = np.array([1.0 if target is None else float(target.get(name, 0.0)) for name in names])
    if not share.sum() > 0:
        raise ValueError(f"type weights are all zero for {list(names)}")
    share = share / share.sum()
    # Count relative to its expected share: 1/(n + 1) for uniform p (reference), and a
    # fixed point at n_t ∝ p_t otherwise (p_t / (n_t + 1) would settle elsewhere).
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(share > 0, share / (made / (len(names) * share) + 1.0), 0.0)
    return names[pick_weighted(rng, weights / weights.sum())]


def _runs_ok(good_cum: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """(..., P) bool: rows of a (..., T+1) prefix count of good frames are good on every [first, last]."""
    return good_cum[..., last + 1] - good_cum[..., first] == (last - first + 1)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _prefix(good: np.ndarray) -> np.ndarray:
    """(..., T) bool → (..., T+1) int prefix counts."""
    out = np.zeros(good.shape[:-1] + (good.shape[-1] + 1,), dtype=np.int64)
    np.cumsum(good, axis=-1, out=out[..., 1:])
    return out


class SceneIndex:
    """What the sampler needs to know about a scene, computed once per scene.

    present, oriented: (K, T) bool object masks (oriented: agents with a usable orientation).
    nameable:          (K, T) bool frames where an object may be named by its box (present and,
                       with ``name_observed``, observed by the tracker).
    agents:            (A,) rows of agents that are ever oriented.
    observers:         (A+1,) observer candidates: CAMERA, then ``agents``.
    camera_known:      (T,) bool frames with a finite camera pose.
    intervals:         (P, 2) every (first, last) frame pair long enough for a question.
    predictions:       (Q, 2) every (last shown, end) pair for direction prediction.
    """

    def __init__(self, scene: Scene, config: SamplingConfig):
        self.scene = scene
        self.config = config
        times = scene.timestamps_s
        n = scene.n_frames
        self.present = present(scene)
        self.oriented = oriented(scene, config.min_orient_conf) & scene.is_agent[:, None]
        self.nameable = (self.present & referent_frames(scene, config.steady_names, config.trusted_names)
                         if config.name_observed else self.present)
        self.agents = np.flatnonzero(self.oriented.any(axis=1))
        self.observers = np.concatenate([[CAMERA], self.agents])
        self.camera_known = pose_known(scene, CAMERA, config.min_orient_conf)
        self._present_cum = _prefix(self.present)
        self._oriented_cum = _prefix(self.oriented)
        self._camera_cum = _prefix(self.camera_known)

        first, last = np.triu_indices(n, k=config.min_interval_frames - 1)
        long_enough = times[last] - times[first] >= config.min_interval_s - _EPS_S
        self.intervals = np.stack([first[long_enough], last[long_enough]], axis=1)

        end = np.arange(n)
        shown = np.searchsorted(times, times - config.pred_horizon_s + _EPS_S, side="right") - 1
        ok = (shown >= config.min_interval_frames - 1) & (shown >= 0)
        ok &= times[np.maximum(shown, 0)] - times[0] >= config.min_interval_s - _EPS_S
        self.predictions = np.stack([shown[ok], end[ok]], axis=1)
        self.n_present = int(self.present.any(axis=1).sum())
        self.n_oriented = int(self.oriented.any(axis=1).sum())
        self._runs: dict[tuple, np.ndarray] = {}

    def pairs(self, predicts: bool) -> np.ndarray:
        """(P, 2) the (first, last) frame pairs a question may span (``predictions`` for dir_pred)."""
        return self.predictions if predicts else self.intervals

    def observer_runs(self, observer: int, predicts: bool) -> np.ndarray:
        """(P,) bool: ``observer`` has a pose in every frame of each pair (computed once). Read-only."""
        key = ("observer", observer, predicts)
        if key not in self._runs:
            pairs = self.pairs(predicts)
            self._runs[key] = _read_only(_runs_ok(self.observer_cum(observer), pairs[:, 0], pairs[:, 1]))
        return self._runs[key]

    def target_runs(self, oriented_targets: bool, predicts: bool) -> np.ndarray:
        """(K, P) bool: each object can be a target in every frame of each pair and be named at its
        first frame (where a question names targets: the interval's first, dir_pred's last shown)
        (computed once). Read-only."""
        key = ("target", oriented_targets, predicts)
        if key not in self._runs:
            pairs = self.pairs(predicts)
            runs = _runs_ok(self.target_cum(oriented_targets), pairs[:, 0], pairs[:, 1])
            self._runs[key] = _read_only(runs & self.nameable[:, pairs[:, 0]])
        return self._runs[key]

    def observer_known(self, observer: int) -> np.ndarray:
        """(T,) bool frames where ``observer`` has a pose."""
        return self.camera_known if observer == CAMERA else self.oriented[observer]

    def observer_nameable(self, observer: int) -> np.ndarray:
        """(T,) bool frames where ``observer`` has a pose and may be named by its box (the camera: its pose)."""
        return self.camera_known if observer == CAMERA else self.oriented[observer] & self.nameable[observer]

    def observer_cum(self, observer: int) -> np.ndarray:
        """(T+1,) prefix count of the frames where ``observer`` has a pose."""
        return self._camera_cum if observer == CAMERA else self._oriented_cum[observer]

    def target_cum(self, oriented_targets: bool) -> np.ndarray:
        """(K, T+1) prefix counts of the frames where each object can be a target."""
        return self._oriented_cum if oriented_targets else self._present_cum


def _pick_targets(
    rng: np.random.Generator, candidates: np.ndarray, camera_allowed: bool, n_targets: int, camera_prob: float
) -> tuple[int, ...]:
    """Fill ``n_targets`` slots: the camera with ``camera_prob`` while unused, else a random object."""
    remaining = [int(c) for c in candidates]
    chosen: list[int] = []
    camera_free = camera_allowed
    for _ in range(n_targets):
        if camera_free and (not remaining or rng.random() < camera_prob):
            chosen.append(CAMERA)
            camera_free = False
        else:
            chosen.append(remaining.pop(int(rng.integers(len(remaining)))))
    return tuple(chosen)


def plan_question(index: SceneIndex, qtype: QuestionType, rng: np.random.Generator) -> QuestionPlan:
    """Draw interval, observer, t_v and targets for one question of ``qtype``.

    Raises Skip with a reason from REASONS when the scene cannot support this attempt;
    ``structural`` Skips mean no later attempt of this type on this scene can succeed.
    """
    config, scene = index.config, index.scene
    camera_target = config.camera_orientation or not qtype.oriented_targets
    n_objects = index.n_oriented if qtype.oriented_targets else index.n_present
    if qtype.oriented_targets and index.agents.size == 0 and not camera_target:
        raise Skip("no_agent_for_ori", "no agent with a confident orientation", structural=True)
    if n_objects + camera_target < qtype.n_targets:
        raise Skip("not_enough_targets", f"{qtype.name} needs {qtype.n_targets} entities", structural=True)
    pairs = index.pairs(qtype.predicts)
    if len(pairs) == 0:
        raise Skip("interval_too_short", f"{scene.n_frames} frames over {scene.duration_s:.2f}s", structural=True)

    observer = int(pick(rng, index.observers))
    first, last = pairs[:, 0], pairs[:, 1]
    known = index.observer_known(observer)
    named = index.observer_nameable(observer)  # where the question may name it: t_v, or the pair's first
    if qtype.viewpoint != ABSOLUTE:
        observer_ok = known[first] & known[last] if qtype.predicts else index.observer_runs(observer, False)
        observer_ok = observer_ok & named[first]
    elif qtype.predicts:
        observer_ok = np.cumsum(named)[first] > 0  # t_v among the shown frames
    else:
        observer_ok = np.full(len(pairs), named.any())
    if not observer_ok.any():
        raise Skip("observer_not_visible", f"observer {observer} has no pose where needed")

    eligible = index.target_runs(qtype.oriented_targets, qtype.predicts)  # (K, P)
    excluded = qtype.excludes_observer and qtype.viewpoint != ABSOLUTE
    if excluded and observer != CAMERA:
        eligible = eligible.copy()
        eligible[observer] = False
    camera_ok = camera_target and not (excluded and observer == CAMERA)
    # The camera is a target only where its pose is known over the whole interval (a gated
    # scene has no pose where the camera is not trusted).
    camera_ok = camera_ok & index.observer_runs(CAMERA, qtype.predicts)  # (P,)
    feasible = observer_ok & (eligible.sum(axis=0) + camera_ok >= qtype.n_targets)
    if not feasible.any():
        raise Skip("target_not_visible", f"no interval with {qtype.n_targets} targets present throughout")

    chosen = int(pick(rng, np.flatnonzero(feasible)))
    start, end = int(first[chosen]), int(last[chosen])
    frozen_at = None
    if qtype.viewpoint == ABSOLUTE:
        frames = np.flatnonzero(named[: start + 1] if qtype.predicts else named)
        frozen_at = int(pick(rng, frames))
    targets = _pick_targets(
        rng, np.flatnonzero(eligible[:, chosen]), bool(camera_ok[chosen]), qtype.n_targets, config.camera_target_prob
    )
    visible = (0, start) if qtype.predicts else (0, scene.n_frames - 1)
    return QuestionPlan(qtype.name, observer, frozen_at, (start, end), visible, targets)
