"""Tests of the classic tracker: tracking/classic/tracker.py, config.py, motion.py, boxes.py and user_boxes.py
(motion segmentation end to end, synthetic scenes, user boxes); the other modules have test files of their own."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from recon4d.errors import Recon4dError, ShapeError
from recon4d.tracking.classic.background import homography_flow
from recon4d.tracking.classic.boxes import box_iou
from recon4d.tracking.classic.config import ClassicTrackerConfig, hog_available
from recon4d.tracking.classic.motion import compute_motion, inside, pair_motion, robust_threshold, to_working, working_size
from recon4d.tracking.classic.tracker import ClassicTracker
from recon4d.tracking.classic.user_boxes import UserBoxesError, load_user_boxes, validate_user_boxes
from recon4d.types import Clip, PackedMasks
from tests.conftest import missing_shared_data
from tests.tracking.plane_scenes import walking_scene

SEEDS = (0, 1, 2, 3)
N_FRAMES = 20


def clip_of(frames: np.ndarray, timestamps_s=None, source_size=None) -> Clip:
    n_frames, height, width = frames.shape[:3]
    times = np.arange(n_frames) / 12.0 if timestamps_s is None else timestamps_s
    return Clip(frames=frames, timestamps_s=times, frame_index=np.arange(n_frames), fps=12.0,
                source="synthetic", source_size=source_size or (width, height))


def scene(seed: int, static_camera: bool, n_objects=None, n_frames: int = N_FRAMES):
    pytest.importorskip("open3d", reason="synthetic scenes need open3d (pip install 'recon4d[synth]')")
    pytest.importorskip("trimesh", reason="synthetic scenes need trimesh (pip install 'recon4d[synth]')")
    from recon4d.synth.scene import SynthConfig, generate_scene

    return generate_scene(SynthConfig(seed=seed, n_frames=n_frames, width=320, height=180,
                                      static_camera=static_camera, n_objects=n_objects))


def found_objects(tracks, truth, min_iou: float = 0.3) -> np.ndarray:
    """(K_gt,) bool: some track's boxes have mean IoU > min_iou with the GT object over the
    frames where both are visible."""
    found = np.zeros(truth.n_objects, bool)
    for g in range(truth.n_objects):
        for k in range(tracks.n_objects):
            both = np.flatnonzero(truth.visible[g] & tracks.visible[k])
            if len(both) == 0:
                continue
            ious = [box_iou(truth.box_xyxy[g, t], tracks.boxes_xyxy[k, t])[0, 0] for t in both]
            found[g] |= float(np.mean(ious)) > min_iou
    return found


@pytest.fixture(scope="module")
def static_scenes():
    return [scene(seed, static_camera=True) for seed in SEEDS]


@pytest.fixture(scope="module")
def moving_scenes():
    return [scene(seed, static_camera=False) for seed in SEEDS]


# --- pure helpers ------------------------------------------------------------------------------


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [np.nan] * 4])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_working_size_never_enlarges():
    assert working_size(1280, 720, 384) == (384, 216)
    assert working_size(320, 180, 384) == (320, 180)


def test_robust_threshold_floor_and_outliers():
    rng = np.random.default_rng(0)
    noise = np.abs(rng.normal(0, 1.0, 10_000))
    median = np.median(noise)
    expected = median + 4.0 * 1.4826 * np.median(np.abs(noise - median))
    assert robust_threshold(noise, 4.0, 0.5) == pytest.approx(expected)
    assert robust_threshold(noise / 10, 4.0, 1.0) == 1.0
    movers = np.concatenate([noise, np.full(500, 50.0)])  # 5 % of pixels move fast
    assert robust_threshold(movers, 4.0, 0.5) == pytest.approx(expected, rel=0.1)


def test_background_plane_of_a_shifted_image_and_zero_residual():
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (180, 320)).astype(np.uint8), (5, 5), 0)
    shifted = np.roll(texture, (2, 3), axis=(0, 1))
    _, gray = to_working(np.stack([texture, shifted])[..., None].repeat(3, -1), (320, 180))
    motion = compute_motion(gray)
    plane = motion.planes[0][0]
    field = homography_flow(plane, (320, 180))
    np.testing.assert_allclose(np.median(field.reshape(-1, 2), axis=0), [3, 2], atol=0.1)
    pair = pair_motion(gray[0], gray[1])
    assert pair.background.kind == "planar"
    assert np.median(pair.residual[:, 20:-20, 20:-20]) < 0.2
    assert not motion.moving.any()


def test_inside_keeps_pixels_away_from_the_border():
    flow = np.zeros((10, 20, 2), np.float32)
    flow[..., 0] = 5.0
    kept = inside(flow, 2.0)
    assert kept[5, 2] and not kept[5, 1] and not kept[5, 13] and kept[5, 12] and not kept[1, 5]


# --- discovery on synthetic scenes --------------------------------------------------------------------


def test_static_camera_recall(static_scenes):
    found = [found_objects(ClassicTracker().track(clip_of(s.frames)), s.scene) for s in static_scenes]
    recall = np.concatenate(found).mean()
    # Measured 0.64 (14 of 22 objects, seeds 0-3); objects missed are mostly ones that
    # overlap another mover in the image for the whole clip, or slow small cones.
    assert recall >= 0.6, [f.tolist() for f in found]


def test_moving_camera_recall(moving_scenes):
    found = [found_objects(ClassicTracker().track(clip_of(s.frames)), s.scene) for s in moving_scenes]
    recall = np.concatenate(found).mean()
    # Measured 0.59 (13 of 22) with the epipolar background model (0.50 with two planes);
    # movers that touch another for the whole clip are still one track.
    assert recall >= 0.5, [f.tolist() for f in found]


def test_output_types_shapes_and_source_pixels(static_scenes):
    synthetic = static_scenes[0]
    frames = synthetic.frames
    calls = []
    tracks = ClassicTracker().track(clip_of(frames, source_size=(640, 360)),
                                    progress=lambda done, total: calls.append((done, total)))
    native = ClassicTracker().track(clip_of(frames))
    n_objects = tracks.n_objects
    assert n_objects > 0 and tracks.masks.shape == (n_objects, N_FRAMES, 180, 320)
    assert tracks.boxes_xyxy.dtype == np.float32 and tracks.masks.dtype == bool
    assert np.isnan(tracks.boxes_xyxy[~tracks.visible]).all()
    assert np.isfinite(tracks.boxes_xyxy[tracks.visible]).all()
    assert isinstance(tracks.masks, PackedMasks)  # bit-packed: 1/8 of the bytes of bool masks
    assert (np.asarray(tracks.masks).any(axis=(2, 3)) == tracks.visible).all()
    np.testing.assert_allclose(tracks.boxes_xyxy, 2 * native.boxes_xyxy, equal_nan=True)
    assert set(tracks.categories) <= {"person", "object"}
    np.testing.assert_array_equal(tracks.is_agent, np.array(tracks.categories) == "person")
    assert calls and calls[-1] == (N_FRAMES - 1, N_FRAMES - 1)


def test_no_moving_objects_gives_no_tracks():
    empty = scene(0, static_camera=True, n_objects=0, n_frames=12)
    assert ClassicTracker().track(clip_of(empty.frames)).n_objects == 0
    repeated = np.repeat(empty.frames[:1], 8, axis=0)
    assert ClassicTracker().track(clip_of(repeated)).n_objects == 0
    single = ClassicTracker().track(clip_of(empty.frames[:1]))
    assert single.n_objects == 0 and single.boxes_xyxy.shape == (0, 1, 4)
    assert single.masks.shape == (0, 1, 180, 320)


def test_deterministic(static_scenes):
    clip = clip_of(static_scenes[1].frames[:10])
    first, second = ClassicTracker().track(clip), ClassicTracker().track(clip)
    np.testing.assert_array_equal(first.boxes_xyxy, second.boxes_xyxy)


def walking_clip(seed: int, with_mover: bool = True):
    synthetic = walking_scene(seed=seed, with_mover=with_mover)
    n_frames = len(synthetic.frames)
    return synthetic, Clip(frames=synthetic.frames, timestamps_s=np.arange(n_frames) / 6.0,
                           frame_index=np.arange(n_frames), fps=6.0, source="synthetic", source_size=(320, 180))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_walking_camera_finds_the_mover_and_not_the_walls(seed):
    """A camera walking into a corner (ground and two walls: parallax no two homographies explain)."""
    synthetic, clip = walking_clip(seed)
    tracks = ClassicTracker().track(clip)
    overlap = [np.mean([box_iou(synthetic.mover_boxes[t], tracks.boxes_xyxy[k, t])[0, 0]
                        for t in np.flatnonzero(tracks.visible[k])]) for k in range(tracks.n_objects)]
    mover = int(np.argmax(overlap))
    assert overlap[mover] > 0.6 and tracks.visible[mover].all(), overlap
    on_walls = [np.mean([np.isin(synthetic.surfaces[t][tracks.masks[k, t]], (1, 2)).mean()
                         for t in np.flatnonzero(tracks.visible[k])]) for k in range(tracks.n_objects)]
    assert all(share < 0.5 for k, share in enumerate(on_walls) if k != mover), on_walls
    # Measured: seed 1 also has one track of ~60 px on the ground at the box's foot (frames 1-6).
    assert tracks.n_objects <= 2
    # the clean-up's drops reach the quality step (measured: 3-5 brief flickers per seed)
    assert tracks.dropped.get("frames", 0) >= 1, tracks.dropped
    _, empty = walking_clip(seed, with_mover=False)
    assert ClassicTracker().track(empty).n_objects == 0


def test_walking_camera_uses_the_epipolar_model():
    _, clip = walking_clip(1, with_mover=False)
    _, gray = to_working(clip.frames, (320, 180))
    kinds = [pair_motion(gray[t], gray[t + 1]).background.kind for t in range(0, 10, 3)]
    assert kinds.count("epipolar") >= 3, kinds


# --- agent labels ---------------------------------------------------------------------------------


def test_hog_choice_is_validated():
    if hog_available():
        ClassicTrackerConfig(person_detector="hog")
    else:
        with pytest.raises(Recon4dError, match="HOGDescriptor"):
            ClassicTrackerConfig(person_detector="hog")


# --- user boxes ----------------------------------------------------------------------------------


def test_user_box_is_carried_through_the_clip(static_scenes, moving_scenes):
    for synthetic in (static_scenes[0], moving_scenes[0]):
        truth = synthetic.scene
        target = int(np.argmax(synthetic.pixel_counts[:, 0]))
        entry = {"category": truth.categories[target], "box": truth.box_xyxy[target, 0].tolist(), "frame": 0}
        tracks = ClassicTracker(boxes=[entry]).track(clip_of(synthetic.frames))
        assert tracks.n_objects == 1 and tracks.categories == (truth.categories[target],)
        assert tracks.is_agent[0] == (truth.categories[target] in ("person", "dog"))
        shown = np.flatnonzero(truth.visible[target])
        ious = [box_iou(truth.box_xyxy[target, t], tracks.boxes_xyxy[0, t])[0, 0] for t in shown]
        assert np.mean(ious) > 0.5
        assert tracks.masks.shape == (1, N_FRAMES, 180, 320) and tracks.masks[0, 0].any()


def test_user_box_by_time_and_backwards(static_scenes):
    synthetic = static_scenes[0]
    truth = synthetic.scene
    target = int(np.argmax(synthetic.pixel_counts[:, -1]))
    last = N_FRAMES - 1
    entry = {"category": "thing", "box": truth.box_xyxy[target, last].tolist(), "time_s": last / 12.0 + 0.01}
    tracks = ClassicTracker(boxes=[entry]).track(clip_of(synthetic.frames))
    assert not tracks.is_agent[0]
    np.testing.assert_allclose(tracks.boxes_xyxy[0, last], truth.box_xyxy[target, last], atol=1e-4)
    assert tracks.visible[0, 0]
    with pytest.raises(UserBoxesError, match="sampled frames"):
        ClassicTracker(boxes=[{"category": "x", "box": [0, 0, 5, 5], "frame": 99}]).track(clip_of(synthetic.frames))
    with pytest.raises(UserBoxesError, match="clip covers"):
        ClassicTracker(boxes=[{"category": "x", "box": [0, 0, 5, 5], "time_s": 60.0}]).track(
            clip_of(synthetic.frames))


def test_load_user_boxes_round_trip(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({"boxes": [{"category": "dog", "box": [1, 2, 30, 40], "frame": 3},
                                          {"category": "cup", "box": [5, 5, 9, 9], "time_s": 1.5,
                                           "is_agent": False}]}))
    boxes = load_user_boxes(path)
    assert boxes == [{"category": "dog", "is_agent": True, "box": [1.0, 2.0, 30.0, 40.0], "frame": 3},
                     {"category": "cup", "is_agent": False, "box": [5.0, 5.0, 9.0, 9.0], "time_s": 1.5}]
    tracker = ClassicTracker.from_config({"boxes": str(path), "min_frames": 2}, "cpu")
    assert tracker.user_boxes == boxes and tracker.config.min_frames == 2


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"category": "dog"}', "expected a JSON list"),
    ('[3]', r"boxes.json\[0\]: expected an object"),
    ('[{"box": [0, 0, 1, 1], "frame": 0}]', '"category" must be'),
    ('[{"category": "dog", "box": [0, 0, 1], "frame": 0}]', "four finite numbers"),
    ('[{"category": "dog", "box": [5, 0, 1, 1], "frame": 0}]', "x2 > x1"),
    ('[{"category": "dog", "box": [0, 0, 1, 1]}]', "exactly one of"),
    ('[{"category": "dog", "box": [0, 0, 1, 1], "frame": 0, "time_s": 1}]', "exactly one of"),
    ('[{"category": "dog", "box": [0, 0, 1, 1], "frame": -1}]', "non-negative integer"),
    ('[{"category": "dog", "box": [0, 0, 1, 1], "time_s": "soon"}]', "number of seconds"),
    ('[{"category": "dog", "box": [0, 0, 1, 1], "frame": 0, "is_agent": "yes"}]', "true or false"),
    ('[{"category": "dog", "box": [0, 0, 1, 1], "frame": 0, "colour": "red"}]', "unknown key"),
])
def test_load_user_boxes_errors(tmp_path, content, message):
    path = tmp_path / "boxes.json"
    path.write_text(content)
    with pytest.raises(UserBoxesError, match=message):
        load_user_boxes(path)


def test_load_user_boxes_missing_file(tmp_path):
    with pytest.raises(UserBoxesError, match="does not exist"):
        load_user_boxes(tmp_path / "nope.json")
    assert validate_user_boxes([]) == []


def test_from_config_rejects_unknown_options():
    with pytest.raises(Recon4dError, match="unknown option"):
        ClassicTracker.from_config({"min_frame": 3}, "cpu")
    with pytest.raises(Recon4dError, match="min_fill"):
        ClassicTracker.from_config({"min_fill": 2.0}, "cpu")
    assert ClassicTracker.name == "classic" and ClassicTracker.version


def test_clip_shape_is_checked():
    with pytest.raises(ShapeError):
        clip_of(np.zeros((2, 8, 8), np.uint8))


# --- real video -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sample_video_person_and_dog(shared_data):
    from recon4d.video import read_clip

    video = shared_data / "videos" / "01_dog.mp4"
    if not video.is_file():
        missing_shared_data(str(video))
    tracks = ClassicTracker().track(read_clip(video, n_frames=16))
    assert tracks.n_objects >= 2
    assert "person" in tracks.categories
    assert tracks.boxes_xyxy[tracks.visible].max() <= 1280 + 1e-3


def test_observed_frames_are_the_detected_ones_not_the_carried(static_scenes, monkeypatch):
    from recon4d.tracking.classic import tracker as tracker_module

    clean, kept = tracker_module.clean_tracks, []

    def clean_and_carry(*args, **kwargs):
        tracks = clean(*args, **kwargs)
        for track in tracks:  # as if each track's first detection had been carried there instead
            track.detected.discard(min(track.detected))
        kept.extend(tracks)
        return tracks

    monkeypatch.setattr(tracker_module, "clean_tracks", clean_and_carry)
    tracks = ClassicTracker().track(clip_of(static_scenes[0].frames))
    assert tracks.n_objects == len(kept) > 0
    assert tracks.observed.shape == tracks.visible.shape and not (tracks.observed & ~tracks.visible).any()
    for k, track in enumerate(kept):
        detected = np.zeros(N_FRAMES, bool)
        detected[sorted(track.detected)] = True
        np.testing.assert_array_equal(tracks.observed[k], detected & tracks.visible[k])
        assert (tracks.visible[k] & ~tracks.observed[k]).any()  # the carried frame is shown, not observed
