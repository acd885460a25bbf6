import importlib.util
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon4d.qa_compiler.export import (
    FORMATS,
    export,
    read_dsr_json,
    read_jsonl,
    read_parquet,
    read_qwen_json,
    read_records,
    write_dsr_json,
    write_jsonl,
    write_parquet,
    write_qwen_json,
)
from recon4d.qa_compiler.records import QARecord

needs_pyarrow = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None,
                                   reason="parquet exports need pyarrow (pip install 'recon4d[qa]')")
ALL_FORMATS = [("dsr-json", "a.json"), pytest.param("parquet", "a.parquet", marks=needs_pyarrow),
               ("qwen", "a.json"), ("jsonl", "a.jsonl")]


def make_records() -> list[QARecord]:
    return [
        QARecord(
            video_id="vid_b", qtype="abs_dis",
            question="From the perspective of camera at 1.0s, between 0.5s and 3.0s, how does the distance "
                     "between person with initial bounding box coordinates [10, 20, 110, 220] and the camera change?",
            options=("Keep nearly constant and then become larger.", "Become smaller.",
                     "Become larger.", "Keep nearly constant."),
            answer="A", viewpoint="absolute", observer="camera", observer_time_s=1.0,
            interval_s=(0.5, 3.0), frame_range=(5, 30), visible_range=(5, 30), targets=("7", "camera"),
            quantities={"dis": [1.25, 1.2500000000000002, 1.9, 2.75], "ratio": [[1.0, 0.1], [2.0, -0.3]]},
            phases=("constant", "larger"), margin=0.125, seed=3, store_sha256="ab" * 32,
            video_path="/data/videos/vid_b.mp4",
        ),
        QARecord(
            video_id="vid_a", qtype="rel_dir",
            question="Où se trouve le chien — 犬 — par rapport à la tasse ?",
            options=("Front|Left", "Behind", "Above|Right", "Below"),
            answer="D", targets=("3", "4"),
            quantities={"dir": [[0.1, -0.2, 0.97], [0.0, 0.0, 1.0]]},
            phases=(("Front", "Left"), ("Below",)),
        ),
        QARecord(
            video_id="vid_a", qtype="llm", question="Which object ends up closer to the camera?",
            options=("the dog", "the cup", "both equally", "neither"), answer="B",
            viewpoint="relative", observer="9", interval_s=(2.0, 4.5),
        ),
    ]


def strip_evidence(record: QARecord) -> dict:
    return {"videoID": record.video_id, "type": record.qtype, "question": record.question,
            "options": list(record.options), "answer": record.answer}


def by_video(records):
    return sorted(records, key=lambda r: r.video_id)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_jsonl_round_trip_is_exact(tmp_path):
    records = make_records()
    path = write_jsonl(records, tmp_path / "qa.jsonl")
    back = read_jsonl(path)
    assert back == records
    assert math.isinf(back[1].margin) and back[0].margin == 0.125
    assert back[0].quantities["dis"][1] == 1.2500000000000002
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[1])
    assert line["margin"] is None
    assert "犬" in path.read_text(encoding="utf-8")


def test_jsonl_accepts_a_generator_and_numpy_numbers(tmp_path):
    record = QARecord(video_id="v", qtype="abs_spd", question="q", options=("a", "b", "c", "d"), answer="C",
                      quantities={"spd": np.array([0.5, 0.25]), "n": np.int64(3), "f": np.float32(0.5)})
    back = read_jsonl(write_jsonl((r for r in [record]), tmp_path / "g.jsonl"))
    assert back[0].quantities == {"spd": [0.5, 0.25], "n": 3, "f": 0.5}


