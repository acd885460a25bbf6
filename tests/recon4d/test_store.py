import json
from dataclasses import replace

import numpy as np
import pytest

from recon4d.errors import StoreError
from recon4d.store import PackedMasks, file_sha256, open_scene, write_scene
from tests.conftest import make_scene


def _assert_small_equal(a, b):
    for name in ("timestamps_s", "frame_index", "cam_to_world", "ids", "is_agent", "visible", "box_xyxy",
                 "center_world", "orientation", "orient_conf", "extent"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.intrinsics, b.intrinsics)
    assert a.categories == b.categories


def test_round_trip_with_heavy_arrays(tmp_path, small_scene):
    path = write_scene(small_scene, tmp_path / "s.zarr")
    assert path.exists() and not (tmp_path / "s.zarr.partial").exists()
    back = open_scene(path)
    _assert_small_equal(small_scene, back)
    assert back.source == small_scene.source
    assert back.backends == small_scene.backends and back.config == small_scene.config
    # heavy arrays are lazy: zarr arrays / packed masks, float16 on disk
    assert not isinstance(back.local_points, np.ndarray)
    assert back.local_points.dtype == np.float16
    np.testing.assert_allclose(np.asarray(back.local_points[2]), small_scene.local_points[2], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(back.conf[:]), small_scene.conf, atol=1e-3)
    assert isinstance(back.masks, PackedMasks) and back.masks.shape == small_scene.masks.shape
    np.testing.assert_array_equal(back.masks[1, 3], small_scene.masks[1, 3])
    np.testing.assert_array_equal(np.asarray(back.masks), small_scene.masks)
    np.testing.assert_array_equal(back.masks[:, 2, 1:3], small_scene.masks[:, 2, 1:3])


def test_round_trip_without_heavy_arrays_and_without_objects(tmp_path):
    scene = make_scene(n_objects=0, heavy=False)
    back = open_scene(write_scene(scene, tmp_path / "e.zarr"))
    assert back.n_objects == 0 and back.local_points is None and back.masks is None
    assert back.categories == ()


def test_rewriting_an_opened_store_copies_lazy_arrays(tmp_path, small_scene):
    first = open_scene(write_scene(small_scene, tmp_path / "a.zarr"))
    second = open_scene(write_scene(first, tmp_path / "b.zarr"))
    np.testing.assert_array_equal(np.asarray(second.local_points[:]), np.asarray(first.local_points[:]))
    np.testing.assert_array_equal(np.asarray(second.masks), np.asarray(first.masks))


def test_refuses_to_overwrite_unless_asked(tmp_path, small_scene):
    path = write_scene(small_scene, tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="already exists"):
        write_scene(small_scene, path)
    write_scene(replace(small_scene, config={"second": True}), path, overwrite=True)
    assert open_scene(path).config == {"second": True}


def test_failed_write_leaves_nothing(tmp_path, small_scene):
    class Exploding:
        shape, dtype = small_scene.local_points.shape, np.dtype(np.float32)

        def __getitem__(self, index):
            if index == 3:
                raise RuntimeError("disk on fire")
            return small_scene.local_points[index]

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_scene(replace(small_scene, local_points=Exploding()), tmp_path / "s.zarr")
    assert list(tmp_path.iterdir()) == []


def _attrs_file(path):
    return path / "zarr.json"


def _edit_attrs(path, **changes):
    meta = json.loads(_attrs_file(path).read_text())
    meta["attributes"].update(changes)
    _attrs_file(path).write_text(json.dumps(meta))


