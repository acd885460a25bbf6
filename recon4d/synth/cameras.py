"""Camera paths of the synthetic scenes (:mod:`recon4d.synth.scene`), one per kind of footage.

Every path is a function of continuous time (seconds), so the frame rate only samples it;
the action happens within a few metres of the world origin (world z up, ground z = 0).

- ``static``: a fixed pose (tripod or wall-mounted, 1.2–4.5 m up);
- ``pan``: a tripod that pans and tilts: the position never changes, only the rotation;
- ``orbit``: an arc around the action with a dolly-in, panning and tilting as it goes;
- ``walk``: a handheld camera carried at walking pace past or towards the action, with the
  vertical bob and sway of the steps and a small smooth rotational shake;
- ``follow``: a handheld camera that walks behind a subject on the subject's own path,
  a few seconds later, and keeps looking at it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

CAMERA_KINDS = ("static", "pan", "orbit", "walk", "follow")

SubjectFn = Callable[[np.ndarray], np.ndarray]
"""Ground position (T, 2) of a followed subject at times (T,) seconds (any real times)."""


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV cam_to_world (..., 4, 4) of cameras at ``position`` (..., 3) looking at ``target``.

    The image x axis stays horizontal (no roll): right = forward × world-up, down = forward × right.
    """
    position = np.asarray(position, np.float64)
    forward = np.asarray(target, np.float64) - position
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    pose = np.zeros(position.shape[:-1] + (4, 4))
    pose[..., :3, :3] = np.stack([right, down, forward], axis=-1)
    pose[..., :3, 3] = position
    pose[..., 3, 3] = 1.0
    return pose


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: rotations (..., 3, 3) from rotation vectors (..., 3) radians."""
    rotvec = np.asarray(rotvec, np.float64)
    angle = np.linalg.norm(rotvec, axis=-1)[..., None, None]
    axis = rotvec / np.maximum(angle[..., 0], 1e-300)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    skew = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    return np.eye(3) + np.sin(angle) * skew + (1.0 - np.cos(angle)) * skew @ skew


def _smooth_noise(times_s: np.ndarray, amplitude: float, rng: np.random.Generator, low_hz: float = 0.6,
                  high_hz: float = 3.5, n_waves: int = 4) -> np.ndarray:
    """(T,) smooth zero-mean wobble: a sum of sines of random frequency, RMS ≈ ``amplitude``."""
    freqs = rng.uniform(low_hz, high_hz, n_waves)
    phases = rng.uniform(0.0, 2.0 * math.pi, n_waves)
    weights = rng.uniform(0.5, 1.0, n_waves)
    weights *= amplitude * math.sqrt(2.0) / np.linalg.norm(weights)
    return (weights * np.sin(2.0 * math.pi * freqs * times_s[:, None] + phases)).sum(axis=1)


def _shake(pose: np.ndarray, times_s: np.ndarray, amplitude_deg: float, rng: np.random.Generator) -> np.ndarray:
    """``pose`` (T, 4, 4) turned by a handheld shake: pitch, yaw and roll wobbles in the camera frame."""
    rotvec = np.stack([_smooth_noise(times_s, math.radians(amplitude_deg) * scale, rng)
                       for scale in (1.0, 1.0, 0.6)], axis=-1)
    shaken = pose.copy()
    shaken[:, :3, :3] = pose[:, :3, :3] @ rotvec_to_matrix(rotvec)
    return shaken


def _ease(n_frames: int) -> np.ndarray:
    """(T,) progress 0 → 1 over the clip, half linear and half eased (already moving at frame 0)."""
    if n_frames == 1:
        return np.zeros(1)
    linear = np.linspace(0.0, 1.0, n_frames)
    return 0.5 * linear + 0.25 - 0.25 * np.cos(math.pi * linear)


def orbit_path(n_frames: int, rng: np.random.Generator, still: bool = False) -> np.ndarray:
    """(T, 4, 4) cam_to_world: an orbit arc with a dolly-in, looking at a wandering target.

    ``still`` keeps every frame at the first pose (the parameters are drawn all the same, so a
    still and a moving camera of one seed start from the same view).
    """
    radius0, dolly = rng.uniform(7.5, 9.5), rng.uniform(0.6, 1.6)
    angle0 = rng.uniform(0.0, 2.0 * math.pi)
    sweep = rng.choice([-1.0, 1.0]) * math.radians(rng.uniform(18.0, 35.0))
    height0 = rng.uniform(1.8, 2.8)
    pan_m, pan_phase = rng.uniform(0.5, 1.0), rng.uniform(0.0, 2.0 * math.pi)
    tilt_m, tilt_phase = rng.uniform(0.2, 0.4), rng.uniform(0.0, 2.0 * math.pi)
    progress = np.zeros(n_frames) if still else _ease(n_frames)
    angle = angle0 + sweep * progress
    radius = radius0 - dolly * progress
    position = np.stack([radius * np.cos(angle), radius * np.sin(angle),
                         height0 + 0.3 * np.sin(math.pi * progress)], axis=-1)
    # The target wanders sideways and up/down, so the camera pans and tilts against its orbit.
    pan = pan_m * np.sin(2.0 * math.pi * progress + pan_phase)
    target = np.stack([-pan * np.sin(angle), pan * np.cos(angle),
                       0.5 + tilt_m * np.sin(1.5 * math.pi * progress + tilt_phase)], axis=-1)
    return look_at(position, target)


def static_path(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(T, 4, 4) one pose repeated: 6–10 m from the action, 1.2–4.5 m up, looking near the origin."""
    azimuth, distance, height = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(6.5, 10.0), rng.uniform(1.2, 4.5)
    position = np.array([distance * math.cos(azimuth), distance * math.sin(azimuth), height])
    target = np.array([*rng.uniform(-0.8, 0.8, 2), rng.uniform(0.3, 0.9)])
    return np.repeat(look_at(position, target)[None], n_frames, axis=0)


