"""`process_video` / `recon4d process` end to end on synthetic videos and bad inputs."""

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from recon4d.cli.main import main
from recon4d.errors import VideoError
from recon4d.pipeline import PipelineError, ProcessConfig, box_masks, process_clip, process_video
from recon4d.store import open_scene, write_scene
from recon4d.synth.scene import SynthConfig, write_synthetic
from recon4d.video import ReleasableFrames, read_clip, write_video


@pytest.fixture(scope="module")
def moving_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("moving")
    return write_synthetic(root, SynthConfig(seed=1, n_frames=24, width=320, height=180, n_objects=3))


@pytest.fixture(scope="module")
def static_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    return write_synthetic(root, SynthConfig(seed=2, n_frames=24, width=320, height=180, n_objects=2,
                                             static_camera=True))


def _rotation_deg(a, b):
    relative = a[:3, :3].T @ b[:3, :3]
    return np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1)))


def test_box_masks_cover_the_box_in_clip_pixels():
    boxes = np.array([[[10, 20, 30, 40], [np.nan] * 4]], np.float32)  # source 100x80
    masks = box_masks(boxes, (100, 80), (50, 40))
    assert masks.shape == (1, 2, 40, 50)
    assert masks[0, 0].sum() == 10 * 10 and masks[0, 0, 10:20, 5:15].all()
    assert not masks[0, 1].any()


def test_moving_scene_end_to_end(moving_video):
    result = process_video(moving_video.video, ProcessConfig(n_frames=16))
    scene = result.scene
    assert scene.n_frames == 16 and scene.backends["recon"]["name"] == "classic"
    assert scene.backends["track"]["name"] == "classic" and scene.backends["orient"]["name"] == "motion"
    assert scene.n_objects >= 1
    gt = open_scene(moving_video.scene)
    rotation = _rotation_deg(scene.cam_to_world[0], scene.cam_to_world[-1])
    gt_rotation = _rotation_deg(gt.cam_to_world[0], gt.cam_to_world[-1])
    assert abs(rotation - gt_rotation) < 0.3 * gt_rotation + 1.0
    assert np.isfinite(scene.center_world[scene.visible]).all()  # visible means located
    assert [s.stage for s in result.stages] == ["decode", "track", "recon", "lift", "orient"]
    assert scene.unit == "metric" and scene.source.video_id == gt.source.video_id  # same file, same id


def test_frames_released_after_tracking_give_the_same_scene(monkeypatch, moving_video):
    """Issue 12: process_video drops the decoded frames after tracking when they take more than
    KEEP_FRAMES_BYTES (reconstruction decodes them again, in order); the scene is the one of the
    frames held in memory throughout."""
    import recon4d.pipeline as pipeline_module

    released = []
    release = ReleasableFrames.release
    monkeypatch.setattr(ReleasableFrames, "release", lambda self: released.append(1) or release(self))
    monkeypatch.setattr(pipeline_module, "KEEP_FRAMES_BYTES", 0)
    config = ProcessConfig(n_frames=12)
    lean = process_video(moving_video.video, config).scene
    assert released == [1]
    held = process_clip(read_clip(moving_video.video, n_frames=12), config).scene
    assert lean.n_objects == held.n_objects >= 1
    for name in ("cam_to_world", "box_xyxy", "center_world", "visible", "orientation"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(held, name), err_msg=name)


def test_a_short_clips_frames_stay_decoded_and_are_not_decoded_again(monkeypatch, moving_video):
    """Issue 11: frames within KEEP_FRAMES_BYTES are kept after tracking (decoding them again cost
    reconstruction more time than they cost memory); a clip over the bound is released."""
    import recon4d.pipeline as pipeline_module
    import recon4d.video as video_module

    passes = []
    iter_frames = video_module.iter_frames
    monkeypatch.setattr(video_module, "iter_frames", lambda *a, **k: passes.append(1) or iter_frames(*a, **k))
    released = []
    release = ReleasableFrames.release
    monkeypatch.setattr(ReleasableFrames, "release", lambda self: released.append(1) or release(self))
    clip = read_clip(moving_video.video, n_frames=12, releasable=True)
    size = int(np.prod(clip.frames.shape))
    monkeypatch.setattr(pipeline_module, "KEEP_FRAMES_BYTES", size)
    passes.clear()
    process_clip(clip, ProcessConfig(n_frames=12))
    assert released == [] and not clip.frames.released and passes == []  # never decoded again
    monkeypatch.setattr(pipeline_module, "KEEP_FRAMES_BYTES", size - 1)
    process_clip(clip, ProcessConfig(n_frames=12))
    assert released == [1] and clip.frames.released and len(passes) >= 1


