"""Tests of qa_compiler/sampler.py: seeding, type balance, plans and their failure reasons."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon4d.qa_compiler.observers import CAMERA, oriented, pose_known, present
from recon4d.qa_compiler.questions import ABSOLUTE, Skip, get_type
from recon4d.qa_compiler.records import QUESTION_TYPES
from recon4d.qa_compiler.referents import referent_frames
from recon4d.qa_compiler.sampler import (
    REASONS,
    SamplingConfig,
    SceneIndex,
    choose_type,
    plan_question,
    scene_rng,
    stable_hash,
)
from tests.conftest import make_scene
from tests.qa_compiler.test_questions import build_scene, rich_scene

T9 = np.arange(9) * 0.5


def test_stable_hash_and_scene_rng_do_not_depend_on_the_process():
    # Fixed forever: the first 8 bytes of the text's sha256, little-endian, unsalted.
    expected = int.from_bytes(hashlib.sha256("clip".encode("utf-8")).digest()[:8], "little")
    assert stable_hash("clip") == expected == 3158481071412777063
    assert stable_hash("é") == int.from_bytes(hashlib.sha256(b"\xc3\xa9").digest()[:8], "little")
    draws = scene_rng(7, "clip").random(3)
    np.testing.assert_array_equal(draws, scene_rng(7, "clip").random(3))
    assert not np.array_equal(draws, scene_rng(8, "clip").random(3))
    assert not np.array_equal(draws, scene_rng(7, "clip2").random(3))


def test_choose_type_weights_by_inverse_frequency_and_target_share():
    rng = np.random.default_rng(0)
    picks = Counter(choose_type(["a", "b"], {"a": 9, "b": 0}, rng) for _ in range(3000))
    assert picks["b"] / 3000 == pytest.approx(10 / 11, abs=0.03)  # weights 1/10 vs 1/1
    picks = Counter(choose_type(["a", "b"], {}, rng, target={"a": 3.0, "b": 1.0}) for _ in range(3000))
    assert picks["a"] / 3000 == pytest.approx(0.75, abs=0.03)
    # Counts already at the target shares keep being drawn in those shares.
    picks = Counter(choose_type(["a", "b"], {"a": 30, "b": 10}, rng, target={"a": 3.0, "b": 1.0}) for _ in range(3000))
    assert picks["a"] / 3000 == pytest.approx(0.75, abs=0.03)
    with pytest.raises(ValueError, match="all zero"):
        choose_type(["a"], {}, rng, target={"a": 0.0})


def test_sampling_config_rejects_nonsense():
    with pytest.raises(ValueError):
        SamplingConfig(min_interval_frames=1)
    with pytest.raises(ValueError):
        SamplingConfig(camera_target_prob=1.5)
    with pytest.raises(ValueError):
        SamplingConfig(pred_horizon_s=0.0)


def _check_plan(index: SceneIndex, name: str, p) -> None:
    scene, config = index.scene, index.config
    qtype = get_type(name)
    times = scene.timestamps_s
    first, last = p.frame_range
    frames = np.arange(first, last + 1)
    assert len(set(p.targets)) == len(p.targets) == qtype.n_targets
    usable = oriented(scene, config.min_orient_conf) if qtype.oriented_targets else present(scene)
    for target in p.targets:
        if target != CAMERA:
            assert usable[target, frames].all(), "targets are present in every frame of the interval"
        elif qtype.oriented_targets:
            assert config.camera_orientation
    known = pose_known(scene, p.observer, config.min_orient_conf)
    if qtype.predicts:
        assert p.visible_range == (0, first)
        assert times[last] - times[first] >= config.pred_horizon_s - 1e-9
        assert times[first + 1] > times[last] - config.pred_horizon_s  # first = last shown frame
        assert first >= config.min_interval_frames - 1
    else:
        assert p.visible_range == (0, scene.n_frames - 1)
        assert last - first + 1 >= config.min_interval_frames
        assert times[last] - times[first] >= config.min_interval_s - 1e-9
    if qtype.viewpoint == ABSOLUTE:
        assert known[p.frozen_at]
        assert not qtype.predicts or p.frozen_at <= first
    else:
        assert p.frozen_at is None
        assert known[[first, last]].all() if qtype.predicts else known[frames].all()
        if qtype.excludes_observer:
            assert p.observer not in p.targets


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_frames=st.integers(6, 30),
    n_objects=st.integers(1, 5),
    name=st.sampled_from(QUESTION_TYPES),
    camera_orientation=st.booleans(),
)
def test_plans_satisfy_the_sampling_invariants(seed, n_frames, n_objects, name, camera_orientation):
    scene = make_scene(n_frames=n_frames, n_objects=n_objects, heavy=False, seed=seed)
    config = SamplingConfig(min_interval_s=0.3, pred_horizon_s=0.2, min_orient_conf=0.3,
                            camera_orientation=camera_orientation)
    index = SceneIndex(scene, config)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        try:
            p = plan_question(index, get_type(name), rng)
        except Skip as skip:
            assert skip.reason in REASONS
            continue
        _check_plan(index, name, p)


def test_a_scene_without_agents_cannot_ask_orientation():
    scene = build_scene(T9, [{"center": np.zeros(3)}, {"center": np.ones(3)}])
    index = SceneIndex(scene, SamplingConfig())
    with pytest.raises(Skip, match="no_agent_for_ori") as info:
        plan_question(index, get_type("abs_ori"), np.random.default_rng(0))
    assert info.value.structural
    # ... unless the camera's own orientation may be asked, as DSR Suite does.
    index = SceneIndex(scene, SamplingConfig(camera_orientation=True))
    p = plan_question(index, get_type("abs_ori"), np.random.default_rng(0))
    assert p.targets == (CAMERA,)


def test_short_scenes_and_flickering_targets_are_reported():
    short = build_scene(np.arange(3) * 0.5, [{"center": np.zeros(3)}])
    with pytest.raises(Skip, match="interval_too_short"):
        plan_question(SceneIndex(short, SamplingConfig()), get_type("rel_dis"), np.random.default_rng(0))
    # No agent, so the camera observes; rel_spd cannot ask about the observer itself and
    # the only object is never present on two frames in a row.
    flicker = build_scene(T9, [{"center": np.zeros(3), "visible": np.arange(9) % 2 == 0}])
    index = SceneIndex(flicker, SamplingConfig())
    with pytest.raises(Skip, match="target_not_visible"):
        plan_question(index, get_type("rel_spd"), np.random.default_rng(0))
    with pytest.raises(Skip, match="not_enough_targets"):
        plan_question(SceneIndex(build_scene(T9, []), SamplingConfig()), get_type("abs_dis"), np.random.default_rng(0))


def test_an_agent_observer_must_be_known_over_a_relative_interval():
    agent = {"center": np.ones(3), "heading": 0.0, "visible": np.arange(9) % 2 == 0}
    scene = build_scene(T9, [agent, {"center": np.zeros(3)}])
    index = SceneIndex(scene, SamplingConfig())
    outcomes = Counter()
    for seed in range(40):
        try:
            p = plan_question(index, get_type("rel_dis"), np.random.default_rng(seed))
            outcomes[p.observer] += 1
        except Skip as skip:
            outcomes[skip.reason] += 1
    assert set(outcomes) == {CAMERA, "observer_not_visible"}
    # An absolute viewpoint only needs one known frame, inside or outside the interval.
    frozen = [plan_question(index, get_type("abs_dis"), np.random.default_rng(s)) for s in range(40)]
    assert all(index.observer_known(p.observer)[p.frozen_at] for p in frozen)
    assert any(p.observer == 0 for p in frozen)


def test_absolute_time_may_lie_outside_the_interval_and_camera_targets_are_a_coin_flip():
    index = SceneIndex(rich_scene(1), SamplingConfig())
    rng = np.random.default_rng(0)
    plans = [plan_question(index, get_type("abs_spd"), rng) for _ in range(400)]
    outside = [not p.frame_range[0] <= p.frozen_at <= p.frame_range[1] for p in plans]
    assert 0 < sum(outside) < len(plans)
    camera_share = np.mean([p.targets == (CAMERA,) for p in plans])
    assert camera_share == pytest.approx(0.5, abs=0.08)
    pairs = [plan_question(index, get_type("abs_dis"), rng).targets for _ in range(400)]
    first_camera = np.mean([t[0] == CAMERA for t in pairs])
    second_camera = np.mean([t[1] == CAMERA for t in pairs])
    assert first_camera == pytest.approx(0.5, abs=0.08)  # reference: 0.5, then 0.25
    assert second_camera == pytest.approx(0.25, abs=0.07)


def test_pick_and_pick_weighted_draw_what_rng_choice_draws():
    from recon4d.qa_compiler.sampler import pick, pick_weighted

    for seed in range(50):
        ours, numpy_choice = np.random.default_rng(seed), np.random.default_rng(seed)
        for n in range(1, 14):
            weights = np.random.default_rng(n).random(n) + (np.arange(n) == 0)
            p = weights / weights.sum()
            assert pick_weighted(ours, p) == numpy_choice.choice(n, p=p)
            values = np.arange(n) * 3 - 1
            assert pick(ours, values) == numpy_choice.choice(values)
        assert ours.random() == numpy_choice.random()  # the streams stay in step


def _naming_frames(p, predicts: bool) -> dict[int, int]:
    """Entity → the frame a question names it by (``questions.render_question``), cameras left out."""
    first = p.frame_range[0]
    frames = {t: first for t in p.targets}
    frames[p.observer] = p.frozen_at if p.frozen_at is not None else first
    frames.pop(CAMERA, None)
    return frames


@pytest.mark.parametrize("name", QUESTION_TYPES)
def test_objects_are_named_only_at_frames_the_tracker_observed(name):
    from dataclasses import replace

    scene = rich_scene(1)
    observed = np.random.default_rng(3).random(scene.visible.shape) < 0.5  # the rest were carried there
    scene = replace(scene, observed=observed)
    qtype = get_type(name)
    named_unobserved = {}
    for config in (SamplingConfig(), SamplingConfig(name_observed=False)):
        index, rng = SceneIndex(scene, config), np.random.default_rng(0)
        plans = []
        for _ in range(60):
            try:
                plans.append(plan_question(index, qtype, rng))
            except Skip as skip:
                assert skip.reason in REASONS
        assert plans
        for p in plans:
            _check_plan(index, name, p)
        named_unobserved[config.name_observed] = sum(
            not observed[k, t] for p in plans for k, t in _naming_frames(p, qtype.predicts).items())
        if config.name_observed:  # and by steady boxes only
            steady = referent_frames(scene)
            assert all(steady[k, t] for p in plans for k, t in _naming_frames(p, qtype.predicts).items())
    assert named_unobserved[True] == 0
    assert named_unobserved[False] > 0  # the scene does offer unobserved frames to name objects by


def test_a_scene_that_does_not_record_observation_is_sampled_as_before():
    from dataclasses import replace

    scene = rich_scene(2)
    for name in QUESTION_TYPES:
        plans = []
        for candidate in (scene, replace(scene, observed=np.ones_like(scene.visible))):
            index, rng = SceneIndex(candidate, SamplingConfig()), np.random.default_rng(5)
            plans.append([plan_question(index, get_type(name), rng) for _ in range(20)])
        assert plans[0] == plans[1]
    assert np.array_equal(scene.observed_frames, scene.visible)
