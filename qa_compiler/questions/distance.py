"""Distance questions (abs_dis, rel_dis): how the distance between two entities changes.

Quantity per frame (DESIGN §6): |c1 − c2| with both centres in the observer frame; either
entity may be the camera (its centre is the camera position). A rigid change of frame keeps
distances, so absolute and relative viewpoints give the same series; the observer only
appears in the wording, as in DSR-Bench. Answer: rules.describe_distance (Table 8 bands
0.8/1.2, near-zero 0.1).
"""

from __future__ import annotations

import numpy as np

from recon4d.qa_compiler.questions import (
    ABSOLUTE,
    RELATIVE,
    Answer,
    QuestionPlan,
    QuestionType,
    finite,
    observed_targets,
    register,
)
from recon4d.qa_compiler.rules import DISTANCE, RuleProfile, describe_distance
from recon4d.types import Scene

ABS_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, from the perspective of {} at {:.1f}s, "
    "how does the distance between {} and {} change?"
)
REL_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, following the perspective of {}, "
    "how does the distance between {} and {} change?"
)


def distance_series(scene: Scene, plan: QuestionPlan) -> np.ndarray:
    """(F,) distance between the two targets at every frame of the interval."""
    points = observed_targets(scene, plan)  # (2, F, 3)
    return finite("distance", np.linalg.norm(points[0] - points[1], axis=-1))


def compute(scene: Scene, plan: QuestionPlan, profile: RuleProfile) -> Answer:
    distance = distance_series(scene, plan)
    return Answer(describe_distance(distance, profile), {"distance": distance.tolist()}, len(distance))


register(QuestionType("abs_dis", "dis", ABSOLUTE, ABS_TEMPLATE, 2, DISTANCE, compute))
register(QuestionType("rel_dis", "dis", RELATIVE, REL_TEMPLATE, 2, DISTANCE, compute))
