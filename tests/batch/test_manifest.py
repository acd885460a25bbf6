"""recon4d.batch.manifest: CSV/JSONL manifests, stable unique ids, one error naming file and line."""

from __future__ import annotations

import pytest

from recon4d.batch.manifest import ManifestError, default_id, read_manifest


def test_csv_with_all_columns(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('video,start,end,objects,id\nclips/a.mp4,2,8.5,"person. dog.",kitchen\n/abs/b.mkv,,,,\n\n')
    first, second = read_manifest(path)
    assert (first.id, first.start_s, first.end_s, first.objects, first.line) == ("kitchen", 2.0, 8.5, "person. dog.", 2)
    assert first.video == str(tmp_path / "clips" / "a.mp4") and first.video_as_written == "clips/a.mp4"
    assert second.video == "/abs/b.mkv" and second.start_s is None and second.objects is None
    assert second.id == default_id("/abs/b.mkv", None, None) and second.id.startswith("b-")


def test_jsonl(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"video": "a.mp4", "start": 1.5}\n\n{"video": "b.mp4", "id": "bee", "objects": "cat."}\n')
    a, b = read_manifest(path)
    assert a.start_s == 1.5 and a.line == 1 and (b.id, b.objects, b.line) == ("bee", "cat.", 3)


def test_default_ids_are_stable_and_never_the_stem_alone(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video,start\nx/video.mp4,\ny/video.mp4,\nx/video.mp4,3\n")
    ids = [e.id for e in read_manifest(path)]
    assert len(set(ids)) == 3 and all(i.startswith("video-") and i != "video" for i in ids)
    assert ids == [e.id for e in read_manifest(path)]  # stable across reads
    assert ids[0] == default_id("x/video.mp4", None, None)


@pytest.mark.parametrize("name, text, words", [
    ("m.csv", "", "is empty"),
    ("m.csv", "path,start\na.mp4,1\n", "no 'video' column"),
    ("m.csv", "video,speed\na.mp4,3\n", "line 2: unknown column(s) ['speed']"),
    ("m.csv", "video,start\na.mp4,soon\n", "line 2: start must be a number of seconds"),
    ("m.csv", "video,start\na.mp4,-1\n", "finite number of seconds >= 0"),
    ("m.csv", "video,start\na.mp4,nan\n", "finite number of seconds >= 0"),
    ("m.csv", "video,start,end\na.mp4,5,2\n", "line 2: end (2.0) must come after start (5.0)"),
    ("m.csv", "video,id\na.mp4,x\nb.mp4,X\n", "line 3: id 'X' is already used on line 2"),
    ("m.csv", "video\na.mp4\na.mp4\n", "line 3: id"),
    ("m.csv", "video,id\na.mp4,../../etc\n", "cannot name files"),
    ("m.csv", "video,start\na.mp4,1,2\n", "line 2: 3 values but the header has 2 columns"),
    ("m.csv", "video\n\n\n", "lists no videos"),
    ("m.csv", "video,start\n,3\n", "line 2: the video path is empty"),
    ("m.csv", "video,video\na,b\n", "repeats a column"),
    ("m.jsonl", '{"video": "a.mp4"}\n{"video": \n', "line 2: not valid JSON"),
    ("m.jsonl", '["a.mp4"]\n', "line 1: expected a JSON object"),
    ("m.jsonl", '{"video": 3}\n', "line 1: video must be a string"),
    ("m.jsonl", '{"video": "a.mp4", "start": true}\n', "start must be a number"),
    ("m.txt", "a.mp4\n", "cannot tell the format"),
])
def test_bad_manifests_name_file_and_line(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    assert words in str(caught.value) and str(path) in str(caught.value)


def test_missing_folder_and_binary_manifests(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ManifestError, match="is a folder"):
        read_manifest(tmp_path / "dir.csv")
    (tmp_path / "bin.csv").write_bytes(b"video\n\xff\xfe\x00")
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(tmp_path / "bin.csv")
