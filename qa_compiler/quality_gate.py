"""The quality gate: questions are compiled only from objects and spans a scene's quality record trusts.

A scene made by ``recon4d process`` carries a quality record (:class:`~recon4d.types.ObjectQuality`,
:class:`~recon4d.types.CameraQuality`). :func:`apply_quality_gate` returns a *gated view* of the
scene in which everything the gate refuses is unknown (NaN), so the sampler never draws it:

1. **Camera frames** whose pose is not ok (lost, restarted at a guessed scale, too few tracks
   agreeing) lose their pose, and every object loses those frames too (its world position
   rests on that pose). So do frames whose pose fewer than ``min_pose_inliers`` of the
   background tracks agree with (:data:`recon4d.quality.MIN_POSE_INLIERS`): the record may still
   use such a pose, but a label (a camera speed, a direction in its frame) does not rest on it.
2. **Objects** whose score is below ``min_quality`` are dropped whole.
3. **Object frames** not ok in the record (outliers that could not be repaired, breaks,
   suspected identity switches, implausible size, steps over the speed or depth-jump limit)
   are dropped, so a question interval, which needs its targets in every frame, never spans
   them.
4. **Geometry re-check**: on what is left, any step between consecutive kept frames faster
   than the category's speed limit (:func:`recon4d.quality.motion_limits`) or changing its
   distance from the camera (the depth along its viewing ray; a turning camera leaves it
   alone) by more than ``max_depth_jump_m`` drops the later frame — the gate does not
   rely on the record alone (a store edited after processing, another pipeline's record).
   Skipped when the scene's unit or scale source is arbitrary (limits in metres mean nothing there).

Scenes without a quality record (ground truth, version 1 stores) pass ungated and are counted.
Every refused object, frame and camera frame is counted by reason in :class:`GateReport`.

5. **Stable answers** (:func:`noisy_scenes`, used by the compiler per question): the record
   says how noisy each object's lifted centres were (``noise_m``) and how hard they were
   smoothed (``smooth_lambda_s3``); the error a stored trajectory keeps is that noise passed
   through the same smoother (:func:`recon4d.quality.smoothed_noise`). A question is kept only
   if its answer is the same on most of a few scenes with such errors added — a speed that is
   "nearly constant" only by 5 % is not a label. A camera the record does not fully trust
   (its score below 1: untrusted or restarted frames, a scale that is a guess) gets white
   noise of its own measured jitter on its positions (:func:`recon4d.quality.jitter_m` over
   its trusted frames: a pose chain that wobbles from frame to frame makes its own speed and
   direction answers unstable); a fully trusted camera is taken as exact, since its jitter
   is then mostly the real bob of a hand or a walk, which the answers rightly contain — unless
   its poses are a compromise: when the median share of background tracks agreeing with the
   kept poses is below ``exact_camera_inliers`` (:data:`recon4d.quality.EXACT_CAMERA_INLIERS`,
   a following camera whose subject was left out of the pose), part of that jitter is pose
   error, and the camera gets it as noise too (:func:`camera_taken_as_exact`; such scenes are
   counted as ``camera_jitter_checked``, the answers it unsettles as ``unstable_answer``).
   Camera rotations are not perturbed. Two doubts about an object's depth, from evidence its own
   estimate carries, move it along its viewing ray in those scenes too (monocular depth errs
   there): where depth × box height / focal, the same for a rigid object, strays from the track's
   own (:func:`size_depth_offset`), by a random share of the depth that would set it right; and
   where the depth was held or bridged by a line (:func:`depth_unmeasured`: not measured), by a
   drift as fast as the object moves across the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from recon4d.quality import (
    EXACT_CAMERA_INLIERS,
    MAX_DEPTH_JUMP_M,
    MIN_POSE_INLIERS,
    jitter_m,
    motion_limits,
    smoothed_noise,
)
from recon4d.types import Scene

GATE_REASONS = {
    "scene_without_quality_record": "the scene has no quality record (ground truth, an old store): not gated",
    "object_below_min_quality": "objects whose quality score is below min_quality (dropped whole)",
    "object_frames_of_dropped_objects": "visible frames of the objects dropped whole",
    "object_frames_failed_checks": "visible frames of kept objects the quality record marks not ok",
    "object_frames_untrusted_camera": "visible frames of kept objects where the camera pose is not trusted",
    "object_frames_over_limits": "frames dropped by the gate's own speed / depth-jump check",
    "camera_frames_untrusted": "frames whose camera pose is not trusted",
    "camera_frames_few_inliers": "frames whose pose too few background tracks agree with (min_pose_inliers)",
    "camera_jitter_checked": "scenes whose trusted camera was not taken as exact: the median share of background "
                             "tracks agreeing with its poses is below exact_camera_inliers, so its answers must "
                             "hold under its own jitter (those that do not count as unstable_answer)",
}
"""Reason → meaning of every count in a gate report."""
CHECKS = frozenset({"camera_jitter_checked"})
"""Reasons that count what the gate checks harder rather than what it refuses."""


@dataclass(frozen=True)
class GateReport:
    """What the gate refused, by reason (keys of ``GATE_REASONS``), and what it kept.

    counts:        reason → number of scenes, objects or frames refused for it.
    objects:       objects looked at (in gated scenes).
    objects_kept:  objects with at least one kept frame.
    object_frames: visible object frames looked at.
    object_frames_kept: visible object frames kept.
    """

    counts: dict = field(default_factory=dict)
    objects: int = 0
    objects_kept: int = 0
    object_frames: int = 0
    object_frames_kept: int = 0

    @classmethod
    def merge(cls, reports) -> "GateReport":
        reports = list(reports)
        counts: dict[str, int] = {}
        for report in reports:
            for reason, n in report.counts.items():
                counts[reason] = counts.get(reason, 0) + int(n)
        return cls(counts=counts, objects=sum(r.objects for r in reports),
                   objects_kept=sum(r.objects_kept for r in reports),
                   object_frames=sum(r.object_frames for r in reports),
                   object_frames_kept=sum(r.object_frames_kept for r in reports))

    def to_json(self) -> dict:
        return {"counts": dict(self.counts), "objects": self.objects, "objects_kept": self.objects_kept,
                "object_frames": self.object_frames, "object_frames_kept": self.object_frames_kept}

    @classmethod
    def from_json(cls, data: dict) -> "GateReport":
        return cls(counts=dict(data.get("counts", {})), objects=int(data.get("objects", 0)),
                   objects_kept=int(data.get("objects_kept", 0)), object_frames=int(data.get("object_frames", 0)),
                   object_frames_kept=int(data.get("object_frames_kept", 0)))

    def summary(self, min_quality: float) -> str:
        """One line of what was kept, then one per refusal reason."""
        lines = [f"quality gate (min quality {min_quality:g}): kept {self.objects_kept}/{self.objects} objects, "
                 f"{self.object_frames_kept}/{self.object_frames} object frames"]
        for reason, count in self.counts.items():
            if count:
                verb = "checked" if reason in CHECKS else "skipped"
                lines.append(f"  {verb} {count}: {GATE_REASONS.get(reason, reason)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class GateResult:
    """A gated view of a scene.

    scene:      the scene with refused object frames hidden (visible False, NaN centre, box,
                orientation) and untrusted camera frames without a pose (NaN).
    object_ok:  (K, T) bool object frames kept (visible in the gated scene).
    camera_ok:  (T,) bool camera frames kept.
    report:     what was refused, by reason.
    """

    scene: Scene
    object_ok: np.ndarray
    camera_ok: np.ndarray
    report: GateReport


def _over_limits(scene: Scene, keep: np.ndarray, max_depth_jump_m: float) -> np.ndarray:
    """(K, T) bool kept frames whose step from the previous kept frame breaks a physical limit."""
    times = scene.timestamps_s
    cam_to_world = scene.cam_to_world
    bad = np.zeros_like(keep)
    for k in range(scene.n_objects):
        limit = motion_limits(scene.categories[k]).max_speed_mps
        center = scene.center_world[k]
        pairs = np.flatnonzero(keep[k, 1:] & keep[k, :-1]) + 1  # step t-1 → t, both kept
        if len(pairs) == 0:
            continue
        step = np.linalg.norm(center[pairs] - center[pairs - 1], axis=1)
        speed = step / (times[pairs] - times[pairs - 1])
        distance = np.linalg.norm(center - cam_to_world[:, :3, 3], axis=-1)  # depth along the viewing ray
        jump = np.abs(distance[pairs] - distance[pairs - 1])
        bad[k, pairs[(speed > limit) | (jump > max_depth_jump_m)]] = True
    return bad


def camera_taken_as_exact(gated: Scene, exact_camera_inliers: float | None = EXACT_CAMERA_INLIERS) -> bool:
    """Whether the stable-answer check takes a gated scene's camera path as exact (no noise).

    True when the scene has no camera record, or the record fully trusts the camera (its score
    is 1 or not said) and the median inlier ratio over the frames that kept a pose (finite
    ``cam_to_world``; unmeasured ratios ignored) is at least ``exact_camera_inliers`` (None: not
    checked; no measured ratio: passes). A camera whose poses a twentieth of the background
    tracks typically disagree with is a compromise whose jitter is partly its own error.
    """
    camera = gated.camera_quality
    if camera is None:
        return True
    if camera.score < 1.0:  # NaN (not said) counts as trusted
        return False
    if exact_camera_inliers is None:
        return True
    kept = np.isfinite(gated.cam_to_world).all(axis=(1, 2))
    ratios = np.asarray(camera.inlier_ratio, np.float64)[kept]
    ratios = ratios[np.isfinite(ratios)]
    return not (len(ratios) and np.median(ratios) < exact_camera_inliers)


def apply_quality_gate(scene: Scene, min_quality: float, max_depth_jump_m: float = MAX_DEPTH_JUMP_M,
                       min_pose_inliers: float | None = MIN_POSE_INLIERS,
                       exact_camera_inliers: float | None = EXACT_CAMERA_INLIERS) -> GateResult:
    """Hide what the scene's quality record does not trust (see the module docstring).

    min_quality: objects scoring below it are dropped whole; max_depth_jump_m: the largest
    change of a target's distance from the camera between consecutive kept frames (world units);
    min_pose_inliers: camera frames whose measured inlier ratio is below it lose their pose
    (None: not checked; frames where it was not measured are kept); exact_camera_inliers: only
    counted here (``camera_jitter_checked``, :func:`camera_taken_as_exact` on the gated view):
    :func:`noisy_scenes` applies it.
    """
    visible = scene.visible & np.isfinite(scene.center_world).all(axis=-1)
    n_frames = scene.n_frames
    objects, camera = scene.object_quality, scene.camera_quality
    if objects is None:
        report = GateReport(counts={"scene_without_quality_record": 1}, objects=scene.n_objects,
                            objects_kept=int(visible.any(axis=1).sum()), object_frames=int(visible.sum()),
                            object_frames_kept=int(visible.sum()))
        return GateResult(scene, visible, np.ones(n_frames, bool), report)
    camera_ok = np.ones(n_frames, bool) if camera is None else camera.frame_ok.copy()
    counts = {reason: 0 for reason in GATE_REASONS if reason != "scene_without_quality_record"}
    counts["camera_frames_untrusted"] = int((~camera_ok).sum())
    if camera is not None and min_pose_inliers is not None:
        few = camera_ok & (np.asarray(camera.inlier_ratio, np.float64) < min_pose_inliers)  # NaN: not measured
        counts["camera_frames_few_inliers"] = int(few.sum())
        camera_ok &= ~few
    passing = objects.score >= min_quality
    counts["object_below_min_quality"] = int((~passing & visible.any(axis=1)).sum())
    counts["object_frames_of_dropped_objects"] = int(visible[~passing].sum())
    keep = visible & passing[:, None]
    counts["object_frames_failed_checks"] = int((keep & ~objects.frame_ok).sum())
    keep &= objects.frame_ok
    counts["object_frames_untrusted_camera"] = int((keep & ~camera_ok[None]).sum())
    keep &= camera_ok[None]
    if scene.unit != "arbitrary" and (camera is None or camera.scale_source != "arbitrary"):
        over = _over_limits(scene, keep, max_depth_jump_m)
        counts["object_frames_over_limits"] = int(over.sum())
        keep &= ~over
    hide = ~keep
    cam_to_world = np.where(camera_ok[:, None, None], scene.cam_to_world, np.nan)
    gated = replace(scene, visible=keep,
                    center_world=np.where(hide[..., None], np.nan, scene.center_world),
                    box_xyxy=np.where(hide[..., None], np.nan, scene.box_xyxy),
                    orientation=np.where(hide[..., None], np.nan, scene.orientation),
                    orient_conf=np.where(hide, np.nan, scene.orient_conf),
                    extent=None if scene.extent is None else np.where(hide[..., None], np.nan, scene.extent),
                    cam_to_world=cam_to_world)
    posed = np.isfinite(cam_to_world[:, :3, 3]).all(axis=1)
    moves = posed.any() and np.ptp(cam_to_world[posed, :3, 3], axis=0).max() > 0  # a still path has no jitter
    trusted = camera is not None and not camera.score < 1.0  # an untrusted camera gets its jitter anyway
    counts["camera_jitter_checked"] = int(bool(moves) and trusted and not camera_taken_as_exact(gated, exact_camera_inliers))
    report = GateReport(counts=counts, objects=scene.n_objects, objects_kept=int(keep.any(axis=1).sum()),
                        object_frames=int(visible.sum()), object_frames_kept=int(keep.sum()))
    return GateResult(gated, keep, camera_ok, report)


CUT_BORDER_PX = 2.0
"""A box side this close to the image border (pixels) is cut: it says nothing of the object's size."""
SIZE_MEDIAN_HALF = 5
"""Half width (frames) of the running median that takes the box jitter out of the implied heights'
deviations. (3: ``benchmarks/recon_fidelity.py`` kept 49.5 % of its questions instead of 51.2 %.)"""
UNMEASURED_DEPTH_REL = 1e-5
"""Relative size (of the depth) under which a change of a run's depth velocity counts as none."""


