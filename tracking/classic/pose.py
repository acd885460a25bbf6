"""The camera pose of a frame pair along its rotation–translation valley (used by :mod:`~recon4d.tracking.classic.motion`).

Over a short baseline a sideways step of the camera and a turn about the axis across it move
the image alike (both shift it sideways; only perspective and depth differences tell them
apart), so the essential matrix of :func:`~recon4d.tracking.classic.background.fit_background`
can take the wrong one. A camera that circles the people it follows comes out stepping the
other way without turning, the people at infinity, and on the epipolar lines of that pose
they look like parallax (116° median translation error on the synthetic follow scenes of
``benchmarks/pose_error.py``). :func:`resolve_pose` tries poses along the valley
(:func:`pose_candidates`: the rotation turned about the axis across the translation, the
translation refitted to the flow), scores them on the dense flow, where the ground and walls
outnumber the corners of people moving with the camera (:func:`pose_scores`: the share of
samples on their epipolar lines, less the share the pose puts behind the camera: a static
scene is in front of it), and refines the essential matrix's pose and the best candidate
(:func:`refine_pose`: robust Gauss–Newton on Sampson distances) before it chooses.

Limits: the score counts a mover as explained when it happens to move along its epipolar
lines, and as behind the camera when its flow points the wrong way (a person still in the
image under a camera that turns), so a scene mostly covered by movers can still pick the
wrong valley; the refinement is local and a mover's matches bias it along the valley, which
is flat by nature.
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.tracking.classic.background import BackgroundMotion
from recon4d.tracking.classic.config import ClassicTrackerConfig

__all__ = [
    "pose_candidates",
    "pose_scores",
    "refine_pose",
    "resolve_pose",
]


def _axis_rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(C, 3, 3) rotations by ``angles`` (C,) radians about the unit ``axis`` (3,) (Rodrigues)."""
    x, y, z = axis
    skew = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    sines, cosines = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3) + sines * skew + (1.0 - cosines) * (skew @ skew)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """u × v over the last axis (3) of broadcasting arrays (np.cross is slow on many short vectors)."""
    return np.stack([u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1], u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2],
                     u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]], axis=-1)


def _sampson_distance(rotations: np.ndarray, translations: np.ndarray, turned: np.ndarray, rays_b: np.ndarray,
                      focal: float) -> np.ndarray:
    """(C, N) signed Sampson distance (pixels at ``focal``) of x_bᵀ E x_a = 0, E = [t]ₓ R, per pose.

    rotations (C, 3, 3), translations (C, 3); turned: (C, N, 3) R x_a; rays_b: (N, 3) x_b
    (normalised rays); E x_a = t × R x_a and Eᵀ x_b = Rᵀ (x_b × t).
    """
    ex = _cross(translations[:, None], turned)
    etx = _cross(rays_b[None], translations[:, None]) @ rotations  # rows: (Rᵀ (x_b × t))ᵀ
    algebraic = (ex * rays_b[None]).sum(axis=-1)
    gradient = ex[..., 0] ** 2 + ex[..., 1] ** 2 + etx[..., 0] ** 2 + etx[..., 1] ** 2
    return focal * algebraic / np.sqrt(np.maximum(gradient, 1e-30))


def _rays(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N, 3) normalised rays K⁻¹ (x, y, 1) of (N, 2) pixels."""
    inverse = np.linalg.inv(intrinsics)
    return np.c_[points, np.ones(len(points))] @ inverse.T


def pose_scores(rotations: np.ndarray, translations: np.ndarray, points_a: np.ndarray, points_b: np.ndarray,
                intrinsics: np.ndarray, inlier_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How well poses explain matched pixels as a static scene.

    rotations (C, 3, 3), translations (C, 3) (x_b = R x_a + t); points_a, points_b: (N, 2)
    matched pixels a → b; intrinsics: (3, 3) K. Returns the translations with the sign that
    puts most matches in front of the camera (C, 3), the share of matches within
    ``inlier_px`` Sampson distance (pixels) (C,), and the share of the matches whose inverse
    depth the flow measures (:func:`inverse_depth`'s sensitivity ≥ 0.5) put behind the
    camera (C,): a static scene lies in front of it, so a pose that puts much of the flow
    behind it is wrong.
    """
    rays_a, rays_b = _rays(points_a, intrinsics), _rays(points_b, intrinsics)
    turned = rays_a @ rotations.transpose(0, 2, 1)  # (C, N, 3) R x_a
    inliers = (np.abs(_sampson_distance(rotations, translations, turned, rays_b, intrinsics[0, 0])) < inlier_px).mean(axis=1)
    # inverse depth as inverse_depth measures it: u = K R x_a, v = K t, q = x_b in pixels;
    # ρ̂ has the sign of a · b with a = v_xy − q v_z, b = q u_z − u_xy; sensitivity |a| / |u_z|
    u = turned @ intrinsics.T
    v = translations @ intrinsics.T
    a = v[:, None, :2] - points_b[None] * v[:, None, 2:]
    b = points_b[None] * u[..., 2:] - u[..., :2]
    ahead = (a * b).sum(axis=-1)
    measured = np.linalg.norm(a, axis=-1) >= 0.5 * np.abs(u[..., 2])
    counted = np.maximum(measured.sum(axis=1), 1)
    behind = ((ahead < 0) & measured).sum(axis=1) / counted
    flip = behind > 0.5
    translations = np.where(flip[:, None], -translations, translations)
    behind = np.where(flip, ((ahead > 0) & measured).sum(axis=1) / counted, behind)
    behind[measured.sum(axis=1) == 0] = 1.0
    return translations, inliers, behind


