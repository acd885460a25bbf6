"""Speed questions (abs_spd, rel_spd): how the speed of one entity changes.

Quantity per step (DESIGN §6): |c_i − c_{i−1}| / (t_i − t_{i−1}), each centre expressed in
the observer frame *of its own frame*: DSR Suite ``qa_temp.py`` transforms every position
into the observer's frame at that time and differences consecutive results, so a relative
observer's own motion and turning are part of the speed (apparent speed); an absolute
observer is one rigid frame, which gives the world speed. Speeds are scene units (metres
for a metric store) per *second*, divided by the true time between the two sampled frames
(``Scene.timestamps_s``): sampled frames need not be evenly spaced (32 uniform samples of a
40-frame clip alternate 0.1 s and 0.2 s gaps), and a per-step length would then alternate
too. Ratios between steps are what the rules compare, so only the absolute near-zero
cut-off (0.1 under ``dsr``: 0.1 m/s) depends on the unit. Answer: rules.describe_distance.
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
    "how does the speed of {} change?"
)
REL_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, following the perspective of {}, "
    "how does the speed of {} change?"
)


def step_speeds(scene: Scene, plan: QuestionPlan) -> np.ndarray:
    """(E, F−1) speed of each target between consecutive frames, observer frame(s), units/s."""
    points = observed_targets(scene, plan)  # (E, F, 3)
    step_s = np.diff(scene.timestamps_s[plan.frames])  # (F−1,) > 0: timestamps strictly increase
    return finite("speed", np.linalg.norm(np.diff(points, axis=1), axis=-1) / step_s)


def compute(scene: Scene, plan: QuestionPlan, profile: RuleProfile) -> Answer:
    speed = step_speeds(scene, plan)[0]
    return Answer(describe_distance(speed, profile), {"speed": speed.tolist()}, len(speed))


register(QuestionType("abs_spd", "spd", ABSOLUTE, ABS_TEMPLATE, 1, DISTANCE, compute))
register(QuestionType("rel_spd", "spd", RELATIVE, REL_TEMPLATE, 1, DISTANCE, compute, excludes_observer=True))
