"""Speed comparison questions (abs_spd_comp, rel_spd_comp): which of two entities is faster.

Quantities: the two speed series of :func:`speed.step_speeds` (units per second over the
true time between sampled frames; "the former" is the first target named). Answer: rules.describe_speed_comparison (Table 8: former faster
above 1.2, latter faster below 1/1.2, both below 0.1 the same).
"""

from __future__ import annotations

from recon4d.qa_compiler.questions import ABSOLUTE, RELATIVE, Answer, QuestionPlan, QuestionType, register
from recon4d.qa_compiler.questions.speed import step_speeds
from recon4d.qa_compiler.rules import SPEED_COMPARISON, RuleProfile, describe_speed_comparison
from recon4d.types import Scene

ABS_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, from the perspective of {} at {:.1f}s, "
    "compare the speed between {} and {}."
)
REL_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, following the perspective of {}, "
    "compare the speed between {} and {}."
)


def compute(scene: Scene, plan: QuestionPlan, profile: RuleProfile) -> Answer:
    former, latter = step_speeds(scene, plan)
    description = describe_speed_comparison(former, latter, profile)
    quantities = {"speed_former": former.tolist(), "speed_latter": latter.tolist()}
    return Answer(description, quantities, len(former))


register(QuestionType("abs_spd_comp", "spd_comp", ABSOLUTE, ABS_TEMPLATE, 2, SPEED_COMPARISON, compute))
register(
    QuestionType(
        "rel_spd_comp", "spd_comp", RELATIVE, REL_TEMPLATE, 2, SPEED_COMPARISON, compute,
        excludes_observer=True,
    )
)
