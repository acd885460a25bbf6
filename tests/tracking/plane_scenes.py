"""Hand-built moving-camera scenes for the classic tracker's tests: textured planes and one moving box.

A ground plane (z = 0) and two walls meeting in a corner (x = 9 and y = 7, z up), ray cast
exactly in numpy, seen by a pinhole camera (60° horizontal field of view) that walks towards
the corner while a textured box (0.5 × 0.5 × 1.7 m, a person's size) crosses in front of it.
Three planes and a translating camera: every static pixel's flow has parallax that no single
homography (nor two) explains, which is what invented movers on walls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlaneScene:
    frames: np.ndarray
    """(T, H, W, 3) uint8 RGB."""
    mover_boxes: np.ndarray
    """(T, 4) float64 xyxy pixel-edge box of the moving box (NaN where it is not seen)."""
    mover_masks: np.ndarray
    """(T, H, W) bool pixels showing the moving box."""
    surfaces: np.ndarray
    """(T, H, W) uint8 what each pixel shows: 0 ground, 1 and 2 the walls, 3 the moving box."""


def _noise_table(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    return rng.uniform(0.0, 1.0, (size, size))


def _texture(table: np.ndarray, u: np.ndarray, v: np.ndarray, cell: float) -> np.ndarray:
    """Bilinear value noise of ``table`` at world coordinates (u, v) with cells of ``cell`` metres, in [0, 1]."""
    size = table.shape[0]
    x, y = u / cell, v / cell
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    a = table[y0 % size, x0 % size]
    b = table[y0 % size, (x0 + 1) % size]
    c = table[(y0 + 1) % size, x0 % size]
    d = table[(y0 + 1) % size, (x0 + 1) % size]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) camera → world rotation of an OpenCV camera at ``position`` looking at ``target`` (z up)."""
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)


def walking_scene(seed: int = 0, n_frames: int = 12, width: int = 320, height: int = 180, fps: float = 6.0,
                  walk_m_s: float = 1.4, mover_m_s: float = 1.0, with_mover: bool = True) -> PlaneScene:
    """Render the scene; the camera walks from (0, 0, 1.6) towards the corner at ``walk_m_s``."""
    rng = np.random.default_rng(seed)
    tables = [_noise_table(rng) for _ in range(4)]
    focal = width / (2.0 * math.tan(math.radians(30.0)))
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays_camera = np.stack([(cols - width / 2) / focal, (rows - height / 2) / focal, np.ones_like(cols)], -1)
    frames = np.zeros((n_frames, height, width, 3), np.uint8)
    boxes = np.full((n_frames, 4), np.nan)
    masks = np.zeros((n_frames, height, width), bool)
    surfaces = np.zeros((n_frames, height, width), np.uint8)
    size = np.array([0.5, 0.5, 1.7])
    for t in range(n_frames):
        time_s = t / fps
        position = np.array([walk_m_s * time_s * 0.8, walk_m_s * time_s * 0.6, 1.6])
        rotation = _look_at(position, np.array([9.0, 7.0, 0.3]))
        rays = rays_camera @ rotation.T
        depth = np.full((height, width), np.inf)
        colour = np.zeros((height, width, 3))
        hit_mover = np.zeros((height, width), bool)

        surface = np.zeros((height, width), np.uint8)

        def plane(normal_axis: int, offset: float, tint: np.ndarray, table: np.ndarray, uv_axes: tuple[int, int],
                  label: int):
            direction = rays[..., normal_axis]
            with np.errstate(divide="ignore", invalid="ignore"):
                distance = (offset - position[normal_axis]) / direction
            points = position + distance[..., None] * rays
            ok = (distance > 0) & (distance < depth) & np.isfinite(distance)
            shade = 0.35 + 0.65 * _texture(table, points[..., uv_axes[0]], points[..., uv_axes[1]], 0.25)
            colour[ok] = (tint * shade[..., None])[ok]
            depth[ok] = distance[ok]
            surface[ok] = label

        plane(2, 0.0, np.array([170.0, 160.0, 140.0]), tables[0], (0, 1), 0)      # ground
        plane(0, 9.0, np.array([190.0, 110.0, 90.0]), tables[1], (1, 2), 1)       # wall facing −x
        plane(1, 7.0, np.array([120.0, 150.0, 200.0]), tables[2], (0, 2), 2)      # wall facing −y
        if with_mover:
            centre = np.array([5.5, 2.5 + mover_m_s * time_s, size[2] / 2])
            low, high = centre - size / 2, centre + size / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                t0 = (low - position) / rays
                t1 = (high - position) / rays
            near = np.nanmax(np.minimum(t0, t1), axis=-1)
            far = np.nanmin(np.maximum(t0, t1), axis=-1)
            ok = (near <= far) & (near > 0) & (near < depth)
            local = position + near[..., None] * rays - low
            shade = 0.3 + 0.7 * _texture(tables[3], local[..., 0] + local[..., 1], local[..., 2], 0.15)
            colour[ok] = (np.array([60.0, 200.0, 80.0]) * shade[..., None])[ok]
            depth[ok] = near[ok]
            surface[ok] = 3
            hit_mover = ok
        frames[t] = np.clip(colour, 0, 255).astype(np.uint8)
        masks[t] = hit_mover
        surfaces[t] = surface
        if hit_mover.any():
            ys, xs = np.nonzero(hit_mover)
            boxes[t] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return PlaneScene(frames, boxes, masks, surfaces)
