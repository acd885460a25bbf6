"""Registry of DSR question types: one module per family, each registering its types by name.

A question type (:class:`QuestionType`) knows its DSR-Bench template, how many targets it
asks about, which describer kind its answer uses, and how to compute the answer from a
scene for a :class:`QuestionPlan` (interval, observer, viewpoint, targets) chosen by the
sampler. Adding a type is one new module in this package that calls :func:`register` at
import time (modules here are discovered automatically) plus a test.

Object denotations follow DSR-Bench (DSR Suite ``data/qa_temp.py``): the camera is written
"camera"; an object is "{category} with initial bounding box coordinates [x1,y1,x2,y2]"
(box at the first frame of the interval), "{category} with bounding box coordinates [...]"
for an absolute-viewpoint observer (the template follows it with "at {t_v}s"), and
"{category} with final bounding box coordinates [...]" in direction prediction (box at the
last frame the model is shown). Boxes are source-video pixels truncated to integers and
written without spaces, exactly as the reference formats its ``uint32`` boxes.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import Callable

import numpy as np

from recon4d.qa_compiler.observers import CAMERA, entity_positions, observer_frame, to_observer
from recon4d.qa_compiler.rules import Description, RuleProfile
from recon4d.types import Scene

ABSOLUTE = "absolute"
RELATIVE = "relative"


class Skip(Exception):
    """A question cannot be made from this plan; ``reason`` is counted in the compile report.

    structural: True when no later attempt of the same type on the same scene can succeed
    (e.g. the scene has no agent for an orientation question), so the type is dropped.
    """

    def __init__(self, reason: str, detail: str = "", structural: bool = False):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.structural = structural


@dataclass(frozen=True)
class QuestionPlan:
    """What one question is about, as the sampler chose it (frame indices into the scene).

    qtype:         registered type name, e.g. "abs_dis".
    observer:      entity whose perspective is taken (``CAMERA`` or an object row).
    frozen_at:     frame t_v of an absolute viewpoint, None for a relative one.
    frame_range:   (first, last) frames of the asked interval; for direction prediction
                   (last shown frame, end of the predicted displacement).
    visible_range: (first, last) frames the model is shown.
    targets:       entity codes the question is about, in template order.
    """

    qtype: str
    observer: int
    frozen_at: int | None
    frame_range: tuple[int, int]
    visible_range: tuple[int, int]
    targets: tuple[int, ...]

    @property
    def frames(self) -> np.ndarray:
        """(F,) every frame index of the interval."""
        return np.arange(self.frame_range[0], self.frame_range[1] + 1)


@dataclass(frozen=True)
class Answer:
    """A computed answer: its description, the evidence behind it and the series length.

    quantities: name → per-step series (lists of floats or of 3-vectors), JSON-ready.
    n_values:   length of the series given to the describer (random distractors draw
                series of this length, as the reference does).
    """

    description: Description
    quantities: dict
    n_values: int


@dataclass(frozen=True)
class QuestionType:
    """One templated DSR question type.

    name:              e.g. "rel_spd_comp" (the DSR ``Type`` field).
    family:            "dis", "dir", "ori", "spd", "spd_comp" or "dir_pred".
    viewpoint:         ABSOLUTE (observer frozen at t_v) or RELATIVE (re-evaluated per frame).
    template:          the DSR-Bench question template (``str.format`` placeholders).
    n_targets:         how many entities the question is about.
    kind:              describer kind of the answer (rules.DISTANCE, SPEED_COMPARISON, DIRECTION).
    compute:           (scene, plan, profile) → Answer, vectorised over frames.
    oriented_targets:  targets need an orientation (agents) in every frame of the interval.
    predicts:          direction prediction: the last second is hidden from the model.
    excludes_observer: a target may not be the observer itself (its quantity would be
                       trivially constant in its own moving frame).
    """

    name: str
    family: str
    viewpoint: str
    template: str
    n_targets: int
    kind: str
    compute: Callable[[Scene, QuestionPlan, RuleProfile], Answer]
    oriented_targets: bool = False
    predicts: bool = False
    excludes_observer: bool = False

    def question(self, scene: Scene, plan: QuestionPlan) -> str:
        """The question text for ``plan`` in this type's template."""
        return render_question(self, scene, plan)


_REGISTRY: dict[str, QuestionType] = {}
_DISCOVERED = False


