"""Orientation questions (abs_ori, rel_ori): how the facing direction of an agent changes.

Quantity per frame (DESIGN §6): the target's forward axis in the observer frame. An agent's
forward axis is the first column of R_cam←agent (DESIGN §2: azimuth 0 faces the camera),
rotated into the world by the camera of the frame it was seen in; the camera's is its
optical axis (only asked when ``CompileConfig.camera_orientation`` allows it, as DSR Suite
does). Answer: rules.describe_direction, e.g. an agent facing the camera is "Behind" from
the camera's perspective (its forward axis points back at the camera).
"""

from __future__ import annotations

from recon4d.qa_compiler.observers import entity_forward_world, rotate_to_observer
from recon4d.qa_compiler.questions import (
    ABSOLUTE,
    RELATIVE,
    Answer,
    QuestionPlan,
    QuestionType,
    check_direction,
    finite,
    frames_and_pose,
    register,
    vector_list,
)
from recon4d.qa_compiler.rules import DIRECTION, RuleProfile, describe_direction
from recon4d.types import Scene

ABS_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, from the perspective of {} at {:.1f}s, "
    "how does the orientation of {} change?"
)
REL_TEMPLATE = (
    "Between {:.1f}s and {:.1f}s, following the perspective of {}, "
    "how does the orientation of {} change?"
)


def forward_vectors(scene: Scene, plan: QuestionPlan):
    """(F, 3) unit forward axis of the target in observer FLU coordinates, per frame."""
    frames, pose = frames_and_pose(scene, plan)
    forward = rotate_to_observer(entity_forward_world(scene, plan.targets, frames), pose)[0]
    return finite("orientation", forward)


def compute(scene: Scene, plan: QuestionPlan, profile: RuleProfile) -> Answer:
    forward = forward_vectors(scene, plan)
    description = check_direction(describe_direction(forward, profile))
    return Answer(description, {"forward": vector_list(forward)}, len(forward))


register(QuestionType("abs_ori", "ori", ABSOLUTE, ABS_TEMPLATE, 1, DIRECTION, compute, oriented_targets=True))
register(
    QuestionType(
        "rel_ori", "ori", RELATIVE, REL_TEMPLATE, 1, DIRECTION, compute,
        oriented_targets=True, excludes_observer=True,
    )
)
