"""Does a track's box move against the background? Evidence from the rays through its box centres and edges.

A motion-segmentation tracker also finds things that do not move: a patch of the background
whose parallax the camera model got wrong, a wall, a shadow edge. Its box follows the
background, so the rays from the camera centres through its box centres meet in one still
world point (up to the box's own jitter), whatever the camera does; a mover's rays do not.
Depth plays no part (a lifted depth is far noisier than a box centre, and a wrong depth moves
a still patch in the world).

In each window of ``window`` consecutive lifted frames (spanning at most ``max_span`` frames of
the clip), two points are fitted to the rays by least squares: a still one, and one moving at
a constant velocity. Each is projected back into the frames, and its RMS distance from the
box centres (pixels) is its residual. The middles of the box's top and bottom edges get a
still and a moving point of their own, their residuals pooled with the centre's: a thing
walking straight at the camera along the ray through its box centre keeps that centre still,
but its box grows. Where only jitter moves the box, the moving point fits
little better (ratio about 1–1.5: three more unknowns); where the thing moves, the still
point misses by the motion (ratio 2 and more). The median over the windows is the track's
**motion evidence**; :func:`own_motion_trust` turns it into a trust factor.

    motion_evidence(times, boxes, intrinsics, cam_to_world, lifted) -> float
"""

from __future__ import annotations

import numpy as np

from recon4d.geometry import invert_rigid

_PRIOR_WEIGHT = 1e-3
"""Weight (per frame, against a ray's 1) pulling the fitted point towards the window's mean lifted
centre: fixes the depth along the rays where they all leave one camera centre (a still or turning
camera) without moving the point across them."""
_MIN_RESIDUAL_PX = 0.5
"""The moving point's residual is taken as at least this (pixels): boxes are placed to a pixel."""


def box_points(boxes: np.ndarray, edges: bool) -> np.ndarray:
    """(..., P, 2) pixels of boxes (..., 4) xyxy the test follows: the centre (P = 1), and with
    ``edges`` also the middles of the top and bottom edges (P = 3)."""
    centre = 0.5 * (boxes[..., :2] + boxes[..., 2:])
    if not edges:
        return centre[..., None, :]
    top = np.stack([centre[..., 0], boxes[..., 1]], axis=-1)
    bottom = np.stack([centre[..., 0], boxes[..., 3]], axis=-1)
    return np.stack([top, centre, bottom], axis=-2)