def test_static_camera_gives_an_exactly_static_camera(static_video):
    scene = process_video(static_video.video, ProcessConfig(n_frames=12)).scene
    # zero background motion: the camera path is exactly zero, not merely small (issue 11)
    np.testing.assert_array_equal(scene.cam_to_world, np.tile(np.eye(4), (12, 1, 1)))
    assert scene.camera_quality.motion == "static" and scene.camera_quality.frame_ok.all()


def test_scene_carries_its_quality_record_and_warnings(tmp_path, moving_video):
    result = process_video(moving_video.video, ProcessConfig(n_frames=16))
    scene = result.scene
    assert scene.object_quality is not None and scene.object_quality.n_objects == scene.n_objects
    assert scene.camera_quality.motion == "parallax" and scene.camera_quality.scale_source == "ground-plane"
    assert scene.camera_quality.frame_ok.mean() > 0.8 and np.nanmedian(scene.camera_quality.inlier_ratio) > 0.8
    assert scene.warnings == result.warnings
    assert ((scene.object_quality.score >= 0) & (scene.object_quality.score <= 1)).all()
    back = open_scene(write_scene(replace(scene, warnings=("recon: a test warning",)), tmp_path / "q.zarr"))
    assert back.warnings == ("recon: a test warning",)
    np.testing.assert_array_equal(back.object_quality.frame_ok, scene.object_quality.frame_ok)
    # the tracker's detected frames reach the store: a subset of the visible ones
    assert scene.observed is not None and not (scene.observed & ~scene.visible).any() and scene.observed.any()
    np.testing.assert_array_equal(back.observed, scene.observed)
    # stored trajectories obey the limits wherever the record trusts them
    quality = scene.object_quality
    for k in range(scene.n_objects):
        ok = quality.frame_ok[k]
        steps = np.flatnonzero(ok[1:] & ok[:-1]) + 1
        speed = np.linalg.norm(np.diff(scene.center_world[k], axis=0), axis=1) / np.diff(scene.timestamps_s)
        assert (speed[steps - 1] <= quality.speed_limit_mps[k] + 1e-6).all()


def test_cli_process_then_inspect(tmp_path, moving_video):
    out = tmp_path / "scene.zarr"
    result = CliRunner().invoke(main, ["process", str(moving_video.video), "-o", str(out), "--frames", "12",
                                       "--keep-points", "--keep-masks", "-O", "lift.estimator=median",
                                       "-O", "recon.bundle_adjust=no"])
    assert result.exit_code == 0, result.output
    assert "objects:" in result.output and "time:" in result.output
    scene = open_scene(out)
    assert scene.local_points is not None and scene.config["n_frames"] == 12
    summary = json.loads(CliRunner().invoke(main, ["inspect", str(out), "--json"]).output)
    assert summary["backends"] == {"track": "classic", "recon": "classic", "orient": "motion"}
    saved = json.loads(out.with_name(out.name + ".config.json").read_text())
    assert saved["lift"]["estimator"] == "median" and saved["backend_options"]["recon"] == {"bundle_adjust": False}
    assert scene.config == saved


def _write(path, frames, fps=10.0):
    return write_video(path, iter(frames), fps)


def test_no_moving_objects_gives_an_empty_valid_scene(tmp_path):
    rng = np.random.default_rng(0)
    frame = (rng.random((96, 160, 3)) * 255).astype(np.uint8)
    video = _write(tmp_path / "still.mp4", [frame] * 20)
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(tmp_path / "s.zarr"), "--frames", "8"])
    assert result.exit_code == 0, result.output
    assert "no moving objects" in result.output
    assert open_scene(tmp_path / "s.zarr").n_objects == 0


def test_all_black_video_gives_an_empty_valid_scene(tmp_path):
    video = _write(tmp_path / "black.mp4", [np.zeros((96, 160, 3), np.uint8)] * 20)
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(tmp_path / "s.zarr"), "--frames", "8"])
    assert result.exit_code == 0, result.output
    scene = open_scene(tmp_path / "s.zarr")
    assert scene.n_objects == 0 and np.allclose(scene.cam_to_world, np.eye(4))


