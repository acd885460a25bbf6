"""QA data: every file format, video lookup, counted skips, frame choice, timing and the label layout."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recon4d.qa_compiler.records import QUESTION_TYPES
from recon4d.video import probe
from recon4d.vlm.data import (
    DataError,
    FrameConfig,
    eval_frame_config,
    evaluation_prompt,
    frame_indices,
    load_items,
    seconds_per_grid,
    split_training_prompt,
    training_prompt,
)


def rewrite_jsonl(source, target, change):
    lines = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    target.write_text("".join(json.dumps(change(dict(r))) + "\n" for r in lines))
    return lines


def test_jsonl_export_reads_every_type_with_its_video(qa_set):
    items = load_items(qa_set / "qa.jsonl")
    assert len(items.items) == 24 and not items.skipped
    types = {i.qtype for i in items.items}
    assert types <= set(QUESTION_TYPES) and len(types) >= 8
    item = items.items[0]
    assert item.video == qa_set / "scene" / "video.mp4" and item.answer in "ABCD" and len(item.options) == 4
    assert item.turns[0][1] == training_prompt(item.question, item.options)
    assert item.turns[0][1].startswith("<video>\n") and "\nOptions:\nA " in item.turns[0][1]
    assert item.turns[1] == ("assistant", item.answer)
    predicting = load_items(qa_set / "qa_pred.jsonl").items
    assert len(predicting) == 4 and all(i.visible_end_s is not None for i in predicting)
    for item in predicting:  # the last visible frame is where the predicted motion starts
        record = json.loads((qa_set / "qa_pred.jsonl").read_text().splitlines()[item.index])
        assert record["visible_range"][1] == record["frame_range"][0]
        assert item.visible_end_s == record["interval_s"][0]


def test_relative_video_paths_resolve_beside_the_file_or_under_the_video_root(qa_copy, tmp_path):
    rewrite_jsonl(qa_copy / "qa.jsonl", qa_copy / "rel.jsonl", lambda r: {**r, "video_path": "scene/video.mp4"})
    assert load_items(qa_copy / "rel.jsonl").items[0].video == qa_copy / "scene" / "video.mp4"
    # Qwen JSON names "{videoID}.mp4": not beside the file, found under --video-root.
    with pytest.raises(DataError, match="no usable item") as error:
        load_items(qa_copy / "qa.json")
    assert "video missing: 24" in str(error.value) and "--video-root" in str(error.value)
    qwen = load_items(qa_copy / "qa.json", video_root=qa_copy / "videos")
    jsonl = load_items(qa_copy / "qa.jsonl")
    assert [(i.question, i.options, i.answer) for i in qwen.items] == \
        [(i.question, i.options, i.answer) for i in jsonl.items]
    assert qwen.items[0].turns == jsonl.items[0].turns  # the Qwen human turn is kept verbatim
    for name in ("qa.parquet", "qa_dsr.json"):
        other = load_items(qa_copy / name, video_root=qa_copy / "videos")
        assert [(i.qtype, i.question, i.options, i.answer) for i in other.items] == \
            [(i.qtype, i.question, i.options, i.answer) for i in jsonl.items]


def test_missing_unreadable_and_malformed_records_are_counted_not_dropped(qa_copy):
    (qa_copy / "broken.mp4").write_bytes(b"not a video")
    records = json.loads((qa_copy / "qa.json").read_text())
    records[0]["video"] = "nowhere.mp4"
    records[1]["video"] = "broken.mp4"
    records[2] = {"video": "video.mp4"}  # no conversations
    records[3]["conversations"][1]["from"] = "robot"
    (qa_copy / "mixed.json").write_text(json.dumps(records))
    items = load_items(qa_copy / "mixed.json", video_root=qa_copy / "videos")
    assert len(items.items) == 20
    assert items.skipped == {"video missing": 1, "malformed record": 2, "video unreadable": 1}
    text = items.summary()
    assert "nowhere.mp4" in text and "broken.mp4" in text and "sample 2" in text
    lines = (qa_copy / "qa.jsonl").read_text().splitlines()
    (qa_copy / "mixed.jsonl").write_text("\n".join(["{not json", json.dumps({"a": 1}), *lines[:3]]) + "\n")
    items = load_items(qa_copy / "mixed.jsonl")
    assert len(items.items) == 3 and items.skipped == {"malformed record": 2}


def test_unusable_files_are_one_paragraph_errors(qa_copy):
    (qa_copy / "empty.json").write_text("[]")
    with pytest.raises(DataError, match="no usable item"):
        load_items(qa_copy / "empty.json")
    (qa_copy / "bad.json").write_text("{oops")
    with pytest.raises(DataError, match="not valid JSON"):
        load_items(qa_copy / "bad.json")
    with pytest.raises(DataError, match="does not exist"):
        load_items(qa_copy / "absent.jsonl")
    (qa_copy / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="suffix"):
        load_items(qa_copy / "x.csv")
    with pytest.raises(DataError, match="not a folder"):
        load_items(qa_copy / "qa.jsonl", video_root=qa_copy / "nope")


def test_frames_follow_the_reference_and_visible_sampling_hides_the_answer(qa_set):
    items = load_items(qa_set / "qa.jsonl")
    items.items += load_items(qa_set / "qa_pred.jsonl").items
    info = probe(qa_set / "scene" / "video.mp4")
    assert info.n_frames == 48
    whole = frame_indices(info, FrameConfig())
    np.testing.assert_array_equal(whole, np.unique(np.linspace(0, 47, 32, dtype=int)))  # data_qwen_packed.py
    evaluation = frame_indices(info, eval_frame_config())
    np.testing.assert_array_equal(evaluation, np.rint(np.linspace(0, 47, 32)).astype(int))
    assert seconds_per_grid(whole, info, FrameConfig()) == pytest.approx(2 / (32 / 4.0))  # 48 frames at 12 fps
    assert seconds_per_grid(whole, info, eval_frame_config()) == 1.0
    visible = FrameConfig(sampling="visible")
    for item in items.items:
        shown = frame_indices(info, visible, item.visible_end_s)
        if not item.qtype.endswith("dir_pred"):
            np.testing.assert_array_equal(shown, whole)  # the scene shows the whole clip
            continue
        assert shown[-1] / info.fps <= item.visible_end_s + 1e-9  # nothing after the last visible frame
        assert shown[-1] == math.floor(item.visible_end_s * info.fps + 1e-6)
        assert seconds_per_grid(shown, info, visible) == pytest.approx(2 / (len(shown) / ((shown[-1] + 1) / 12)))
    hidden_items = [i for i in items.items if i.qtype.endswith("dir_pred")]
    assert len(hidden_items) >= 4 and all(i.visible_end_s < 4.0 - 1.0 + 1e-9 for i in hidden_items)  # ≥ 1 s hidden


def test_eval_pixel_budget_and_prompts():
    frames = eval_frame_config()
    assert (frames.min_pixels, frames.max_pixels, frames.rounding, frames.timing) == (100352, 602112, "round", "fixed")
    # Many frames: the per-video budget bounds each frame (qwen-vl-utils' rule), floored at 1.05 · min.
    assert eval_frame_config(n_frames=128).max_pixels == int(24576 * 28 * 28 / 128 * 2)
    assert eval_frame_config(n_frames=4096).max_pixels == int(100352 * 1.05)
    options = ("(1) Left.", "(1) Right.", "(1) Front.", "(1) Behind.")
    assert evaluation_prompt("Q?", options) == (
        "<video>\nThese are the frames of a video. Select the best answer to the following multiple-choice "
        "question based on the video. Respond with only the letter (A, B, C, or D) of the correct option.\n"
        "Question: Q?\nA. (1) Left.\nB. (1) Right.\nC. (1) Front.\nD. (1) Behind.\nAnswer: ")
    assert split_training_prompt(training_prompt("Q?", options)) == ("Q?", options)
    assert split_training_prompt("<video>\nfree chat") is None
    with pytest.raises(DataError, match="sampling"):
        FrameConfig(sampling="middle")


def test_training_sample_supervises_answer_im_end_and_newline(qa_set):
    from recon4d.vlm import micro_config
    from recon4d.vlm.configuration import GeometryConfig
    from recon4d.vlm.samples import SampleBuilder, SampleSettings
    from recon4d.vlm.tokenizer import ByteTokenizer

    config = micro_config("gsm")
    geometry = GeometryConfig.from_hf_config(config)
    tokenizer = ByteTokenizer.for_model(config.text_config.vocab_size, geometry.token_ids)
    items = load_items(qa_set / "qa.jsonl")
    item = items.items[0]
    sample = SampleBuilder(items, tokenizer.encode, geometry, SampleSettings(FrameConfig(max_pixels=3136)))(item)
    supervised = [t for t, label in zip(sample.input_ids, sample.labels) if label != -100]
    assert supervised == tokenizer.encode(item.answer) + [geometry.token_ids.im_end] + tokenizer.encode("\n")
    assert sample.input_ids[-len(supervised) - 3:-len(supervised)] == (
        geometry.token_ids.im_start, *tokenizer.encode("assistant\n"))  # the 3 masked tokens
    t, h, w = sample.videos[0].video_grid_thw
    assert 2 * t == 32 and t * h * w // 4 + 32 == sum(1 for i in sample.input_ids if i == geometry.token_ids.video_pad)
    assert sample.second_per_grid_ts == (pytest.approx(0.25),)
    evaluation = SampleBuilder(items, tokenizer.encode, geometry,
                               SampleSettings(eval_frame_config(min_pixels=784, max_pixels=3136), training=False))
    prompt = evaluation(item)
    assert prompt.labels is None and prompt.second_per_grid_ts == (1.0,)
    assert tokenizer.decode(prompt.input_ids).endswith("Answer: \nassistant\n")
