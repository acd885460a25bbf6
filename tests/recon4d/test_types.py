import numpy as np
import pytest

from recon4d.errors import ShapeError
from recon4d.types import Clip, Orientations, Reconstruction, Scene, Tracks2D
from tests.conftest import make_scene


def test_clip_coerces_and_reports_sizes():
    clip = Clip(frames=np.zeros((3, 4, 6, 3), np.uint8), timestamps_s=[0, 0.1, 0.2], frame_index=[0, 3, 6],
                fps=30, source="a.mp4", source_size=(12, 8))
    assert clip.n_frames == 3 and clip.image_size == (6, 4)
    assert clip.timestamps_s.dtype == np.float64 and clip.frame_index.dtype == np.int64


def test_clip_rejects_mismatched_timestamps():
    with pytest.raises(ShapeError, match=r"timestamps_s has 2 along axis 0 \(T\) but T=3"):
        Clip(frames=np.zeros((3, 4, 6, 3), np.uint8), timestamps_s=[0, 0.1], frame_index=[0, 1, 2],
             fps=30, source="a.mp4", source_size=(6, 4))


def test_clip_rejects_float_frames():
    with pytest.raises(ShapeError, match="uint8"):
        Clip(frames=np.zeros((1, 4, 6, 3)), timestamps_s=[0], frame_index=[0], fps=30, source="a",
             source_size=(6, 4))


def test_reconstruction_checks_point_map_against_poses():
    Reconstruction(cam_to_world=np.tile(np.eye(4), (2, 1, 1)), local_points=np.zeros((2, 3, 4, 3), np.float32),
                   conf=np.ones((2, 3, 4), np.float32))
    with pytest.raises(ShapeError, match="conf"):
        Reconstruction(cam_to_world=np.tile(np.eye(4), (2, 1, 1)), local_points=np.zeros((2, 3, 4, 3)),
                       conf=np.ones((2, 3, 5)))
    with pytest.raises(ShapeError, match=r"cam_to_world must have shape \(T, 4, 4\)"):
        Reconstruction(cam_to_world=np.zeros((2, 3, 4)))


def test_tracks_need_one_category_per_object_and_unique_ids():
    boxes = np.zeros((2, 3, 4))
    with pytest.raises(ShapeError, match="one category string per object"):
        Tracks2D(ids=[0, 1], categories=("person",), is_agent=[True, False], boxes_xyxy=boxes,
                 visible=np.ones((2, 3), bool))
    with pytest.raises(ShapeError, match="unique"):
        Tracks2D(ids=[1, 1], categories=("a", "b"), is_agent=[True, False], boxes_xyxy=boxes,
                 visible=np.ones((2, 3), bool))


def test_tracks_count_what_the_tracker_dropped_in_whole_tracks():
    boxes, visible = np.zeros((1, 3, 4)), np.ones((1, 3), bool)
    assert Tracks2D([0], ("ball",), [False], boxes, visible).dropped == {}
    assert Tracks2D([0], ("ball",), [False], boxes, visible, dropped={"scene_share": 2}).dropped == {"scene_share": 2}
    with pytest.raises(ValueError, match="dropped"):
        Tracks2D([0], ("ball",), [False], boxes, visible, dropped={"scene_share": -1})


def test_orientations_shapes():
    o = Orientations(angles_deg=np.zeros((2, 3, 3)), conf=np.zeros((2, 3)))
    assert o.angles_deg.dtype == np.float32
    with pytest.raises(ShapeError):
        Orientations(angles_deg=np.zeros((2, 3, 2)), conf=np.zeros((2, 3)))


def test_scene_properties(small_scene):
    assert small_scene.n_frames == 5 and small_scene.n_objects == 2
    assert small_scene.duration_s == pytest.approx(0.4)
    assert small_scene.object_index(8) == 1
    with pytest.raises(KeyError, match="no object with id 3"):
        small_scene.object_index(3)


def test_scene_rejects_centre_where_not_visible(small_scene):
    from dataclasses import replace

    visible = small_scene.visible.copy()
    k, t = np.argwhere(visible)[0]
    visible[k, t] = False
    with pytest.raises(ShapeError, match="NaN wherever visible is False"):
        replace(small_scene, visible=visible)


def test_scene_rejects_mask_size_different_from_points():
    scene = make_scene()
    from dataclasses import replace

    with pytest.raises(ShapeError, match="masks"):
        replace(scene, masks=np.zeros((2, 5, 6, 11), bool))


