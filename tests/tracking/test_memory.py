"""Issue 12 (bounded memory) in the classic tracker: the compact motion field, the lazy working
frames and the frame-by-frame detections give the same results as the full arrays they replace."""

from __future__ import annotations

import cv2
import numpy as np

import recon4d.tracking.classic.tracker as tracker_module
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.association import Track
from recon4d.tracking.classic.motion import (
    PackedFrames,
    PackedMaskDict,
    SparseFrames,
    compute_motion,
    to_working,
    working_frames,
)
from recon4d.tracking.classic.segment import moving_components
from recon4d.tracking.classic.tracker import ClassicTracker
from recon4d.types import Clip
from tests.tracking.plane_scenes import walking_scene


def patch_clip(n_frames: int = 6) -> np.ndarray:
    """(T, 120, 160, 3) uint8: a textured background drifting right, a patch moving faster."""
    rng = np.random.default_rng(4)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (120, 160)).astype(np.uint8), (5, 5), 0)
    frames = []
    for t in range(n_frames):
        frame = np.roll(texture, (0, t), axis=(0, 1)).copy()
        frame[40:70, 20 + 8 * t:50 + 8 * t] = texture[:30, :30]
        frames.append(frame)
    return np.stack(frames)[..., None].repeat(3, -1)


def test_packed_and_sparse_frames_round_trip():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 5, 13)) > 0.5
    packed = PackedFrames(3, 5, 13)
    for t in range(3):
        packed[t] = masks[t]
    assert packed.shape == (3, 5, 13) and packed.any()
    np.testing.assert_array_equal(np.asarray(packed), masks)
    np.testing.assert_array_equal(packed[1], masks[1])
    values = rng.normal(size=(2, 5, 13, 2)).astype(np.float32)
    sparse = SparseFrames(2, 5, 13, 2)
    sparse.keep(0, values[0], masks[0])
    np.testing.assert_array_equal(sparse[0], np.where(masks[0][..., None], values[0], 0))
    np.testing.assert_array_equal(sparse[1], np.zeros((5, 13, 2), np.float32))


def test_track_masks_are_held_packed_and_read_back_exactly():
    rng = np.random.default_rng(1)
    masks = {t: rng.random((7, 19)) > 0.5 for t in (3, 4, 9)}
    track = Track()
    assert isinstance(track.masks, PackedMaskDict)
    for t, mask in masks.items():
        track.masks[t] = mask
    other = PackedMaskDict({10: masks[9]})
    track.masks.update(other)
    del track.masks[4]
    assert sorted(track.masks) == [3, 9, 10] and len(track.masks) == 3 and 4 not in track.masks
    for t, expected in ((3, masks[3]), (9, masks[9]), (10, masks[9])):
        assert track.masks[t].dtype == bool
        np.testing.assert_array_equal(track.masks[t], expected)
    assert sum(packed.nbytes for packed, _ in track.masks._packed.values()) == 3 * 7 * 3


def test_working_frames_are_the_full_working_arrays():
    frames = patch_clip()
    images, gray = to_working(frames, (96, 72))
    lazy_images, lazy_gray = working_frames(frames, (96, 72))
    assert lazy_images.shape == images.shape and lazy_gray.shape == gray.shape
    np.testing.assert_array_equal(np.asarray(lazy_images), images)
    np.testing.assert_array_equal(np.asarray(lazy_gray), gray)


def test_compact_motion_is_the_same_motion():
    """compute_motion(compact=True) (what the tracker uses) against the full field: same moving
    pixels, thresholds and moving corners; flows as float16; image flow and velocity exact on
    the moving components (what segmentation, association and clean-up read), 0 elsewhere."""
    config = ClassicTrackerConfig()
    _, gray = to_working(patch_clip(), (160, 120))
    full = compute_motion(gray, config)
    compact = compute_motion(working_frames(patch_clip(), (160, 120))[1], config, compact=True)
    assert full.moving.any() and compact.residual is None
    np.testing.assert_array_equal(np.asarray(compact.moving), full.moving)
    np.testing.assert_array_equal(compact.moving, full.residual > full.thresholds[:, None, None])
    np.testing.assert_array_equal(compact.thresholds, full.thresholds)
    assert compact.forward_flow.dtype == np.float16 and compact.backward_flow.dtype == np.float16
    np.testing.assert_array_equal(compact.forward_flow, full.forward_flow.astype(np.float16))
    np.testing.assert_array_equal(compact.backward_flow, full.backward_flow.astype(np.float16))
    assert all(np.array_equal(a, b) for a, b in zip(compact.moving_points, full.moving_points))
    for t in range(len(gray)):
        components = moving_components(full.moving[t], config)
        support = np.logical_or.reduce(components) if components else np.zeros(full.moving[t].shape, bool)
        for name in ("image_flow", "velocity"):
            np.testing.assert_array_equal(getattr(compact, name)[t], np.where(support[..., None],
                                                                              getattr(full, name)[t], 0))


def full_array_tracker(monkeypatch) -> None:
    """Make ClassicTracker run on the full arrays (the path before issue 12)."""
    stream = tracker_module.stream_motion
    monkeypatch.setattr(tracker_module, "stream_motion", lambda gray, config, progress, compact: stream(gray, config,
                                                                                                     progress))
    monkeypatch.setattr(tracker_module, "working_frames", to_working)


def test_tracker_gives_the_same_tracks_as_on_full_arrays(monkeypatch):
    synthetic = walking_scene(seed=2, with_mover=True)
    n_frames = len(synthetic.frames)
    clip = Clip(frames=synthetic.frames, timestamps_s=np.arange(n_frames) / 6.0, frame_index=np.arange(n_frames),
                fps=6.0, source="synthetic", source_size=(640, 360))
    lean = ClassicTracker().track(clip)
    full_array_tracker(monkeypatch)
    full = ClassicTracker().track(clip)
    assert lean.n_objects == full.n_objects >= 1
    np.testing.assert_array_equal(lean.boxes_xyxy, full.boxes_xyxy)
    np.testing.assert_array_equal(lean.visible, full.visible)
    np.testing.assert_array_equal(np.asarray(lean.masks), np.asarray(full.masks))
    assert lean.categories == full.categories and np.array_equal(lean.is_agent, full.is_agent)
