"""Tests of qa_compiler/questions/ and qa_compiler/observers.py on hand-built scenes.

Scenes here use a z-up world. A level camera at the origin with yaw 0 looks along world +x,
so its FLU observer axes equal the world axes (forward +x, left +y, up +z); that makes
every expected answer a matter of reading world coordinates.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from recon4d.geometry import rotation_to_orientation
from recon4d.qa_compiler import questions
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene
from recon4d.qa_compiler.observers import CAMERA, entity_forward_world, observer_poses, pose_known
from recon4d.qa_compiler.questions import QuestionPlan, Skip, denote, format_box, get_type, registered
from recon4d.qa_compiler.records import QUESTION_TYPES
from recon4d.qa_compiler.rules import PAPER
from recon4d.types import Scene, SourceInfo

UP = np.array([0.0, 0.0, 1.0])


def camera_poses(position: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(T, 4, 4) cam_to_world of a level camera at ``position`` (T, 3) looking along ``yaw`` (T,)."""
    forward = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], -1)
    down = np.broadcast_to(-UP, forward.shape)
    pose = np.tile(np.eye(4), (len(yaw), 1, 1))
    pose[:, :3, 0] = np.cross(down, forward)  # image right
    pose[:, :3, 1] = down
    pose[:, :3, 2] = forward
    pose[:, :3, 3] = position
    return pose