def pose_candidates(rotation: np.ndarray, translation: np.ndarray, points_a: np.ndarray, points_b: np.ndarray,
                    intrinsics: np.ndarray, inlier_px: float, span_deg: float, steps: int) -> tuple:
    """Poses along the rotation–translation valley of a two-view fit, scored by :func:`pose_scores`.

    Over a short baseline a sideways translation and a turn about the axis across it move
    the image alike (both shift it sideways), so the essential matrix can pick the wrong
    pair: a camera circling the people it follows comes out translating the other way
    without turning, the people at infinity. The candidates rotate ``rotation`` (3, 3) by
    ``steps`` angles evenly over [−span_deg, span_deg] about ẑ × ``translation`` (3,) and fit
    each one's translation to the matches linearly (x_bᵀ [t]ₓ R x_a = 0 is t · (R x_a × x_b) =
    0: the least eigenvector, refitted once on the matches within ``inlier_px`` Sampson
    distance, pixels). points_a, points_b: (N, 2) matched pixels a → b; intrinsics: (3, 3) K.
    Returns rotations (C, 3, 3) and what :func:`pose_scores` returns for them.
    """
    axis = np.cross([0.0, 0.0, 1.0], translation)
    if np.linalg.norm(axis) < 1e-6:  # straight ahead: any axis across the view
        axis = np.array([0.0, 1.0, 0.0])
    axis = axis / np.linalg.norm(axis)
    angles = np.radians(np.linspace(-span_deg, span_deg, steps)) if steps > 1 else np.zeros(1)
    rotations = _axis_rotations(axis, angles) @ rotation
    rays_a, rays_b = _rays(points_a, intrinsics), _rays(points_b, intrinsics)
    turned = rays_a @ rotations.transpose(0, 2, 1)
    rows = _cross(turned, rays_b[None])  # t · row = 0 for a static match
    keep = np.ones(rows.shape[:2], bool)
    for _ in range(2):  # fit, then refit on the inliers (a mover pulls the least-squares direction)
        translations = np.linalg.eigh((rows * keep[..., None]).transpose(0, 2, 1) @ rows)[1][:, :, 0]
        keep = np.abs(_sampson_distance(rotations, translations, turned, rays_b, intrinsics[0, 0])) < inlier_px
    return (rotations, *pose_scores(rotations, translations, points_a, points_b, intrinsics, inlier_px))