def register(qtype: QuestionType) -> QuestionType:
    """Add a question type under its name; a name can be registered only once."""
    if qtype.viewpoint not in (ABSOLUTE, RELATIVE):
        raise ValueError(f"{qtype.name}: viewpoint must be {ABSOLUTE!r} or {RELATIVE!r}, got {qtype.viewpoint!r}")
    if qtype.name in _REGISTRY and _REGISTRY[qtype.name] is not qtype:
        raise ValueError(f"question type {qtype.name!r} is already registered")
    _REGISTRY[qtype.name] = qtype
    return qtype


def _discover() -> None:
    """Import every module of this package once, so each registers its types."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def get_type(name: str) -> QuestionType:
    """The registered question type called ``name``."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown question type {name!r}; registered: {', '.join(registered())}") from None


def registered() -> tuple[str, ...]:
    """Names of all registered question types, in registration order."""
    _discover()
    return tuple(_REGISTRY)


def format_box(box_xyxy) -> str:
    """A box as the reference writes it: integer pixels (truncated), no spaces, e.g. "[12,5,80,64]"."""
    box = np.asarray(box_xyxy, dtype=np.float64)
    values = box.tolist() if box.shape == (4,) else None
    if values is None or not all(math.isfinite(v) for v in values):
        raise Skip("box_unknown", f"no finite box {box.tolist()}")
    x1, y1, x2, y2 = (math.floor(max(v, 0.0)) for v in values)
    return f"[{x1},{y1},{x2},{y2}]"


_BOX_PHRASES = {
    "initial": "with initial bounding box coordinates",
    "final": "with final bounding box coordinates",
    "observer": "with bounding box coordinates",
}


def denote(scene: Scene, entity: int, frame: int, style: str) -> str:
    """How a question names an entity: "camera", or its category and box at ``frame``.

    style: "initial" (first frame of the interval), "final" (last frame shown, direction
    prediction) or "observer" (an absolute observer at t_v; the template adds "at {t}s").
    """
    if entity == CAMERA:
        return "camera"
    return f"{scene.categories[entity]} {_BOX_PHRASES[style]} {format_box(scene.box_xyxy[entity, frame])}"


def render_question(qtype: QuestionType, scene: Scene, plan: QuestionPlan) -> str:
    """Fill ``qtype.template`` in the reference's argument order.

    Interval types: start time, end time, observer, [t_v,] targets... Direction prediction:
    observer, [t_v,] target. Times are source-video seconds, written {:.1f}.
    """
    times = scene.timestamps_s
    first, last = plan.frame_range
    shown_last = plan.visible_range[1]
    if plan.frozen_at is not None:
        observer = denote(scene, plan.observer, plan.frozen_at, "observer")
        frozen = [float(times[plan.frozen_at])]
    elif qtype.predicts:
        observer, frozen = denote(scene, plan.observer, shown_last, "final"), []
    else:
        observer, frozen = denote(scene, plan.observer, first, "initial"), []
    if qtype.predicts:
        targets = [denote(scene, t, shown_last, "final") for t in plan.targets]
        return qtype.template.format(observer, *frozen, *targets)
    targets = [denote(scene, t, first, "initial") for t in plan.targets]
    return qtype.template.format(float(times[first]), float(times[last]), observer, *frozen, *targets)


def frames_and_pose(scene: Scene, plan: QuestionPlan):
    """The interval's frames and the observer frame over them: ((F,), (4, 4) or (F, 4, 4))."""
    frames = plan.frames
    return frames, observer_frame(scene, plan.observer, frames, plan.frozen_at)


def observed_targets(scene: Scene, plan: QuestionPlan) -> np.ndarray:
    """(E, F, 3) positions of the plan's targets over its interval, in the observer's FLU frame."""
    frames, pose = frames_and_pose(scene, plan)
    return to_observer(entity_positions(scene, plan.targets, frames), pose)


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """(N, 3) → (N, 3) unit vectors (zero vectors stay zero), for the record's evidence."""
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norm, out=np.zeros_like(vectors), where=norm > 0)


def vector_list(vectors: np.ndarray) -> list:
    """(N, 3) array → JSON list of 3-lists of floats."""
    return np.asarray(vectors, dtype=np.float64).tolist()


def finite(name: str, values: np.ndarray) -> np.ndarray:
    """Return ``values`` if all finite, else skip the question (an unknown pose or position)."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise Skip("non_finite_quantity", f"{name} has NaN/inf entries")
    return values


def check_direction(description: Description) -> Description:
    """Reject answers with an undefined direction (a zero vector gives the empty label)."""
    if any(len(phase) == 0 for phase in description.phases):
        raise Skip("degenerate_direction", "a zero vector has no direction")
    return description
