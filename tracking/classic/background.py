"""How the background moves between two frames (step 1 of :mod:`recon4d.tracking.classic.tracker`).

Owns the two-view background models the motion test compares dense flow with:

- ``planar``: one or more homographies (a still camera, a camera that only turns, or a scene
  that is one plane or a few: every static pixel moves with one of them);
- ``epipolar``: a camera that translates over a 3D scene. The relative pose (R, t) comes from
  an essential matrix fitted to corner matches with RANSAC (focal length from a field-of-view
  prior, principal point at the centre) fitted with MAGSAC++; a static pixel p at inverse depth ρ (in units of the
  unknown baseline) then moves to π(K R K⁻¹ p + ρ K t), a one-parameter family along its
  epipolar line. Its flow gives ρ̂(p) (:func:`inverse_depth`); the background's inverse depth
  is a robust local median of ρ̂ (:func:`.local_depth.background_inverse_depth`), so depth varies across
  the scene (ground, walls, near and far) while a mover, which covers a minority of each
  window, stands out both across its epipolar line and along it (a mover walking along the
  line looks like a static point at a depth that is not the depth of what surrounds it).

:func:`fit_background` chooses: the homography when it explains the matches as well as the
essential matrix (the plane-plus-parallax test: little parallax left), else the epipolar
model. Over a short baseline a sideways step and a turn move the image alike, and the
essential matrix of a camera circling what it follows often takes the wrong one (the camera
said to step the other way without turning, the people it follows at infinity: 116° median
error on the synthetic follow scenes). :func:`~recon4d.tracking.classic.pose.resolve_pose`
(``pose_steps`` > 0; off by default) searches that valley on the dense flow. :func:`background_flow` gives the displacement a static scene would show at every
pixel, the quantity the moving-pixel test subtracts.

Limits: a static object whose depth differs from everything around it for a whole window
(a pole in front of a far wall) is explained only as well as the window median allows, so
under strong parallax its edges may look like motion; a mover that covers most of a window
(a close-up) is partly absorbed into the background depth (the second pass, which leaves the
first pass's movers out of the medians, recovers most of it; :func:`plane_bound`
keeps a mover that hides the ground or a wall from being taken for something beyond them).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.local_depth import DepthFit, block_medians, depth_fit

__all__ = [
    "BackgroundMotion",
    "aperture",
    "consistent_flow",
    "flow_at",
    "background_flow",
    "fit_background",
    "fit_background_planes",
    "homography_flow",
    "inside",
    "inverse_depth",
    "invert_background",
    "plane_bound",
    "prior_intrinsics",
    "relative_residual",
    "rotation_stretch",
    "sample_along_flow",
    "reprojection_error",
    "robust_threshold",
    "static_flow",
]


@dataclass(frozen=True, eq=False)
class BackgroundMotion:
    """The background's motion from frame a to frame b at the working resolution.

    kind:        "planar" (``planes``) or "epipolar" (``rotation``, ``translation``, ``intrinsics``).
    planes:      homographies (3, 3) a → b, dominant first; for "epipolar" the dominant plane
                 only (a summary of the camera motion for callers that want one number).
    rotation:    (3, 3) R of camera b relative to camera a (x_b = R x_a + t); None for planar.
    translation: (3,) unit t; None for planar.
    intrinsics:  (3, 3) K of both frames (pixel coordinates, x = column); None for planar.
    """

    kind: str
    planes: tuple
    rotation: np.ndarray | None = None
    translation: np.ndarray | None = None
    intrinsics: np.ndarray | None = None


def prior_intrinsics(size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """(3, 3) K with the horizontal field of view ``fov_deg`` across the long side of ``size`` = (w, h)."""
    width, height = size
    focal = max(width, height) / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def reprojection_error(homography: np.ndarray, points_a: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """(N,) distance between H·points_a and points_b, pixels."""
    mapped = cv2.perspectiveTransform(points_a.reshape(-1, 1, 2).astype(np.float64), homography)
    return np.linalg.norm(mapped.reshape(-1, 2) - points_b, axis=1)


def fit_background_planes(points_a: np.ndarray, points_b: np.ndarray, image_size: tuple[int, int],
                          config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[np.ndarray]:
    """Homographies (3, 3) mapping frame a to frame b for the background, dominant first.

    points_a, points_b: (N, 2) matched pixels. With fewer than 8 matches the background is
    taken as still (identity). Extra planes are fitted only when the dominant one moves
    (median displacement over 0.5 px: a still camera has no parallax) and are kept only
    when their inliers are ≥ ``plane_min_fraction`` of the matches and spread over ≥
    ``plane_min_spread`` of the image, so a compact moving object never becomes background.
    """
    if len(points_a) < 8:
        return [np.eye(3)]
    homography, _ = cv2.findHomography(points_a, points_b, cv2.RANSAC, config.ransac_px,
                                       maxIters=2000, confidence=0.995)
    if homography is None:
        return [np.eye(3)]
    planes = [homography]
    error = reprojection_error(homography, points_a, points_b)
    inliers = error < config.ransac_px
    if not inliers.any() or np.median(np.linalg.norm(points_b[inliers] - points_a[inliers], axis=1)) < 0.5:
        return planes
    width, height = image_size
    need = max(12, int(np.ceil(config.plane_min_fraction * len(points_a))))
    while len(planes) < config.max_planes:
        rest = np.flatnonzero(error >= config.ransac_px)
        if len(rest) < need:
            break
        candidate, _ = cv2.findHomography(points_a[rest], points_b[rest], cv2.RANSAC, config.ransac_px,
                                          maxIters=2000, confidence=0.995)
        if candidate is None:
            break
        candidate_error = reprojection_error(candidate, points_a, points_b)
        fits = rest[candidate_error[rest] < config.ransac_px]
        if len(fits) < need:
            break
        spread = np.prod(points_a[fits].max(axis=0) - points_a[fits].min(axis=0)) / (width * height)
        if spread < config.plane_min_spread:
            break
        planes.append(candidate)
        error = np.minimum(error, candidate_error)
    return planes


def rotation_stretch(homography: np.ndarray, intrinsics: np.ndarray) -> float:
    """How far the (3, 3) ``homography`` is from a pure rotation under the (3, 3) ``intrinsics``:
    σ_max / σ_min − 1 of K⁻¹ H K (0 for K R K⁻¹, whatever R).

    A camera that only turns moves every static pixel, near or far, by K R K⁻¹; the homography of
    a plane seen from a camera that also moves by t is K (R + t nᵀ / d) K⁻¹, stretched by about |t| / d.
    """
    singular = np.linalg.svd(np.linalg.inv(intrinsics) @ homography @ intrinsics, compute_uv=False)
    return float(singular[0] / max(singular[2], 1e-12) - 1.0)


def _relative_pose(points_a: np.ndarray, points_b: np.ndarray, intrinsics: np.ndarray, ransac_px: float):
    """(R, unit t, inlier mask) from an essential matrix fitted with MAGSAC++, or None."""
    inverse = np.linalg.inv(intrinsics)
    rays_a = points_a.astype(np.float64) @ inverse[:2, :2].T + inverse[:2, 2]
    rays_b = points_b.astype(np.float64) @ inverse[:2, :2].T + inverse[:2, 2]
    try:
        # MAGSAC++ (graded inliers, local optimisation): plain RANSAC's pose is off by
        # degrees under forward motion, which shows as false motion far from the centre.
        essential, mask = cv2.findEssentialMat(rays_a, rays_b, np.eye(3), cv2.USAC_MAGSAC, 0.999,
                                               ransac_px / intrinsics[0, 0])
        if essential is None or essential.shape[0] < 3:
            return None
        inliers = mask.ravel() > 0
        if inliers.sum() < 16:  # fit_background keeps the planar model then
            return None
        # recoverPose's own mask also drops points farther than 50 baselines (most of a
        # scene seen over a short baseline), so the RANSAC mask is the inlier set. It counts the
        # points in front of each of the four poses among the masked ones only, so it is given
        # the inliers alone (the same pose; it triangulated every point).
        _, rotation, translation, _ = cv2.recoverPose(essential[:3], rays_a[inliers], rays_b[inliers], np.eye(3))
    except cv2.error:
        return None
    return rotation, translation.ravel() / max(np.linalg.norm(translation), 1e-12), inliers


def fit_background(points_a: np.ndarray, points_b: np.ndarray, image_size: tuple[int, int],
                   config: ClassicTrackerConfig = ClassicTrackerConfig()) -> BackgroundMotion:
    """The background model of a frame pair from its corner matches (N, 2) a → b.

    Planar (:func:`fit_background_planes`) when there are fewer than 16 matches, when the
    dominant homography's inliers move less than ``still_px`` (a still camera), when its
    inliers are at least ``planar_inlier_ratio`` of the essential matrix's (a flat scene,
    where the essential matrix is degenerate and explains movers too), or when the
    essential matrix's own rotation (the homography K R K⁻¹) leaves its inliers within
    ``still_px`` (median): a camera that turns without moving.
    Otherwise epipolar, with the pose of :func:`_relative_pose` (threshold ``essential_px``)
    under :func:`prior_intrinsics`.
    """
    planes = fit_background_planes(points_a, points_b, image_size, config)
    if len(points_a) < 16:
        return BackgroundMotion("planar", tuple(planes))
    error = reprojection_error(planes[0], points_a, points_b)
    plane_inliers = error < config.ransac_px
    shift = np.linalg.norm(points_b - points_a, axis=1)
    if not plane_inliers.any() or np.median(shift[plane_inliers]) < config.still_px:
        return BackgroundMotion("planar", tuple(planes))
    intrinsics = prior_intrinsics(image_size, config.fov_deg)
    if config.turn_max_stretch > 0 and rotation_stretch(planes[0], intrinsics) < config.turn_max_stretch:
        return BackgroundMotion("planar", (planes[0],))  # a turn: one homography moves every static pixel
    pose = _relative_pose(points_a, points_b, intrinsics, config.essential_px)
    if pose is None:
        return BackgroundMotion("planar", tuple(planes))
    rotation, translation, pose_inliers = pose
    if pose_inliers.sum() < 16 or plane_inliers.sum() >= config.planar_inlier_ratio * pose_inliers.sum():
        return BackgroundMotion("planar", tuple(planes))
    infinite = intrinsics @ rotation @ np.linalg.inv(intrinsics)
    if np.median(reprojection_error(infinite, points_a[pose_inliers], points_b[pose_inliers])) < config.still_px:
        return BackgroundMotion("planar", tuple(planes))  # the camera turned but hardly moved
    return BackgroundMotion("epipolar", (planes[0],), rotation, translation, intrinsics)


def invert_background(model: BackgroundMotion) -> BackgroundMotion:
    """The model of the same pair from b to a."""
    planes = tuple(np.linalg.inv(plane) for plane in model.planes)
    if model.kind == "planar":
        return BackgroundMotion("planar", planes)
    rotation = model.rotation.T
    return BackgroundMotion("epipolar", planes, rotation, -rotation @ model.translation, model.intrinsics)


@functools.lru_cache(maxsize=8)
def _pixels(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float32 pixel coordinates x (1, w) and y (h, 1) for ``size`` = (w, h) (they broadcast to (h, w))."""
    width, height = size
    xs, ys = np.arange(width, dtype=np.float32)[None], np.arange(height, dtype=np.float32)[:, None]
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


