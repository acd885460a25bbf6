"""Observers and targets of DSR questions: where entities are, and how an observer sees them.

An *entity* is the camera or one object of a :class:`~recon4d.types.Scene`; it is written as
an int: ``CAMERA`` (-1) or the object's row in the scene's (K, ...) arrays. Entities are what
questions are about (targets) and whose perspective they take (observers).

Viewpoints (DESIGN §2): an *absolute* observer is frozen at one frame t_v, a single
``observer_to_world`` (4, 4); a *relative* observer is re-evaluated at every frame, a stack
(F, 4, 4). Observer frames are FLU (x forward, y left, z up). The camera's pose is known in
every frame; an agent's only where it is visible and has a confident orientation.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import numpy as np

from recon4d.geometry import agent_observer_pose, camera_observer_pose, forward_axis, to_observer_frame
from recon4d.types import Scene

CAMERA = -1
"""The entity code of the camera (objects are their row index, 0..K-1)."""

_OPENCV_FORWARD = np.array([0.0, 0.0, 1.0])


def entity_label(scene: Scene, entity: int) -> str:
    """The id used in records: "camera" or the object's id as a string."""
    return "camera" if entity == CAMERA else str(int(scene.ids[entity]))


def _per_object(array: np.ndarray, rows: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(E, F, ...) rows of a (K, T, ...) object array (NaN for the camera rows or when K = 0)."""
    if array.shape[0] == 0:
        return np.full((len(rows), len(frames)) + array.shape[2:], np.nan)
    return array[np.maximum(rows, 0)[:, None], frames[None, :]].astype(np.float64)


def entity_positions(scene: Scene, entities: Sequence[int], frames: np.ndarray) -> np.ndarray:
    """World positions of entities at the given frames.

    entities: E entity codes; frames: (F,) frame indices. Returns (E, F, 3) float64: the
    camera centre for ``CAMERA``, the object centre (NaN where not visible) otherwise.
    """
    rows = np.asarray(entities, dtype=np.intp)
    frames = np.asarray(frames, dtype=np.intp)
    camera = scene.cam_to_world[frames, :3, 3]  # (F, 3)
    objects = _per_object(scene.center_world, rows, frames)  # (E, F, 3)
    return np.where((rows == CAMERA)[:, None, None], camera[None], objects)


def entity_forward_world(scene: Scene, entities: Sequence[int], frames: np.ndarray) -> np.ndarray:
    """Unit forward axes of entities in world coordinates.

    The camera looks along its OpenCV +z; an agent along the first column of R_cam←agent
    (DESIGN §2) rotated into the world by the camera of the frame it was seen in.
    Returns (E, F, 3) float64; NaN for objects without an orientation at a frame.
    """
    rows = np.asarray(entities, dtype=np.intp)
    frames = np.asarray(frames, dtype=np.intp)
    world_from_cam = scene.cam_to_world[frames, :3, :3]  # (F, 3, 3)
    camera = world_from_cam @ _OPENCV_FORWARD  # (F, 3)
    angles = _per_object(scene.orientation, rows, frames)
    agents = np.einsum("fij,efj->efi", world_from_cam, forward_axis(angles))
    return np.where((rows == CAMERA)[:, None, None], camera[None], agents)


def pose_known(scene: Scene, entity: int, min_orient_conf: float) -> np.ndarray:
    """(T,) bool: frames where ``entity`` can be an observer (has a full FLU pose).

    The camera: wherever ``cam_to_world`` is finite. An agent: visible, finite centre and
    orientation, and orientation confidence >= ``min_orient_conf`` (a NaN confidence is not
    confident).
    """
    if entity == CAMERA:
        return np.isfinite(scene.cam_to_world).all(axis=(1, 2))
    return oriented(scene, min_orient_conf)[entity]


def present(scene: Scene) -> np.ndarray:
    """(K, T) bool: frames where each object is visible with a finite centre."""
    return scene.visible & np.isfinite(scene.center_world).all(axis=-1)


def oriented(scene: Scene, min_orient_conf: float) -> np.ndarray:
    """(K, T) bool: frames where each object is present with a usable orientation."""
    confident = scene.orient_conf >= min_orient_conf  # NaN compares False: unknown is not confident
    return present(scene) & np.isfinite(scene.orientation).all(axis=-1) & confident


# scene -> observer -> (T, 4, 4) poses at every frame: a compile asks for the same observers'
# poses over and over (weak keys: forgotten with the scene; Scene compares by identity).
_POSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def observer_poses(scene: Scene, observer: int, frames: np.ndarray) -> np.ndarray:
    """``observer_to_world`` of an entity at each frame: (F, 4, 4) float64 (NaN where unknown).

    Computed once per (scene, observer) for all T frames and then indexed (each frame's
    pose depends on that frame alone, so the values are the same either way).
    """
    frames = np.asarray(frames, dtype=np.intp)
    per_scene = _POSES.setdefault(scene, {})
    poses = per_scene.get(observer)
    if poses is None:
        cam_to_world = scene.cam_to_world
        if observer == CAMERA:
            poses = camera_observer_pose(cam_to_world)
        else:
            poses = agent_observer_pose(
                cam_to_world, scene.center_world[observer], scene.orientation[observer].astype(np.float64)
            )
        poses.flags.writeable = False
        per_scene[observer] = poses
    return poses[frames]


def observer_frame(scene: Scene, observer: int, frames: np.ndarray, frozen_at: int | None) -> np.ndarray:
    """The observer frame a question is computed in.

    frozen_at: the frame index t_v of an absolute viewpoint, or None for a relative one.
    Returns (4, 4) (absolute) or (F, 4, 4), one pose per frame of ``frames`` (relative).
    """
    if frozen_at is not None:
        return observer_poses(scene, observer, np.array([frozen_at]))[0]
    return observer_poses(scene, observer, frames)


def to_observer(points_world: np.ndarray, observer_to_world: np.ndarray) -> np.ndarray:
    """World points (E, F, 3) → observer FLU coordinates (E, F, 3); pose (4, 4) or (F, 4, 4)."""
    return to_observer_frame(points_world, observer_to_world)


def rotate_to_observer(vectors_world: np.ndarray, observer_to_world: np.ndarray) -> np.ndarray:
    """World directions (E, F, 3) → observer FLU components (E, F, 3): Rᵀ v, no translation."""
    rotation = np.asarray(observer_to_world)[..., :3, :3]
    if rotation.ndim == 2:
        return np.einsum("ji,efj->efi", rotation, vectors_world)
    return np.einsum("fji,efj->efi", rotation, vectors_world)
