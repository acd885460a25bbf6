"""Coordinate frames of recon4d (DESIGN §2): OpenCV camera, FLU observer, agent, world.

Frames, once:

- camera: OpenCV, x right, y down, z forward (metres of the reconstruction);
- FLU: x forward, y left, z up; from OpenCV camera coordinates (x, y, z)_FLU = (z, −x, −y);
- agent: FLU centred on the agent's 3D centre, axes from its (azimuth, polar, rotation)
  orientation in degrees, relative to the camera of the frame it was seen in;
- world: whatever the reconstruction's ``cam_to_world`` poses define;
- observer: an FLU frame given by ``observer_to_world`` (4, 4), whose rotation columns are
  the observer's forward, left and up axes in world coordinates and whose translation is
  its origin. The camera and agents are observers (``camera_observer_pose``,
  ``agent_observer_pose``); ``to_observer_frame`` expresses world points in one.

Every function is vectorised over leading dimensions and computes in float64. The DSR
reference vectors (``dsr_reference_vectors.json``: ``camera_self_coord_trans``,
``camera_agent_coord_trans``, ``agent_camera_coord_trans``,
``camera_mutual_coordinate_transform``) pin the conventions; the tests replay them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from recon4d.checks import check_shape
from recon4d.errors import GeometryError, ShapeError

__all__ = [
    "OPENCV_TO_FLU",
    "FLU_TO_OPENCV",
    "FACING_CAMERA_ROTATION",
    "opencv_to_flu",
    "flu_to_opencv",
    "invert_rigid",
    "camera_to_camera",
    "orientation_to_rotation",
    "rotation_to_orientation",
    "forward_axis",
    "camera_to_agent",
    "agent_to_camera",
    "camera_observer_pose",
    "agent_observer_pose",
    "to_observer_frame",
    "umeyama_sim3",
]


def _constant(rows) -> np.ndarray:
    array = np.array(rows, dtype=np.float64)
    array.setflags(write=False)
    return array


OPENCV_TO_FLU = _constant([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
"""(3, 3): ``p_flu = OPENCV_TO_FLU @ p_opencv``, i.e. (x, y, z) → (z, −x, −y)."""

FLU_TO_OPENCV = _constant(OPENCV_TO_FLU.T)
"""(3, 3): inverse (= transpose) of ``OPENCV_TO_FLU``; its columns are the FLU forward, left
and up axes written in OpenCV camera coordinates."""

FACING_CAMERA_ROTATION = _constant([[0, 1, 0], [0, 0, -1], [-1, 0, 0]])
"""(3, 3): R_cam←agent of orientation (0, 0, 0), an agent facing the camera (DESIGN §2 M0):
forward = −z (towards the camera), left = +x (image right), up = −y."""

# Below this cos(polar) the azimuth and rotation axes coincide (gimbal lock). The generic
# branch stays accurate to ~1e-15 down to here; the lock branch errs by about cos(polar).
_GIMBAL_LOCK_COS = 1e-12


def _checked(name: str, array, tail: Sequence[int]) -> np.ndarray:
    """Return ``array`` as float64 after checking it has shape ``(..., *tail)``."""
    array = np.asarray(array)
    if array.ndim < len(tail):
        want = "(..., " + ", ".join(str(size) for size in tail) + ")"
        raise ShapeError(
            f"{name} must have shape {want} but has shape {array.shape}; "
            f"pass an array whose last {len(tail)} dims are {tuple(tail)}."
        )
    check_shape(name, array, (None,) * (array.ndim - len(tail)) + tuple(tail), dtype_kind="fiu")
    return array.astype(np.float64, copy=False)


def _broadcast_leading(**arrays: tuple[np.ndarray, int]) -> tuple[int, ...]:
    """Broadcast the leading dims of named arrays (each given with its number of tail dims)."""
    leading = {name: array.shape[: array.ndim - n_tail] for name, (array, n_tail) in arrays.items()}
    try:
        return np.broadcast_shapes(*leading.values())
    except ValueError:
        listed = ", ".join(f"{name} {shape}" for name, shape in leading.items())
        raise ShapeError(
            f"leading dims do not broadcast: {listed}; give them equal sizes or size 1."
        ) from None


def _apply_rigid(rotation: np.ndarray, translation: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``rotation @ p + translation`` with broadcasting: (..., 3, 3), (..., 3), (..., 3)."""
    return np.einsum("...ij,...j->...i", rotation, points) + translation