def agent_angles(cam_to_world: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Camera-relative (azimuth, polar, rotation) of an upright agent facing world ``heading`` (yaw)."""
    forward = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(heading)], -1)
    world_from_agent = np.stack([forward, np.cross(UP, forward), np.broadcast_to(UP, forward.shape)], -1)
    return rotation_to_orientation(np.swapaxes(cam_to_world[:, :3, :3], -1, -2) @ world_from_agent)


def build_scene(times, objects, cam_position=0.0, cam_yaw=0.0, source="clip.mp4") -> Scene:
    """A Scene from per-frame camera (position, yaw) and object dicts.

    objects: dicts with "center" (T, 3) world, optional "heading" (T,) yaw of an agent,
    "visible" (T,) bool and "category". Object i's box at frame t is
    [40i + t, 10 + i, 40i + t + 50.5, 100.7], so a box in a question tells its frame.
    """
    times = np.asarray(times, dtype=np.float64)
    t, k = len(times), len(objects)
    cam = camera_poses(np.broadcast_to(cam_position, (t, 3)), np.broadcast_to(cam_yaw, (t,)).astype(float))
    center = np.full((k, t, 3), np.nan)
    orientation = np.full((k, t, 3), np.nan, np.float32)
    visible = np.zeros((k, t), bool)
    box = np.full((k, t, 4), np.nan, np.float32)
    for i, obj in enumerate(objects):
        vis = np.asarray(obj.get("visible", np.ones(t, bool)))
        visible[i] = vis
        center[i][vis] = np.broadcast_to(obj["center"], (t, 3))[vis]
        x = 40.0 * i + np.arange(t)
        box[i][vis] = np.stack([x, np.full(t, 10.0 + i), x + 50.5, np.full(t, 100.7)], -1)[vis]
        if obj.get("heading") is not None:
            orientation[i][vis] = agent_angles(cam, np.broadcast_to(obj["heading"], (t,)).astype(float))[vis]
    is_agent = np.array([obj.get("heading") is not None for obj in objects], bool)
    return Scene(
        timestamps_s=times,
        frame_index=np.arange(t),
        cam_to_world=cam,
        intrinsics=np.full((t, 3, 3), np.nan, np.float32),
        ids=np.arange(k, dtype=np.int32) + 1,
        categories=tuple(obj.get("category", "person" if h else "box") for obj, h in zip(objects, is_agent)),
        is_agent=is_agent,
        visible=visible,
        box_xyxy=box,
        center_world=center,
        orientation=orientation,
        orient_conf=np.where(visible, 0.9, np.nan).astype(np.float32),
        source=SourceInfo(path=source, sha256="0" * 64, fps=30.0, n_frames=t, size=(640, 480)),
    )


def rich_scene(seed: int = 0, n_frames: int = 32, fps: float = 2.0, n_objects: int = 4) -> Scene:
    """A moving, turning camera and randomly walking objects (even rows are agents facing their way)."""
    rng = np.random.default_rng(seed)
    times = np.arange(n_frames) / fps
    cam_position = np.cumsum(rng.normal(0, 0.3, (n_frames, 3)) * [1, 1, 0.1], axis=0)
    cam_yaw = np.cumsum(rng.normal(0, 0.15, n_frames))
    objects = []
    for i in range(n_objects):
        start = rng.normal(0, 4, 3) * [1, 1, 0.2] + [5, 0, 0]
        velocity = rng.normal(0, 0.5, (n_frames, 3)) * [1, 1, 0.1] + rng.normal(0, 0.8, 3) * [1, 1, 0]
        heading = np.arctan2(velocity[:, 1], velocity[:, 0]) if i % 2 == 0 else None
        objects.append({"center": start + np.cumsum(velocity, axis=0) * 0.5, "heading": heading})
    return build_scene(times, objects, cam_position, cam_yaw, source=f"clip{seed}.mp4")


def plan(qtype, targets, frames=(0, 8), observer=CAMERA, frozen_at=None, visible=None):
    visible = visible or (0, frames[1])
    return QuestionPlan(qtype, observer, frozen_at, tuple(frames), visible, tuple(targets))


def answer(scene, p, profile="dsr"):
    from recon4d.qa_compiler.rules import get_profile

    return get_type(p.qtype).compute(scene, p, get_profile(profile) if isinstance(profile, str) else profile)


T9 = np.arange(9) * 0.5


def test_registry_holds_the_twelve_dsr_types():
    assert set(registered()) == set(QUESTION_TYPES)
    for name in QUESTION_TYPES:
        qtype = get_type(name)
        assert qtype.name == name and name.startswith(qtype.viewpoint[:3])
        assert name.endswith(qtype.family)


def test_templates_match_the_reference_vectors(shared_data):
    meta = json.loads((shared_data / "dsr_reference_vectors.json").read_text())["meta"]
    assert tuple(meta["question_type"]) == QUESTION_TYPES
    for name, template in meta["template"].items():
        assert get_type(name).template == template


def test_register_rejects_a_second_type_of_the_same_name_and_accepts_a_new_one(monkeypatch):
    monkeypatch.setattr(questions, "_REGISTRY", dict(questions._REGISTRY))
    abs_dis = get_type("abs_dis")
    with pytest.raises(ValueError, match="already registered"):
        questions.register(questions.QuestionType(**{**abs_dis.__dict__, "template": "x"}))
    custom = questions.QuestionType(**{**abs_dis.__dict__, "name": "abs_dis_copy"})
    assert questions.register(custom) is custom and get_type("abs_dis_copy") is custom
    with pytest.raises(ValueError, match="unknown question type"):
        get_type("nope")
    with pytest.raises(ValueError, match="viewpoint"):
        questions.register(questions.QuestionType(**{**abs_dis.__dict__, "name": "z", "viewpoint": "side"}))


def test_format_box_truncates_to_ints_without_spaces_like_the_reference():
    assert format_box([12.9, 5.2, 80.999, 64.0]) == "[12,5,80,64]"
    assert format_box([-3.5, 0.4, 10.0, 20.0]) == "[0,0,10,20]"  # clipped before the uint cast
    with pytest.raises(Skip, match="box_unknown"):
        format_box([np.nan, 0, 1, 2])


def test_denotations_follow_dsr_bench_wording():
    scene = build_scene(T9, [{"center": np.zeros(3)}])
    assert denote(scene, CAMERA, 3, "initial") == "camera"
    assert denote(scene, 0, 3, "initial") == "box with initial bounding box coordinates [3,10,53,100]"
    assert denote(scene, 0, 8, "final") == "box with final bounding box coordinates [8,10,58,100]"
    assert denote(scene, 0, 2, "observer") == "box with bounding box coordinates [2,10,52,100]"


def test_camera_observer_pose_equals_world_axes_for_the_yaw_zero_camera():
    scene = build_scene(T9, [{"center": np.zeros(3)}])
    np.testing.assert_allclose(observer_poses(scene, CAMERA, np.arange(2)), np.tile(np.eye(4), (2, 1, 1)), atol=1e-12)
    assert pose_known(scene, CAMERA, 0.6).all()


def test_objects_moving_apart_along_y_become_larger_in_distance():
    # Separation 1.3^t: every step ratio is 1.3 > 1.2 (Table 8 band), one "larger" phase.
    sep = 1.3 ** np.arange(9)
    a = np.stack([np.full(9, 5.0), sep / 2, np.zeros(9)], -1)
    b = a * [1, -1, 1]
    scene = build_scene(T9, [{"center": a}, {"center": b}])
    for p in (plan("rel_dis", (0, 1)), plan("abs_dis", (0, 1), frozen_at=4)):
        result = answer(scene, p)
        assert result.description.text == "(1) Become larger."
        np.testing.assert_allclose(result.quantities["distance"], sep)
    q = get_type("abs_dis").question(scene, plan("abs_dis", (0, 1), frames=(2, 8), frozen_at=4))
    assert q == (
        "Between 1.0s and 4.0s, from the perspective of camera at 2.0s, how does the distance between "
        "box with initial bounding box coordinates [2,10,52,100] and box with initial bounding box "
        "coordinates [42,11,92,100] change?"
    )


def test_agent_walking_toward_the_camera_faces_behind_and_away_faces_front():
    # Heading yaw pi: the agent looks along world -x, i.e. at the camera (azimuth 0 by the
    # DESIGN §2 convention). Its forward axis in the camera FLU frame is (-1, 0, 0): the
    # forward component is below -0.3, so the answer is "Behind" (it faces back at us).
    toward = {"center": np.stack([4 - 0.3 * np.arange(9), np.zeros(9), np.zeros(9)], -1), "heading": np.pi}
    away = {"center": np.stack([4 + 0.3 * np.arange(9), np.zeros(9), np.zeros(9)], -1), "heading": 0.0}
    scene = build_scene(T9, [toward, away])
    assert scene.orientation[0, 0, 0] % 360 == pytest.approx(0.0, abs=1e-4)
    assert scene.orientation[1, 0, 0] == pytest.approx(180.0, abs=1e-4)
    for qtype, frozen in (("abs_ori", 0), ("rel_ori", None)):
        assert answer(scene, plan(qtype, (0,), frozen_at=frozen)).description.text == "(1) Behind."
        result = answer(scene, plan(qtype, (1,), frozen_at=frozen))
        assert result.description.text == "(1) Front."
        np.testing.assert_allclose(result.quantities["forward"], [[1.0, 0.0, 0.0]] * 9, atol=1e-6)
    # Seen by the approaching agent (looking along world -x), the other agent's forward
    # axis (+x) points backwards: "Behind".
    assert answer(scene, plan("rel_ori", (1,), observer=0)).description.text == "(1) Behind."


def test_absolute_and_relative_directions_differ_when_the_observer_turns():
    # The camera turns left by 11.25 deg per frame while a box stays at world (5, 0, 0).
    # Relative: the box sits at (cos, -sin, 0) of the yaw: Front until sin > 0.3 (17.5 deg),
    # Front|Right until cos < 0.3 (72.5 deg), then Right.
    yaw = np.deg2rad(11.25) * np.arange(9)
    scene = build_scene(T9, [{"center": np.array([5.0, 0.0, 0.0])}], cam_yaw=yaw)
    rel = answer(scene, plan("rel_dir", (0, CAMERA)))
    assert rel.description.text == "(1) Front. (2) Front|Right. (3) Right."
    assert answer(scene, plan("abs_dir", (0, CAMERA), frozen_at=0)).description.text == "(1) Front."
    # Frozen at the last frame (yaw 90 deg, looking along world +y) the box is to the right.
    assert answer(scene, plan("abs_dir", (0, CAMERA), frozen_at=8)).description.text == "(1) Right."
    # Reversed order asks for the camera as seen from the box: the opposite direction.
    assert answer(scene, plan("abs_dir", (CAMERA, 0), frozen_at=0)).description.text == "(1) Behind."


def test_relative_speed_includes_the_observers_turning():
    # A static box seen by a camera turning ever faster (increments x1.5): its apparent step
    # (chord 10 sin(dtheta/2), first 0.17 > 0.1) grows ~x1.5 per step: "Become larger";
    # absolutely it does not move (0 < 0.1 near-zero): "Keep nearly constant".
    yaw = np.concatenate([[0.0], np.cumsum(np.deg2rad(2.0) * 1.5 ** np.arange(8))])
    scene = build_scene(T9, [{"center": np.array([5.0, 0.0, 0.0])}], cam_yaw=yaw)
    assert answer(scene, plan("rel_spd", (0,))).description.text == "(1) Become larger."
    absolute = answer(scene, plan("abs_spd", (0,), frozen_at=3))
    assert absolute.description.text == "(1) Keep nearly constant."
    np.testing.assert_allclose(absolute.quantities["speed"], 0.0, atol=1e-12)


# 32 uniform samples of a 40-frame, 10 fps clip (``recon4d process --frames 32``): the
# gaps alternate 0.1 s and 0.2 s, so a per-step length would alternate too.
UNEVEN = np.rint(np.linspace(0, 39, 32)) / 10.0


def test_uneven_sampling_alternates_short_and_long_gaps():
    gaps = np.round(np.diff(UNEVEN), 6)
    assert set(gaps) == {0.1, 0.2} and (gaps == 0.2).sum() >= 5


@pytest.mark.parametrize("qtype, frozen", [("abs_spd", 0), ("rel_spd", None)])
def test_constant_speed_under_uneven_sampling_is_nearly_constant(qtype, frozen):
    # 1.5 m/s along +y: per step the object moves 0.15 or 0.3 m, per second always 1.5 m/s.
    box = {"center": np.stack([np.full(32, 5.0), 1.5 * UNEVEN, np.zeros(32)], -1)}
    scene = build_scene(UNEVEN, [box])
    result = answer(scene, plan(qtype, (0,), frames=(0, 31), frozen_at=frozen))
    assert result.description.text == "(1) Keep nearly constant."
    np.testing.assert_allclose(result.quantities["speed"], 1.5, rtol=1e-9)
    assert result.n_values == 31


def test_speed_comparison_under_uneven_sampling_uses_seconds():
    # 1 m/s against 1.1 m/s: "nearly the same" at every step, though a 0.2 s step of the
    # slower one is longer than a 0.1 s step of the faster one.
    slow = {"center": np.stack([np.full(32, 5.0), 1.0 * UNEVEN, np.zeros(32)], -1)}
    fast = {"center": np.stack([np.full(32, 6.0), -1.1 * UNEVEN, np.zeros(32)], -1)}
    scene = build_scene(UNEVEN, [slow, fast])
    result = answer(scene, plan("rel_spd_comp", (0, 1), frames=(0, 31)))
    assert result.description.text == "(1) Their speed is nearly the same."
    np.testing.assert_allclose(result.quantities["speed_former"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(result.quantities["speed_latter"], 1.1, rtol=1e-9)


def test_near_zero_cut_off_applies_to_speeds_per_second():
    # Steps of 0.03, 0.06, 0.12 m every 0.5 s are 0.06, 0.12, 0.24 m/s: only the first is
    # below the 0.1 cut-off, so the speed grows from the start (per step, 0.03 and 0.06
    # would both be "nearly zero" and the answer would start with "Keep nearly constant").
    t = np.arange(4) * 0.5
    box = {"center": np.stack([np.full(4, 5.0), np.cumsum([0, 0.03, 0.06, 0.12]), np.zeros(4)], -1)}
    result = answer(build_scene(t, [box]), plan("rel_spd", (0,), frames=(0, 3)))
    np.testing.assert_allclose(result.quantities["speed"], [0.06, 0.12, 0.24])
    assert result.description.text == "(1) Become larger."


def test_direction_prediction_hides_at_least_one_second_under_uneven_sampling():
    from recon4d.qa_compiler.sampler import SamplingConfig, SceneIndex

    scene = build_scene(UNEVEN, [{"center": np.zeros(3)}])
    index = SceneIndex(scene, SamplingConfig())
    shown, end = index.predictions.T
    assert len(shown) > 0
    hidden = UNEVEN[end] - UNEVEN[shown]
    assert (hidden >= 1.0 - 1e-9).all()
    # the last shown frame is the latest one a full second before the end
    assert (UNEVEN[end] - UNEVEN[shown + 1] < 1.0 - 1e-9).all()


def test_camera_as_target_of_distance_and_direction_prediction():
    # The camera drives along +x at 0.5 per frame; the box ahead keeps 2 * 1.5^t in front.
    cam_x = np.stack([0.5 * np.arange(9), np.zeros(9), np.zeros(9)], -1)
    box = {"center": cam_x + np.stack([2 * 1.5 ** np.arange(9), np.zeros(9), np.zeros(9)], -1)}
    scene = build_scene(T9, [box], cam_position=cam_x)
    result = answer(scene, plan("rel_dis", (CAMERA, 0)))
    assert result.description.text == "(1) Become larger."
    # From its own pose at 0.0s, the camera moves to the Front.
    pred = answer(scene, plan("abs_dir_pred", (CAMERA,), frames=(5, 8), frozen_at=0, visible=(0, 5)))
    assert pred.description.text == "(1) Front."
    np.testing.assert_allclose(pred.quantities["displacement"], [[1.5, 0.0, 0.0]])


def test_speed_comparison_wording_depends_on_order_and_profile():
    fast = {"center": np.stack([np.full(9, 5.0), 1.0 * np.arange(9), np.zeros(9)], -1)}
    slow = {"center": np.stack([np.full(9, 5.0), -0.2 * np.arange(9), np.zeros(9)], -1)}
    scene = build_scene(T9, [fast, slow])
    assert answer(scene, plan("rel_spd_comp", (0, 1))).description.text == "(1) The former is always faster."
    assert answer(scene, plan("abs_spd_comp", (1, 0), frozen_at=2)).description.text == "The latter is always faster."
    assert answer(scene, plan("abs_spd_comp", (1, 0), frozen_at=2), PAPER).description.text == (
        "(1) The latter is always faster."
    )


def test_direction_prediction_uses_the_hidden_last_second_and_the_final_box():
    # The box walks left (+y) for 4 s then turns forward (+x): the answer reads only the
    # displacement from the last shown frame to the end.
    t = np.arange(13) * 0.5
    y = np.minimum(t, 4.0)
    x = 5 + np.maximum(t - 5.0, 0.0) * 2
    scene = build_scene(t, [{"center": np.stack([x, y, np.zeros(13)], -1)}])
    p = plan("rel_dir_pred", (0,), frames=(10, 12), visible=(0, 10))
    assert answer(scene, p).description.text == "(1) Front."
    early = plan("rel_dir_pred", (0,), frames=(2, 4), visible=(0, 2))
    assert answer(scene, early).description.text == "(1) Left."
    assert get_type("rel_dir_pred").question(scene, p) == (
        "Following the perspective of camera, predict the moving direction of box with final "
        "bounding box coordinates [10,10,60,100]"
    )


def test_every_type_generates_on_a_rich_scene_with_reference_wording():
    scene = rich_scene(3)
    box = r"\[\d+,\d+,\d+,\d+\]"
    for name in QUESTION_TYPES:
        records, report = compile_scene(scene, CompileConfig(n_per_scene=3, types=(name,)))
        assert records, f"{name}: {report.failures}"
        for record in records:
            assert record.qtype == name and record.answer_text in record.options
            qtype = get_type(name)
            prefix = qtype.template.split("{")[0]
            assert record.question.startswith(prefix)
            for match in re.findall(r"(\d+\.\d+)s", record.question):
                assert len(match.split(".")[1]) == 1
            if record.observer != "camera" and record.viewpoint == "absolute":
                assert re.search(rf"with bounding box coordinates {box} at \d+\.\ds", record.question)
            if name.endswith("dir_pred") and record.targets != ("camera",):
                assert re.search(rf"with final bounding box coordinates {box}$", record.question)
            if not name.endswith("dir_pred") and record.targets[0] != "camera":
                assert "with initial bounding box coordinates" in record.question


def test_forward_axis_of_the_camera_is_its_optical_axis():
    yaw = np.deg2rad(30.0) * np.arange(9)
    scene = build_scene(T9, [{"center": np.zeros(3)}], cam_yaw=yaw)
    forward = entity_forward_world(scene, [CAMERA], np.arange(9))[0]
    np.testing.assert_allclose(forward, np.stack([np.cos(yaw), np.sin(yaw), 0 * yaw], -1), atol=1e-12)


def test_zero_direction_is_skipped_not_answered():
    scene = build_scene(T9, [{"center": np.array([5.0, 0, 0])}, {"center": np.array([5.0, 0, 0])}])
    with pytest.raises(Skip, match="degenerate_direction"):
        answer(scene, plan("abs_dir", (0, 1), frozen_at=0))


def test_speed_questions_may_target_non_agents_a_documented_difference():
    # README: unlike DSR Suite, abs_spd asks about any object with a centre track.
    scene = rich_scene(5)
    records, _ = compile_scene(scene, CompileConfig(n_per_scene=12, types=("abs_spd",)))
    rows = [scene.object_index(int(t)) for r in records for t in r.targets if t != "camera"]
    assert any(not scene.is_agent[row] for row in rows)
