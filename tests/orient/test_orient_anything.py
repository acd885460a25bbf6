"""Tests of orient/orient_anything/orienter.py and orient/orient_anything/model.py on tiny random models."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from recon4d.errors import Recon4dError  # noqa: E402
from recon4d.orient.orient_anything.orienter import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    OrientAnythingConfig,
    OrientAnythingOrienter,
    box_bbox,
    check_weights,
    circular_mean_deg,
    combine_views,
    decode_logits,
    extract_crop,
    mask_bbox,
    random_subcrop,
    square_window,
    to_model_input,
)
from recon4d.orient.orient_anything.model import CheckpointError, load_orient_anything  # noqa: E402
from recon4d.types import Clip, Tracks2D  # noqa: E402

from .tiny_orient_anything import write_tiny_orient_anything  # noqa: E402

HEIGHT, WIDTH, N_FRAMES = 48, 64, 4
SMALL = {"conf_threshold": 0.0, "resize_size": 64, "image_size": 56}


def angular_distance(a, b):
    diff = np.mod(np.asarray(a, np.float64) - np.asarray(b, np.float64), 360.0)
    return np.minimum(diff, 360.0 - diff)


def one_hot_logits(azimuth_bin: int, polar_bin: int, rotation_bin: int, conf_pair, n_outputs: int = 722):
    logits = np.zeros(n_outputs)
    logits[azimuth_bin] = 5.0
    logits[360 + polar_bin] = 5.0
    logits[540 + rotation_bin] = 5.0
    logits[-2:] = conf_pair
    return logits


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    write_tiny_orient_anything(root / "orient-anything")
    write_tiny_orient_anything(root / "wide" / "orient-anything", n_outputs=902, seed=1)
    return root


@pytest.fixture(scope="module")
def orienter(weights_dir):
    # Smaller crops than the public 256 → 224 keep the tests fast; test_to_model_input covers those.
    return OrientAnythingOrienter.from_config(SMALL, "cpu", weights_dir)


@pytest.fixture(scope="module")
def scene():
    """A clip with an agent (hidden in frame 2), a non-agent, and an agent whose mask is empty in frame 1."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(N_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    masks = np.zeros((3, N_FRAMES, HEIGHT, WIDTH), bool)
    for t in range(N_FRAMES):
        masks[0, t] = ((cols - 14 - 3 * t) / 9.0) ** 2 + ((rows - 20) / 14.0) ** 2 <= 1.0
        masks[1, t] = (rows >= 30) & (rows < 44) & (cols >= 40) & (cols < 60)
        masks[2, t] = (rows >= 2) & (rows < 12) & (cols >= 30 + t) & (cols < 38 + t)
    visible = np.ones((3, N_FRAMES), bool)
    visible[0, 2] = False
    masks[0, 2] = False
    masks[2, 1] = False  # visible by the tracker but nothing segmented
    boxes = np.full((3, N_FRAMES, 4), np.nan, np.float32)
    for k in range(3):
        for t in range(N_FRAMES):
            bbox = mask_bbox(masks[k, t])
            if bbox is not None:
                boxes[k, t] = np.array(bbox, np.float32) * 2  # source video is twice the clip size
    clip = Clip(frames=frames, timestamps_s=np.arange(N_FRAMES) / 10.0, frame_index=np.arange(N_FRAMES), fps=10.0,
                source="synthetic", source_size=(2 * WIDTH, 2 * HEIGHT))
    tracks = Tracks2D(ids=np.array([1, 2, 3]), categories=("person", "cup", "dog"),
                      is_agent=np.array([True, False, True]), boxes_xyxy=boxes, visible=visible, masks=masks)
    return clip, tracks


def with_config(orienter: OrientAnythingOrienter, **changes) -> OrientAnythingOrienter:
    config = OrientAnythingConfig(**{**orienter.config.__dict__, **changes})
    return OrientAnythingOrienter(orienter.model, config, orienter.device, orienter.weights_sha256)


# ---------------------------------------------------------------- decoding and voting