@pytest.mark.parametrize("case", ["corrupt", "one_frame", "short_interval", "missing"])
def test_bad_inputs_end_cleanly_without_a_store(tmp_path, case):
    out = tmp_path / "s.zarr"
    if case == "corrupt":
        video = tmp_path / "bad.mp4"
        video.write_bytes(np.random.default_rng(1).bytes(5000))
        expected = "could not be opened"
    elif case == "one_frame":
        video = _write(tmp_path / "one.mp4", [np.full((96, 160, 3), 80, np.uint8)])
        expected = "at least 2"
    elif case == "short_interval":
        video = _write(tmp_path / "short.mp4", [np.full((96, 160, 3), 80, np.uint8)] * 10)
        expected = "starts after the video ends"
    else:
        video = tmp_path / "nope.mp4"
        expected = "does not exist"
    args = ["process", str(video), "-o", str(out)]
    if case == "short_interval":
        args += ["--start", "5", "--end", "8"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert expected in result.output.lower() or expected in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "s.zarr.partial").exists()


def test_one_frame_request_is_a_config_error():
    with pytest.raises(PipelineError, match="at least 2"):
        ProcessConfig(n_frames=1)


def test_video_errors_propagate(tmp_path):
    with pytest.raises(VideoError):
        process_video(tmp_path / "missing.mp4")


def test_interval_past_the_end_is_clamped_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    frame = (rng.random((96, 160, 3)) * 255).astype(np.uint8)
    video = _write(tmp_path / "still.mp4", [frame] * 20)
    result = process_video(video, ProcessConfig(n_frames=4, start_s=0.5, end_s=9.0))
    assert any("lasts 2.00 s" in w for w in result.warnings)
    assert result.scene.timestamps_s[0] >= 0.5


def test_objects_where_lifting_fails_are_not_visible(moving_video):
    """Issue 10: the tracker's visibility used to be kept where lifting found no point, giving
    visible frames with NaN centres (and summaries that overstated visible spans)."""
    from recon4d.lift.lifting import LiftConfig
    from recon4d.summary import summarize_scene

    result = process_video(moving_video.video, ProcessConfig(n_frames=8, lift=LiftConfig(min_points=10**7)))
    scene = result.scene
    assert scene.n_objects >= 1 and not scene.visible.any()
    assert all(obj["visible_frames"] == 0 and obj["visible_spans_s"] == [] for obj in summarize_scene(scene)["objects"])
    assert np.isnan(scene.box_xyxy).all() and np.isnan(scene.orientation).all()
    assert any("no valid 3D point under their mask" in w for w in result.warnings)
    assert scene.warnings == result.warnings


def test_two_videos_named_video_mp4_get_their_own_ids(moving_video, static_video, tmp_path):
    """Issue 10: every synth store was "video", so QA seeds repeated and exports merged scenes."""
    from recon4d.qa_compiler.compiler import CompileConfig, compile_scenes
    from recon4d.qa_compiler.export import write_dsr_json

    assert moving_video.video.name == static_video.video.name == "video.mp4"
    ids = [open_scene(p).source.video_id for p in (moving_video.scene, static_video.scene)]
    assert ids[0] != ids[1] and all(i.startswith("video-") for i in ids)
    records, _ = compile_scenes([moving_video.scene, static_video.scene], CompileConfig(n_per_scene=4))
    assert {r.video_id for r in records} == set(ids)
    write_dsr_json(records, tmp_path / "qa.json")
    assert sorted(json.loads((tmp_path / "qa.json").read_text())) == sorted(ids)


def test_a_stitch_fallback_is_recorded_in_the_store(monkeypatch, tmp_path):
    """Through the pipeline: the warning lands in Scene.warnings and the store's attrs."""
    from recon4d.pipeline import process_clip
    from recon4d.recon.pi3 import Pi3StitchWarning
    from recon4d.types import Clip
    from recon4d.store import open_scene, write_scene

    def reconstruct(self, clip, tracks=None, progress=None):
        import warnings

        from recon4d.types import Reconstruction

        warnings.warn("chunk 2 of 2 (frames 3-7) could not be aligned: chained at scale 1", Pi3StitchWarning)
        return Reconstruction(cam_to_world=np.tile(np.eye(4), (clip.n_frames, 1, 1)), unit="arbitrary")

    import recon4d.recon.classic.reconstructor as classic

    monkeypatch.setattr(classic.ClassicReconstructor, "reconstruct", reconstruct)
    frames = np.zeros((4, 28, 42, 3), np.uint8)
    clip = Clip(frames=frames, timestamps_s=np.arange(4) / 10, frame_index=np.arange(4), fps=10.0, source="x",
                source_size=(42, 28))
    scene = process_clip(clip, ProcessConfig(n_frames=4, recon="classic", tracker="classic", orient="motion")).scene
    assert any("chained at scale 1" in w for w in scene.warnings)
    back = open_scene(write_scene(scene, tmp_path / "s.zarr"))
    assert any(w.startswith("recon: chunk 2 of 2") for w in back.warnings) and back.unit == "arbitrary"