def test_dsr_json_round_trip_and_layout(tmp_path):
    records = make_records()
    path = write_dsr_json(records, tmp_path / "qa.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data) == ["vid_a", "vid_b"]
    assert list(data["vid_a"][0]) == ["Type", "Question", "A", "B", "C", "D", "Correct"]
    assert data["vid_a"][1]["Type"] == "llm" and data["vid_a"][1]["Correct"] == "B"
    assert read_dsr_json(path) == [strip_evidence(r) for r in by_video(records)]


@needs_pyarrow
def test_parquet_round_trip_and_option_strings(tmp_path):
    import pyarrow.parquet as pq

    records = make_records()
    path = write_parquet(records, tmp_path / "bench.parquet")
    table = pq.read_table(path)
    assert table.column_names == ["videoID", "question", "options", "answer", "type"]
    assert table.column("options")[0].as_py() == [
        "A. Keep nearly constant and then become larger.", "B. Become smaller.",
        "C. Become larger.", "D. Keep nearly constant."]
    assert read_parquet(path) == [strip_evidence(r) for r in records]


@needs_pyarrow
def test_parquet_reader_accepts_bare_options_and_missing_type(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"videoID": ["x"], "question": ["q?"], "options": [["yes", "no", "B. maybe", "never"]],
                             "answer": ["A"]}), path)
    assert read_parquet(path) == [{"videoID": "x", "type": None, "question": "q?",
                                   "options": ["yes", "no", "B. maybe", "never"], "answer": "A"}]


@pytest.mark.parametrize("option_style, line", [("dsr", "B Become smaller."), ("dotted", "B. Become smaller.")])
def test_qwen_round_trip(tmp_path, option_style, line):
    records = make_records()
    path = write_qwen_json(records, tmp_path / "train.json", option_style=option_style)
    data = json.loads(path.read_text(encoding="utf-8"))
    human = data[0]["conversations"][0]["value"]
    assert data[0]["video"] == "vid_b.mp4"
    assert human.startswith("<video>\nFrom the perspective of camera") and "\nOptions:\n" in human
    assert line in human.split("\n")
    assert data[0]["conversations"][1] == {"from": "gpt", "value": "A"}
    expected = [{"video": f"{r.video_id}.mp4", "question": r.question, "options": list(r.options),
                 "answer": r.answer} for r in records]
    assert read_qwen_json(path) == expected


def test_qwen_video_path_source(tmp_path):
    records = make_records()
    path = write_qwen_json(records[:1], tmp_path / "t.json", video_source="path")
    assert read_qwen_json(path)[0]["video"] == "/data/videos/vid_b.mp4"
    with pytest.raises(ValueError, match="no video_path"):
        write_qwen_json(records[1:], tmp_path / "u.json", video_source="path")
    with pytest.raises(ValueError, match="option_style"):
        write_qwen_json(records, tmp_path / "u.json", option_style="fancy")


@pytest.mark.parametrize("fmt, name", ALL_FORMATS)
def test_writes_are_deterministic_and_leave_no_temp_file(tmp_path, fmt, name):
    records = make_records()
    first = export(records, tmp_path / "one" / name, fmt).read_bytes()
    second = export(records, tmp_path / "two" / name, fmt).read_bytes()
    again = export(records, tmp_path / "one" / name, fmt).read_bytes()
    assert first == second == again
    assert leftovers(tmp_path / "one") == [] and leftovers(tmp_path / "two") == []


@pytest.mark.parametrize("fmt, name", ALL_FORMATS)
def test_read_records_guesses_the_format(tmp_path, fmt, name):
    records = make_records()
    path = export(records, tmp_path / name, fmt)
    assert read_records(path) == FORMATS[fmt].read(path) == read_records(path, fmt)
    if fmt == "jsonl":
        assert read_records(path) == records


def test_failed_write_leaves_no_target_and_no_temp_file(tmp_path):
    good = make_records()[0]
    bad = QARecord(video_id="v", qtype="abs_dis", question="q", options=("a", "b", "c", "d"), answer="A",
                   quantities={"dis": [1.0, float("nan")]})
    target = tmp_path / "qa.jsonl"
    with pytest.raises(ValueError, match=r"record 1 \(video 'v'.*finite"):
        write_jsonl([good, bad], target)
    assert not target.exists() and list(tmp_path.iterdir()) == []

    unserialisable = QARecord(video_id="v", qtype="abs_dis", question="q", options=("a", "b", "c", "d"),
                              answer="A", quantities={"dis": {1, 2}})
    with pytest.raises(ValueError, match="set cannot be written"):
        write_jsonl([good, unserialisable], target)
    assert not target.exists() and leftovers(tmp_path) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = write_jsonl(make_records()[:1], tmp_path / "qa.jsonl")
    before = target.read_bytes()
    with pytest.raises(TypeError, match="not a QARecord"):
        write_jsonl([make_records()[0], {"video_id": "v"}], target)
    assert target.read_bytes() == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt, name", ALL_FORMATS)
