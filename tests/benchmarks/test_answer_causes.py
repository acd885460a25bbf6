"""Tests of benchmarks/answer_causes.py: estimates wrong in one known quantity get their wrong answers put down to it."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import answer_causes as ac  # noqa: E402
import fidelity_metrics as fm  # noqa: E402

from recon4d.qa_compiler.compiler import CompileConfig, compile_scene  # noqa: E402
from recon4d.types import Scene  # noqa: E402
from tests.benchmarks.test_fidelity_metrics import T, similar, truth  # noqa: E402


def _wrong_causes(gt, poses, est, scale):
    """Causes of the wrong answers about matched objects when ``est`` is scored against ``gt``."""
    matching = fm.match_tracks(gt, est)
    records, _ = compile_scene(est, CompileConfig(n_per_scene=60, seed=1, min_quality=None), video_id="hand")
    oracle = fm.oracle_scene(gt, poses)
    outcomes = ac.attribute_causes(fm.qa_outcomes(records, est, oracle, matching), records, est, oracle, matching,
                                   scale)
    return [o.cause for o in outcomes if o.reason == "wrong_answer"], outcomes


def _in_own_camera(est: Scene, k: int, change) -> np.ndarray:
    """Centres of ``est`` with object k's camera-relative position changed by ``change((T, 3)) → (T, 3)``."""
    rel = fm.camera_frame(est.cam_to_world, est.center_world)
    rel[k] = change(rel[k])
    return np.einsum("tij,ktj->kti", est.cam_to_world[:, :3, :3], rel) + est.cam_to_world[None, :, :3, 3]


def test_a_similar_estimate_has_no_wrong_answer_to_attribute():
    gt, poses = truth()
    est = similar(gt, 2.0, Rotation.from_euler("z", 70, degrees=True).as_matrix(), np.array([1.0, 2.0, 0.0]))
    hybrids = ac.hybrid_scenes(est, fm.oracle_scene(gt, poses), fm.match_tracks(gt, est), 0.5)
    np.testing.assert_allclose(hybrids["all"].center_world, 2.0 * hybrids["camera"].center_world
                               - gt.cam_to_world[0, :3, 3], atol=1e-9)  # the estimate's unit about camera 0
    causes, outcomes = _wrong_causes(gt, poses, est, 0.5)
    assert causes == [] and all(o.cause is None for o in outcomes)
    assert fm.summarise_outcomes(outcomes)["causes"] == {"wrong_answer": 0, "by_cause": {}, "by_type": {},
                                                         "more_phases_than_gt": 0}


def test_wrong_answers_are_put_down_to_the_quantity_that_is_wrong():
    """A person placed ever deeper along its true viewing ray → depth; a person's box drifting
    sideways at its true depth → lateral; agents turned by 120° → orientation; a camera whose
    positions drift while every object keeps its place relative to it → camera. The
    estimate is at twice the GT scale, rotated and shifted (the attribution undoes that)."""
    gt, poses = truth()
    est = similar(gt, 2.0, Rotation.from_euler("z", -50, degrees=True).as_matrix(), np.array([0.0, 3.0, 1.0]))
    grow = 1.0 + 0.08 * np.arange(T)[:, None]
    deeper = replace(est, center_world=_in_own_camera(est, 0, lambda rel: rel * grow))
    causes, _ = _wrong_causes(gt, poses, deeper, 0.5)
    assert causes and set(causes) == {"centre_depth"}

    def sideways(rel):  # shifted along the camera's x, then back to its true range
        shifted = rel + np.arange(T)[:, None] * [0.5, 0.0, 0.0]
        return shifted / np.linalg.norm(shifted, axis=1, keepdims=True) * np.linalg.norm(rel, axis=1, keepdims=True)

    side = replace(est, center_world=_in_own_camera(est, 0, sideways))
    causes, _ = _wrong_causes(gt, poses, side, 0.5)
    assert causes and set(causes) == {"centre_lateral"}
    turned = est.orientation.copy()
    turned[:2, :, 0] = np.mod(turned[:2, :, 0] + 120.0, 360.0)
    causes, outcomes = _wrong_causes(gt, poses, replace(est, orientation=turned), 0.5)
    assert causes and set(causes) == {"orientation"}
    assert fm.summarise_outcomes(outcomes)["causes"]["by_cause"] == {"orientation": len(causes)}
    rel = fm.camera_frame(est.cam_to_world, est.center_world)
    drifting = est.cam_to_world.copy()
    drifting[:, :3, 3] += np.linspace(0.0, 4.0, T)[:, None] ** 2 * [1.0, 0.5, 0.0]  # speeding up
    moved = np.einsum("tij,ktj->kti", drifting[:, :3, :3], rel) + drifting[None, :, :3, 3]
    causes, _ = _wrong_causes(gt, poses, replace(est, cam_to_world=drifting, center_world=moved), 0.5)
    assert causes and set(causes) == {"camera"}
