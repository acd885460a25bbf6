"""Stores verify themselves: chunk presence at open, a recorded content checksum, damage as StoreError."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from recon4d.errors import OutputError, StoreError
from recon4d.outputs import output_lock, stale_temporaries
from recon4d.store import open_scene, store_checksum, verify_scene, write_scene
from tests.conftest import make_scene


@pytest.fixture
def store(tmp_path, small_scene):
    return write_scene(small_scene, tmp_path / "s.zarr")


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("chunk", ["camera/cam_to_world/c/0/0/0", "objects/visible/c/0/0",
                                   "geometry/local_points/c/3/0/0/0", "objects/masks/c/1/2/0/0"])
def test_a_missing_chunk_is_an_error_naming_it(store, chunk):
    (store / chunk).unlink()
    with pytest.raises(StoreError, match=f"chunk {chunk} is missing"):
        open_scene(store)


def test_all_zero_arrays_still_have_their_chunks(tmp_path):
    # Zarr skips chunks equal to the fill value unless told otherwise; then a lost chunk and a
    # zero chunk would look the same. Every chunk is written, so absence always means damage.
    scene = make_scene(n_frames=4, n_objects=2, heavy=False)
    scene = replace(scene, visible=np.zeros((2, 4), bool), is_agent=np.zeros(2, bool),
                    center_world=np.full((2, 4, 3), np.nan), box_xyxy=np.full((2, 4, 4), np.nan, np.float32),
                    orientation=np.full((2, 4, 3), np.nan, np.float32), frame_index=np.zeros(4, np.int64),
                    categories=("box", "box"))
    path = write_scene(scene, tmp_path / "z.zarr")
    (path / "objects" / "is_agent" / "c" / "0").unlink()
    with pytest.raises(StoreError, match="chunk objects/is_agent/c/0 is missing"):
        open_scene(path)


def test_a_deleted_optional_array_is_noticed(store):
    shutil.rmtree(store / "geometry" / "conf")
    with pytest.raises(StoreError, match="missing the array geometry/conf"):
        open_scene(store)


def test_checksum_is_recorded_and_recomputed(store, small_scene, tmp_path):
    check = verify_scene(store)
    assert check.ok and check.recorded == check.computed == store_checksum(store)
    # Content, not bytes or time: the same scene written again has the same checksum.
    assert store_checksum(write_scene(small_scene, tmp_path / "again.zarr")) == check.recorded
    other = replace(small_scene, cam_to_world=small_scene.cam_to_world + 1e-9)
    assert store_checksum(write_scene(other, tmp_path / "other.zarr")) != check.recorded


def test_verify_finds_a_changed_heavy_chunk(store):
    _flip_last_byte(store / "geometry" / "local_points" / "c" / "2" / "0" / "0" / "0")
    open_scene(store)  # heavy arrays are lazy: the damage shows when they are read or verified
    check = verify_scene(store)
    assert not check.ok and check.mismatched == ("geometry/local_points",)


def test_verify_notices_a_rewritten_valid_chunk(store):
    import zarr

    group = zarr.open_group(str(store), mode="a")
    group["objects/orient_conf"][0, 0] = 0.123  # valid data, not what was written
    assert verify_scene(store).mismatched == ("objects/orient_conf",)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped"])
def test_damaged_small_chunk_is_a_store_error(store, damage):
    chunk = store / "objects" / "center_world" / "c" / "0" / "0" / "0"
    if damage == "garbage":
        chunk.write_bytes(b"not zstd")
    elif damage == "truncated":
        chunk.write_bytes(chunk.read_bytes()[:10])
    else:
        _flip_last_byte(chunk)
    with pytest.raises(StoreError, match="objects/center_world cannot be decoded"):
        open_scene(store)


def test_damaged_heavy_chunk_is_a_store_error_when_read(store):
    (store / "geometry" / "local_points" / "c" / "1" / "0" / "0" / "0").write_bytes(b"junk")
    scene = open_scene(store)
    with pytest.raises(StoreError, match="geometry/local_points cannot be decoded"):
        scene.local_points[1]
    with pytest.raises(StoreError, match="cannot be decoded"):
        verify_scene(store)


@pytest.mark.parametrize("where, text, words", [
    ("zarr.json", "{not json", "cannot be opened as a Zarr v3 group"),
    ("objects/visible/zarr.json", "{not json", "metadata of array objects/visible cannot be read"),
])
def test_damaged_metadata_is_a_store_error(store, where, text, words):
    (store / where).write_text(text)
    with pytest.raises(StoreError, match=words):
        open_scene(store)


@pytest.mark.parametrize("change, words", [
    ({"source": "clip.mp4"}, "attribute 'source' should be a JSON object"),
    ({"backends": [1, 2]}, "attribute 'backends' should be a JSON object"),
    ({"config": 3}, "attribute 'config' should be a JSON object"),
    ({"integrity": 5}, "integrity record"),
    ({"integrity": {"algorithm": "x", "sha256": "y", "arrays": {}}}, "integrity record"),
])
def test_wrong_attribute_types_are_a_store_error(store, change, words):
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"].update(change)
    (store / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=words):
        open_scene(store)


def test_missing_source_key_is_a_store_error(store):
    meta = json.loads((store / "zarr.json").read_text())
    del meta["attributes"]["source"]["fps"]
    (store / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="attributes are malformed"):
        open_scene(store)


def test_overwrite_replaces_only_stores(tmp_path, small_scene):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(OutputError, match="not a scene store written by recon4d"):
        write_scene(small_scene, mine, overwrite=True)
    (tmp_path / "notes.zarr").write_text("a file")
    with pytest.raises(OutputError, match="is a file"):
        write_scene(small_scene, tmp_path / "notes.zarr", overwrite=True)
    assert (mine / "holiday.jpg").read_bytes() == b"precious" and (tmp_path / "notes.zarr").read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.zarr", "photos"]


def test_a_second_writer_of_the_same_store_is_refused(tmp_path, small_scene):
    path = tmp_path / "s.zarr"
    with output_lock(path):
        import threading

        errors = []

        def second():
            try:
                write_scene(small_scene, path)
            except OutputError as exc:
                errors.append(str(exc))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert errors and "being written by another recon4d run" in errors[0] and not path.exists()


_OVERWRITE_SLOWLY = textwrap.dedent("""
    import sys, time
    import numpy as np
    from dataclasses import replace
    sys.path.insert(0, sys.argv[2])
    from tests.conftest import make_scene
    from recon4d.store import write_scene

    scene = make_scene(n_frames=40)

    class Slow:
        shape, dtype = scene.local_points.shape, np.dtype(np.float32)

        def __getitem__(self, t):
            if t == 20:
                print("halfway", flush=True)
                time.sleep(60)
            return scene.local_points[t]

    write_scene(replace(scene, local_points=Slow(), config={"run": 2}), sys.argv[1], overwrite=True)
""")


def test_kill_9_during_overwrite_keeps_the_old_store_whole(tmp_path, small_scene):
    from pathlib import Path

    path = write_scene(replace(small_scene, config={"run": 1}), tmp_path / "s.zarr")
    root = Path(__file__).resolve().parents[2]
    writer = subprocess.Popen([sys.executable, "-c", _OVERWRITE_SLOWLY, str(path), str(root)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "halfway"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert open_scene(path).config == {"run": 1} and verify_scene(path).ok
    assert stale_temporaries(path)
    write_scene(replace(small_scene, config={"run": 3}), path, overwrite=True)
    assert open_scene(path).config == {"run": 3} and not stale_temporaries(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