def depth_unmeasured(times: np.ndarray, depth: np.ndarray, min_share: float = 0.5) -> bool:
    """Whether a run's camera depths (n,) at ``times`` (n,) were not measured frame by frame:
    at least ``min_share`` of its frame triples have a depth velocity that does not change
    (second difference under :data:`UNMEASURED_DEPTH_REL` of the median depth). A reconstructor
    holds a depth it cannot see (a hidden ground contact) or bridges it linearly, and the
    smoother keeps lines exactly; a measured depth is never exactly linear."""
    if len(depth) < 3 or not np.isfinite(depth).all():
        return False
    change = np.abs(np.diff(np.diff(depth) / np.diff(times)))
    return bool(np.mean(change < UNMEASURED_DEPTH_REL * np.median(np.abs(depth))) >= min_share)


def _camera_view(gated: Scene, k: int, run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object ``k``'s centres in its frames ``run`` (n,) in camera coordinates (n, 3) and its unit
    viewing rays in the world (n, 3)."""
    world_to_cam = np.linalg.inv(gated.cam_to_world[run])
    local = np.einsum("nij,nj->ni", world_to_cam[:, :3, :3], gated.center_world[k, run]) + world_to_cam[:, :3, 3]
    ray = gated.center_world[k, run] - gated.cam_to_world[run, :3, 3]
    return local, ray / np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-9)


def _depth_drift(gated: Scene, k: int, run: np.ndarray, factor: float, rng: np.random.Generator,
                 n_draws: int) -> np.ndarray:
    """(D, n, 3) drift along the viewing rays of object ``k``'s frames ``run`` when its depth
    there was not measured (:func:`depth_unmeasured`), else zeros: each draw moves along the
    rays at a speed N(0, (factor · RMS speed across the rays)²), about the run's middle time."""
    times = gated.timestamps_s[run]
    local, ray = _camera_view(gated, k, run)
    drift = np.zeros((n_draws, len(run), 3))
    if not depth_unmeasured(times, local[:, 2]):
        return drift
    across = np.linalg.norm(np.diff(local[:, :2], axis=0), axis=1) / np.diff(times)
    speed = rng.normal(0.0, factor * np.sqrt(np.mean(across ** 2)), (n_draws, 1))
    return (speed * (times - times.mean()))[..., None] * ray


def size_depth_offset(depth: np.ndarray, box_height_px: np.ndarray, focal_px: np.ndarray,
                      uncut: np.ndarray) -> np.ndarray:
    """(n,) the change of each of a track's frame depths (n,) that would give the object the height
    it has in its other frames: depth · (exp(−δ) − 1), δ the log of its implied height (depth × box
    height (n,) / focal (n,), pixels) over their median, after a running median over
    ±:data:`SIZE_MEDIAN_HALF` frames; 0 where the box's top or bottom is cut (``uncut`` (n,)
    False) and everywhere with fewer than three uncut frames. A rigid object keeps its height,
    so a depth that disagrees with the box's scale is in doubt by that much."""
    offset = np.zeros(len(depth))
    with np.errstate(invalid="ignore", divide="ignore"):
        log_height = np.log(depth * box_height_px / focal_px)
    use = uncut & np.isfinite(log_height)
    if use.sum() < 3:
        return offset
    deviation = log_height[use] - np.median(log_height[use])
    # a box's height jitters by a pixel or two from frame to frame, a depth error lasts: running median
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(deviation, SIZE_MEDIAN_HALF, mode="edge"),
                                                       2 * SIZE_MEDIAN_HALF + 1)
    offset[use] = depth[use] * np.expm1(-np.median(windows, axis=1))
    return offset