def test_masks_of_another_size_are_resized_not_replaced_by_boxes(monkeypatch, tmp_path):
    """Issue 10: a tracker's masks at another size than the point maps were silently replaced by
    filled boxes. Here a disc at depth 2 stands in front of a wall at depth 10 inside its box."""
    import recon4d.recon.classic.reconstructor as classic_recon
    import recon4d.tracking.classic.tracker as classic_track
    from recon4d.pipeline import process_clip
    from recon4d.types import Clip, FrameSequence, Reconstruction, Tracks2D

    n, height, width = 4, 40, 60
    rows, cols = np.mgrid[:height, :width] + 0.5
    half = (np.mgrid[:20, :30][0] + 0.5 - 10) ** 2 + (np.mgrid[:20, :30][1] + 0.5 - 15) ** 2 <= 5 ** 2
    disc = np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)  # the tracker's masks are at half the frame size

    def track(self, clip, progress=None):
        return Tracks2D(ids=[0], categories=("ball",), is_agent=[False],
                        boxes_xyxy=np.tile(np.array([20, 10, 40, 30], np.float32), (1, n, 1)),
                        visible=np.ones((1, n), bool), masks=np.broadcast_to(half, (1, n, *half.shape)).copy())

    def reconstruct(self, clip, tracks=None, progress=None):
        depth = np.where(disc, 2.0, 10.0)
        frame = np.stack([(cols - 30) / 50 * depth, (rows - 20) / 50 * depth, depth], axis=-1)
        return Reconstruction(cam_to_world=np.tile(np.eye(4), (n, 1, 1)), unit="metric",
                              local_points=FrameSequence(n, (height, width, 3), np.float32, lambda t: frame),
                              conf=FrameSequence(n, (height, width), np.float32, lambda t: np.ones((height, width))))

    monkeypatch.setattr(classic_track.ClassicTracker, "track", track)
    monkeypatch.setattr(classic_recon.ClassicReconstructor, "reconstruct", reconstruct)
    clip = Clip(frames=np.zeros((n, height, width, 3), np.uint8), timestamps_s=np.arange(n) / 10,
                frame_index=np.arange(n), fps=10.0, source="x", source_size=(width, height))
    config = ProcessConfig(n_frames=n, recon="classic", tracker="classic", orient="motion", keep_masks=True,
                           keep_points=True, backend_options={"lift": {"depth_edge_rtol": "none"}})
    scene = process_clip(clip, config).scene
    np.testing.assert_allclose(scene.center_world[0, :, 2], 2.0)  # only the disc; a filled box would mix in the wall
    assert scene.masks.shape == (1, n, height, width)
    from recon4d.store import write_scene

    back = open_scene(write_scene(scene, tmp_path / "m.zarr"))
    np.testing.assert_array_equal(back.masks[0, 2], disc)