def test_decode_722_bin_offsets():
    logits = np.stack([one_hot_logits(350, 30, 100, (2.0, 0.0)), one_hot_logits(0, 0, 0, (0.0, 0.0)),
                       one_hot_logits(359, 179, 179, (-1.0, 3.0))])
    angles, conf = decode_logits(logits)
    np.testing.assert_array_equal(angles, [[350, -60, 10], [0, -90, -90], [359, 89, 89]])
    np.testing.assert_allclose(conf, [1 / (1 + np.exp(-2.0)), 0.5, 1 / (1 + np.exp(4.0))])


def test_decode_902_rotation_has_360_bins():
    logits = np.stack([one_hot_logits(10, 90, 300, (0.0, 1.0), 902), one_hot_logits(10, 90, 0, (9.0, 0.0), 902),
                       one_hot_logits(10, 90, 359, (0.0, 0.0), 902)])
    angles, conf = decode_logits(logits)
    np.testing.assert_array_equal(angles[:, 2], [120, -180, 179])
    np.testing.assert_array_equal(angles[:, :2], [[10, 0]] * 3)
    np.testing.assert_allclose(conf, [1 / (1 + np.e), 1 / (1 + np.exp(-9.0)), 0.5])


def test_decode_confidence_survives_huge_logits():
    angles, conf = decode_logits(one_hot_logits(5, 5, 5, (1000.0, -1000.0))[None])
    assert conf[0] == pytest.approx(1.0) and np.isfinite(angles).all()


@pytest.mark.parametrize("n_outputs", [720, 723])
def test_decode_rejects_other_layouts(n_outputs):
    with pytest.raises(Recon4dError, match="722 or 902"):
        decode_logits(np.zeros((2, n_outputs)))


@pytest.mark.parametrize("angles, expected", [([350, 10], 0.0), ([359, 3], 1.0), ([90, 180], 135.0),
                                              ([0, 360, 720], 0.0), ([270, 300], 285.0), ([10], 10.0)])
def test_circular_mean_wraps(angles, expected):
    result = float(circular_mean_deg(np.array(angles, float)))
    assert 0.0 <= result < 360.0
    assert angular_distance(result, expected) < 1e-9


def test_circular_mean_along_an_axis():
    angles = np.array([[350.0, 10.0, 0.0], [170.0, 190.0, 180.0]])
    np.testing.assert_allclose(angular_distance(circular_mean_deg(angles, axis=1), [0.0, 180.0]), 0.0, atol=1e-9)
    np.testing.assert_allclose(circular_mean_deg(angles.T, axis=0), circular_mean_deg(angles, axis=1))


def test_combine_views_drops_outliers_and_wraps_azimuth():
    angles = np.array([[350, 10, 5], [355, 12, 6], [5, 10, 4], [10, 12, 5], [0, 11, 5], [180, 80, 60]], float)
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    combined, mean_conf = combine_views(angles, conf)
    assert angular_distance(combined[0], 0.0) < 1e-9  # 180 is an outlier; the rest straddle 0
    assert combined[1] == pytest.approx(11.0)  # 80 dropped
    assert combined[2] == pytest.approx(5.0)  # 60 dropped
    assert mean_conf == pytest.approx(conf.mean())  # conf is a plain mean, as the public vote


def test_combine_views_rotation_is_circular_with_360_bins():
    angles = np.array([[0, 0, 178], [0, 0, -178], [0, 0, 176], [0, 0, -176]], float)
    wide, _ = combine_views(angles, np.full(4, 0.5), rotation_bins=360)
    narrow, _ = combine_views(angles, np.full(4, 0.5), rotation_bins=180)
    assert angular_distance(wide[2], 180.0) < 1e-9 and -180.0 <= wide[2] < 180.0
    assert narrow[2] == pytest.approx(0.0)


# ---------------------------------------------------------------- crops