@functools.lru_cache(maxsize=8)
def _pixel_grid(size: tuple[int, int]) -> np.ndarray:
    """Read-only (h, w, 2) float32 pixel coordinates (x, y) for ``size`` = (w, h)."""
    width, height = size
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), -1)
    grid.flags.writeable = False
    return grid


def flow_at(flow: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) ``flow`` (h, w, 2) at the nearest pixel of each of the (N, 2) x, y ``points`` (clipped to the frame)."""
    height, width = flow.shape[:2]
    at = np.clip(np.round(points).astype(int), 0, [width - 1, height - 1])
    return flow[at[:, 1], at[:, 0]]


def sample_along_flow(field: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(h, w, C) or (h, w) float32 ``field`` of another frame read at each pixel p at p + ``flow``(p),
    ``flow`` (h, w, 2) the flow to that frame (bilinear; the border replicated)."""
    where = flow.astype(np.float32, copy=False) + _pixel_grid((flow.shape[1], flow.shape[0]))
    sampled = cv2.remap(field.astype(np.float32, copy=False), where, None, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(field.shape)


def consistent_flow(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels whose flow a → b is undone by the flow b → a (not occluded in b).

    The usual forward–backward test: |f(p) + b(p + f(p))|² < 0.01 (|f|² + |b|²) + 0.5 px².
    Background that a mover covers in b fails it, so its residual is not counted as motion.
    """
    flow_ab = flow_ab.astype(np.float32, copy=False)
    back = sample_along_flow(flow_ba, flow_ab)
    mismatch = cv2.magnitude(flow_ab[..., 0] + back[..., 0], flow_ab[..., 1] + back[..., 1]) ** 2
    scale = cv2.magnitude(flow_ab[..., 0], flow_ab[..., 1]) ** 2 + cv2.magnitude(back[..., 0], back[..., 1]) ** 2
    return mismatch < 0.01 * scale + 0.5


def homography_flow(homography: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 displacement H·p − p of every pixel p = (x, y) for ``size`` = (w, h)."""
    width, height = size
    grid = _pixel_grid((width, height))
    mapped = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography.astype(np.float64))
    return mapped.reshape(height, width, 2) - grid


def epipolar_terms(model: BackgroundMotion, size: tuple[int, int]) -> tuple:
    """What :func:`static_flow` and :func:`inverse_depth` need for ``size`` = (w, h) under an epipolar model.

    (x (1, w), y (h, 1) float32 pixel coordinates, u_x, u_y, u_z (h, w) float32 planes of
    u = K R K⁻¹ p, v = K t (3,) float64): a static pixel at inverse depth ρ goes to u + ρ v.
    Float32 planes, not (h, w, 3) float64 stacks: these run for every pixel of every frame
    pair, and the coordinates (a few hundred pixels) keep ~1e-4 px in float32.
    """
    xs, ys = _pixels(size)
    intrinsics = model.intrinsics
    infinite = (intrinsics @ model.rotation @ np.linalg.inv(intrinsics)).astype(np.float32)
    planes = tuple(infinite[row, 0] * xs + (infinite[row, 1] * ys + infinite[row, 2]) for row in range(3))
    return (xs, ys, *planes, intrinsics @ model.translation)


def static_flow(model: BackgroundMotion, inverse_depth_map: np.ndarray, terms=None) -> np.ndarray:
    """(h, w, 2) float32 flow of a static scene at inverse depth (h, w) (baseline units) under an epipolar model.

    ``terms``: those of :func:`epipolar_terms` for this model and size, when already computed.
    """
    height, width = inverse_depth_map.shape
    xs, ys, ux, uy, uz, baseline = terms or epipolar_terms(model, (width, height))
    rho = inverse_depth_map.astype(np.float32, copy=False)
    denominator = uz + rho * np.float32(baseline[2])
    denominator[np.abs(denominator) < 1e-9] = 1e-9
    flow = np.empty((height, width, 2), np.float32)
    np.subtract((ux + rho * np.float32(baseline[0])) / denominator, xs, out=flow[..., 0])
    np.subtract((uy + rho * np.float32(baseline[1])) / denominator, ys, out=flow[..., 1])
    return flow


def inverse_depth(flow: np.ndarray, model: BackgroundMotion, terms=None) -> tuple[np.ndarray, np.ndarray]:
    """Inverse depth ρ̂ (h, w) that best explains ``flow`` (h, w, 2) as static, and its sensitivity.

    Least squares along the epipolar line: with u = K R K⁻¹ p, v = K t and q = p + flow,
    u_xy + ρ v_xy = q (u_z + ρ v_z) gives ρ̂ = a·b / a·a with a = v_xy − q v_z, b = q u_z − u_xy.
    ρ̂ is not clipped (a negative value is a point behind the camera: no static explanation).
    The sensitivity (h, w) is |a| / |u_z|, about the pixels the flow moves per unit of ρ:
    near the epipole it vanishes and ρ̂ is noise.
    """
    height, width = flow.shape[:2]
    xs, ys, ux, uy, uz, baseline = terms or epipolar_terms(model, (width, height))
    vx, vy, vz = (np.float32(value) for value in baseline)
    qx, qy = flow[..., 0] + xs, flow[..., 1] + ys
    ax, ay = vx - qx * vz, vy - qy * vz
    norm2 = ax * ax + ay * ay
    rho = (ax * (qx * uz - ux) + ay * (qy * uz - uy)) / np.maximum(norm2, np.float32(1e-12))
    sensitivity = np.sqrt(norm2) / np.maximum(np.abs(uz), np.float32(1e-9))
    return rho.astype(np.float32, copy=False), sensitivity.astype(np.float32, copy=False)


def plane_bound(rho: np.ndarray, usable: np.ndarray, block: int = 8, slack: float = 0.3, max_planes: int = 1,
                tolerance: float = 0.15, min_fraction: float = 0.15, hypotheses: int = 64,
                blocks: np.ndarray | None = None, columns: bool = False) -> np.ndarray | None:
    """(h, w) float32 least inverse depth anything static can show, from the scene's large planes; or None.

    Opaque surfaces hide what lies beyond them: along a ray that meets the ground (or a wall)
    nothing static is farther than it, ρ ≥ ρ_plane. The local background fit
    (:func:`.local_depth.background_inverse_depth`) cannot see this where a mover covers most of its
    window (a person walking with a following camera), so the scene's planes are fitted to
    the block medians of ``rho`` over ``usable`` pixels (:func:`.local_depth.block_medians`) as affine
    functions of the block position (an inverse-depth plane), by RANSAC: ``hypotheses``
    triples of blocks drawn with a fixed seed, inliers within ``tolerance`` × (|value| +
    the frame's median |ρ̂|) of the plane, the best refitted twice by least squares on its
    inliers; up to ``max_planes`` planes one after the other on the blocks left, each with at
    least ``min_fraction`` of the usable blocks. Each bounds the rows' spans between its
    leftmost and rightmost inliers (a mover that covers the plane where it stands lies
    inside; open space beyond the plane's extent does not), and with ``columns`` the columns' spans
    between its topmost and bottommost inliers too (a mover, or a group, as wide as the plane's gap in
    its rows: the ground below it and the ground or wall above it still enclose it), lowered by ``slack`` × (|ρ_plane|
    + median |ρ̂|) for the flow's noise; the bound is the largest (−inf where none reaches).
    No plane orientation is assumed (the ground need not come out nearer towards the bottom):
    a camera that circles the subject it follows can get a two-view pose with the depth order
    reversed, whose ρ̂ is then close to an affine function of the true inverse depth, so planes
    stay planes and, on such footage, the followed mover still shows beyond the surfaces
    around it. The slack is wide (0.3; 0.15 made more fragments of followed people into
    tracks of their own on the dev scenes). ``blocks``: :func:`block_medians` of ``rho`` over
    ``usable``, when already computed.
    """
    blocks = block_medians(rho, usable, block) if blocks is None else blocks
    rows, cols = blocks.shape
    finite = np.isfinite(blocks)
    if finite.sum() < 30 or max_planes < 1:
        return None
    row, col = np.nonzero(finite)
    values = blocks[finite].astype(np.float32)
    design = np.stack([np.ones(len(values)), col, row], axis=1).astype(np.float32)
    scale = float(np.median(np.abs(values)))
    allowed = np.float32(tolerance) * (np.abs(values) + np.float32(scale))
    need = max(12, min_fraction * len(values))
    rng = np.random.default_rng(0)
    height, width = rho.shape
    xs, ys = _pixels((width, height))
    centre = np.float32((block - 1) / 2.0)
    bound = None
    left = np.ones(len(values), bool)
    for _ in range(max_planes):
        if left.sum() < need:
            break
        pool = np.flatnonzero(left)
        picks = pool[rng.integers(0, len(pool), size=(hypotheses, 3))]
        systems = design[picks].astype(np.float64)
        good = np.abs(np.linalg.det(systems)) > 1e-6
        if not good.any():
            break
        coefficients = np.linalg.solve(systems[good], values[picks[good]][..., None].astype(np.float64))[..., 0]
        inliers = np.abs(coefficients.astype(np.float32) @ design.T - values) < allowed  # (n, N)
        inliers &= left
        chosen = inliers[int(np.argmax(inliers.sum(axis=1)))]
        for _ in range(2):
            plane = np.linalg.lstsq(design[chosen].astype(np.float64), values[chosen].astype(np.float64), rcond=None)[0]
            chosen = (np.abs(design @ plane.astype(np.float32) - values) < allowed) & left
        if chosen.sum() < need:
            break
        left &= ~chosen
        span = np.zeros((rows, cols), bool)
        for r in np.unique(row[chosen]):
            in_row = col[chosen & (row == r)]
            span[r, in_row.min():in_row.max() + 1] = True
        if columns:  # and the columns' spans: a mover as wide as the gap in its rows is still enclosed above and below
            for c in np.unique(col[chosen]):
                in_column = row[chosen & (col == c)]
                span[in_column.min():in_column.max() + 1, c] = True
        # the plane at every pixel, lowered by the slack: an (h, 1) plus a (1, w) term
        surface = (np.float32(plane[0]) - centre * np.float32((plane[1] + plane[2]) / block)
                   + np.float32(plane[2] / block) * ys) + np.float32(plane[1] / block) * xs
        surface -= np.float32(slack) * (np.abs(surface) + np.float32(scale))
        inside = np.zeros((height, width), bool)
        inside[:rows * block, :cols * block] = np.repeat(np.repeat(span, block, axis=0), block, axis=1)
        inside[rows * block:, :cols * block] = inside[rows * block - 1, :cols * block]
        inside[:, cols * block:] = inside[:, cols * block - 1:cols * block]
        surface[~inside] = -np.inf
        bound = surface if bound is None else np.maximum(bound, surface, out=bound)
    return bound


def background_flow(flow: np.ndarray, model: BackgroundMotion, usable: np.ndarray,
                    config: ClassicTrackerConfig = ClassicTrackerConfig()) -> np.ndarray:
    """(h, w, 2) float32 displacement a static scene would show at each pixel of frame a.

    Planar: at each pixel the plane whose displacement is nearest the flow. Epipolar: the
    static flow at the local background inverse depth (:func:`.local_depth.background_inverse_depth` over
    ``usable`` pixels with a sensitivity of at least 0.5 px, each pixel choosing among the
    fits around it by its 5 × 5 median ρ̂), computed twice: the second time
    without the pixels whose relative residual (:func:`relative_residual`) exceeds three
    times the frame's 90th percentile in the first, so movers do not pull the medians. With
    ``plane_bound_planes`` the depth is at least the scene planes' bound (:func:`plane_bound`).
    """
    height, width = flow.shape[:2]
    if model.kind == "planar":
        best, best_error = None, None
        for plane in model.planes:
            field = homography_flow(plane, (width, height))
            error = np.sum((flow - field) ** 2, axis=-1)
            if best is None:
                best, best_error = field, error
            else:
                closer = error < best_error
                best = np.where(closer[..., None], field, best)
                best_error = np.minimum(best_error, error)
        return best
    terms = epipolar_terms(model, (width, height))
    rho, sensitivity = inverse_depth(flow, model, terms)
    usable = usable & (sensitivity >= 0.5)
    smoothed = cv2.medianBlur(rho.astype(np.float32), 5)
    blocks = block_medians(rho, usable, config.depth_block_px)  # shared by the bound and the first pass
    bound = plane_bound(rho, usable, config.depth_block_px, max_planes=config.plane_bound_planes, blocks=blocks,
                        columns=config.plane_bound_columns) if config.plane_bound_planes else None

    def bounded(fit: DepthFit) -> np.ndarray:
        return fit.depth if bound is None else np.maximum(fit.depth, bound)

    first = depth_fit(rho, usable, config.depth_block_px, config.depth_window, smoothed, blocks)
    predicted = static_flow(model, bounded(first), terms)
    if usable.any() and config.depth_passes > 1:
        residual = relative_residual(flow, predicted, config.flow_error_fraction)
        outliers = residual > 3.0 * max(float(np.percentile(residual[usable], 90)), config.residual_floor_px)
        outliers &= usable
        # only what the outliers reach is fitted again (the second pass of a full fit, up to rounding)
        second = depth_fit(rho, usable & ~outliers, config.depth_block_px, config.depth_window, smoothed,
                           previous=first, changed=outliers)
        predicted = static_flow(model, bounded(second), terms)
    return predicted


def aperture(gray: np.ndarray, window: int, corner: float = 1.0) -> np.ndarray:
    """(h, w, 3) float32 quadratic form (A, B, C) per pixel of the (h, w) uint8 ``gray`` frame that measures
    a flow difference d there as √(A d_x² + 2 B d_x d_y + C d_y²) = √(r |d|² + (1 − r) (d · g)²): g the
    unit direction of the pixel's dominant gradient and r how far its texture is two-dimensional,
    min(1, λ_min / λ_max / ``corner``) of the structure tensor over a ``window`` × ``window`` box
    (OpenCV's cornerEigenValsAndVecs, Sobel 3 × 3): 1 at a corner, in texture whose eigenvalue ratio
    reaches ``corner`` and in blank areas (the whole difference), 0 on a straight edge (only its part
    across the edge).

    Along a straight edge (a lane marking, a roof line against the sky) the image does not change, so
    dense flow cannot measure motion in that direction (the aperture problem): its component there is
    filled in from elsewhere and may be off by pixels while the component across the edge is exact.
    """
    eigen = cv2.cornerEigenValsAndVecs(gray, int(window), 3)
    largest, smallest, gx, gy = (eigen[..., i] for i in range(4))
    ratio = np.maximum(smallest, 0.0) / np.maximum(largest, np.float32(1e-6)) / np.float32(corner)
    ratio = np.where(largest > 1e-6, np.minimum(ratio, 1.0), 1.0).astype(np.float32)
    edge = np.float32(1.0) - ratio
    form = np.empty((*gray.shape, 3), np.float32)
    form[..., 0] = ratio + edge * gx * gx
    form[..., 1] = edge * gx * gy
    form[..., 2] = ratio + edge * gy * gy
    return form


def relative_residual(flow: np.ndarray, predicted: np.ndarray, error_fraction: float,
                      edges: np.ndarray | None = None) -> np.ndarray:
    """(h, w) float32 |flow − predicted| / (1 + error_fraction · |predicted|).

    Dense flow errs in proportion to the displacement it measures (a fast-moving background
    blurs and stretches), so a residual is judged against the background's own displacement.
    With ``edges`` (:func:`aperture` of the frame, (h, w, 3)) the difference d is measured by that
    quadratic form, √(r · |d|² + (1 − r) (d · g)²): at a corner all of it, on a straight edge only its part
    across the edge (what the flow measures there).
    """
    flow, predicted = flow.astype(np.float32, copy=False), predicted.astype(np.float32, copy=False)
    if edges is not None:
        dx, dy = flow[..., 0] - predicted[..., 0], flow[..., 1] - predicted[..., 1]
        squared = edges[..., 0] * dx * dx
        squared += np.float32(2.0) * edges[..., 1] * dx * dy
        squared += edges[..., 2] * dy * dy
        residual = np.sqrt(np.maximum(squared, 0.0, out=squared), out=squared)
    else:
        residual = np.hypot(flow[..., 0] - predicted[..., 0], flow[..., 1] - predicted[..., 1])
    scale = np.hypot(predicted[..., 0], predicted[..., 1])
    scale *= np.float32(error_fraction)
    scale += np.float32(1.0)
    residual /= scale
    return residual


def robust_threshold(residual: np.ndarray, sigma: float, floor: float) -> float:
    """max(floor, median + sigma · 1.4826 · MAD) of a residual-flow magnitude map."""
    median = float(np.median(residual))
    mad = float(np.median(np.abs(residual - median)))
    return max(float(floor), median + sigma * 1.4826 * mad)


def inside(flow: np.ndarray, margin: float) -> np.ndarray:
    """(h, w) bool: pixels at least ``margin`` px from the border that ``flow`` keeps as far inside.

    Dense flow is unreliable where content enters or leaves the frame (the ground at the
    bottom of a walking camera's view moves fastest there), and nothing there can be
    compared with the other frame.
    """
    height, width = flow.shape[:2]
    xs = np.arange(width, dtype=np.float32)[None]
    ys = np.arange(height, dtype=np.float32)[:, None]
    ok = (xs >= margin) & (xs <= width - 1 - margin) & (ys >= margin) & (ys <= height - 1 - margin)
    xs, ys = xs + flow[..., 0], ys + flow[..., 1]
    return ok & (xs >= margin) & (xs <= width - 1 - margin) & (ys >= margin) & (ys <= height - 1 - margin)