def test_scene_rejects_non_increasing_time(small_scene):
    from dataclasses import replace

    with pytest.raises(ShapeError, match="strictly increasing"):
        replace(small_scene, timestamps_s=np.zeros(5))


def test_empty_scene_is_valid():
    scene = make_scene(n_objects=0, heavy=False)
    assert isinstance(scene, Scene) and scene.n_objects == 0


def test_scene_rejects_visible_object_without_a_centre(small_scene):
    """Issue 10: visible means seen and located; a NaN centre where visible is an error."""
    from dataclasses import replace

    center = small_scene.center_world.copy()
    k, t = np.argwhere(small_scene.visible)[0]
    center[k, t] = np.nan
    with pytest.raises(ShapeError, match=f"object {small_scene.ids[k]} is visible at frame {t} but has no finite"):
        replace(small_scene, center_world=center)


def test_units_and_video_ids():
    from recon4d.types import UNITS, Reconstruction, SourceInfo, video_id_for

    assert UNITS == ("metric", "arbitrary", "unknown")
    assert Reconstruction(np.tile(np.eye(4), (2, 1, 1))).unit == "unknown"
    with pytest.raises(ShapeError, match="unit must be one of"):
        Reconstruction(np.tile(np.eye(4), (2, 1, 1)), unit="cm")
    a = SourceInfo("clips/a/video.mp4", "ab" * 32, 30.0, 10, (64, 48))
    b = SourceInfo("clips/b/video.mp4", "cd" * 32, 30.0, 10, (64, 48))
    assert a.video_id == "video-abababab" and b.video_id == "video-cdcdcdcd"
    assert SourceInfo.from_json(a.to_json()) == a
    legacy = {k: v for k, v in a.to_json().items() if k != "video_id"}
    assert SourceInfo.from_json(legacy).video_id == video_id_for("clips/a/video.mp4", "ab" * 32)
    assert SourceInfo("x.mp4", "ef" * 32, 1.0, 1, (1, 1), video_id="mine").video_id == "mine"


def test_quality_records_check_their_shapes():
    from dataclasses import replace

    from recon4d.types import CameraQuality
    from tests.conftest import make_quality

    scene = make_scene(n_frames=5, n_objects=2, heavy=False)
    objects, camera = make_quality(2, 5)
    assert replace(scene, object_quality=objects, camera_quality=camera).object_quality.n_objects == 2
    with pytest.raises(ShapeError, match="object_quality.frame_ok"):
        replace(scene, object_quality=make_quality(2, 4)[0])
    with pytest.raises(ShapeError, match="camera_quality.frame_ok"):
        replace(scene, camera_quality=make_quality(2, 6)[1])
    with pytest.raises(ShapeError, match="camera motion"):
        CameraQuality(np.zeros(2), np.zeros(2), np.zeros(2, bool), np.ones(2, bool), motion="wobbly")
    with pytest.raises(ShapeError, match="issues"):
        replace(objects, issues=("only one",))
    with pytest.raises(ShapeError, match="camera_quality.frame_ok"):
        Reconstruction(cam_to_world=np.tile(np.eye(4), (3, 1, 1)), camera_quality=CameraQuality.unknown(2))


def test_tracks_scores_are_checked():
    boxes = np.zeros((1, 3, 4))
    tracks = Tracks2D([1], ("dog",), [True], boxes, np.ones((1, 3), bool), scores=[[0.5, 0.6, np.nan]])
    assert tracks.scores.dtype == np.float32
    with pytest.raises(ShapeError, match="scores"):
        Tracks2D([1], ("dog",), [True], boxes, np.ones((1, 3), bool), scores=np.zeros((1, 2)))


def test_packed_masks_in_memory_round_trip():
    from recon4d.types import PackedMasks

    rng = np.random.default_rng(3)
    masks = rng.random((3, 4, 5, 13)) > 0.5
    packed = PackedMasks.pack(masks)
    assert packed.shape == (3, 4, 5, 13) and packed.dtype == bool and packed._packed.nbytes == 3 * 4 * 5 * 2
    np.testing.assert_array_equal(np.asarray(packed), masks)
    np.testing.assert_array_equal(packed[1, 2], masks[1, 2])
    np.testing.assert_array_equal(packed[:, 1:3], masks[:, 1:3])
    empty = PackedMasks.zeros(3, 4, 5, 13)
    for k in range(3):
        for t in range(4):
            empty[k, t] = masks[k, t]
    np.testing.assert_array_equal(np.asarray(empty), masks)
    with pytest.raises(IndexError):
        empty[0] = masks[0]