def test_mask_bbox_and_empty_mask():
    mask = np.zeros((10, 12), bool)
    assert mask_bbox(mask) is None
    mask[2:5, 3:9] = True
    # As the public resize_foreground: from the first row/column to the last one, excluded.
    assert mask_bbox(mask) == (3, 2, 8, 4)
    mask[9, 11] = True
    assert mask_bbox(mask) == (3, 2, 11, 9)


@pytest.mark.parametrize("rows, cols", [(slice(4, 5), slice(2, 9)), (slice(1, 8), slice(6, 7)), (slice(3, 4), 5)])
def test_mask_one_pixel_thick_has_no_crop(rows, cols):
    mask = np.zeros((10, 12), bool)
    mask[rows, cols] = True
    assert mask_bbox(mask) is None  # the public crop would hold no pixel of it


def test_box_bbox_scales_source_pixels_to_the_clip():
    assert box_bbox(np.array([20.0, 10.0, 61.0, 40.0]), (200, 100), (100, 50)) == (10, 5, 31, 20)
    assert box_bbox(np.array([-50.0, -5.0, 500.0, 20.0]), (200, 100), (100, 50)) == (0, 0, 100, 10)
    assert box_bbox(np.full(4, np.nan), (200, 100), (100, 50)) is None
    assert box_bbox(np.array([300.0, 10.0, 400.0, 20.0]), (200, 100), (100, 50)) is None


def test_square_window_centres_the_box_at_the_foreground_ratio():
    x, y, side = square_window((10, 20, 30, 60), 0.85)
    assert side == int(40 / 0.85)
    # The 20×40 box sits in the middle of the square (within a pixel of rounding).
    assert abs((x + side / 2) - 20) <= 1 and abs((y + side / 2) - 40) <= 1
    assert square_window((5, 5, 6, 6), 1.0) == (5, 5, 1)


def test_extract_crop_removes_the_background():
    rng = np.random.default_rng(1)
    frame = rng.integers(1, 255, size=(30, 40, 3), dtype=np.uint8)
    mask = np.zeros((30, 40), bool)
    mask[5:25, 10:22] = True
    mask[12, 15] = False  # a hole inside the box is background too
    window = square_window(mask_bbox(mask), 0.85)
    x, y, side = window
    crop = extract_crop(frame, window, mask, fill_rgb=(255, 0, 7))
    assert crop.shape == (side, side, 3) and crop.dtype == np.uint8
    inside = np.zeros((side, side), bool)
    inside[5 - y:25 - y, 10 - x:22 - x] = True
    inside[12 - y, 15 - x] = False
    np.testing.assert_array_equal(crop[~inside], np.broadcast_to([255, 0, 7], ((~inside).sum(), 3)))
    np.testing.assert_array_equal(crop[inside], frame[mask])
    # With the public crop box the mask's last row and column are background too.
    bbox = mask_bbox(mask)
    assert bbox == (10, 5, 21, 24)
    cut = extract_crop(frame, window, mask, (255, 0, 7), bbox)
    inside[24 - y] = False
    inside[:, 21 - x] = False
    np.testing.assert_array_equal(cut[inside], frame[5:24, 10:21][mask[5:24, 10:21]])
    assert (cut[~inside] == [255, 0, 7]).all()


def test_extract_crop_pads_outside_the_frame_and_keeps_context_without_mask():
    frame = np.full((10, 10, 3), 100, np.uint8)
    crop = extract_crop(frame, (-3, 6, 8), None, fill_rgb=(0, 0, 0))
    assert crop.shape == (8, 8, 3)
    assert (crop[:4, 3:] == 100).all()  # rows 6..9, cols 0..4 of the frame
    assert (crop[:, :3] == 0).all() and (crop[4:] == 0).all()


