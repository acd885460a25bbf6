"""Tests of benchmarks/phase_diagnose.py: an estimate's centre error is cut into its slow part and its jitter."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import fidelity_metrics as fm  # noqa: E402
import phase_diagnose as pdg  # noqa: E402

from tests.benchmarks.test_fidelity_metrics import truth  # noqa: E402


def _camera_relative(scene):
    return fm.camera_frame(scene.cam_to_world.astype(np.float64), scene.center_world.astype(np.float64))


def test_a_constant_offset_is_the_offset_part_and_lone_spikes_the_jitter():
    gt, poses = truth()
    oracle = fm.oracle_scene(gt, poses)
    rel = _camera_relative(gt)
    offset = np.array([0.0, 0.0, 0.7])  # 0.7 m deeper along the camera's z in every frame
    jitter = np.zeros_like(rel)
    spikes = [5, 12, 20]
    jitter[0, spikes, 0] = 0.3  # object 0 only: sideways, in three lone frames
    wrong = rel + offset + jitter
    world = np.einsum("tij,ktj->kti", gt.cam_to_world[:, :3, :3], wrong) + gt.cam_to_world[None, :, :3, 3]
    est = replace(gt, center_world=world)
    matching = fm.match_tracks(gt, est)
    parts = pdg.part_scenes(est, oracle, matching, 1.0, window=7)
    seen = gt.visible[..., None]
    slow = _camera_relative(parts["offset"]) - rel
    fast = _camera_relative(parts["jitter"]) - rel
    np.testing.assert_allclose(np.where(seen, slow, 0), np.where(seen, offset, 0), atol=1e-9)
    np.testing.assert_allclose(np.where(seen, fast, 0)[1:], 0.0, atol=1e-9)  # objects 1, 2: no jitter
    np.testing.assert_allclose(np.where(seen, fast, 0)[0], np.where(seen, jitter, 0)[0], atol=1e-9)
    depth_part = _camera_relative(parts["jitter_depth"]) - rel
    lateral_part = _camera_relative(parts["jitter_lateral"]) - rel
    np.testing.assert_allclose(depth_part + lateral_part, fast, atol=1e-9)


def test_running_median_follows_a_step_and_ignores_one_spike():
    values = np.r_[np.zeros(10), np.ones(10)][:, None]
    values[4] = 5.0
    out = pdg.running_median(values, 5)
    assert out[4, 0] == 0.0 and out[15, 0] == 1.0