def test_empty_exports(tmp_path, fmt, name):
    assert read_records(export([], tmp_path / name, fmt), fmt) == []


def test_unknown_format_and_suffix(tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'csv'; expected one of dsr-json, parquet, qwen, jsonl"):
        export(make_records(), tmp_path / "a.csv", "csv")
    with pytest.raises(ValueError, match="unknown export format"):
        read_records(tmp_path / "a.json", fmt="xml")
    (tmp_path / "a.txt").write_text("{}")
    with pytest.raises(ValueError, match="suffix '.txt'.*expected .json, .jsonl or .parquet"):
        read_records(tmp_path / "a.txt")


@pytest.mark.parametrize("name, content, reader, message", [
    ("a.json", "{not json", read_records, "not a UTF-8 JSON file"),
    ("a.json", "42", read_records, "expected an object .DSR JSON. or a list"),
    ("a.json", '[{"video": "v"}]', read_dsr_json, "expected an object"),
    ("a.json", '{"v": {"Question": "q"}}', read_dsr_json, "must map to a list"),
    ("a.json", '{"v": [{"Question": "q", "A": "a", "B": "b", "C": "c"}]}', read_records, "lacks D, Correct"),
    ("a.json", '{"v": [{"Question": "q", "A": "a", "B": "b", "C": "c", "D": "d", "Correct": "E"}]}',
     read_records, "one of the letters A, B, C, D"),
    ("a.json", '{"v": []}', read_qwen_json, "expected a JSON list"),
    ("a.json", '[{"video": "v", "conversations": []}]', read_records, "is not a sample"),
    ("a.json", '[{"video": "v", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "A"}]}]',
     read_records, "must start with '<video>"),
    ("a.json", '[{"video": "v", "conversations": [{"from": "human", "value": "<video>\\nq\\nOptions:\\nA a\\nB b"},'
               ' {"from": "gpt", "value": "A"}]}]', read_records, "four option lines"),
    ("a.json", '[{"video": "v", "conversations": [{"from": "human", "value": "<video>\\nq\\nOptions:\\nA a\\nB b\\nX c'
               '\\nD d"}, {"from": "gpt", "value": "A"}]}]', read_records, "should start with 'C '"),
    ("a.jsonl", '{"video_id": "v"}\n', read_records, r"a.jsonl:1 is not a QARecord"),
    ("a.jsonl", '\n[1, 2]\n', read_records, r"a.jsonl:2 holds a JSON list"),
    ("a.jsonl", "not json\n", read_jsonl, r"a.jsonl:1 is not UTF-8 JSON"),
    pytest.param("a.parquet", "not parquet", read_records, "not a readable parquet file", marks=needs_pyarrow),
])
def test_malformed_files_raise_clear_errors(tmp_path, name, content, reader, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        reader(path)


@needs_pyarrow
def test_parquet_missing_columns_and_bad_options(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"videoID": ["x"], "question": ["q"]}), path)
    with pytest.raises(ValueError, match="lacks the column.s. options, answer"):
        read_parquet(path)
    pq.write_table(pa.table({"videoID": ["x"], "question": ["q"], "options": [["a", "b"]], "answer": ["A"]}), path)
    with pytest.raises(ValueError, match="row 0: expected four option strings"):
        read_parquet(path)


@needs_pyarrow
def test_writers_reject_non_records(tmp_path):
    with pytest.raises(TypeError, match="record 0 is a dict"):
        write_parquet([{"question": "q"}], tmp_path / "x.parquet")
    assert leftovers(tmp_path) == [] and not (tmp_path / "x.parquet").exists()


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(question=text, options=st.lists(text, min_size=4, max_size=4, unique=True),
       answer=st.sampled_from("ABCD"), series=st.lists(st.lists(finite, min_size=3, max_size=3), max_size=5),
       margin=st.one_of(finite, st.just(math.inf)))
def test_jsonl_and_dsr_round_trip_property(question, options, answer, series, margin):
    record = QARecord(video_id="v", qtype="abs_dir", question=question, options=tuple(options), answer=answer,
                      quantities={"dir": series}, margin=margin)
    with tempfile.TemporaryDirectory() as folder:
        assert read_jsonl(write_jsonl([record], Path(folder) / "p.jsonl")) == [record]
        assert read_dsr_json(write_dsr_json([record], Path(folder) / "p.json")) == [strip_evidence(record)]