def pan_path(times_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 4, 4) a tripod: fixed position, the view sweeping 15–35° sideways and tilting a little."""
    azimuth, distance, height = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(7.0, 10.0), rng.uniform(1.3, 2.2)
    position = np.array([distance * math.cos(azimuth), distance * math.sin(azimuth), height])
    duration = max(float(times_s[-1]), 1e-9)
    progress = 0.5 - 0.5 * np.cos(math.pi * times_s / duration)  # ease in and out
    half_sweep = 0.5 * math.radians(rng.uniform(15.0, 35.0)) * rng.choice([-1.0, 1.0])
    yaw = azimuth + math.pi + half_sweep * (2.0 * progress - 1.0)  # from the tripod towards the origin
    pitch = math.radians(rng.uniform(-12.0, -4.0)) + math.radians(rng.uniform(-4.0, 4.0)) * np.sin(
        math.pi * progress + rng.uniform(0.0, math.pi))
    forward = np.stack([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)], axis=-1)
    return look_at(np.broadcast_to(position, forward.shape), position + forward)


def _steps(times_s: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(T,) vertical bob and (T,) sideways sway in metres of a person walking with a camera."""
    step_hz = rng.uniform(1.7, 2.1)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    bob = rng.uniform(0.015, 0.035) * np.sin(2.0 * math.pi * step_hz * times_s + phase)
    sway = rng.uniform(0.01, 0.03) * np.sin(math.pi * step_hz * times_s + phase)
    return bob, sway


def walk_path(times_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 4, 4) handheld at walking pace (0.7–1.3 m/s) past or towards the action, with steps and shake."""
    speed = rng.uniform(0.7, 1.3)
    duration = float(times_s[-1])
    azimuth = rng.uniform(0.0, 2.0 * math.pi)  # where the walker stands, seen from the origin
    towards = rng.uniform() < 0.35
    if towards:  # approach the action, ending ~5.5 m from it
        start_distance = 5.5 + speed * duration + rng.uniform(0.0, 1.0)
        direction_angle = azimuth + math.pi + rng.uniform(-0.3, 0.3)
    else:  # pass by, the line of walking 6.5–9 m from the origin
        start_distance = rng.uniform(6.5, 9.0)
        direction_angle = azimuth + math.pi / 2 * rng.choice([-1.0, 1.0]) + rng.uniform(-0.4, 0.4)
    start = start_distance * np.array([math.cos(azimuth), math.sin(azimuth)])
    if not towards:  # centre the pass on the line of sight
        start = start - 0.5 * speed * duration * np.array([math.cos(direction_angle), math.sin(direction_angle)])
    direction = np.array([math.cos(direction_angle), math.sin(direction_angle)])
    left = np.array([-direction[1], direction[0]])
    bob, sway = _steps(times_s, rng)
    curve = rng.uniform(-0.04, 0.04)  # a slightly curved walk
    travelled = speed * times_s
    ground = start + travelled[:, None] * direction + (curve * travelled**2 + sway)[:, None] * left
    position = np.column_stack([ground, rng.uniform(1.45, 1.75) + bob])
    drift = rng.uniform(0.3, 1.0) * np.sin(2.0 * math.pi * times_s / max(duration, 1e-9) * 0.5 + rng.uniform(0, 6.3))
    target = np.column_stack([drift * left[0], drift * left[1], np.full(len(times_s), rng.uniform(0.4, 0.9))])
    return _shake(look_at(position, target), times_s, rng.uniform(0.25, 0.6), rng)


def follow_path(times_s: np.ndarray, subject: SubjectFn, lag_s: float, rng: np.random.Generator,
                subject_height_m: float = 0.9) -> np.ndarray:
    """(T, 4, 4) handheld, walking the subject's own path ``lag_s`` seconds behind it, looking at it."""
    ahead, behind = subject(times_s), subject(times_s - lag_s)
    travel = ahead - behind
    travel /= np.maximum(np.linalg.norm(travel, axis=-1, keepdims=True), 1e-9)
    left = np.stack([-travel[:, 1], travel[:, 0]], axis=-1)
    bob, sway = _steps(times_s, rng)
    side = rng.uniform(0.4, 1.0) * rng.choice([-1.0, 1.0])
    position = np.column_stack([behind + (side + sway)[:, None] * left, rng.uniform(1.5, 1.8) + bob])
    target = np.column_stack([ahead, np.full(len(times_s), subject_height_m)])
    return _shake(look_at(position, target), times_s, rng.uniform(0.2, 0.45), rng)
