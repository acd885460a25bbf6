"""qa_compiler/quality_gate.py and its use by the compiler: what the gate refuses, and that it is counted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recon4d.qa_compiler.compiler import CompileConfig, CompileReport, compile_scene
from recon4d.qa_compiler.quality_gate import GATE_REASONS, GateReport, apply_quality_gate
from recon4d.types import CameraQuality, ObjectQuality
from tests.qa_compiler.test_questions import build_scene


def rich_scene(seed: int = 0, n_frames: int = 32, fps: float = 4.0, n_objects: int = 4):
    """A slowly moving, turning camera and objects walking smooth curves at about 1 m/s, 4–9 m away,
    so no step breaks a physical limit (even rows are agents facing their way)."""
    rng = np.random.default_rng(seed)
    times = np.arange(n_frames) / fps
    cam_position = np.stack([0.3 * times, 0.1 * np.sin(times), np.full(n_frames, 1.6)], axis=1)
    cam_yaw = 0.05 * np.sin(times)
    objects = []
    for i in range(n_objects):
        start = np.array([5.0 + 1.0 * i, rng.uniform(-2, 2), 0.9])
        angle = rng.uniform(0, 2 * np.pi) + 0.3 * times
        velocity = np.stack([np.cos(angle), np.sin(angle), np.zeros(n_frames)], axis=1)
        center = start + np.cumsum(velocity, axis=0) / fps
        heading = angle if i % 2 == 0 else None
        objects.append({"center": center, "heading": heading})
    return build_scene(times, objects, cam_position, cam_yaw, source=f"clip{seed}.mp4")


def with_record(scene, score=None, frame_ok=None, camera_ok=None, scale_source="ground-plane"):
    """``scene`` with a quality record: every object trusted unless told otherwise."""
    k, t = scene.n_objects, scene.n_frames
    score = np.ones(k) if score is None else np.asarray(score, float)
    frame_ok = np.ones((k, t), bool) if frame_ok is None else frame_ok
    camera_ok = np.ones(t, bool) if camera_ok is None else camera_ok
    nan = np.full(k, np.nan)
    objects = ObjectQuality(np.ones(k), np.zeros(k), np.zeros(k, int), np.zeros(k), np.zeros(k), np.full(k, 12.0),
                            np.zeros(k, int), nan, nan, np.zeros(k), np.zeros(k), score, ("",) * k, frame_ok)
    camera = CameraQuality(np.ones(t), np.zeros(t), ~camera_ok, camera_ok, "parallax", scale_source, 1.0)
    return replace(scene, object_quality=objects, camera_quality=camera)


def used_frames(records, scene, label):
    """(T,) bool frames of the scene that some record's interval covers with ``label`` as a target or a
    relative observer (an absolute observer is needed only at its viewpoint time)."""
    used = np.zeros(scene.n_frames, bool)
    for record in records:
        if label in record.targets or (record.observer == label and record.observer_time_s is None):
            first, last = record.frame_range
            used[first : last + 1] = True
    return used


def test_a_fully_trusted_scene_compiles_exactly_as_without_the_gate():
    scene = with_record(rich_scene(seed=1))
    gated, report = compile_scene(scene, CompileConfig(n_per_scene=12, seed=3))
    plain, _ = compile_scene(scene, CompileConfig(n_per_scene=12, seed=3, min_quality=None))
    assert [r.question for r in gated] == [r.question for r in plain]
    assert report.gate["object_frames_kept"] == report.gate["object_frames"] > 0
    assert not any(report.gate["counts"].values())


def test_objects_below_min_quality_are_never_asked_about():
    scene = with_record(rich_scene(seed=2), score=[0.9, 0.2, 0.9, 0.1])
    records, report = compile_scene(scene, CompileConfig(n_per_scene=30, seed=0))
    labels = {t for r in records for t in r.targets} | {r.observer for r in records}
    assert records and not labels & {"2", "4"}
    assert report.gate["counts"]["object_below_min_quality"] == 2
    assert report.gate["counts"]["object_frames_of_dropped_objects"] == 2 * scene.n_frames
    everything, _ = compile_scene(scene, CompileConfig(n_per_scene=30, seed=0, min_quality=None))
    assert {t for r in everything for t in r.targets} & {"2", "4"}
    lenient, _ = compile_scene(scene, CompileConfig(n_per_scene=30, seed=0, min_quality=0.15))
    assert "2" in {t for r in lenient for t in r.targets} | {r.observer for r in lenient}


def test_frames_the_record_refuses_break_the_spans():
    base = rich_scene(seed=3)
    frame_ok = np.ones((base.n_objects, base.n_frames), bool)
    frame_ok[0, 10:14] = False
    scene = with_record(base, frame_ok=frame_ok)
    records, report = compile_scene(scene, CompileConfig(n_per_scene=40, seed=1))
    assert not used_frames(records, scene, "1")[10:14].any()
    assert report.gate["counts"]["object_frames_failed_checks"] == 4
    result = apply_quality_gate(scene, 0.5)
    assert not result.scene.visible[0, 10:14].any() and np.isnan(result.scene.center_world[0, 10:14]).all()
    assert np.isnan(result.scene.box_xyxy[0, 10:14]).all()


def test_untrusted_camera_frames_lose_the_pose_and_every_object():
    base = rich_scene(seed=4)
    camera_ok = np.ones(base.n_frames, bool)
    camera_ok[20:] = False
    scene = with_record(base, camera_ok=camera_ok)
    result = apply_quality_gate(scene, 0.5)
    assert np.isnan(result.scene.cam_to_world[20:]).all() and np.isfinite(result.scene.cam_to_world[:20]).all()
    assert not result.object_ok[:, 20:].any()
    assert result.report.counts["camera_frames_untrusted"] == 12
    records, _ = compile_scene(scene, CompileConfig(n_per_scene=40, seed=2))
    assert records and max(r.frame_range[1] for r in records) < 20
    assert all(r.observer_time_s is None or r.observer_time_s < scene.timestamps_s[20] for r in records)


def test_camera_frames_few_background_tracks_agree_with_lose_the_pose():
    """The record trusts every frame, but from frame 20 on only 60 % of the background tracks agree
    with the pose (a followed subject pulling it): the gate does not let labels rest on those
    frames; unmeasured ratios (NaN) and the switch turned off keep them."""
    base = with_record(rich_scene(seed=4))
    inliers = np.full(base.n_frames, 0.97)
    inliers[20:] = 0.6
    inliers[5] = np.nan
    scene = replace(base, camera_quality=replace(base.camera_quality, inlier_ratio=inliers))
    result = apply_quality_gate(scene, 0.5)
    assert np.isnan(result.scene.cam_to_world[20:]).all() and np.isfinite(result.scene.cam_to_world[:20]).all()
    assert not result.object_ok[:, 20:].any() and result.object_ok[:, :20].all()
    assert result.report.counts["camera_frames_few_inliers"] == 12
    assert result.report.counts["camera_frames_untrusted"] == 0
    records, report = compile_scene(scene, CompileConfig(n_per_scene=40, seed=2))
    assert records and max(r.frame_range[1] for r in records) < 20
    assert report.gate["counts"]["camera_frames_few_inliers"] == 12
    assert "too few background tracks agree" in report.summary()
    off = apply_quality_gate(scene, 0.5, min_pose_inliers=None)
    assert off.object_ok.all() and off.report.counts["camera_frames_few_inliers"] == 0
    lenient, _ = compile_scene(scene, CompileConfig(n_per_scene=40, seed=2, min_pose_inliers=0.5))
    assert max(r.frame_range[1] for r in lenient) >= 20
    with pytest.raises(ValueError, match="min_pose_inliers"):
        CompileConfig(min_pose_inliers=1.5)


def test_the_gate_rechecks_speed_and_depth_jumps_itself():
    base = rich_scene(seed=5)
    center = base.center_world.copy()
    center[0, 16:] += [0.0, 15.0, 0.0]  # a 60 m/s sideways jump the record did not notice
    ray = center[1, 8:] - base.cam_to_world[8:, :3, 3]
    center[1, 8:] += 1.5 * ray / np.linalg.norm(ray, axis=1, keepdims=True)  # 1.5 m deeper at once (6 m/s)
    scene = with_record(replace(base, center_world=center))
    result = apply_quality_gate(scene, 0.5)
    assert not result.object_ok[0, 16] and result.object_ok[0, 15] and result.object_ok[0, 17]
    assert not result.object_ok[1, 8]
    assert result.report.counts["object_frames_over_limits"] >= 2
    arbitrary = apply_quality_gate(with_record(replace(base, center_world=center), scale_source="arbitrary"), 0.5)
    assert arbitrary.object_ok[0, 16] and arbitrary.report.counts["object_frames_over_limits"] == 0


def test_scenes_without_a_record_pass_and_are_counted():
    scene = rich_scene(seed=6)
    result = apply_quality_gate(scene, 0.9)
    assert result.scene is scene and result.report.counts == {"scene_without_quality_record": 1}
    _, report = compile_scene(scene, CompileConfig(n_per_scene=5))
    assert report.gate["counts"] == {"scene_without_quality_record": 1}
    assert "has no quality record" in report.summary()


def test_reports_merge_and_print_every_reason():
    a = apply_quality_gate(with_record(rich_scene(seed=7), score=[0.1, 1, 1, 1]), 0.5).report
    b = apply_quality_gate(rich_scene(seed=8), 0.5).report
    merged = GateReport.merge([a, b])
    assert merged.counts["object_below_min_quality"] == 1 and merged.counts["scene_without_quality_record"] == 1
    assert merged.objects == 8 and GateReport.from_json(merged.to_json()) == merged
    text = merged.summary(0.5)
    assert "kept 7/8 objects" in text and GATE_REASONS["object_below_min_quality"] in text
    reports = [compile_scene(with_record(rich_scene(seed=s), score=[0.1, 1, 1, 1]), CompileConfig(n_per_scene=3))[1]
               for s in (9, 10)]
    total = CompileReport.merge(reports)
    assert total.gate["counts"]["object_below_min_quality"] == 2 and total.min_quality == 0.5
    off = compile_scene(rich_scene(seed=9), CompileConfig(n_per_scene=3, min_quality=None))[1]
    assert off.gate == {} and "quality gate off" in off.summary()


@pytest.mark.parametrize("bad", [{"min_quality": 1.5}, {"min_quality": -0.1}, {"max_depth_jump_m": 0},
                                 {"stability_draws": -1}, {"min_stability": 1.2}])
def test_config_rejects_bad_gate_values(bad):
    with pytest.raises(ValueError):
        CompileConfig(**bad)


def noisy_record(scene, noise_m, lam=0.05):
    scene = with_record(scene)
    k = scene.n_objects
    return replace(scene, object_quality=replace(scene.object_quality, noise_m=np.full(k, noise_m),
                                                 smooth_lambda_s3=np.full(k, lam)))


def test_noisy_scenes_perturb_visible_centres_and_agent_headings():
    from recon4d.qa_compiler.quality_gate import noisy_scenes

    base = rich_scene(seed=11)
    visible = base.visible.copy()
    visible[1, 5:9] = False
    scene = noisy_record(replace(base, visible=visible, center_world=np.where(visible[..., None], base.center_world,
                                                                                np.nan)), 0.2)
    draws = noisy_scenes(scene, np.random.default_rng(0), 5)
    assert len(draws) == 5
    for draw in draws:
        moved = np.linalg.norm(draw.center_world - scene.center_world, axis=-1)
        assert np.isnan(moved[1, 5:9]).all() and (moved[visible] > 0).all() and moved[visible].mean() < 0.4
        turned = draw.orientation[..., 0] - scene.orientation[..., 0]
        assert np.nanmax(np.abs(turned[scene.is_agent])) > 0 and np.isnan(draw.orientation[~scene.is_agent]).all()
    assert noisy_scenes(rich_scene(seed=11), np.random.default_rng(0), 5) == []
    assert noisy_scenes(scene, np.random.default_rng(0), 0) == []


def test_noisy_scenes_turn_an_agent_by_its_own_heading_error():
    # A standing agent: its position noise implies no heading error (no direction of travel),
    # yet a heading held from earlier motion or a facing that is not its path can be far off.
    from recon4d.qa_compiler.quality_gate import noisy_scenes

    base = rich_scene(seed=13)
    standing = np.broadcast_to(base.center_world[:, :1], base.center_world.shape)
    scene = noisy_record(replace(base, center_world=np.where(base.visible[..., None], standing, np.nan)), 0.05)
    agent = int(np.flatnonzero(scene.is_agent)[0])
    seen = scene.visible[agent]

    def turns(sigma, record=scene):
        draws = noisy_scenes(record, np.random.default_rng(1), 200, heading_sigma_deg=sigma)
        return np.stack([(d.orientation[agent, seen, 0] - record.orientation[agent, seen, 0] + 180) % 360 - 180
                         for d in draws])

    assert np.abs(turns(0.0)).max() < 1e-3
    assert 12.0 < turns(15.0)[:, 0].std() < 18.0
    calm = noisy_record(scene, 0.0)  # a record that claims no noise is taken as exact
    assert noisy_scenes(calm, np.random.default_rng(1), 3, heading_sigma_deg=15.0)[0].orientation[agent, seen, 0] == \
        pytest.approx(calm.orientation[agent, seen, 0])


def test_noisy_scenes_stretch_the_error_along_the_viewing_ray():
    from recon4d.qa_compiler.quality_gate import noisy_scenes

    scene = noisy_record(rich_scene(seed=14), 0.1, lam=0.0)  # white noise: each frame on its own
    k = 0
    seen = scene.visible[k]
    ray = scene.center_world[k, seen] - scene.cam_to_world[seen, :3, 3]
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)

    def spread(factor):
        errors = np.stack([d.center_world[k, seen] - scene.center_world[k, seen]
                           for d in noisy_scenes(scene, np.random.default_rng(2), 100, along_ray_factor=factor)])
        along = np.einsum("dni,ni->dn", errors, ray)
        across = np.linalg.norm(errors - along[..., None] * ray, axis=-1) / np.sqrt(2)
        return along.std(), np.sqrt(np.mean(across ** 2))

    along, across = spread(1.0)
    assert along == pytest.approx(0.1, rel=0.1) and across == pytest.approx(0.1, rel=0.1)
    along, across = spread(3.0)
    assert along == pytest.approx(0.3, rel=0.1) and across == pytest.approx(0.1, rel=0.1)


def test_unstable_answers_are_dropped_and_counted():
    calm = noisy_record(rich_scene(seed=12), 0.0)
    noisy = noisy_record(rich_scene(seed=12), 3.0)  # metres of noise: few answers survive
    config = CompileConfig(n_per_scene=20, seed=4)
    calm_records, calm_report = compile_scene(calm, config)
    noisy_records, noisy_report = compile_scene(noisy, config)
    assert calm_report.failures.get("unstable_answer", 0) == 0
    assert noisy_report.failures["unstable_answer"] > 0
    assert noisy_report.attempts == noisy_report.generated + noisy_report.total_failures
    off, _ = compile_scene(noisy, replace(config, stability_draws=0))
    assert [r.question for r in off] == [r.question for r in calm_records]  # same draws without the check


def test_a_wobbling_camera_path_makes_its_own_answers_unstable():
    from recon4d.qa_compiler.quality_gate import noisy_scenes

    def moved(scene):
        return np.mean([np.linalg.norm(d.cam_to_world[:, :3, 3] - scene.cam_to_world[:, :3, 3], axis=1).mean()
                        for d in noisy_scenes(scene, np.random.default_rng(0), 3)])

    calm = noisy_record(rich_scene(seed=12), 0.0)
    cam_to_world = calm.cam_to_world.copy()
    cam_to_world[:, :3, 3] += np.random.default_rng(3).normal(0.0, 0.3, (calm.n_frames, 3))  # a pose chain that wobbles
    untrusted = replace(calm.camera_quality, score=0.8)  # e.g. a restarted frame, a guessed scale
    wobbly = replace(calm, cam_to_world=cam_to_world, camera_quality=untrusted)
    assert moved(replace(wobbly, camera_quality=replace(untrusted, score=1.0))) == 0.0  # trusted: taken as exact
    assert moved(calm) < 0.01  # a smooth path: its curvature is no jitter
    assert 0.2 < moved(wobbly) < 0.9  # ~ the wobble's size (0.3 per axis)
    config = CompileConfig(n_per_scene=20, seed=4, types=("abs_spd", "abs_dir_pred"))
    _, calm_report = compile_scene(calm, config)
    _, wobbly_report = compile_scene(wobbly, config)
    assert calm_report.failures.get("unstable_answer", 0) == 0
    assert wobbly_report.failures.get("unstable_answer", 0) > 0


def test_jitter_of_a_smooth_path_is_zero_and_of_white_noise_its_sigma():
    from recon4d.quality import jitter_m

    times = np.arange(200) / 10.0
    smooth = np.stack([times, 0.5 * times, np.zeros_like(times)], axis=1)
    np.testing.assert_allclose(jitter_m(times, smooth), 0.0, atol=1e-12)
    noisy = smooth + np.random.default_rng(0).normal(0.0, 0.1, smooth.shape)
    np.testing.assert_allclose(jitter_m(times, noisy), 0.1, rtol=0.2)
    assert np.isnan(jitter_m(times[:2], smooth[:2])).all()


def test_a_trusted_camera_few_background_tracks_agree_with_is_not_taken_as_exact():
    """A camera the record fully trusts, whose path wobbles (a bob, or pose error): while ≥ 95 % of
    the background tracks agree with its poses it is taken as exact; at a median of 85 % (above
    min_pose_inliers, so every frame keeps its pose) its answers must hold under its own jitter,
    and the scene is counted as checked."""
    from recon4d.qa_compiler.quality_gate import camera_taken_as_exact, noisy_scenes

    calm = noisy_record(rich_scene(seed=12), 0.0)
    cam_to_world = calm.cam_to_world.copy()
    cam_to_world[:, :3, 3] += np.random.default_rng(3).normal(0.0, 0.3, (calm.n_frames, 3))
    agreeing = replace(calm, cam_to_world=cam_to_world)
    pulled = replace(agreeing, camera_quality=replace(agreeing.camera_quality,
                                                      inlier_ratio=np.full(calm.n_frames, 0.85)))
    assert agreeing.camera_quality.score == pulled.camera_quality.score == 1.0
    assert camera_taken_as_exact(agreeing) and not camera_taken_as_exact(pulled)
    assert camera_taken_as_exact(pulled, exact_camera_inliers=None)

    def moved(scene, **kwargs):
        return np.mean([np.linalg.norm(d.cam_to_world[:, :3, 3] - scene.cam_to_world[:, :3, 3], axis=1).mean()
                        for d in noisy_scenes(scene, np.random.default_rng(0), 3, **kwargs)])

    assert moved(agreeing) == 0.0 and moved(pulled, exact_camera_inliers=None) == 0.0
    assert 0.2 < moved(pulled) < 0.9  # ~ the wobble's size (0.3 per axis)
    config = CompileConfig(n_per_scene=20, seed=4, types=("abs_spd", "abs_dir_pred"))
    _, agreeing_report = compile_scene(agreeing, config)
    _, pulled_report = compile_scene(pulled, config)
    _, lenient_report = compile_scene(pulled, replace(config, exact_camera_inliers=None))
    assert agreeing_report.failures.get("unstable_answer", 0) == lenient_report.failures.get("unstable_answer", 0) == 0
    assert pulled_report.failures.get("unstable_answer", 0) > 0
    assert pulled_report.gate["counts"]["camera_jitter_checked"] == 1
    assert agreeing_report.gate["counts"]["camera_jitter_checked"] == 0
    assert "checked 1: scenes whose trusted camera was not taken as exact" in pulled_report.summary()
    with pytest.raises(ValueError, match="exact_camera_inliers"):
        CompileConfig(exact_camera_inliers=1.5)


def test_exactness_looks_only_at_kept_measured_poses_of_a_moving_camera():
    """Frames the gate took the pose from (NaN) and unmeasured ratios do not count towards the
    median; a still camera (no path, no jitter) is never counted as checked."""
    from recon4d.qa_compiler.quality_gate import camera_taken_as_exact

    scene = with_record(rich_scene(seed=13))
    inliers = np.full(scene.n_frames, 0.97)
    inliers[:20] = 0.85  # most frames low ...
    inliers[20:] = np.nan  # ... but unmeasured after
    inliers[25:] = 0.99
    low = replace(scene, camera_quality=replace(scene.camera_quality, inlier_ratio=inliers))
    assert not camera_taken_as_exact(low)
    unposed = replace(low, cam_to_world=np.where((np.arange(scene.n_frames) < 20)[:, None, None], np.nan,
                                                 low.cam_to_world))
    assert camera_taken_as_exact(unposed)  # only 0.99s left
    assert camera_taken_as_exact(replace(low, camera_quality=replace(low.camera_quality, inlier_ratio=np.full(
        scene.n_frames, np.nan))))
    still = replace(low, cam_to_world=np.repeat(low.cam_to_world[:1], scene.n_frames, axis=0))
    assert apply_quality_gate(still, 0.5).report.counts["camera_jitter_checked"] == 0
    assert apply_quality_gate(low, 0.5).report.counts["camera_jitter_checked"] == 1


FOCAL_PX = 500.0


def camera_depth(scene, k):
    """(T,) depth of object ``k``'s centre in each frame's camera."""
    rotation, position = scene.cam_to_world[:, :3, :3], scene.cam_to_world[:, :3, 3]
    return np.einsum("tji,tj->ti", rotation, scene.center_world[k] - position)[:, 2]


def sized_scene(seed: int, held: bool):
    """rich_scene with a known camera (focal 500 px) and 1.7 m tall boxes at each object's true depth;
    ``held``: object 0's stored centre slides along its ray to one constant depth (the box still shows
    it walking nearer and farther), the others stay true. Records a little noise for every object."""
    base = rich_scene(seed=seed)
    intrinsics = np.broadcast_to(np.array([[FOCAL_PX, 0, 320], [0, FOCAL_PX, 240], [0, 0, 1]], np.float32),
                                 (base.n_frames, 3, 3)).copy()
    boxes = base.box_xyxy.copy()
    for k in range(base.n_objects):
        half = 0.5 * FOCAL_PX * 1.7 / camera_depth(base, k)
        boxes[k, :, 1], boxes[k, :, 3] = 240 - half, 240 + half
    center = base.center_world.copy()
    if held:
        depth = camera_depth(base, 0)
        position = base.cam_to_world[:, :3, 3]
        center[0] = position + (center[0] - position) * (np.median(depth) / depth)[:, None]
    scene = replace(base, intrinsics=intrinsics, box_xyxy=boxes, center_world=center)
    return noisy_record(scene, 1e-4, lam=0.0)


def test_size_depth_offset_is_the_depth_change_the_box_scale_asks_for():
    from recon4d.qa_compiler.quality_gate import size_depth_offset

    depth = np.linspace(5.0, 8.0, 24)  # walking away...
    height = FOCAL_PX * 1.7 / depth
    focal = np.full(24, FOCAL_PX)
    uncut = np.ones(24, bool)
    assert np.abs(size_depth_offset(depth, height, focal, uncut)).max() < 1e-9  # ...and placed so: no doubt
    held = np.full(24, 6.5)  # ...placed at one depth: the box scale asks for the walk back
    offset = size_depth_offset(held, height, focal, uncut)
    assert np.abs(held + offset - depth).max() < 0.35 and np.abs(held + offset - depth)[6:-6].max() < 0.1
    jitter = height * np.where(np.arange(24) % 7 == 3, 1.15, 1.0)  # a box a few pixels taller now and then
    assert np.abs(size_depth_offset(depth, jitter, focal, uncut)).max() < 1e-9
    cut = uncut.copy()
    cut[:4] = False  # a cut box says nothing of the size
    assert (size_depth_offset(held, height, focal, cut)[:4] == 0).all()
    assert (size_depth_offset(held, height, focal, np.arange(24) < 2) == 0).all()  # too few uncut boxes


def test_depth_unmeasured_finds_held_and_bridged_depths_only():
    from recon4d.qa_compiler.quality_gate import depth_unmeasured

    times = np.arange(12) / 12.0
    assert depth_unmeasured(times, np.full(12, 8.1))  # held
    assert depth_unmeasured(times, 8.0 + 0.3 * times)  # bridged by a line
    assert not depth_unmeasured(times, 8.0 + 0.3 * times + np.random.default_rng(0).normal(0, 0.01, 12))
    assert not depth_unmeasured(times[:2], np.full(2, 8.0))


def test_noisy_scenes_doubt_a_depth_the_box_scale_disagrees_with():
    from recon4d.qa_compiler.quality_gate import noisy_scenes

    def along_ray_spread(scene, **options):
        seen = scene.visible[0]
        ray = scene.center_world[0, seen] - scene.cam_to_world[seen, :3, 3]
        ray /= np.linalg.norm(ray, axis=1, keepdims=True)
        draws = noisy_scenes(scene, np.random.default_rng(3), 50, **options)
        errors = np.stack([d.center_world[0, seen] - scene.center_world[0, seen] for d in draws])
        return np.abs(np.einsum("dni,ni->dn", errors, ray)).max()

    true, held = sized_scene(15, held=False), sized_scene(15, held=True)
    assert along_ray_spread(true, size_depth_factor=0.5) < 0.01  # box and depth agree: the record's noise only
    assert along_ray_spread(held, size_depth_factor=0.0) < 0.01  # off: the record's noise only
    assert along_ray_spread(held, size_depth_factor=0.5) > 0.3
    # the default compiler config doubts it too
    assert CompileConfig().size_depth_factor > 0 and CompileConfig().unmeasured_depth_factor > 0


def test_noisy_scenes_drift_a_held_depth_as_fast_as_the_image_motion():
    from recon4d.qa_compiler.quality_gate import noisy_scenes

    times = np.arange(24) / 12.0
    camera = build_scene(times, [{"center": np.zeros(3)}], np.array([0.0, 0.0, 1.6])).cam_to_world
    local = np.stack([0.6 * times, np.zeros(24), np.full(24, 8.0)], axis=1)  # 0.6 m/s across, depth held
    across = np.einsum("tij,tj->ti", camera[:, :3, :3], local) + camera[:, :3, 3]
    scene = noisy_record(build_scene(times, [{"center": across}], np.array([0.0, 0.0, 1.6])), 1e-4, lam=0.0)
    draws = noisy_scenes(scene, np.random.default_rng(4), 400, unmeasured_depth_factor=1.0)
    depth_speed = np.stack([np.polyfit(times, camera_depth(d, 0), 1)[0] for d in draws])
    assert depth_speed.std() == pytest.approx(0.6, rel=0.15)
    measured = replace(scene, center_world=scene.center_world + np.random.default_rng(5).normal(0, 0.02, (1, 24, 3)))
    draws = noisy_scenes(measured, np.random.default_rng(4), 50, unmeasured_depth_factor=1.0)
    assert np.abs(np.stack([d.center_world - measured.center_world for d in draws])).max() < 0.01