def _size_depth_error(gated: Scene, k: int, run: np.ndarray, factor: float, rng: np.random.Generator,
                      n_draws: int) -> np.ndarray:
    """(D, n, 3) error along object ``k``'s viewing rays in its frames ``run`` (n,): each draw moves
    every frame by N(0, factor²) × its :func:`size_depth_offset` (one factor per draw)."""
    cam = gated.cam_to_world[run]
    local, ray = _camera_view(gated, k, run)
    boxes = gated.box_xyxy[k, run].astype(np.float64)
    intrinsics = gated.intrinsics[run].astype(np.float64)
    height = (gated.source.size[1] if gated.source is not None and gated.source.size
              else 2.0 * np.nanmedian(intrinsics[:, 1, 2]))
    uncut = (boxes[:, 1] >= CUT_BORDER_PX) & (boxes[:, 3] <= height - CUT_BORDER_PX)
    offset = size_depth_offset(local[:, 2], boxes[:, 3] - boxes[:, 1], intrinsics[:, 1, 1], uncut)
    along = offset / np.maximum(np.einsum("ni,ni->n", ray, cam[:, :3, 2]), 1e-9)  # depth → distance along the ray
    return rng.normal(0.0, factor, (n_draws, 1, 1)) * (along[:, None] * ray)[None]