def refine_pose(rotation: np.ndarray, translation: np.ndarray, points_a: np.ndarray, points_b: np.ndarray,
                intrinsics: np.ndarray, scale_px: float, iterations: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """(R, unit t) near (``rotation``, ``translation``) minimising a robust sum of Sampson distances.

    points_a, points_b: (N, 2) matched pixels a → b; intrinsics (3, 3) K. Gauss–Newton with
    Cauchy weights at ``scale_px`` pixels (a mover's matches, far off, hardly pull) over 5
    parameters (a rotation vector applied to ``rotation``, two steps of t across itself),
    ``iterations`` rounds with forward-difference derivatives. A local fit: it stays in the
    valley it starts in.
    """
    rays_a, rays_b = _rays(points_a, intrinsics), _rays(points_b, intrinsics)
    start = translation / np.linalg.norm(translation)
    side = np.cross(start, [1.0, 0.0, 0.0] if abs(start[0]) < 0.9 else [0.0, 1.0, 0.0])
    side /= np.linalg.norm(side)
    basis = np.stack([side, np.cross(start, side)])  # (2, 3) across t
    steps = np.concatenate([np.zeros((1, 5)), np.diag([1e-5] * 3 + [1e-4] * 2)])  # base and one per parameter
    focal = intrinsics[0, 0]

    def poses(parameters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rotations = np.stack([cv2.Rodrigues(p[:3])[0] @ rotation for p in parameters])
        translations = start + parameters[:, 3:] @ basis
        return rotations, translations / np.linalg.norm(translations, axis=1, keepdims=True)

    x = np.zeros(5)
    for _ in range(iterations):
        rotations, translations = poses(x + steps)
        distance = _sampson_distance(rotations, translations, rays_a @ rotations.transpose(0, 2, 1),
                                     rays_b, focal)  # (6, N)
        residual = distance[0]
        jacobian = (distance[1:] - residual) / np.diag(steps[1:])[:, None]  # (5, N)
        weight = 1.0 / (1.0 + (residual / scale_px) ** 2)
        normal = (jacobian * weight) @ jacobian.T
        update = np.linalg.solve(normal + 1e-9 * np.trace(normal) * np.eye(5) + 1e-12 * np.eye(5),
                                 -(jacobian * weight) @ residual)
        x = x + update
        if np.abs(update[:3]).max() < 1e-6 and np.abs(update[3:]).max() < 1e-5:
            break
    rotations, translations = poses(x[None])
    return rotations[0], translations[0]


def resolve_pose(model: BackgroundMotion, flow: np.ndarray, usable: np.ndarray,
                 config: ClassicTrackerConfig = ClassicTrackerConfig()) -> BackgroundMotion:
    """The epipolar ``model`` with the pose along its rotation–translation valley that the dense flow supports best.

    flow: (h, w, 2) a → b; usable: (h, w) bool pixels whose flow is trusted (forward–backward
    consistent). Samples the flow every ``pose_grid_px`` pixels and scores the essential
    matrix's own pose and its :func:`pose_candidates` (``pose_steps`` over ±``pose_span_deg``,
    then 9 within one step of the best) by their share of samples within ``essential_px``
    minus ``pose_behind_weight`` × their share behind the camera; the essential matrix's pose
    stays unless another scores ``pose_margin`` better. Dense flow covers the ground and
    walls where corners are few, and people moving with the camera (whose corners can
    outvote the background's) are a minority of it. A planar model, ``pose_steps`` 0 or
    fewer than 50 samples return ``model``.
    """
    if model.kind != "epipolar" or config.pose_steps < 1:
        return model
    step = config.pose_grid_px
    ys, xs = np.nonzero(usable[step // 2::step, step // 2::step])
    if len(ys) < 50:
        return model
    ys, xs = ys * step + step // 2, xs * step + step // 2
    points_a = np.stack([xs, ys], axis=1).astype(np.float64)
    points_b = points_a + flow[ys, xs].astype(np.float64)
    weight = config.pose_behind_weight

    def score(rotation: np.ndarray, translation: np.ndarray) -> tuple[float, np.ndarray]:
        signed, inliers, behind = pose_scores(rotation[None], translation[None], points_a, points_b,
                                              model.intrinsics, config.essential_px)
        return float(inliers[0] - weight * behind[0]), signed[0]

    rotation = model.rotation
    for span, steps in ((config.pose_span_deg, config.pose_steps),
                        (config.pose_span_deg / max(config.pose_steps - 1, 1), 9)):
        rotations, translations, inliers, behind = pose_candidates(
            rotation, model.translation, points_a, points_b, model.intrinsics, config.essential_px, span, steps)
        best = int(np.argmax(inliers - weight * behind))
        rotation, translation = rotations[best], translations[best]
    scale = config.essential_px / 2.0
    own_rotation, own_translation = refine_pose(model.rotation, model.translation, points_a, points_b,
                                                model.intrinsics, scale)
    own, own_translation = score(own_rotation, own_translation)
    rotation, translation = refine_pose(rotation, translation, points_a, points_b, model.intrinsics, scale)
    other, translation = score(rotation, translation)
    if other < own + config.pose_margin:
        rotation, translation = own_rotation, own_translation
    return BackgroundMotion("epipolar", model.planes, rotation, translation, model.intrinsics)