def _apply_rigid_inverse(rotation: np.ndarray, translation: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``rotationᵀ (p − translation)`` with broadcasting, without forming the inverse."""
    return np.einsum("...ji,...j->...i", rotation, points - translation)


def opencv_to_flu(points: np.ndarray) -> np.ndarray:
    """OpenCV camera coordinates → FLU coordinates of the same camera.

    points: (..., 3) x right, y down, z forward. Returns (..., 3) float64 forward, left, up:
    (x, y, z) → (z, −x, −y).
    """
    points = _checked("points", points, (3,))
    return np.stack([points[..., 2], -points[..., 0], -points[..., 1]], axis=-1)


def flu_to_opencv(points: np.ndarray) -> np.ndarray:
    """FLU coordinates → OpenCV camera coordinates; inverse of :func:`opencv_to_flu`.

    points: (..., 3) forward, left, up. Returns (..., 3) float64 x right, y down, z forward:
    (f, l, u) → (−l, −u, f).
    """
    points = _checked("points", points, (3,))
    return np.stack([-points[..., 1], -points[..., 2], points[..., 0]], axis=-1)


def invert_rigid(transform: np.ndarray) -> np.ndarray:
    """Inverse of rigid 4×4 transforms: [R t; 0 1]⁻¹ = [Rᵀ −Rᵀt; 0 1].

    transform: (..., 4, 4) with an orthonormal rotation block (e.g. ``cam_to_world``).
    Returns (..., 4, 4) float64 (e.g. ``world_to_cam``). The last row is written as
    (0, 0, 0, 1) whatever it was.
    """
    transform = _checked("transform", transform, (4, 4))
    rotation_t = np.swapaxes(transform[..., :3, :3], -1, -2)
    inverse = np.zeros(transform.shape, dtype=np.float64)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation_t, transform[..., :3, 3])
    inverse[..., 3, 3] = 1.0
    return inverse


def camera_to_camera(
    points: np.ndarray, cam1_to_world: np.ndarray, cam2_to_world: np.ndarray
) -> np.ndarray:
    """Camera-1 OpenCV coordinates → camera-2 OpenCV coordinates (no FLU change).

    points: (..., 3) in camera 1. cam1_to_world, cam2_to_world: (4, 4) rigid poses, or
    (..., 4, 4) stacks that broadcast with the leading dims of ``points``.
    Returns (..., 3) float64 = world_to_cam2 · cam1_to_world · [p; 1].
    """
    points = _checked("points", points, (3,))
    cam1_to_world = _checked("cam1_to_world", cam1_to_world, (4, 4))
    cam2_to_world = _checked("cam2_to_world", cam2_to_world, (4, 4))
    _broadcast_leading(points=(points, 1), cam1_to_world=(cam1_to_world, 2), cam2_to_world=(cam2_to_world, 2))
    cam1_to_cam2 = invert_rigid(cam2_to_world) @ cam1_to_world
    return _apply_rigid(cam1_to_cam2[..., :3, :3], cam1_to_cam2[..., :3, 3], points)


def _euler_facing_frame(angles_rad: np.ndarray) -> np.ndarray:
    """Rx(−rotation) · Ry(polar) · Rz(−azimuth) as (..., 3, 3) from (..., 3) radians.

    Closed form of the product (a = −azimuth, b = polar, c = −rotation):
        [[ cb·ca,              −cb·sa,              sb   ],
         [ cc·sa + sc·sb·ca,    cc·ca − sc·sb·sa,   −sc·cb],
         [ sc·sa − cc·sb·ca,    sc·ca + cc·sb·sa,    cc·cb]]
    """
    a = -angles_rad[..., 0]
    b = angles_rad[..., 1]
    c = -angles_rad[..., 2]
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rows = [
        [cb * ca, -cb * sa, sb],
        [cc * sa + sc * sb * ca, cc * ca - sc * sb * sa, -sc * cb],
        [sc * sa - cc * sb * ca, sc * ca + cc * sb * sa, cc * cb],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def orientation_to_rotation(angles_deg: np.ndarray) -> np.ndarray:
    """Agent orientation → R_cam←agent (DESIGN §2).

    angles_deg: (..., 3) azimuth, polar, rotation in degrees, relative to the camera.
    Returns (..., 3, 3) float64 whose columns are the agent's forward, left and up axes in
    OpenCV camera coordinates: R = M0 · Rx(−rotation) · Ry(polar) · Rz(−azimuth), i.e.
    ``M0 @ scipy Rotation.from_euler("zyx", [-az, polar, -rot], degrees=True)``. Azimuth 0
    faces the camera, 90 image-left, 180 away, 270 image-right; polar > 0 tilts the forward
    axis down in the image. Read left to right the factors are intrinsic turns of the
    facing-camera frame M0, so azimuth turns about the agent's own up axis, while rotation
    turns the whole agent in the image plane: about the camera's optical axis, +z, so +90
    takes image-left to image-up (clockwise as displayed).
    """
    angles_deg = _checked("angles_deg", angles_deg, (3,))
    return FACING_CAMERA_ROTATION @ _euler_facing_frame(np.deg2rad(angles_deg))


def _wrap_signed_deg(angle_deg: np.ndarray) -> np.ndarray:
    """Wrap degrees into (−180, 180]."""
    return 180.0 - np.mod(180.0 - angle_deg, 360.0)


def _wrap_positive_deg(angle_deg: np.ndarray) -> np.ndarray:
    """Wrap degrees into [0, 360); np.mod can round a tiny negative angle up to 360."""
    wrapped = np.mod(angle_deg, 360.0)
    return np.where(wrapped >= 360.0, 0.0, wrapped)


def rotation_to_orientation(rotation: np.ndarray) -> np.ndarray:
    """R_cam←agent → (azimuth, polar, rotation) degrees; inverse of :func:`orientation_to_rotation`.

    rotation: (..., 3, 3) proper rotations (columns = agent forward/left/up in OpenCV camera
    coordinates). Returns (..., 3) float64 with azimuth in [0, 360), polar in [−90, 90],
    rotation in (−180, 180]. Angles with |polar| > 90 describe the same rotation as
    (azimuth + 180, ±180 − polar, rotation + 180), which is what comes back.

    Gimbal lock: at polar = ±90 the forward axis is the camera's ∓y (image up/down) and
    azimuth and rotation turn about the same axis, so only azimuth + rotation (polar = +90)
    or azimuth − rotation (polar = −90) is defined; the result then has rotation = 0 and
    carries the whole turn in azimuth.
    """
    rotation = _checked("rotation", rotation, (3, 3))
    # Undo M0: euler = Rx(c)·Ry(b)·Rz(a) with a = −azimuth, b = polar, c = −rotation.
    euler = FACING_CAMERA_ROTATION.T @ rotation
    cos_b = np.hypot(euler[..., 0, 0], euler[..., 0, 1])
    b = np.arctan2(euler[..., 0, 2], cos_b)
    locked = cos_b < _GIMBAL_LOCK_COS
    # Generic: a from the first row; c from rows 1-2 against Rz(a), which stays consistent
    # with the matrix even where a is poorly conditioned (cos b small).
    a = np.arctan2(-euler[..., 0, 1], euler[..., 0, 0])
    sa, ca = np.sin(a), np.cos(a)
    cos_c = euler[..., 1, 0] * sa + euler[..., 1, 1] * ca
    sin_c = euler[..., 2, 0] * sa + euler[..., 2, 1] * ca
    c = np.arctan2(sin_c, cos_c)
    # Locked: c = 0 makes the second row (sin a, cos a, 0).
    a = np.where(locked, np.arctan2(euler[..., 1, 0], euler[..., 1, 1]), a)
    c = np.where(locked, 0.0, c)
    azimuth = _wrap_positive_deg(-np.rad2deg(a))
    polar = np.rad2deg(b)
    roll = _wrap_signed_deg(-np.rad2deg(c))
    return np.stack([azimuth, polar, roll], axis=-1)


def forward_axis(angles_deg: np.ndarray) -> np.ndarray:
    """Agent forward axis (unit) in OpenCV camera coordinates, the first column of R_cam←agent.

    angles_deg: (..., 3) azimuth, polar, rotation. Returns (..., 3) float64; e.g. (0, 30, 0)
    → (0, 0.5, −0.866), (90, 0, 0) → (−1, 0, 0), (180, 0, 0) → (0, 0, 1).
    """
    return orientation_to_rotation(angles_deg)[..., :, 0]


def camera_to_agent(points: np.ndarray, angles_deg: np.ndarray, center: np.ndarray) -> np.ndarray:
    """OpenCV camera coordinates → agent FLU coordinates.

    points: (..., 3) camera frame. angles_deg: (3,) agent orientation relative to this
    camera; center: (3,) agent centre in camera coordinates. Both may also carry leading
    dims that broadcast with those of ``points``. Returns (..., 3) float64 = Rᵀ(p − center)
    with R = R_cam←agent.
    """
    points = _checked("points", points, (3,))
    angles_deg = _checked("angles_deg", angles_deg, (3,))
    center = _checked("center", center, (3,))
    _broadcast_leading(points=(points, 1), angles_deg=(angles_deg, 1), center=(center, 1))
    return _apply_rigid_inverse(orientation_to_rotation(angles_deg), center, points)


def agent_to_camera(points_agent: np.ndarray, angles_deg: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Agent FLU coordinates → OpenCV camera coordinates; inverse of :func:`camera_to_agent`.

    points_agent: (..., 3) agent frame. angles_deg: (3,), center: (3,) camera frame (or
    broadcastable stacks). Returns (..., 3) float64 = R p + center with R = R_cam←agent.
    """
    points_agent = _checked("points_agent", points_agent, (3,))
    angles_deg = _checked("angles_deg", angles_deg, (3,))
    center = _checked("center", center, (3,))
    _broadcast_leading(points_agent=(points_agent, 1), angles_deg=(angles_deg, 1), center=(center, 1))
    return _apply_rigid(orientation_to_rotation(angles_deg), center, points_agent)


def camera_observer_pose(cam_to_world: np.ndarray) -> np.ndarray:
    """Observer pose of the camera: ``cam_to_world`` with its axes relabelled to FLU.

    cam_to_world: (..., 4, 4) OpenCV camera → world. Returns (..., 4, 4) float64
    ``observer_to_world`` whose rotation columns are the camera's forward (+z), left (−x)
    and up (−y) axes in world coordinates; the translation (camera centre) is unchanged.
    """
    cam_to_world = _checked("cam_to_world", cam_to_world, (4, 4))
    observer_to_world = cam_to_world.copy()
    observer_to_world[..., :3, :3] = cam_to_world[..., :3, :3] @ FLU_TO_OPENCV
    return observer_to_world


def agent_observer_pose(
    cam_to_world: np.ndarray, center_world: np.ndarray, angles_deg: np.ndarray
) -> np.ndarray:
    """Observer pose of an agent: R_world←agent = R_world←cam · R_cam←agent, origin at its centre.

    cam_to_world: (..., 4, 4) pose of the camera of the frame the orientation was seen in.
    center_world: (..., 3) agent centre in world coordinates. angles_deg: (..., 3) azimuth,
    polar, rotation relative to that camera. Leading dims broadcast (e.g. (T, 4, 4) with
    (K, T, 3)). Returns (..., 4, 4) float64 ``observer_to_world``; NaN centre or angles
    (agent not visible) give NaN poses.
    """
    cam_to_world = _checked("cam_to_world", cam_to_world, (4, 4))
    center_world = _checked("center_world", center_world, (3,))
    angles_deg = _checked("angles_deg", angles_deg, (3,))
    leading = _broadcast_leading(
        cam_to_world=(cam_to_world, 2), center_world=(center_world, 1), angles_deg=(angles_deg, 1)
    )
    observer_to_world = np.zeros(leading + (4, 4), dtype=np.float64)
    observer_to_world[..., :3, :3] = cam_to_world[..., :3, :3] @ orientation_to_rotation(angles_deg)
    observer_to_world[..., :3, 3] = center_world
    observer_to_world[..., 3, 3] = 1.0
    return observer_to_world


def _check_observer_args(points_world, observer_to_world) -> tuple[np.ndarray, np.ndarray]:
    points_world = np.asarray(points_world)
    dims = check_shape("points_world", points_world, ("K", "T", 3), dtype_kind="fiu")
    observer_to_world = np.asarray(observer_to_world)
    if observer_to_world.ndim == 2:
        check_shape("observer_to_world", observer_to_world, (4, 4), dtype_kind="fiu")
    elif observer_to_world.ndim == 3:
        check_shape("observer_to_world", observer_to_world, ("T", 4, 4), dims, dtype_kind="fiu")
    else:
        raise ShapeError(
            f"observer_to_world must have shape (4, 4) (absolute viewpoint) or (T, 4, 4) "
            f"(relative viewpoint, T = {dims['T']}) but has shape {observer_to_world.shape}."
        )
    return points_world.astype(np.float64, copy=False), observer_to_world.astype(np.float64, copy=False)


def _to_observer_frame_numpy(points_world: np.ndarray, observer_to_world: np.ndarray) -> np.ndarray:
    """numpy reference of :func:`to_observer_frame` (same arguments, same result)."""
    points_world, observer_to_world = _check_observer_args(points_world, observer_to_world)
    # (4, 4) broadcasts over (K, T); (T, 4, 4) lines up with the T axis of (K, T, 3).
    return _apply_rigid_inverse(observer_to_world[..., :3, :3], observer_to_world[..., :3, 3], points_world)


def to_observer_frame(points_world: np.ndarray, observer_to_world: np.ndarray) -> np.ndarray:
    """World points → FLU coordinates of an observer (DESIGN §2 viewpoints).

    points_world: (K, T, 3) trajectories of K targets over T frames in world coordinates;
    NaN (target not visible) stays NaN.
    observer_to_world: (4, 4) for an absolute viewpoint (the observer frozen at one time
    t_v, which may lie outside these T frames), or (T, 4, 4) for a relative viewpoint (the
    observer re-evaluated at every frame). Build it with :func:`camera_observer_pose` or
    :func:`agent_observer_pose`.
    Returns (K, T, 3) float64 forward, left, up coordinates: Rᵀ(x − t) per frame, each
    component summed as R₀ᵢd₀ + R₁ᵢd₁ + R₂ᵢd₂ in that order (``_to_observer_frame_numpy``
    is the einsum reference). Plain numpy: callers pass a few targets over tens of frames,
    where a compiled or threaded kernel costs more to call than the arithmetic.
    """
    points_world, observer_to_world = _check_observer_args(points_world, observer_to_world)
    rotation = observer_to_world[..., :3, :3]
    offset = points_world - observer_to_world[..., :3, 3]  # (K, T, 3)
    # (4, 4): rows broadcast over (K, T); (T, 4, 4): rows line up with the T axis.
    return (offset[..., 0:1] * rotation[..., 0, :] + offset[..., 1:2] * rotation[..., 1, :]
            + offset[..., 2:3] * rotation[..., 2, :])


def umeyama_sim3(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity with dst ≈ scale · R @ src + t (Umeyama 1991).

    src, dst: (..., N, 3), N ≥ 3 non-collinear points, finite. Returns scale (...),
    R (..., 3, 3) a proper rotation, t (..., 3), all float64; leading dims are batched.
    Raises :class:`~recon4d.errors.GeometryError` instead of returning non-finite values when
    there are fewer than 3 pairs, a value is not finite, or either set has (numerically) zero
    spread (all its points at one place: no scale or rotation follows).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim < 2 or src.shape[-1] != 3:
        raise ShapeError(f"umeyama_sim3 needs src and dst of one shape (..., N, 3), got {src.shape} and {dst.shape}.")
    if src.shape[-2] < 3:
        raise GeometryError(f"umeyama_sim3 needs at least 3 point pairs to fit a similarity, got {src.shape[-2]}.")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise GeometryError("umeyama_sim3 got non-finite points; drop the NaN/inf pairs first.")
    for name, points in (("src", src), ("dst", dst)):
        spread = np.sqrt(((points - points.mean(axis=-2, keepdims=True)) ** 2).sum(axis=(-1, -2)) / points.shape[-2])
        size = np.abs(points).max(axis=(-1, -2))
        if np.any(spread <= 1e-12 * np.maximum(size, 1.0)):
            raise GeometryError(f"umeyama_sim3: the {name} points all lie at one place (zero variance), so no "
                                "scale or rotation follows from them; give points that are spread out.")
    mean_src, mean_dst = src.mean(axis=-2), dst.mean(axis=-2)
    src_c, dst_c = src - mean_src[..., None, :], dst - mean_dst[..., None, :]
    cov = np.einsum("...ni,...nj->...ij", dst_c, src_c) / src.shape[-2]
    u, sv, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    fix = np.ones(sv.shape)
    fix[..., 2] = np.where(sign == 0, 1.0, sign)
    rotation = u @ (fix[..., :, None] * vt)
    var_src = (src_c**2).sum(axis=(-1, -2)) / src.shape[-2]
    scale = (sv * fix).sum(axis=-1) / var_src
    translation = mean_dst - scale[..., None] * np.einsum("...ij,...j->...i", rotation, mean_src)
    return scale, rotation, translation
