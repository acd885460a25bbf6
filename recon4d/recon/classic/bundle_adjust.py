"""Robust bundle adjustment of camera poses and map points (the ``classic`` backend's refinement).

Levenberg–Marquardt on the Huber reprojection error, with the points eliminated by the Schur
complement (:func:`bundle_adjust`); the per-observation normal equations, the reduced camera
system and its Cholesky solve are numba loops; the reduced system's rows are shared out among worker
threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from recon4d.workers import share_malloc_arena, worker_threads

MIN_MAP_POINTS = 30  # triangulated points an initial pair must give (and a bundle adjustment needs)


def _skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices (..., 3, 3) of vectors (..., 3)."""
    zero = np.zeros(v.shape[:-1])
    return np.stack([np.stack([zero, -v[..., 2], v[..., 1]], -1), np.stack([v[..., 2], zero, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], zero], -1)], axis=-2)


def _exp_so3(omega: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of rotation vectors (..., 3) (Rodrigues)."""
    angle = np.linalg.norm(omega, axis=-1)[..., None, None]
    k = _skew(omega)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(angle > 1e-12, np.sin(angle) / angle, 1.0)
        b = np.where(angle > 1e-12, (1.0 - np.cos(angle)) / angle**2, 0.5)
    return np.eye(3) + a * k + b * (k @ k)


def _ba_residual(world_to_cam, points, obs_frame, obs_point, observed, focal):
    """Residuals (M, 2) px, with the rotation (M, 3, 3), rotated points (M, 3) and camera-frame
    points (M, 3) they came from; the trial steps' cost needs only these, not the Jacobians."""
    rotation, translation = world_to_cam[obs_frame, :, :3], world_to_cam[obs_frame, :, 3]
    rotated = np.einsum("mij,mj->mi", rotation, points[obs_point])
    camera = rotated + translation
    residual = (camera[:, :2] / camera[:, 2, None] - observed) * focal
    return residual, rotation, rotated, camera


def _ba_system(world_to_cam, points, obs_frame, obs_point, observed, focal, huber_px):
    """Residuals (M, 2) px, robust weights (M,), camera (M, 2, 6) and point (M, 2, 3) Jacobians."""
    residual, rotation, rotated, camera = _ba_residual(world_to_cam, points, obs_frame, obs_point, observed, focal)
    z = camera[:, 2]
    d_proj = np.zeros((len(z), 2, 3))
    d_proj[:, 0, 0] = d_proj[:, 1, 1] = focal / z
    d_proj[:, :, 2] = -focal * camera[:, :2] / z[:, None] ** 2
    jac_camera = np.concatenate([-d_proj @ _skew(rotated), d_proj], axis=2)
    jac_point = d_proj @ rotation
    norm = np.linalg.norm(residual, axis=1)
    weight = np.where(norm <= huber_px, 1.0, huber_px / np.maximum(norm, 1e-12))
    return residual, weight, jac_camera, jac_point


def _robust_cost(residual: np.ndarray, huber_px: float) -> float:
    norm = np.linalg.norm(residual, axis=1)
    return float(np.where(norm <= huber_px, 0.5 * norm**2, huber_px * (norm - 0.5 * huber_px)).sum())


def bundle_adjust(world_to_cam: np.ndarray, points: np.ndarray, xy: np.ndarray, seen: np.ndarray, focal: float,
                  n_iterations: int = 30, huber_px: float = 1.0, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Jointly refine poses (T, 3, 4) and points (N, 3) against observations xy (N, T, 2).

    Levenberg–Marquardt on the Huber-robust reprojection error in pixels (iteratively
    reweighted); the points are eliminated by the Schur complement, so each step solves a
    6(T−1) camera system. Camera 0 is held fixed; the remaining scale freedom is held by the
    damping. Rotations are updated on the left, R ← exp(δω) R. Returns refined copies; NaN
    points stay NaN. Cost per iteration: Σ (track length)² small blocks plus a (6T)³/3
    Cholesky (about 1 s for 48 frames in all, tens of seconds for 200). The Schur complement, most
    of an iteration's time, is shared out in ``threads`` parts (0: automatic,
    :func:`~recon4d.workers.worker_threads`): the caller's thread and ``threads`` − 1 workers started
    once for all iterations, with the same result to the bit.
    """
    threads = worker_threads(threads)
    have = np.flatnonzero(np.isfinite(points[:, 0]))
    obs_point, obs_frame = np.nonzero(seen[have])  # sorted by point
    n_frames, n_points = world_to_cam.shape[0], len(have)
    if n_points < MIN_MAP_POINTS or n_frames < 2:
        return world_to_cam, points
    point_start = np.searchsorted(obs_point, np.arange(n_points + 1))
    observed = xy[have[obs_point], obs_frame]
    parts = max(1, min(threads, n_frames))
    # one pool for every iteration's Schur complement: starting threads per call cost more than they saved
    with schur_workers(parts) as pool:
        return _levenberg_marquardt(world_to_cam, points, have, obs_frame, obs_point, point_start, observed, focal,
                                    n_iterations, huber_px, parts, pool)


def _levenberg_marquardt(world_to_cam, points, have, obs_frame, obs_point, point_start, observed, focal,
                         n_iterations, huber_px, parts, pool):
    """:func:`bundle_adjust`'s iterations, the Schur complement shared out in ``parts`` (``pool``: the
    workers of all but the caller's part, or None for one part)."""
    n_frames = world_to_cam.shape[0]
    poses, world = world_to_cam.copy(), points[have].copy()
    damping = 1e-3
    cost = _robust_cost(_ba_residual(poses, world, obs_frame, obs_point, observed, focal)[0], huber_px)
    for _ in range(n_iterations):
        residual, weight, jac_c, jac_p = _ba_system(poses, world, obs_frame, obs_point, observed, focal, huber_px)
        cam_block, point_block, cross, grad_c, grad_p = _normal_equations(
            obs_frame, point_start, residual, weight, jac_c, jac_p, n_frames)
        improved = False
        while damping <= 1e6:
            damped_c = cam_block + damping * _diagonal(cam_block)
            damped_p = point_block + damping * _diagonal(point_block)
            inv_p = np.linalg.inv(damped_p)
            reduced, reduced_rhs = _schur_complement(obs_frame, point_start, cross, inv_p, grad_p, n_frames,
                                                     parts, pool)
            schur = _block_diag(damped_c[1:]) - reduced[6:, 6:]
            step_c = _solve_spd(schur, -grad_c[1:].ravel() + reduced_rhs[6:])
            if step_c is None:
                damping *= 10.0
                continue
            step_c = np.concatenate([np.zeros(6), step_c]).reshape(n_frames, 6)
            back = np.add.reduceat(np.einsum("mij,mi->mj", cross, step_c[obs_frame]), point_start[:-1])
            step_p = -np.einsum("pij,pj->pi", inv_p, grad_p + back)
            trial = poses.copy()
            trial[:, :, :3] = _exp_so3(step_c[:, :3]) @ poses[:, :, :3]
            trial[:, :, 3] = poses[:, :, 3] + step_c[:, 3:]
            trial_world = world + step_p
            trial_cost = _robust_cost(
                _ba_residual(trial, trial_world, obs_frame, obs_point, observed, focal)[0], huber_px)
            if np.isfinite(trial_cost) and trial_cost < cost:
                converged = cost - trial_cost < 1e-6 * cost
                poses, world, cost, improved = trial, trial_world, trial_cost, not converged
                damping = max(damping / 3.0, 1e-7)
                break
            damping *= 4.0
        if not improved:
            break
    out_points = points.copy()
    out_points[have] = world
    return poses, out_points


def _diagonal(blocks: np.ndarray) -> np.ndarray:
    """The diagonal part (plus a floor) of square blocks (..., k, k), for LM damping."""
    k = blocks.shape[-1]
    return (np.diagonal(blocks, axis1=-2, axis2=-1) + 1e-6)[..., None] * np.eye(k)


@numba.njit(fastmath=False, cache=True)
def _normal_equations(obs_frame, point_start, residual, weight, jac_c, jac_p, n_frames):
    """Blocks of JᵀWJ and JᵀWr: cameras (T, 6, 6), points (P, 3, 3), camera–point (M, 6, 3)
    per observation, gradients (T, 6) and (P, 3). Observations are sorted by point."""
    n_points = len(point_start) - 1
    cam_block = np.zeros((n_frames, 6, 6))
    point_block = np.zeros((n_points, 3, 3))
    cross = np.zeros((len(obs_frame), 6, 3))
    grad_c = np.zeros((n_frames, 6))
    grad_p = np.zeros((n_points, 3))
    for p in range(n_points):
        for m in range(point_start[p], point_start[p + 1]):
            t, w = obs_frame[m], weight[m]
            for r in range(2):
                for i in range(6):
                    grad_c[t, i] += w * jac_c[m, r, i] * residual[m, r]
                    for j in range(6):
                        cam_block[t, i, j] += w * jac_c[m, r, i] * jac_c[m, r, j]
                    for j in range(3):
                        cross[m, i, j] += w * jac_c[m, r, i] * jac_p[m, r, j]
                for i in range(3):
                    grad_p[p, i] += w * jac_p[m, r, i] * residual[m, r]
                    for j in range(3):
                        point_block[p, i, j] += w * jac_p[m, r, i] * jac_p[m, r, j]
    return cam_block, point_block, cross, grad_c, grad_p


@contextlib.contextmanager
def schur_workers(parts: int) -> Iterator[ThreadPoolExecutor | None]:
    """The worker threads of all but the caller's part of :func:`_schur_complement` (None for one
    part), started once for as many calls as the block makes."""
    if parts <= 1:
        yield None
        return
    share_malloc_arena()
    with ThreadPoolExecutor(parts - 1, thread_name_prefix="recon4d-schur") as pool:
        yield pool


def _schur_complement(obs_frame, point_start, cross, inv_p, grad_p, n_frames, parts: int = 1,
                      pool: ThreadPoolExecutor | None = None):
    """Σ_p W_p V_p⁻¹ W_pᵀ as a (6T, 6T) matrix and Σ_p W_p V_p⁻¹ g_p (6T,), visiting only the
    pairs of frames that see a common point.

    cross: (M, 6, 3) camera–point blocks W per observation (sorted by point); inv_p (P, 3, 3),
    grad_p (P, 3). With ``parts`` > 1 the frames' rows are shared out in that many parts (frame
    t to part t mod parts; :func:`_schur_rows` releases the GIL): part 0 on the caller's thread,
    the others on ``pool``'s workers (:func:`schur_workers`). Each entry gets the same additions
    in the same order as in one part, so the result is the same to the bit. (A pool started per
    call, which the caller waited on, was slower than one thread: on pipeline_speed's clip, 1558
    points seen 26446 times, 19.5 ms a call against 13.8 ms; 9-11 ms with the pool kept.)
    """
    reduced = np.zeros((6 * n_frames, 6 * n_frames))
    rhs = np.zeros(6 * n_frames)

    def rows(part: int) -> None:
        _schur_rows(obs_frame, point_start, cross, inv_p, grad_p, reduced, rhs, part, parts)

    others = [pool.submit(rows, part) for part in range(1, parts)]
    try:
        rows(0)
    finally:
        for future in others:
            future.result()  # the workers write into reduced and rhs: wait for them, even on a failure
    return reduced, rhs


@numba.njit(fastmath=False, cache=True, nogil=True)
def _schur_rows(obs_frame, point_start, cross, inv_p, grad_p, reduced, rhs, part, parts):
    """Add to ``reduced`` (6T, 6T) and ``rhs`` (6T,) the rows of the frames t with t mod ``parts`` = ``part``
    (:func:`_schur_complement`)."""
    scaled = np.zeros((6, 3))
    for p in range(len(point_start) - 1):
        for a in range(point_start[p], point_start[p + 1]):
            ta = obs_frame[a]
            if ta % parts != part:
                continue
            for i in range(6):
                for j in range(3):
                    scaled[i, j] = cross[a, i, 0] * inv_p[p, 0, j] + cross[a, i, 1] * inv_p[p, 1, j] \
                        + cross[a, i, 2] * inv_p[p, 2, j]
                rhs[6 * ta + i] += scaled[i, 0] * grad_p[p, 0] + scaled[i, 1] * grad_p[p, 1] \
                    + scaled[i, 2] * grad_p[p, 2]
            for b in range(point_start[p], point_start[p + 1]):
                tb = obs_frame[b]
                w_b = cross[b]
                for i in range(6):
                    s0, s1, s2 = scaled[i, 0], scaled[i, 1], scaled[i, 2]
                    row = reduced[6 * ta + i, 6 * tb:6 * tb + 6]
                    for j in range(6):
                        row[j] += s0 * w_b[j, 0] + s1 * w_b[j, 1] + s2 * w_b[j, 2]


@numba.njit(fastmath=False, cache=True)
def _solve_spd(matrix: np.ndarray, rhs: np.ndarray):
    """x with matrix @ x = rhs by Cholesky, or None when ``matrix`` is not positive definite.

    A plain loop on purpose: threaded LAPACK factorisations of these small (≤ a few hundred)
    systems stall for hundreds of milliseconds when the cores are shared.
    """
    n = matrix.shape[0]
    lower = np.zeros((n, n))
    for j in range(n):
        total = matrix[j, j]
        for k in range(j):
            total -= lower[j, k] * lower[j, k]
        if not total > 0.0:
            return None
        lower[j, j] = np.sqrt(total)
        for i in range(j + 1, n):
            total = matrix[i, j]
            for k in range(j):
                total -= lower[i, k] * lower[j, k]
            lower[i, j] = total / lower[j, j]
    y = np.empty(n)
    for i in range(n):
        total = rhs[i]
        for k in range(i):
            total -= lower[i, k] * y[k]
        y[i] = total / lower[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        total = y[i]
        for k in range(i + 1, n):
            total -= lower[k, i] * x[k]
        x[i] = total / lower[i, i]
    return x


def _block_diag(blocks: np.ndarray) -> np.ndarray:
    """(n, k, k) blocks → (n·k, n·k) block-diagonal matrix."""
    n, k, _ = blocks.shape
    out = np.zeros((n * k, n * k))
    index = np.arange(n)[:, None] * k + np.arange(k)
    out[index[:, :, None], index[:, None, :]] = blocks
    return out
