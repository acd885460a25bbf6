"""Direction questions (abs_dir, rel_dir): how the direction of one entity to another changes.

Quantity per frame (DESIGN §6): c1 − c2 in the observer frame, i.e. where the first entity
lies as seen from the second, in FLU axes ("the direction of A to B" is A − B, as
``coords_trans[0] - coords_trans[1]`` in DSR Suite ``qa_temp.py``). A relative observer
rotates with time, so absolute and relative answers differ when it turns. Answer:
rules.describe_direction (an axis is named past ±0.3 of the unit vector under ``dsr``).
"""

from __future__ import annotations

import numpy as np

from recon4d.qa_compiler.questions import (
    ABSOLUTE,
    RELATIVE,
    Answer,
    QuestionPlan,
    QuestionType,
    check_direction,
    finite,
    observed_targets,
    register,
    unit_vectors,
    vector_list,
)
from recon4d.qa_compiler.rules import DIRECTION, RuleProfile, describe_direction
from recon4d.types import Scene

ABS_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, from the perspective of {} at {:.1f}s, "
    "how does the direction of {} to {} change?"
)
REL_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, following the perspective of {}, "
    "how does the direction of {} to {} change?"
)


def direction_vectors(scene: Scene, plan: QuestionPlan) -> np.ndarray:
    """(F, 3) first target minus second target, observer FLU coordinates, per frame."""
    points = observed_targets(scene, plan)  # (2, F, 3)
    return finite("direction", points[0] - points[1])


def compute(scene: Scene, plan: QuestionPlan, profile: RuleProfile) -> Answer:
    vectors = direction_vectors(scene, plan)
    description = check_direction(describe_direction(vectors, profile))
    return Answer(description, {"direction": vector_list(unit_vectors(vectors))}, len(vectors))


register(QuestionType("abs_dir", "dir", ABSOLUTE, ABS_TEMPLATE, 2, DIRECTION, compute))
register(QuestionType("rel_dir", "dir", RELATIVE, REL_TEMPLATE, 2, DIRECTION, compute))