def test_point_maps_are_read_frame_by_frame_never_whole(monkeypatch, tmp_path):
    """Issue 12: lifting and the store stream the reconstructor's point maps; nothing asks for
    the whole (T, H, W, 3) array, and no read spans more than a lifting batch of frames."""
    import recon4d.recon.classic.reconstructor as classic_recon
    import recon4d.tracking.classic.tracker as classic_track
    from recon4d.pipeline import process_clip
    from recon4d.store import write_scene
    from recon4d.types import Clip, FrameSequence, PackedMasks, Reconstruction, Tracks2D

    n, height, width = 20, 24, 32
    reads = []

    class Streamed(FrameSequence):
        def __getitem__(self, index):
            head = index[0] if isinstance(index, tuple) else index
            span = 1 if isinstance(head, (int, np.integer)) else len(range(self.shape[0])[head])
            assert span <= 8, f"a read of {span} frames"
            reads.append(span)
            return super().__getitem__(index)

        def __array__(self, dtype=None, copy=None):
            raise AssertionError("the whole point map was materialised")

    rows, cols = np.mgrid[:height, :width] + 0.5
    frame = np.stack([(cols - 16) / 30 * 3.0, (rows - 12) / 30 * 3.0, np.full((height, width), 3.0)], axis=-1)

    def track(self, clip, progress=None):
        masks = PackedMasks.zeros(1, n, height, width)
        for t in range(n):
            masks[0, t] = (np.abs(rows - 12) < 5) & (np.abs(cols - 16) < 5)
        return Tracks2D(ids=[0], categories=("ball",), is_agent=[False], visible=np.ones((1, n), bool),
                        boxes_xyxy=np.tile(np.array([11, 7, 21, 17], np.float32), (1, n, 1)), masks=masks)

    def reconstruct(self, clip, tracks=None, progress=None):
        return Reconstruction(cam_to_world=np.tile(np.eye(4), (n, 1, 1)), unit="metric",
                              local_points=Streamed(n, (height, width, 3), np.float32, lambda t: frame),
                              conf=Streamed(n, (height, width), np.float32, lambda t: np.ones((height, width))))

    monkeypatch.setattr(classic_track.ClassicTracker, "track", track)
    monkeypatch.setattr(classic_recon.ClassicReconstructor, "reconstruct", reconstruct)
    clip = Clip(frames=np.zeros((n, height, width, 3), np.uint8), timestamps_s=np.arange(n) / 10,
                frame_index=np.arange(n), fps=10.0, source="x", source_size=(width, height))
    config = ProcessConfig(n_frames=n, recon="classic", tracker="classic", orient="motion", keep_points=True,
                           keep_masks=True)
    scene = process_clip(clip, config).scene
    assert scene.visible.all() and np.allclose(scene.center_world[0, :, 2], 3.0)
    back = open_scene(write_scene(scene, tmp_path / "s.zarr"))
    np.testing.assert_allclose(np.asarray(back.local_points[n - 1]), frame, rtol=1e-3)
    assert isinstance(back.masks, PackedMasks) and back.masks[0, 3].sum() == 100
    assert max(reads) <= 8 and sum(reads) >= 2 * n  # lifting in batches, then the store frame by frame


def test_stages_run_with_one_blas_thread(monkeypatch):
    """OpenBLAS's idle threads spin beside the stages' own workers: every stage runs with one, restored after."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import recon4d.recon.classic.reconstructor as classic
    from recon4d.types import Clip, Reconstruction

    def blas_threads():
        return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    seen = []
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)

    def reconstruct(self, clip, tracks=None, progress=None):
        seen.append(blas_threads())
        return Reconstruction(cam_to_world=np.tile(np.eye(4), (clip.n_frames, 1, 1)), unit="arbitrary")

    monkeypatch.setattr(classic.ClassicReconstructor, "reconstruct", reconstruct)
    clip = Clip(frames=np.zeros((4, 28, 42, 3), np.uint8), timestamps_s=np.arange(4) / 10, frame_index=np.arange(4),
                fps=10.0, source="x", source_size=(42, 28))
    with threadpool_limits(limits=4, user_api="blas"):
        process_clip(clip, ProcessConfig(n_frames=4, recon="classic", tracker="classic", orient="motion"))
        assert seen == [{1}] and blas_threads() == {4}


def test_stages_run_with_a_short_gil_switch_interval(monkeypatch):
    """The stages' worker threads come back from OpenCV/numpy calls to a little Python: the stages
    run with quick GIL hand-offs (``recon4d.workers.quick_gil_handoff``), restored after."""
    import sys

    import recon4d.recon.classic.reconstructor as classic
    from recon4d.types import Clip, Reconstruction
    from recon4d.workers import GIL_SWITCH_INTERVAL_S

    seen = []

    def reconstruct(self, clip, tracks=None, progress=None):
        seen.append(sys.getswitchinterval())
        return Reconstruction(cam_to_world=np.tile(np.eye(4), (clip.n_frames, 1, 1)), unit="arbitrary")

    monkeypatch.setattr(classic.ClassicReconstructor, "reconstruct", reconstruct)
    clip = Clip(frames=np.zeros((4, 28, 42, 3), np.uint8), timestamps_s=np.arange(4) / 10, frame_index=np.arange(4),
                fps=10.0, source="x", source_size=(42, 28))
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        process_clip(clip, ProcessConfig(n_frames=4, recon="classic", tracker="classic", orient="motion"))
        assert seen == [pytest.approx(GIL_SWITCH_INTERVAL_S, rel=0.01)]
        assert sys.getswitchinterval() == pytest.approx(0.005, rel=0.01)
    finally:
        sys.setswitchinterval(before)