def noisy_scenes(gated: Scene, rng: np.random.Generator, n_draws: int,
                 exact_camera_inliers: float | None = EXACT_CAMERA_INLIERS, heading_sigma_deg: float = 0.0,
                 along_ray_factor: float = 1.0, unmeasured_depth_factor: float = 0.0,
                 size_depth_factor: float = 0.0) -> list[Scene]:
    """``n_draws`` copies of a gated scene whose object centres carry the error their quality
    record implies (see the module docstring); [] when the scene has no record or no draws.
    The camera path gets its own jitter as noise unless :func:`camera_taken_as_exact`
    (``exact_camera_inliers``) says it is exact.

    Each run of consecutive visible frames of an object gets smoothed noise of its own. An
    agent's azimuth turns with it by the heading error that noise gives a direction of travel
    (its sideways velocity over the agent's speed): orientations follow the trajectory in the
    weights-free pipeline. With ``heading_sigma_deg`` each such run of an agent with a noisy
    record also turns by one error of its own, drawn with that standard deviation: a heading
    is not only as good as the trajectory's noise (an agent standing or walking along the
    viewing ray, a facing that is not the direction of travel). ``along_ray_factor`` stretches
    each draw's error along the object's viewing ray (monocular depth errs most there).
    With ``unmeasured_depth_factor`` a run whose depth was not measured (:func:`depth_unmeasured`:
    held or bridged linearly by the reconstructor) also drifts along its ray at a speed drawn per
    draw with the standard deviation of this × the run's RMS speed across the ray: its motion in
    depth is unknown, and could be as fast as the motion the image shows.
    """
    quality = gated.object_quality
    if quality is None or n_draws < 1:
        return []
    times = gated.timestamps_s
    centers = np.repeat(gated.center_world[None], n_draws, axis=0)  # (D, K, T, 3)
    azimuths = np.repeat(gated.orientation[None, ..., 0].astype(np.float64), n_draws, axis=0)  # (D, K, T)
    up = -gated.cam_to_world[:, :3, 1]  # (T, 3) camera up in the world, an estimate of the vertical
    # the depth doubts draw from a stream of their own: the trajectory noise stays as it was without them
    doubt_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]) if (
        unmeasured_depth_factor > 0 or size_depth_factor > 0) else None
    for k in range(gated.n_objects):
        noise_m, lam = float(quality.noise_m[k]), float(quality.smooth_lambda_s3[k])
        if not (np.isfinite(noise_m) and noise_m > 0):
            continue
        visible = np.flatnonzero(gated.visible[k])
        size_error = (_size_depth_error(gated, k, visible, size_depth_factor, doubt_rng, n_draws)
                      if size_depth_factor > 0 and len(visible) >= 3 else None)
        for run in np.split(visible, np.flatnonzero(np.diff(visible) != 1) + 1) if len(visible) else []:
            noise = smoothed_noise(times[run], noise_m, lam if np.isfinite(lam) else 0.0, rng, n_draws)
            if along_ray_factor != 1.0:  # monocular depth errs more along the viewing ray than across it
                ray = _camera_view(gated, k, run)[1]
                noise = noise + (along_ray_factor - 1.0) * np.einsum("dni,ni->dn", noise, ray)[..., None] * ray
            if unmeasured_depth_factor > 0 and len(run) >= 3:
                noise = noise + _depth_drift(gated, k, run, unmeasured_depth_factor, doubt_rng, n_draws)
            if size_error is not None:
                noise = noise + size_error[:, np.searchsorted(visible, run)]
            centers[:, k, run] += noise
            if gated.is_agent[k] and heading_sigma_deg > 0:  # a heading error of the run's own
                azimuths[:, k, run] += rng.normal(0.0, heading_sigma_deg, (n_draws, 1))
            if not gated.is_agent[k] or len(run) < 2:
                continue
            velocity = np.gradient(gated.center_world[k, run], times[run], axis=0)  # (n, 3)
            noise_velocity = np.gradient(noise, times[run], axis=1)  # (D, n, 3)
            sideways = np.cross(up[run], velocity)
            with np.errstate(invalid="ignore", divide="ignore"):
                sideways /= np.linalg.norm(sideways, axis=1, keepdims=True)
                speed = np.linalg.norm(velocity, axis=1)
                turn = np.degrees(np.arctan2(np.einsum("dni,ni->dn", noise_velocity, sideways), speed))
            azimuths[:, k, run] += np.nan_to_num(turn)
    orientation = np.repeat(gated.orientation[None], n_draws, axis=0)
    orientation[..., 0] = np.mod(azimuths, 360.0)
    cameras = np.repeat(gated.cam_to_world[None], n_draws, axis=0)  # (D, T, 4, 4)
    exact = camera_taken_as_exact(gated, exact_camera_inliers)
    camera_sigma = np.zeros(3) if exact else jitter_m(times, gated.cam_to_world[:, :3, 3])
    if np.isfinite(camera_sigma).all() and (camera_sigma > 0).any():
        cameras[:, :, :3, 3] += rng.normal(0.0, 1.0, (n_draws, gated.n_frames, 3)) * camera_sigma
    return [replace(gated, center_world=center, orientation=angles, cam_to_world=camera)
            for center, angles, camera in zip(centers, orientation, cameras)]