def test_open_missing_path(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_scene(tmp_path / "nope.zarr")


def test_open_plain_folder_or_file(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(StoreError, match="not a recon4d scene store"):
        open_scene(tmp_path / "folder")
    (tmp_path / "file.zarr").write_text("hello")
    with pytest.raises(StoreError, match="not a recon4d scene store"):
        open_scene(tmp_path / "file.zarr")


def test_open_other_zarr_group(tmp_path):
    import zarr

    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["format"] = "something.else"
    with pytest.raises(StoreError, match="format is 'something.else'"):
        open_scene(tmp_path / "other.zarr")


@pytest.mark.parametrize("version, word", [(3, "newer"), (0, "older")])
def test_open_other_version(tmp_path, small_scene, version, word):
    path = write_scene(small_scene, tmp_path / "s.zarr")
    _edit_attrs(path, version=version)
    with pytest.raises(StoreError, match=f"version {version}, written by an? {word}"):
        open_scene(path)


def test_open_missing_array(tmp_path, small_scene):
    import shutil

    path = write_scene(small_scene, tmp_path / "s.zarr")
    shutil.rmtree(path / "objects" / "center_world")
    with pytest.raises(StoreError, match="missing the array objects/center_world"):
        open_scene(path)


def test_open_shape_mismatch(tmp_path, small_scene):
    import zarr

    path = write_scene(small_scene, tmp_path / "s.zarr")
    group = zarr.open_group(str(path), mode="a")
    del group["objects/visible"]
    group.create_array("objects/visible", data=np.ones((2, 4), bool))
    with pytest.raises(StoreError, match="inconsistent: visible has 4 along axis 1"):
        open_scene(path)


def test_open_wrong_dtype(tmp_path, small_scene):
    import zarr

    path = write_scene(small_scene, tmp_path / "s.zarr")
    group = zarr.open_group(str(path), mode="a")
    del group["time/timestamps"]
    group.create_array("time/timestamps", data=np.arange(5, dtype=np.float32))
    with pytest.raises(StoreError, match="dtype float32, expected float64"):
        open_scene(path)


def test_open_interrupted_write(tmp_path):
    (tmp_path / "s.zarr.partial").mkdir()
    (tmp_path / "s.zarr").mkdir()
    with pytest.raises(StoreError, match="never completed"):
        open_scene(tmp_path / "s.zarr")


def test_file_sha256(tmp_path):
    import hashlib

    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_float16_overflow_is_a_recorded_clamp_not_inf(tmp_path, small_scene):
    """Issue 10: a point beyond ±65504 used to become inf silently."""
    points = np.array(small_scene.local_points)
    points[1, 2, 3] = [1e6, -7e4, 5.0]
    points[2, 0, 0, 2] = np.nan
    back = open_scene(write_scene(replace(small_scene, local_points=points), tmp_path / "far.zarr"))
    stored = np.asarray(back.local_points[:])
    assert not np.isinf(stored).any()
    np.testing.assert_array_equal(stored[1, 2, 3], np.array([65504, -65504, 5], np.float16))
    assert np.isnan(stored[2, 0, 0, 2])
    metadata = json.loads((tmp_path / "far.zarr" / "geometry" / "local_points" / "zarr.json").read_text())
    assert metadata["attributes"]["clamped"] == 2
    assert any("2 point coordinates beyond the float16 range" in w for w in back.warnings)


def test_unit_warnings_and_video_id_are_recorded(tmp_path, small_scene):
    scene = replace(small_scene, unit="arbitrary", warnings=("recon: something fell back",))
    back = open_scene(write_scene(scene, tmp_path / "u.zarr"))
    assert back.unit == "arbitrary" and back.warnings == ("recon: something fell back",)
    assert back.source.video_id == small_scene.source.video_id == "clip-00000000"
    assert json.loads((tmp_path / "u.zarr" / "zarr.json").read_text())["attributes"]["unit"] == "arbitrary"


def test_quality_record_and_warnings_round_trip(tmp_path, small_scene):
    from tests.conftest import make_quality

    objects, camera = make_quality(small_scene.n_objects, small_scene.n_frames)
    scene = replace(small_scene, object_quality=objects, camera_quality=camera,
                    warnings=("recon: the camera is still", "lift: object 7 jumps"))
    path = write_scene(scene, tmp_path / "q.zarr")
    back = open_scene(path)
    assert back.warnings == scene.warnings
    from recon4d.store import verify_scene

    assert verify_scene(path).ok  # the quality arrays are in the store's checksum
    for name in (*objects.FIELDS, "frame_ok"):
        np.testing.assert_array_equal(getattr(back.object_quality, name), getattr(objects, name), err_msg=name)
        assert getattr(back.object_quality, name).dtype == getattr(objects, name).dtype
    assert back.object_quality.issues == objects.issues
    for name in ("inlier_ratio", "reprojection_px", "frozen", "frame_ok"):
        np.testing.assert_array_equal(getattr(back.camera_quality, name), getattr(camera, name), err_msg=name)
    assert (back.camera_quality.motion, back.camera_quality.scale_source, back.camera_quality.score) == (
        "parallax", "ground-plane", 0.75)


def test_scene_without_quality_has_none_and_nan_score_survives(tmp_path, small_scene):
    from recon4d.types import CameraQuality

    back = open_scene(write_scene(small_scene, tmp_path / "n.zarr"))
    assert back.object_quality is None and back.camera_quality is None and back.warnings == ()
    scene = replace(small_scene, camera_quality=CameraQuality.unknown(small_scene.n_frames))
    back = open_scene(write_scene(scene, tmp_path / "u.zarr", overwrite=True))
    assert np.isnan(back.camera_quality.score) and back.camera_quality.frame_ok.all()


def test_version_1_store_still_opens_without_quality(tmp_path, small_scene):
    path = write_scene(small_scene, tmp_path / "v1.zarr")
    _edit_attrs(path, version=1)
    meta = json.loads(_attrs_file(path).read_text())
    del meta["attributes"]["warnings"]
    _attrs_file(path).write_text(json.dumps(meta))
    back = open_scene(path)
    assert back.object_quality is None and back.warnings == ()
    _assert_small_equal(small_scene, back)


def test_damaged_quality_record_is_a_store_error(tmp_path, small_scene):
    import shutil

    from tests.conftest import make_quality

    objects, camera = make_quality(small_scene.n_objects, small_scene.n_frames)
    path = write_scene(replace(small_scene, object_quality=objects, camera_quality=camera), tmp_path / "d.zarr")
    shutil.rmtree(path / "quality" / "object" / "score")
    with pytest.raises(StoreError, match="missing the array quality/object/score"):
        open_scene(path)


@pytest.mark.parametrize("later", [("noise_m", "smooth_lambda_s3"), ("track_fraction", "box_stable_fraction"),
                                   ("motion_evidence",)])
def test_a_store_written_before_later_quality_fields_still_opens(tmp_path, small_scene, later):
    import shutil

    from tests.conftest import make_quality

    objects, camera = make_quality(small_scene.n_objects, small_scene.n_frames)
    path = write_scene(replace(small_scene, object_quality=objects), tmp_path / "old.zarr")
    np.testing.assert_array_equal(open_scene(path).object_quality.track_fraction, objects.track_fraction)
    np.testing.assert_array_equal(open_scene(path).object_quality.motion_evidence, objects.motion_evidence)
    meta = json.loads(_attrs_file(path).read_text())
    for name in later:
        shutil.rmtree(path / "quality" / "object" / name)
        del meta["attributes"]["integrity"]["arrays"][f"quality/object/{name}"]
    _attrs_file(path).write_text(json.dumps(meta))
    back = open_scene(path).object_quality
    assert all(np.isnan(getattr(back, name)).all() for name in later)
    np.testing.assert_array_equal(back.score, objects.score)


def test_observed_frames_round_trip_and_a_store_without_them_reads_all_observed(tmp_path, small_scene):
    observed = np.random.default_rng(1).random(small_scene.visible.shape) < 0.5
    back = open_scene(write_scene(replace(small_scene, observed=observed), tmp_path / "o.zarr"))
    np.testing.assert_array_equal(back.observed, observed)
    np.testing.assert_array_equal(back.observed_frames, observed & small_scene.visible)
    # a store written before the flag was recorded (or ground truth): every visible frame observed
    old = open_scene(write_scene(small_scene, tmp_path / "old.zarr"))
    assert old.observed is None
    np.testing.assert_array_equal(old.observed_frames, small_scene.visible)
    assert not (tmp_path / "old.zarr" / "objects" / "observed").exists()
