"""Classic recon's bundle adjustment shares the Schur complement's rows out among worker threads:
the reduced system, and so the refined poses and points, are those of one thread to the bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import recon4d.recon.classic.bundle_adjust as ba_module
from recon4d.recon.classic.bundle_adjust import _schur_complement, bundle_adjust, schur_workers
from tests.recon.test_classic import orbit, perturbed_start, synthetic_tracks


def _blocks(n_frames: int = 7, n_points: int = 40, seed: int = 3):
    """Observations sorted by point, each point seen by a random run of frames, and random blocks."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_points):
        first = int(rng.integers(0, n_frames - 1))
        frames.append(np.arange(first, int(rng.integers(first + 1, n_frames + 1))))
    obs_frame = np.concatenate(frames)
    point_start = np.concatenate([[0], np.cumsum([len(f) for f in frames])])
    cross = rng.normal(size=(len(obs_frame), 6, 3))
    spd = rng.normal(size=(n_points, 3, 3))
    inv_p = spd @ np.swapaxes(spd, 1, 2) + np.eye(3)
    return obs_frame, point_start, cross, inv_p, rng.normal(size=(n_points, 3)), n_frames


def _slow_schur(obs_frame, point_start, cross, inv_p, grad_p, n_frames):
    reduced, rhs = np.zeros((6 * n_frames, 6 * n_frames)), np.zeros(6 * n_frames)
    for p in range(len(point_start) - 1):
        for a in range(point_start[p], point_start[p + 1]):
            ta = obs_frame[a]
            rhs[6 * ta:6 * ta + 6] += cross[a] @ inv_p[p] @ grad_p[p]
            for b in range(point_start[p], point_start[p + 1]):
                tb = obs_frame[b]
                reduced[6 * ta:6 * ta + 6, 6 * tb:6 * tb + 6] += cross[a] @ inv_p[p] @ cross[b].T
    return reduced, rhs


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threaded_schur_complement_equals_one_thread_to_the_bit(threads):
    args = _blocks()
    serial = _schur_complement(*args, 1)
    with schur_workers(threads) as pool:
        shared = _schur_complement(*args, threads, pool)
    np.testing.assert_array_equal(shared[0], serial[0])
    np.testing.assert_array_equal(shared[1], serial[1])
    slow = _slow_schur(*args)
    np.testing.assert_allclose(serial[0], slow[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(serial[1], slow[1], rtol=1e-12, atol=1e-12)


def test_schur_rows_run_in_worker_threads(monkeypatch):
    names = []
    original = ba_module._schur_rows

    def recording(*args):
        names.append(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(ba_module, "_schur_rows", recording)
    with schur_workers(2) as pool:
        _schur_complement(*_blocks(), 2, pool)
    assert len(names) == 2 and names.count(threading.current_thread().name) == 1  # one part on the caller
    assert sum(name.startswith("recon4d-schur") for name in names) == 1  # the other on a worker


def test_bundle_adjust_starts_its_schur_workers_once(monkeypatch):
    """Every iteration's Schur complement shares one pool: starting threads per call cost more than
    they saved (pipeline_speed's clip: 19.5 ms a call against 13.8 ms in one thread)."""
    pools, workers = [], set()
    original_pool, original_rows = ba_module.ThreadPoolExecutor, ba_module._schur_rows

    def counting_pool(*args, **kwargs):
        pools.append(args)
        return original_pool(*args, **kwargs)

    def recording(*args):
        workers.add(threading.current_thread().name)
        return original_rows(*args)

    monkeypatch.setattr(ba_module, "ThreadPoolExecutor", counting_pool)
    monkeypatch.setattr(ba_module, "_schur_rows", recording)
    truth = orbit(6, 0.3, 1.0)
    observed, points = synthetic_tracks(truth, n_points=200)
    rng = np.random.default_rng(5)
    start, noisy_points = perturbed_start(truth, points, rng)
    poses, _ = bundle_adjust(start, noisy_points, observed, np.ones(observed.shape[:2], bool), 300.0, threads=3)
    assert not np.array_equal(poses, start)
    assert pools == [(2,)]  # one pool of 2 workers for all iterations; the caller takes the third part
    others = workers - {threading.current_thread().name}
    assert threading.current_thread().name in workers  # the caller takes a part
    assert others and all(name.startswith("recon4d-schur") for name in others)  # the pool's workers the others


def test_bundle_adjust_with_threads_equals_one_thread():
    truth = orbit(6, 0.3, 1.0)
    observed, points = synthetic_tracks(truth, n_points=200)
    rng = np.random.default_rng(7)
    start, noisy_points = perturbed_start(truth, points, rng)
    seen = rng.uniform(size=observed.shape[:2]) < 0.8
    serial = bundle_adjust(start, noisy_points, observed, seen, 300.0, threads=1)
    shared = bundle_adjust(start, noisy_points, observed, seen, 300.0, threads=2)
    assert not np.array_equal(serial[0], start)  # it moved, so the comparison says something
    np.testing.assert_array_equal(shared[0], serial[0])
    np.testing.assert_array_equal(shared[1], serial[1])



def test_trial_costs_use_the_residuals_only_with_the_same_values(monkeypatch):
    """The cost of each trial step needs the residuals, not the Jacobians: those are built once per
    iteration, and every residual is the projection error the full system computed before, to the bit."""
    truth = orbit(6, 0.3, 1.0)
    observed, points = synthetic_tracks(truth, n_points=200)
    rng = np.random.default_rng(11)
    start, noisy_points = perturbed_start(truth, points, rng)
    seen = rng.uniform(size=observed.shape[:2]) < 0.8
    systems, residuals = [], []
    original_system, original_residual = ba_module._ba_system, ba_module._ba_residual

    def counting_system(*args):
        systems.append(1)
        return original_system(*args)

    def recording_residual(*args):
        result = original_residual(*args)
        residuals.append((args, result[0]))
        return result

    monkeypatch.setattr(ba_module, "_ba_system", counting_system)
    monkeypatch.setattr(ba_module, "_ba_residual", recording_residual)
    poses, _ = bundle_adjust(start, noisy_points, observed, seen, 300.0, threads=1)
    assert not np.array_equal(poses, start)
    assert len(systems) >= 2 and len(residuals) >= 2 * len(systems) + 1  # first cost, each system, each trial
    for (world_to_cam, world, obs_frame, obs_point, obs, focal), residual in residuals:
        camera = np.einsum("mij,mj->mi", world_to_cam[obs_frame, :, :3], world[obs_point]) \
            + world_to_cam[obs_frame, :, 3]
        z = camera[:, 2]
        np.testing.assert_array_equal(residual, (camera[:, :2] / z[:, None] - obs) * focal)