def test_random_subcrop_follows_the_public_scale():
    rng = random.Random(0)
    for _ in range(200):
        left, top, right, bottom = random_subcrop(rng, 60, 100)
        assert 0 <= left < right <= 60 and 0 <= top < bottom <= 100
        assert int(60 * 0.8) <= right - left <= int(60 * 0.95)
        assert int(100 * 0.8) <= bottom - top <= int(100 * 0.95)
    assert random_subcrop(rng, 1, 1) == (0, 0, 1, 1)
    # The public draw order: width, height, left, top, each by randint.
    replay = random.Random(7)
    width, height = replay.randint(48, 57), replay.randint(80, 95)
    left, top = replay.randint(0, 60 - width), replay.randint(0, 100 - height)
    assert random_subcrop(random.Random(7), 60, 100) == (left, top, left + width, top + height)


def test_to_model_input_normalises_and_centre_crops():
    fill = (255, 0, 7)
    uniform = np.broadcast_to(np.array(fill, np.uint8), (50, 90, 3))
    image = to_model_input(uniform, 256, 224).numpy()
    assert image.shape == (3, 224, 224) and image.dtype == np.float32
    expected = (np.array(fill) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(image.reshape(3, -1).mean(axis=1), expected, atol=1e-5)
    # A wide crop keeps its middle: a left half of 0 and right half of 255 meet at the centre column.
    halves = np.zeros((40, 80, 3), np.uint8)
    halves[:, 40:] = 255
    split = to_model_input(halves, 32, 28).numpy()[0, 14]
    assert (split[:12] < 0).all() and (split[16:] > 0).all()


# ---------------------------------------------------------------- weights


def test_tiny_checkpoint_uses_the_public_key_names(weights_dir):
    state = torch.load(weights_dir / "orient-anything" / "dino_weight.pt", weights_only=True)
    for key in ("dinov2.embeddings.cls_token", "dinov2.encoder.layer.0.attention.attention.query.weight",
                "dinov2.encoder.layer.1.attention.output.dense.bias", "dinov2.encoder.layer.0.layer_scale1.lambda1",
                "dinov2.layernorm.weight", "down_sampler.net1.0.weight", "down_sampler.net1.1.running_var",
                "down_sampler.net2.1.num_batches_tracked"):
        assert key in state, key
    assert not any("q_proj" in key for key in state)
    assert tuple(state["down_sampler.net2.0.weight"].shape) == (722, 722)
    assert tuple(state["down_sampler.net1.0.weight"].shape) == (722, 32)


def test_check_weights_summarises_both_head_sizes(weights_dir):
    assert check_weights(weights_dir / "orient-anything") == (
        "Orient Anything (dino_weight.pt), DINOv2 2 layers × 32, 722 outputs (180 rotation bins)")
    assert "902 outputs (360 rotation bins)" in check_weights(weights_dir / "wide" / "orient-anything")


def test_loaded_weights_equal_the_file(weights_dir):
    model = load_orient_anything(weights_dir / "orient-anything")
    state = torch.load(weights_dir / "orient-anything" / "dino_weight.pt", weights_only=True)
    loaded = model.state_dict()
    torch.testing.assert_close(loaded["dinov2.encoder.layer.1.attention.q_proj.weight"],
                               state["dinov2.encoder.layer.1.attention.attention.query.weight"])
    torch.testing.assert_close(loaded["down_sampler.net1.1.running_mean"], state["down_sampler.net1.1.running_mean"])
    assert not model.training


@pytest.fixture
def broken(weights_dir, tmp_path):
    """A copy of the tiny 722 component and its state dict, to break and save back."""
    directory = tmp_path / "orient-anything"
    shutil.copytree(weights_dir / "orient-anything", directory)
    return directory, torch.load(directory / "dino_weight.pt", weights_only=True)


def test_renamed_key_is_named(broken):
    directory, state = broken
    state["dinov2.encoder.layer.0.attention.attention.kee.weight"] = state.pop(
        "dinov2.encoder.layer.0.attention.attention.key.weight")
    torch.save(state, directory / "dino_weight.pt")
    with pytest.raises(CheckpointError) as info:
        check_weights(directory)
    message = str(info.value)
    assert "missing keys: dinov2.encoder.layer.0.attention.attention.key.weight" in message
    assert "unexpected keys: dinov2.encoder.layer.0.attention.attention.kee.weight" in message


def test_missing_head_tensor_is_named(broken):
    directory, state = broken
    del state["down_sampler.net1.1.running_mean"]
    torch.save(state, directory / "dino_weight.pt")
    with pytest.raises(Recon4dError, match=r"missing keys: down_sampler\.net1\.1\.running_mean"):
        OrientAnythingOrienter.from_config({}, "cpu", directory.parent)


def test_config_that_does_not_match_the_checkpoint_names_the_shapes(broken):
    directory, _ = broken
    config = json.loads((directory / "dinov2" / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (directory / "dinov2" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing keys: dinov2\.encoder\.layer\.2\."):
        check_weights(directory)


def test_head_of_an_unknown_size_is_refused(broken):
    directory, state = broken
    state["down_sampler.net2.0.weight"] = state["down_sampler.net2.0.weight"][:720]
    torch.save(state, directory / "dino_weight.pt")
    with pytest.raises(CheckpointError, match="720 outputs"):
        check_weights(directory)


def test_missing_config_and_checkpoint_are_explained(broken, tmp_path):
    directory, _ = broken
    (directory / "dinov2" / "config.json").unlink()
    with pytest.raises(Recon4dError, match=r"dinov2/config\.json is missing.*facebook/dinov2-large"):
        check_weights(directory)
    empty = tmp_path / "empty"
    (empty / "dinov2").mkdir(parents=True)
    shutil.copy(tmp_path / "orient-anything" / "dino_weight.pt", empty / "a.pt")
    shutil.copy(empty / "a.pt", empty / "b.pt")
    (empty / "dinov2" / "config.json").write_text(json.dumps({"model_type": "dinov2"}))
    with pytest.raises(Recon4dError, match="exactly one .*found a.pt, b.pt"):
        check_weights(empty)
    with pytest.raises(Recon4dError, match="are missing.*--orient motion"):
        OrientAnythingOrienter.from_config({}, "cpu", tmp_path / "nowhere")


def test_non_state_dict_files_are_refused(broken):
    directory, _ = broken
    torch.save([1, 2, 3], directory / "dino_weight.pt")
    with pytest.raises(Recon4dError, match="does not hold a state dict"):
        check_weights(directory)
    (directory / "dino_weight.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Recon4dError, match="not a readable torch state dict"):
        check_weights(directory)


def test_wrong_model_type_in_config(broken):
    directory, _ = broken
    (directory / "dinov2" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(Recon4dError, match="not a DINOv2 config"):
        check_weights(directory)


# ---------------------------------------------------------------- configuration


def test_unknown_and_invalid_options(weights_dir):
    with pytest.raises(Recon4dError, match=r"unknown option\(s\) \['treshold'\].*conf_threshold"):
        OrientAnythingOrienter.from_config({"treshold": 0.5}, "cpu", weights_dir)
    for bad in ({"conf_threshold": 1.5}, {"batch_size": 0}, {"foreground_ratio": 0.0}, {"image_size": 300},
                {"fill_rgb": (0, 0)}, {"fill_rgb": (0, 0, 256)}, {"dtype": "half"}):
        with pytest.raises(Recon4dError):
            OrientAnythingConfig(**bad)
    assert OrientAnythingConfig(fill_rgb=[255, 255, 255]).fill_rgb == (255, 255, 255)


def test_backend_identity(orienter, weights_dir):
    from recon4d.weights import sha256_path

    assert OrientAnythingOrienter.name == "orient-anything" and orienter.version
    assert orienter.weights_sha256 == sha256_path(weights_dir / "orient-anything")


# ---------------------------------------------------------------- end to end


def test_orient_nan_pattern_and_shapes(orienter, scene):
    clip, tracks = scene
    calls = []
    result = orienter.orient(clip, tracks, None, None, progress=lambda done, total: calls.append((done, total)))
    assert result.angles_deg.shape == (3, N_FRAMES, 3) and result.conf.shape == (3, N_FRAMES)
    assert result.angles_deg.dtype == np.float32 and result.conf.dtype == np.float32
    assert np.isnan(result.angles_deg[1]).all() and np.isnan(result.conf[1]).all()  # non-agent
    assert np.isnan(result.angles_deg[0, 2]).all() and np.isnan(result.conf[0, 2])  # not visible
    assert np.isnan(result.angles_deg[2, 1]).all() and np.isnan(result.conf[2, 1])  # empty mask
    known = [(0, 0), (0, 1), (0, 3), (2, 0), (2, 2), (2, 3)]
    for k, t in known:
        azimuth, polar, rotation = result.angles_deg[k, t]
        assert 0 <= azimuth < 360 and -90 <= polar < 90 and -90 <= rotation < 90
        assert 0 < result.conf[k, t] < 1
    assert calls[-1] == (7, 7)  # visible agent frames, the empty-mask one included


def test_orient_reports_what_the_network_says_about_the_cut_out(orienter, scene):
    clip, tracks = scene
    result = orienter.orient(clip, tracks)
    mask = tracks.masks[0, 3]
    bbox = mask_bbox(mask)
    crop = extract_crop(clip.frames[3], square_window(bbox, 0.85), mask, (0, 0, 0), bbox)
    angles, conf = decode_logits(orienter._logits([to_model_input(crop, 64, 56)]))
    np.testing.assert_allclose(result.angles_deg[0, 3], angles[0])
    assert result.conf[0, 3] == pytest.approx(conf[0], abs=1e-5)


def test_background_pixels_do_not_reach_the_network(orienter, scene):
    clip, tracks = scene
    other = Clip(frames=np.where(np.asarray(tracks.masks).any(axis=0)[..., None], clip.frames, 0).astype(np.uint8),
                 timestamps_s=clip.timestamps_s, frame_index=clip.frame_index, fps=clip.fps, source=clip.source,
                 source_size=clip.source_size)
    first, second = orienter.orient(clip, tracks), orienter.orient(other, tracks)
    np.testing.assert_allclose(first.conf, second.conf, atol=1e-5)
    # ...whereas the fill colour is part of the model's input.
    white = with_config(orienter, fill_rgb=(255, 255, 255)).orient(clip, tracks)
    assert not np.allclose(np.nan_to_num(white.conf), np.nan_to_num(first.conf), atol=1e-4)


def test_confidence_gating(orienter, scene):
    clip, tracks = scene
    kept = orienter.orient(clip, tracks)
    gated = with_config(orienter, conf_threshold=1.0).orient(clip, tracks)
    assert np.isnan(gated.angles_deg).all()
    np.testing.assert_array_equal(gated.conf, kept.conf)  # conf is stored even when the angles are not
    threshold = float(np.nanmedian(kept.conf))
    middle = with_config(orienter, conf_threshold=threshold).orient(clip, tracks)
    unsure = kept.conf < threshold
    assert unsure.any() and (~unsure & np.isfinite(kept.conf)).any()
    assert np.isnan(middle.angles_deg[unsure]).all()
    sure = ~unsure & np.isfinite(kept.conf)
    np.testing.assert_array_equal(middle.angles_deg[sure], kept.angles_deg[sure])


def test_orient_is_deterministic_and_batch_independent(orienter, scene):
    clip, tracks = scene
    first, second = orienter.orient(clip, tracks), orienter.orient(clip, tracks)
    np.testing.assert_array_equal(first.angles_deg, second.angles_deg)
    np.testing.assert_array_equal(first.conf, second.conf)
    single = with_config(orienter, batch_size=1).orient(clip, tracks)
    np.testing.assert_array_equal(single.angles_deg, first.angles_deg)
    np.testing.assert_allclose(single.conf, first.conf, atol=1e-5)


def test_tta_votes_over_six_views(orienter, scene, monkeypatch):
    from recon4d.orient.orient_anything import orienter as module

    clip, tracks = scene
    tta = with_config(orienter, tta=True)
    seen, crops = [], []
    original, processor = tta._logits, module.processor_pixels

    def counting(images):
        seen.append(len(images))
        return original(images)

    def recording(crop, *args):
        crops.append(crop)
        return processor(crop, *args)

    tta._logits = counting
    monkeypatch.setattr(module, "processor_pixels", recording)
    result = tta.orient(clip, tracks)
    assert sum(seen) == 6 * 6  # 6 visible agent frames × (3 crops of the frame + 3 of the cut-out)
    # As the public demo: 80–95 % crops of the whole frame, then of the square cut-out.
    for i, (k, t) in enumerate([(0, 0), (0, 1), (0, 3), (2, 0), (2, 2), (2, 3)]):
        side = square_window(mask_bbox(tracks.masks[k, t]), 0.85)[2]
        for j, crop in enumerate(crops[6 * i:6 * i + 6]):
            height, width = (HEIGHT, WIDTH) if j < 3 else (side, side)
            assert int(0.8 * height) <= crop.shape[0] <= int(0.95 * height), (k, t, j)
            assert int(0.8 * width) <= crop.shape[1] <= int(0.95 * width), (k, t, j)
            if j < 3:  # the frame with its background, not a cut-out
                assert any((crop == clip.frames[t][y:y + crop.shape[0], x:x + crop.shape[1]]).all()
                           for y in range(HEIGHT - crop.shape[0] + 1) for x in range(WIDTH - crop.shape[1] + 1))
    finite = np.isfinite(result.conf)
    np.testing.assert_array_equal(finite, np.isfinite(orienter.orient(clip, tracks).conf))
    assert np.isfinite(result.angles_deg[finite]).all()
    assert ((result.angles_deg[finite][:, 0] >= 0) & (result.angles_deg[finite][:, 0] < 360)).all()
    again = with_config(orienter, tta=True).orient(clip, tracks)
    np.testing.assert_array_equal(again.angles_deg, result.angles_deg)


def test_box_crops_without_masks_warn_once(orienter, scene):
    clip, tracks = scene
    boxes_only = Tracks2D(ids=tracks.ids, categories=tracks.categories, is_agent=tracks.is_agent,
                          boxes_xyxy=tracks.boxes_xyxy, visible=tracks.visible)
    with pytest.warns(UserWarning, match="no masks") as caught:
        result = orienter.orient(clip, boxes_only)
    assert len([w for w in caught if "no masks" in str(w.message)]) == 1
    assert np.isfinite(result.angles_deg[0, [0, 1, 3]]).all()
    assert np.isnan(result.angles_deg[1]).all() and np.isnan(result.angles_deg[2, 1]).all()  # NaN box: unknown
    # The box crop keeps the background: it is the frame's pixels around the (scaled) box.
    bbox = box_bbox(tracks.boxes_xyxy[0, 3], clip.source_size, clip.image_size)
    assert bbox == mask_bbox(tracks.masks[0, 3])
    crop = extract_crop(clip.frames[3], square_window(bbox, 0.85), None, (0, 0, 0))
    angles, _ = decode_logits(orienter._logits([to_model_input(crop, 64, 56)]))
    np.testing.assert_allclose(result.angles_deg[0, 3], angles[0])


def test_wide_head_decodes_rotation_over_the_full_circle(weights_dir, scene):
    clip, tracks = scene
    wide = OrientAnythingOrienter.from_config(SMALL, "cpu", weights_dir / "wide")
    assert wide.model.n_outputs == 902
    result = wide.orient(clip, tracks)
    rotation = result.angles_deg[..., 2][np.isfinite(result.conf)]
    assert rotation.size == 6 and ((rotation >= -180) & (rotation < 180)).all()


def test_no_agents_gives_all_nan(orienter, scene):
    clip, tracks = scene
    none = Tracks2D(ids=tracks.ids, categories=tracks.categories, is_agent=np.zeros(3, bool),
                    boxes_xyxy=tracks.boxes_xyxy, visible=tracks.visible, masks=tracks.masks)
    result = orienter.orient(clip, none)
    assert np.isnan(result.angles_deg).all() and np.isnan(result.conf).all()
