"""Tests of tracking/sam2/tracker.py and tracking/sam2/grounding.py on tiny random GroundingDINO/SAM2 weights (CPU)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch", reason="the sam2 tracker needs torch (pip install 'recon4d[track]')")
pytest.importorskip("transformers", reason="the sam2 tracker needs transformers (pip install 'recon4d[track]')")
pytest.importorskip("sam2", reason="the sam2 tracker needs the sam2 package (pip install 'recon4d[track]')")

from recon4d.errors import Recon4dError  # noqa: E402
from recon4d.tracking.sam2.grounding import (  # noqa: E402
    DEFAULT_OBJECTS,
    GroundingDino,
    build_prompt,
    nms_per_label,
    parse_categories,
    phrase_category,
    select_detections,
)
from recon4d.tracking.sam2.grounding import check_grounding_dino_weights  # noqa: E402
from recon4d.tracking.sam2.tracker import Sam2Tracker, Sam2TrackerConfig  # noqa: E402
from recon4d.tracking.sam2.video import (  # noqa: E402
    ClipImages,
    bundled_config_name,
    check_sam2_weights,
    load_sam2_predictor,
    mask_boxes,
    new_inference_state,
    propagate_masks,
)
from recon4d.types import Clip  # noqa: E402
from tests.tracking.tiny_sam2 import write_tiny_grounding_dino, write_tiny_sam2  # noqa: E402

N_FRAMES, HEIGHT, WIDTH = 6, 42, 70
SOURCE_SIZE = (140, 84)  # boxes are in pixels of the (twice as large) source video
DETECT_ALL = {"objects": "person. box.", "box_threshold": 0.0, "text_threshold": 0.0, "min_area_frac": 0.0,
              "max_area_frac": 1.0, "max_objects": 3}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny models are all overhead: with several threads on a shared machine, thread
    hand-offs cost more than the maths (tens of times slower)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    write_tiny_grounding_dino(root / "grounding-dino")
    write_tiny_sam2(root / "sam2")
    return root


@pytest.fixture(scope="module")
def clip() -> Clip:
    """Smooth colour gradients with a moving bright square (random weights see nothing, but
    the frames differ so a frame mix-up shows)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = np.empty((N_FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    for t in range(N_FRAMES):
        frames[t, ..., 0] = (xs * 255 // WIDTH + 20 * t) % 256
        frames[t, ..., 1] = ys * 255 // HEIGHT
        frames[t, ..., 2] = 128
        frames[t, 10:24, 5 + 6 * t:19 + 6 * t] = 250
    return Clip(frames=frames, timestamps_s=np.arange(N_FRAMES) / 10.0, frame_index=np.arange(N_FRAMES) * 3,
                fps=30.0, source="synthetic", source_size=SOURCE_SIZE)


@pytest.fixture(scope="module")
def predictor(weights_dir):
    return load_sam2_predictor(weights_dir / "sam2")[0]


@pytest.fixture(scope="module")
def detected(weights_dir, clip):
    return Sam2Tracker.from_config(DETECT_ALL, "cpu", weights_dir).track(clip)


# --- categories and prompts --------------------------------------------------------------------------


def test_parse_categories_normalises_and_deduplicates():
    assert parse_categories("Person.  dog. person. ") == ("person", "dog")
    assert parse_categories(["Traffic  Light", "dog. cat"]) == ("traffic light", "dog", "cat")


@pytest.mark.parametrize("bad", ["", " . . ", [], 3, ["dog", 4]])
def test_parse_categories_rejects_empty_or_odd(bad):
    with pytest.raises(Recon4dError, match="objects"):
        parse_categories(bad)


def test_build_prompt_spans_point_at_categories():
    prompt, spans = build_prompt(("person", "traffic light"))
    assert prompt == "person. traffic light."
    assert [prompt[a:b] for a, b in spans] == ["person", "traffic light"]


def test_phrase_category_maps_partial_and_merged_phrases():
    categories = ("person", "traffic light", "dog")
    assert phrase_category("person", categories) == "person"
    assert phrase_category("traffic", categories) == "traffic light"
    assert phrase_category("traffic light dog", categories) == "traffic light"  # more words matched, prompt order
    assert phrase_category("person dog", categories, [0.2, 0.0, 0.7]) == "dog"  # best token probability wins
    assert phrase_category("light dog", categories, [0.0, 0.9, 0.1]) == "dog"  # a full match beats a partial one
    assert phrase_category("  red  car ", categories) == "red car"
    assert phrase_category("", categories) == "object"
    assert phrase_category("", categories, [0.1, 0.3, 0.2]) == "traffic light"


def test_detect_matches_transformers_post_processing(weights_dir, clip):
    import torch
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    detector = GroundingDino.from_pretrained(weights_dir / "grounding-dino")
    frame = clip.frames[1]
    found = detector.detect(frame, ("person", "box"), box_threshold=0.0, text_threshold=0.0)
    processor = AutoProcessor.from_pretrained(weights_dir / "grounding-dino", local_files_only=True)
    model = GroundingDinoForObjectDetection.from_pretrained(weights_dir / "grounding-dino", local_files_only=True)
    inputs = processor(images=frame, text="person. box.", return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    reference = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=[(HEIGHT, WIDTH)])[0]
    np.testing.assert_allclose(found.boxes_xyxy, reference["boxes"].numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(found.scores, reference["scores"].numpy(), rtol=1e-6)
    assert len(found) == 20 and set(found.phrases) == {"person box"}  # every word passes text_threshold 0
    assert set(found.categories) <= {"person", "box"}
    strict = detector.detect(frame, ("person", "box"), box_threshold=0.0, text_threshold=1.0)
    assert set(strict.phrases) == {""} and strict.categories == found.categories  # best-scoring category
    best = detector.detect(frame, ("person", "box"), box_threshold=float(np.sort(found.scores)[-3]))
    assert len(best) == 3


# --- box selection -------------------------------------------------------------------------------------


def test_select_detections_thresholds_scores_inclusively():
    boxes = np.array([[0, 0, 20, 20], [30, 30, 50, 50], [60, 0, 80, 20]], float)
    keep = select_detections(boxes, [0.2, 0.35, 0.9], ["a", "a", "a"], (100, 100), box_threshold=0.35)
    assert keep.tolist() == [2, 1]


def test_select_detections_keeps_boxes_between_area_limits():
    boxes = np.array([[0, 0, 5, 5],        # 0.25 % of the frame: too small
                      [0, 0, 10, 10],      # exactly 1 %: kept
                      [0, 0, 50, 100],     # exactly 50 %: kept
                      [0, 0, 60, 100],     # 60 %: too large
                      [-50, -50, 10, 10],  # clipped to the image: 1 %
                      [120, 0, 140, 20]])  # outside the image: no area
    keep = select_detections(boxes, np.full(6, 0.5), ["a"] * 6, (100, 100), box_threshold=0.0, nms_iou=1.0)
    assert sorted(keep.tolist()) == [1, 2, 4]


def test_select_detections_nms_is_per_label():
    boxes = np.array([[0, 0, 40, 40], [2, 2, 42, 42], [1, 1, 41, 41], [60, 60, 90, 90]], float)
    labels = ["dog", "dog", "cat", "dog"]
    keep = select_detections(boxes, [0.9, 0.8, 0.7, 0.6], labels, (100, 100), box_threshold=0.0, nms_iou=0.5)
    assert keep.tolist() == [0, 2, 3]  # box 1 overlaps the better dog; the cat on top of it stays
    assert nms_per_label(boxes, np.array([0, 0, 1, 0]), 0.99).tolist() == [0, 1, 2, 3]


def test_select_detections_orders_ties_by_coordinates_and_caps_count():
    boxes = np.array([[50, 0, 70, 20], [10, 40, 30, 60], [10, 0, 30, 20], [80, 80, 99, 99]], float)
    scores = [0.5, 0.5, 0.5, 0.9]
    keep = select_detections(boxes, scores, ["a"] * 4, (100, 100), box_threshold=0.0, max_objects=3)
    assert keep.tolist() == [3, 2, 1]


def test_select_detections_does_not_depend_on_input_order():
    rng = np.random.default_rng(5)
    corner = rng.uniform(0, 80, (40, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 40, (40, 2))], axis=1)
    scores = rng.choice([0.3, 0.5, 0.7, 0.9], 40)
    labels = rng.choice(["a", "b"], 40).tolist()
    reference = boxes[select_detections(boxes, scores, labels, (100, 100), 0.4, 0.0, 0.5, 0.3, 8)]
    assert 0 < len(reference) <= 8
    for _ in range(5):
        perm = rng.permutation(40)
        keep = select_detections(boxes[perm], scores[perm], [labels[i] for i in perm], (100, 100), 0.4, 0.0, 0.5,
                                 0.3, 8)
        np.testing.assert_array_equal(boxes[perm][keep], reference)


def test_select_detections_handles_nothing_and_bad_lengths():
    assert select_detections(np.zeros((0, 4)), [], [], (10, 10)).shape == (0,)
    with pytest.raises(ValueError, match="one entry per detection"):
        select_detections(np.zeros((2, 4)), [0.5], ["a", "b"], (10, 10))


# --- masks, configs, file names ----------------------------------------------------------------------


def test_mask_boxes_are_pixel_edge_extents_and_nan_when_empty():
    masks = np.zeros((2, 5, 8), bool)
    masks[0, 1:4, 2:7] = True
    masks[0, 4, 0] = True
    boxes = mask_boxes(masks)
    assert boxes[0].tolist() == [0, 1, 7, 5]
    assert np.isnan(boxes[1]).all()


@pytest.mark.parametrize("name, config", [
    ("sam2.1_hiera_large.pt", "configs/sam2.1/sam2.1_hiera_l.yaml"),
    ("sam2.1_hiera_base_plus.pt", "configs/sam2.1/sam2.1_hiera_b+.yaml"),
    ("sam2.1-hiera-tiny.pt", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    ("sam2_hiera_small.pt", "configs/sam2/sam2_hiera_s.yaml"),
    ("my_finetune.pt", None),
])
def test_bundled_config_name(name, config):
    assert bundled_config_name(name) == config


@pytest.mark.parametrize("options, message", [
    ({"box_treshold": 0.3}, r"unknown option\(s\) \['box_treshold'\].*valid options are \[.*'box_threshold'"),
    ({"box_threshold": 1.5}, "box_threshold must be a number in"),
    ({"text_threshold": "high"}, "text_threshold must be a number"),
    ({"min_area_frac": 0.6}, "must not exceed max_area_frac"),
    ({"max_objects": 0}, "max_objects must be an integer"),
    ({"detect_frame": -1}, "detect_frame must be an integer"),
    ({"chunk_frames": 1}, "chunk_frames must be an integer ≥ 2"),
    ({"offload_state_to_cpu": "perhaps"}, "offload_state_to_cpu must be true or false"),
    ({"objects": " . "}, "objects names no category"),
    ({"boxes": [{"category": "dog", "box": [0, 0, 1]}]}, "four finite numbers"),
])
def test_from_config_rejects_bad_options(tmp_path, options, message):
    with pytest.raises(Recon4dError, match=message):
        Sam2Tracker.from_config(options, "cpu", tmp_path)


def test_config_defaults_and_weights_dir_from_settings(tmp_path, monkeypatch):
    config = Sam2TrackerConfig()
    assert config.objects == DEFAULT_OBJECTS and "person" in config.agent_categories
    assert (config.box_threshold, config.text_threshold, config.nms_iou) == (0.35, 0.25, 0.5)
    assert (config.min_area_frac, config.max_area_frac, config.max_objects) == (0.01, 0.5, 10)
    monkeypatch.setenv("RECON4D_HOME", str(tmp_path))
    tracker = Sam2Tracker.from_config({"objects": ["Dog", "cat"]}, "cpu")
    assert tracker.config.objects == ("dog", "cat")
    assert tracker.sam2_dir == tmp_path / "weights" / "sam2"
    assert tracker.grounding_dino_dir == tmp_path / "weights" / "grounding-dino"


# --- weights -------------------------------------------------------------------------------------------


def test_tiny_weights_match_the_registered_layout(weights_dir):
    from recon4d.backends import resolve_backend
    from recon4d.weights import COMPONENTS

    assert resolve_backend("track", "sam2", weights_dir).spec.name == "sam2"
    assert COMPONENTS["grounding-dino"].check(weights_dir / "grounding-dino").startswith("GroundingDINO (swin, ")
    assert COMPONENTS["sam2"].check(weights_dir / "sam2") == "SAM2 (config.yaml, 0.6M params, 64 px)"


def test_tiny_weights_are_deterministic(tmp_path, weights_dir):
    from recon4d.weights import sha256_path

    write_tiny_sam2(tmp_path / "sam2")
    assert sha256_path(tmp_path / "sam2") == sha256_path(weights_dir / "sam2")
    write_tiny_sam2(tmp_path / "other", seed=1)
    assert sha256_path(tmp_path / "other") != sha256_path(weights_dir / "sam2")


def test_check_grounding_dino_names_a_renamed_key(tmp_path, weights_dir):
    from safetensors.torch import load_file, save_file

    broken = shutil.copytree(weights_dir / "grounding-dino", tmp_path / "grounding-dino")
    state = load_file(broken / "model.safetensors")
    key = sorted(k for k in state if k.startswith("model.input_proj_vision"))[0]
    state["renamed." + key] = state.pop(key)
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(Recon4dError, match=f"does not match.*missing keys: [^;]*{key}.*unexpected keys: renamed"):
        check_grounding_dino_weights(broken)


def test_check_grounding_dino_reports_missing_or_truncated_files(tmp_path, weights_dir):
    broken = shutil.copytree(weights_dir / "grounding-dino", tmp_path / "grounding-dino")
    (broken / "config.json").unlink()
    with pytest.raises(Recon4dError, match="no config.json"):
        check_grounding_dino_weights(broken)
    broken = shutil.copytree(weights_dir / "grounding-dino", tmp_path / "truncated")
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(Recon4dError, match="do not load"):
        check_grounding_dino_weights(broken)


def test_check_sam2_names_a_renamed_key(tmp_path, weights_dir):
    import torch

    broken = shutil.copytree(weights_dir / "sam2", tmp_path / "sam2")
    state = torch.load(broken / "tiny.pt", weights_only=True)["model"]
    state["obj_ptr_proj.renamed"] = state.pop("obj_ptr_proj.layers.0.weight")
    torch.save({"model": state}, broken / "tiny.pt")
    with pytest.raises(Recon4dError, match=r"missing keys: obj_ptr_proj\.layers\.0\.weight; "
                                           r"unexpected keys: obj_ptr_proj\.renamed"):
        check_sam2_weights(broken)


def test_check_sam2_needs_a_config_for_unknown_names(tmp_path, weights_dir):
    broken = shutil.copytree(weights_dir / "sam2", tmp_path / "sam2")
    (broken / "config.yaml").unlink()
    with pytest.raises(Recon4dError, match="not a public SAM2 checkpoint name.*config.yaml"):
        check_sam2_weights(broken)


def test_check_sam2_uses_the_bundled_config_of_a_public_name(tmp_path, weights_dir):
    broken = shutil.copytree(weights_dir / "sam2", tmp_path / "sam2")
    (broken / "config.yaml").unlink()
    (broken / "tiny.pt").rename(broken / "sam2.1_hiera_tiny.pt")
    # the tiny state dict against the real Hiera-T config: wrong shapes and missing blocks
    with pytest.raises(Recon4dError, match="does not match its config.*missing keys: image_encoder"):
        check_sam2_weights(broken)


def test_check_sam2_rejects_garbage_duplicates_and_foreign_targets(tmp_path, weights_dir):
    broken = shutil.copytree(weights_dir / "sam2", tmp_path / "garbage")
    (broken / "tiny.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Recon4dError, match="cannot be read"):
        check_sam2_weights(broken)
    doubled = shutil.copytree(weights_dir / "sam2", tmp_path / "doubled")
    shutil.copy(doubled / "tiny.pt", doubled / "other.pt")
    with pytest.raises(Recon4dError, match="exactly one SAM2 checkpoint.*other.pt, tiny.pt"):
        check_sam2_weights(doubled)
    foreign = shutil.copytree(weights_dir / "sam2", tmp_path / "foreign")
    text = (foreign / "config.yaml").read_text().replace("sam2.modeling.memory_encoder.Fuser", "os.system", 1)
    (foreign / "config.yaml").write_text(text)
    with pytest.raises(Recon4dError, match=r"outside the sam2 package \(os.system\)"):
        check_sam2_weights(foreign)


# --- SAM2 plumbing -------------------------------------------------------------------------------------


def test_inference_state_matches_sam2_init_state(tmp_path, predictor, clip):
    from PIL import Image

    for t in range(2):
        Image.fromarray(clip.frames[t]).save(tmp_path / f"{t:05d}.jpg", quality=100)
    reference = predictor.init_state(str(tmp_path))
    state = new_inference_state(predictor, clip.frames[:2])
    assert set(state) == set(reference)
    for key in ("num_frames", "video_height", "video_width", "device", "storage_device", "offload_video_to_cpu",
                "offload_state_to_cpu"):
        assert state[key] == reference[key], key
    assert isinstance(state["images"], ClipImages) and len(state["images"]) == 2
    for t in range(2):
        ours, theirs = state["images"][t], reference["images"][t]
        assert ours.shape == theirs.shape == (3, 64, 64)
        assert float((ours - theirs).abs().mean()) < 0.05  # JPEG loss only


def test_propagation_visits_every_frame_once_in_order(predictor, clip):
    box = np.array([[10.0, 8.0, 30.0, 30.0]])
    for chunk in (None, 2, 3):
        order = [t for t, masks in propagate_masks(predictor, clip.frames, 2, box, chunk_frames=chunk)]
        assert order == [2, 3, 4, 5, 1, 0], chunk
    order = [t for t, _ in propagate_masks(predictor, clip.frames, 5, box, chunk_frames=2)]
    assert order == [5, 4, 3, 2, 1, 0]
    with pytest.raises(Recon4dError, match="outside the clip"):
        next(propagate_masks(predictor, clip.frames, 6, box))


def test_chunks_are_sessions_of_at_most_chunk_frames(predictor, clip, monkeypatch):
    sessions = []
    original = type(predictor).propagate_in_video

    def recording(self, state, **kwargs):
        sessions.append([])
        for item in original(self, state, **kwargs):
            sessions[-1].append(item[0])
            yield item

    mask_prompts = []
    original_mask = type(predictor).add_new_mask

    def recording_mask(self, state, frame_idx, obj_id, mask):
        mask_prompts.append((frame_idx, obj_id, mask.numpy().copy()))
        return original_mask(self, state, frame_idx, obj_id, mask)

    monkeypatch.setattr(type(predictor), "propagate_in_video", recording)
    monkeypatch.setattr(type(predictor), "add_new_mask", recording_mask)
    box = np.array([[10.0, 8.0, 30.0, 30.0]])
    masks = dict(propagate_masks(predictor, clip.frames, 2, box, chunk_frames=3))
    assert sessions == [[2, 3, 4], [4, 5], [2, 1, 0]]
    assert masks[4].any(), "the tiny model should mark the object at the chunk boundary"
    # the second forward session is prompted with the first one's mask on their shared frame
    assert [(frame, obj) for frame, obj, _ in mask_prompts] == [(4, 0)]
    np.testing.assert_array_equal(mask_prompts[0][2], masks[4][0])
    sessions.clear()
    list(propagate_masks(predictor, clip.frames, 2, box, chunk_frames=2))
    assert sessions == [[2, 3], [3, 4], [4, 5], [2, 1], [1, 0]]


def test_prompt_frame_masks_are_sam2_logits_above_zero(predictor, clip):
    boxes = np.array([[10.0, 8.0, 30.0, 30.0], [40.0, 5.0, 68.0, 40.0]])
    state = new_inference_state(predictor, clip.frames)
    for k, box in enumerate(boxes):
        _, _, logits = predictor.add_new_points_or_box(state, frame_idx=1, obj_id=k, box=box)
    t, masks = next(propagate_masks(predictor, clip.frames, 1, boxes))
    assert t == 1 and masks.shape == (2, HEIGHT, WIDTH)
    np.testing.assert_array_equal(masks, (logits[:, 0] > 0).numpy())
    assert masks.any() and not masks.all()


# --- the tracker ---------------------------------------------------------------------------------------


def test_track_returns_consistent_tracks(detected, clip):
    tracks = detected
    n_objects = tracks.n_objects
    assert 1 <= n_objects <= 3
    assert tracks.ids.tolist() == list(range(n_objects))
    assert set(tracks.categories) <= {"person", "box"}
    assert tracks.is_agent.tolist() == [c == "person" for c in tracks.categories]
    assert tracks.masks.shape == (n_objects, N_FRAMES, HEIGHT, WIDTH) and tracks.masks.dtype == bool
    assert tracks.boxes_xyxy.shape == (n_objects, N_FRAMES, 4) and tracks.boxes_xyxy.dtype == np.float32
    assert tracks.masks.any(), "the tiny model should mark some pixels, else the box checks below say nothing"
    np.testing.assert_array_equal(tracks.visible, tracks.masks.any(axis=(2, 3)))
    scale = np.array([SOURCE_SIZE[0] / WIDTH, SOURCE_SIZE[1] / HEIGHT] * 2)
    np.testing.assert_allclose(tracks.boxes_xyxy, mask_boxes(tracks.masks) * scale, rtol=1e-6)
    assert np.isnan(tracks.boxes_xyxy[~tracks.visible]).all()


def test_track_is_deterministic(detected, weights_dir, clip):
    again = Sam2Tracker.from_config(DETECT_ALL, "cpu", weights_dir).track(clip)
    assert again.categories == detected.categories
    np.testing.assert_array_equal(again.masks, detected.masks)
    np.testing.assert_array_equal(again.boxes_xyxy, detected.boxes_xyxy)


def test_chunked_tracking_matches_the_first_chunk(detected, weights_dir, clip):
    calls = []
    chunked = Sam2Tracker.from_config({**DETECT_ALL, "chunk_frames": 3}, "cpu", weights_dir).track(
        clip, progress=lambda done, total: calls.append((done, total)))
    assert chunked.masks.shape == detected.masks.shape
    assert chunked.categories == detected.categories
    # the first chunk (frames 0..2) is one SAM2 session exactly as in the unchunked run
    np.testing.assert_array_equal(chunked.masks[:, :3], detected.masks[:, :3])
    np.testing.assert_array_equal(chunked.visible, chunked.masks.any(axis=(2, 3)))
    assert calls[0] == (0, N_FRAMES) and calls[-1] == (N_FRAMES, N_FRAMES)


def test_detection_on_a_later_frame_tracks_both_ways(detected, weights_dir, clip):
    later = Sam2Tracker.from_config({**DETECT_ALL, "detect_frame": 2}, "cpu", weights_dir)
    prompts = later.prompts(clip)
    assert {prompt.frame for prompt in prompts} == {2}
    tracks = later.track(clip)
    assert tracks.masks.shape[1] == N_FRAMES
    with pytest.raises(Recon4dError, match="detect_frame=6 but the clip has 6 sampled frames"):
        Sam2Tracker.from_config({**DETECT_ALL, "detect_frame": 6}, "cpu", weights_dir).track(clip)


def test_no_detection_gives_zero_objects_and_a_warning(weights_dir, clip):
    calls = []
    tracker = Sam2Tracker.from_config({"objects": "dog", "box_threshold": 1.0}, "cpu", weights_dir)
    with pytest.warns(UserWarning, match="GroundingDINO found none of dog on frame 0"):
        tracks = tracker.track(clip, progress=lambda done, total: calls.append((done, total)))
    assert tracks.n_objects == 0
    assert tracks.masks.shape == (0, N_FRAMES, HEIGHT, WIDTH) and tracks.boxes_xyxy.shape == (0, N_FRAMES, 4)
    assert calls[-1] == (N_FRAMES, N_FRAMES)


def test_user_boxes_skip_detection(tmp_path, weights_dir, clip):
    only_sam2 = tmp_path / "weights"
    shutil.copytree(weights_dir / "sam2", only_sam2 / "sam2")  # no GroundingDINO: it must not be needed
    entries = [{"category": "dog", "box": [20, 16, 60, 50], "frame": 0},
               {"category": "crate", "box": [80, 10, 130, 70], "time_s": 0.31, "is_agent": True}]
    boxes_file = tmp_path / "boxes.json"
    boxes_file.write_text(json.dumps(entries))
    tracker = Sam2Tracker.from_config({"boxes": str(boxes_file)}, "cpu", only_sam2)
    prompts = tracker.prompts(clip)
    assert [p.frame for p in prompts] == [0, 3]
    np.testing.assert_allclose(prompts[0].box_xyxy, [10, 8, 30, 25])  # source → clip-frame pixels
    calls = []
    tracks = tracker.track(clip, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 2 * N_FRAMES) and calls[-1] == (2 * N_FRAMES, 2 * N_FRAMES)  # one session per frame
    assert tracks.categories == ("dog", "crate") and tracks.is_agent.tolist() == [True, True]
    assert tracks.masks.shape == (2, N_FRAMES, HEIGHT, WIDTH)
    np.testing.assert_array_equal(tracks.visible, tracks.masks.any(axis=(2, 3)))
    assert tracker.weights_sha256.startswith("sam2:") and ";" not in tracker.weights_sha256
    with pytest.raises(Recon4dError, match="frame 9 but the clip has 6 sampled frames"):
        Sam2Tracker.from_config({"boxes": [{**entries[0], "frame": 9}]}, "cpu", only_sam2).track(clip)


def test_weights_sha256_names_both_components(weights_dir):
    from recon4d.weights import sha256_path

    tracker = Sam2Tracker.from_config({}, "cpu", weights_dir)
    assert tracker.weights_sha256 == (f"grounding-dino:{sha256_path(weights_dir / 'grounding-dino')};"
                                      f"sam2:{sha256_path(weights_dir / 'sam2')}")