def pixel_rays(pixels: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """(n, 3) unit world directions through pixels (n, 2) of intrinsics (n, 3, 3), from cameras
    cam_to_world (n, 4, 4)."""
    pixels = np.concatenate([pixels, np.ones((len(pixels), 1))], axis=1)
    camera = np.einsum("nij,nj->ni", np.linalg.inv(intrinsics), pixels)
    world = np.einsum("nij,nj->ni", cam_to_world[:, :3, :3], camera)
    return world / np.linalg.norm(world, axis=1, keepdims=True)


def box_rays(boxes: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """(n, 3) unit world directions through the centres of boxes (n, 4) xyxy in the pixels of
    intrinsics (n, 3, 3), from cameras cam_to_world (n, 4, 4)."""
    return pixel_rays(0.5 * (boxes[:, :2] + boxes[:, 2:]), intrinsics, cam_to_world)


def window_starts(frames: np.ndarray, window: int, max_span: int) -> np.ndarray:
    """(S,) indices into sorted ``frames`` (n,) where a window of ``window`` of them starts that
    spans at most ``max_span`` frames (last minus first)."""
    if len(frames) < window:
        return np.zeros(0, int)
    starts = np.arange(len(frames) - window + 1)
    return starts[frames[starts + window - 1] - frames[starts] <= max_span]


def fit_still_and_moving(origins: np.ndarray, directions: np.ndarray, times: np.ndarray,
                         prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares points nearest to S windows of W rays each, (S, W, 3) origins and unit
    directions at times (S, W) s: a still point, returned as (S, W, 3) (the same in each frame),
    and a point moving at a constant velocity, (S, W, 3) at each time. ``prior`` (S, 3): where
    the fitted point is pulled, weakly (``_PRIOR_WEIGHT``)."""
    n_windows, width = times.shape
    eye = np.eye(3)
    perpendicular = eye - directions[..., :, None] * directions[..., None, :]  # (S, W, 3, 3)
    centred = times - times.mean(axis=1, keepdims=True)
    weight = _PRIOR_WEIGHT * width
    a = perpendicular.sum(axis=1) + weight * eye
    b = np.einsum("swij,swj->si", perpendicular, origins) + weight * prior
    still = np.linalg.solve(a, b[..., None])[..., 0]
    timed = perpendicular * centred[..., None, None]
    big_a = np.zeros((n_windows, 6, 6))
    big_a[:, :3, :3] = a
    big_a[:, :3, 3:] = big_a[:, 3:, :3] = timed.sum(axis=1)
    big_a[:, 3:, 3:] = (timed * centred[..., None, None]).sum(axis=1) + weight * eye
    big_b = np.concatenate([b, np.einsum("swij,swj->si", timed, origins)], axis=1)
    solution = np.linalg.solve(big_a, big_b[..., None])[..., 0]
    moving = solution[:, None, :3] + centred[..., None] * solution[:, None, 3:]
    return np.broadcast_to(still[:, None], (n_windows, width, 3)), moving


def _reprojection_px(points: np.ndarray, world_to_cam: np.ndarray, intrinsics: np.ndarray,
                     pixels: np.ndarray) -> np.ndarray:
    """(S,) RMS distance (pixels) of world points (S, W, 3) projected by cameras (S, W, 4, 4) and
    intrinsics (S, W, 3, 3) from pixels (S, W, 2)."""
    camera = np.einsum("swij,swj->swi", world_to_cam[..., :3, :3], points) + world_to_cam[..., :3, 3]
    image = np.einsum("swij,swj->swi", intrinsics, camera)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.linalg.norm(image[..., :2] / image[..., 2:3] - pixels, axis=-1)
    return np.sqrt(np.mean(error ** 2, axis=1))


def motion_evidence(times: np.ndarray, boxes: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray,
                    lifted: np.ndarray, window: int = 8, max_span: int = 16, edges: bool = True) -> float:
    """One track's motion evidence (module docstring): the median over its windows of the still
    points' residual over the moving points', or NaN when it has no window.

    times (T,) s; boxes (T, 4) xyxy pixels; intrinsics (T, 3, 3) in those pixels; cam_to_world
    (T, 4, 4); lifted (T, 3) world centres: the frames used are those with a finite box and
    centre (mark others NaN); the centres only fix where along the rays of a turning camera
    the points sit. ``edges``: follow the middles of the box's top and bottom edges besides its
    centre (each its own still and moving point; residuals pooled), so a thing coming straight at
    the camera, whose box grows about a still centre, shows its motion.
    """
    frames = np.flatnonzero(np.isfinite(boxes).all(axis=1) & np.isfinite(lifted).all(axis=1))
    starts = window_starts(frames, window, max_span)
    if not len(starts):
        return float("nan")
    index = frames[starts[:, None] + np.arange(window)]  # (S, W)
    pixels = box_points(boxes[index], edges)  # (S, W, P, 2)
    n_points = pixels.shape[2]
    origins = cam_to_world[index, :3, 3]
    world_to_cam = invert_rigid(cam_to_world[index])
    still_sq = np.zeros(len(index))
    moving_sq = np.zeros(len(index))
    for p in range(n_points):
        directions = pixel_rays(pixels[:, :, p].reshape(-1, 2), intrinsics[index].reshape(-1, 3, 3),
                                cam_to_world[index].reshape(-1, 4, 4)).reshape(index.shape + (3,))
        still, moving = fit_still_and_moving(origins, directions, times[index], lifted[index].mean(axis=1))
        still_sq += _reprojection_px(still, world_to_cam, intrinsics[index], pixels[:, :, p]) ** 2
        moving_sq += _reprojection_px(moving, world_to_cam, intrinsics[index], pixels[:, :, p]) ** 2
    ratio = np.sqrt(still_sq / n_points) / np.maximum(np.sqrt(moving_sq / n_points), _MIN_RESIDUAL_PX)
    ratio = ratio[np.isfinite(ratio)]
    return float(np.median(ratio)) if len(ratio) else float("nan")


def own_motion_trust(evidence: np.ndarray, full: float) -> np.ndarray:
    """(K,) trust in [0, 1] from motion evidence (K,): (evidence − 1) / (full − 1), clipped; 1
    where the evidence is unknown (NaN)."""
    evidence = np.asarray(evidence, np.float64)
    with np.errstate(invalid="ignore"):
        trust = np.clip((evidence - 1.0) / (full - 1.0), 0.0, 1.0)
    return np.where(np.isfinite(evidence), trust, 1.0)
