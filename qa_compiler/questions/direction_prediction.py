"""Direction prediction (abs_dir_pred, rel_dir_pred): where an entity moves after the video ends.

The plan's frame range is (v, e): v is the last frame the model is shown, e lies at least
the prediction horizon (1 s) later and the frames after v are hidden (``visible_range``
ends at v). Quantity (DESIGN §6): the displacement c(e) − c(v) in the observer frame; a
relative observer contributes its pose at each end (DSR Suite maps the two positions with
the observer's pose at each of the two frames). A relative observer cannot be its own target
(its displacement in its own moving frame is always zero; the reference skips that case too).
Answer: rules.describe_direction of one vector.
"""

from __future__ import annotations

import numpy as np

from recon4d.qa_compiler.observers import entity_positions, observer_poses, to_observer
from recon4d.qa_compiler.questions import (
    ABSOLUTE,
    RELATIVE,
    Answer,
    QuestionPlan,
    QuestionType,
    check_direction,
    finite,
    register,
    unit_vectors,
    vector_list,
)
from recon4d.qa_compiler.rules import DIRECTION, RuleProfile, describe_direction
from recon4d.types import Scene

ABS_TEMPLATE = "From the perspective of {} at {:.1f}s, predict the moving direction of {}"
REL_TEMPLATE = "Following the perspective of {}, predict the moving direction of {}"


def displacement(scene: Scene, plan: QuestionPlan) -> np.ndarray:
    """(3,) target displacement from the last shown frame to the end, observer FLU coordinates."""
    ends = np.asarray(plan.frame_range)
    if plan.frozen_at is not None:
        pose = observer_poses(scene, plan.observer, np.array([plan.frozen_at]))[0]
    else:
        pose = observer_poses(scene, plan.observer, ends)
    points = to_observer(entity_positions(scene, plan.targets, ends), pose)[0]  # (2, 3)
    return finite("displacement", points[1] - points[0])


def compute(scene: Scene, plan: QuestionPlan, profile: RuleProfile) -> Answer:
    moved = displacement(scene, plan)[None]
    description = check_direction(describe_direction(moved, profile))
    quantities = {"displacement": vector_list(moved), "direction": vector_list(unit_vectors(moved))}
    return Answer(description, quantities, 1)


register(QuestionType("abs_dir_pred", "dir_pred", ABSOLUTE, ABS_TEMPLATE, 1, DIRECTION, compute, predicts=True))
register(
    QuestionType(
        "rel_dir_pred", "dir_pred", RELATIVE, REL_TEMPLATE, 1, DIRECTION, compute,
        predicts=True, excludes_observer=True,
    )
)
