"""Issue 12 (bounded memory) in the classic reconstructor: map points are projected a block at a
time, with the same results as all N × T at once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import recon4d.recon.classic.camera_quality as camera_quality
import recon4d.recon.classic.reconstructor as reconstructor
from recon4d.recon.classic.camera_quality import reprojection_px
from recon4d.recon.classic.reconstructor import ClassicReconstructor, ReconstructionWarning
from recon4d.types import Clip, Tracks2D


def test_reprojection_in_blocks_is_the_all_at_once_result(monkeypatch):
    rng = np.random.default_rng(3)
    n_points, n_frames = 50, 6
    world_to_cam = np.tile(np.eye(3, 4), (n_frames, 1, 1))
    world_to_cam[:, :, 3] = rng.normal(scale=0.2, size=(n_frames, 3))
    points = rng.normal(size=(n_points, 3)) + [0, 0, 5]
    points[::7] = np.nan
    xy = rng.normal(scale=0.3, size=(n_points, n_frames, 2))
    seen = rng.random((n_points, n_frames)) > 0.3
    monkeypatch.setattr(camera_quality, "PROJECTION_ROWS", 10 ** 9)
    at_once = reprojection_px(world_to_cam, points, xy, seen, 500.0)
    monkeypatch.setattr(camera_quality, "PROJECTION_ROWS", 4)
    np.testing.assert_array_equal(reprojection_px(world_to_cam, points, xy, seen, 500.0), at_once)
    assert np.isfinite(at_once).all()


def test_reconstruction_in_blocks_is_the_all_at_once_reconstruction(monkeypatch):
    pytest.importorskip("open3d", reason="synthetic scenes need open3d (pip install 'recon4d[synth]')")
    pytest.importorskip("trimesh", reason="synthetic scenes need trimesh (pip install 'recon4d[synth]')")
    from recon4d.synth.scene import SynthConfig, generate_scene

    synthetic = generate_scene(SynthConfig(seed=0, width=320, height=180, n_frames=12))
    scene = synthetic.scene
    clip = Clip(synthetic.frames, np.arange(12) / 12.0, np.arange(12), 12.0, "synthetic", (320, 180))
    tracks = Tracks2D(scene.ids, scene.categories, scene.is_agent, scene.box_xyxy, scene.visible, scene.masks)

    def reconstruct():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReconstructionWarning)
            return ClassicReconstructor().reconstruct(clip, tracks)

    monkeypatch.setattr(reconstructor, "MAP_ROWS", 10 ** 9)
    monkeypatch.setattr(camera_quality, "PROJECTION_ROWS", 10 ** 9)
    at_once = reconstruct()
    monkeypatch.setattr(reconstructor, "MAP_ROWS", 16)
    monkeypatch.setattr(camera_quality, "PROJECTION_ROWS", 16)
    blocks = reconstruct()
    np.testing.assert_array_equal(blocks.cam_to_world, at_once.cam_to_world)
    np.testing.assert_array_equal(np.asarray(blocks.local_points), np.asarray(at_once.local_points))
    np.testing.assert_array_equal(np.asarray(blocks.conf), np.asarray(at_once.conf))
    np.testing.assert_array_equal(blocks.camera_quality.reprojection_px, at_once.camera_quality.reprojection_px)
    assert np.isfinite(at_once.camera_quality.reprojection_px).any()


def test_backdrop_depths_are_nanpercentile_of_the_map_depths():
    """The overall backdrop (frames that see no map point) is the 90th percentile of all
    map depths, as np.nanpercentile gives it (taken without its copy of the (N, T) array)."""
    rng = np.random.default_rng(5)
    map_depth = rng.uniform(1.0, 30.0, size=(400, 9))
    map_depth[rng.random(map_depth.shape) < 0.9] = np.nan
    map_depth[:, 4] = np.nan  # a frame that sees no map point takes the overall value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_frame = np.nanpercentile(map_depth, 90, axis=0)
    expected = np.where(np.isfinite(per_frame), per_frame, np.nanpercentile(map_depth, 90))
    backdrop = ClassicReconstructor()._backdrop_depths(map_depth)
    np.testing.assert_array_equal(backdrop, expected)
    assert backdrop[4] == np.nanpercentile(map_depth, 90)
