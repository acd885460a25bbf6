"""``pi3``: feed-forward reconstruction with the in-repo π³ network (DESIGN §4).

    clip frames (sides multiples of 14, ≤ pixel budget) --chunks of N frames, overlap O-->
    π³ per chunk: local point maps, confidences, cam_to_world --Sim(3) on the overlap-->
    one world for the whole clip --focal fit--> intrinsics

1. Frames: the clip's own frames when both sides are multiples of 14 and the area is within
   ``pixel_budget`` (``recon4d.video.read_clip`` already sizes them so); otherwise they are
   resized to the budget for the network and the outputs resized back (nearest) to the clip.
2. Chunks: π³ attends across all frames of a chunk, so memory grows with its length; a clip
   longer than ``chunk_frames`` is cut into chunks that share ``overlap`` frames. Each chunk
   has its own world and scale; chunk k is mapped onto the clip's world by the similarity
   (Umeyama, one trimmed refit) between the world points it and the frames already placed
   predict for the same confident pixels of the shared frames. Shared frames keep the values
   of the earlier chunk. When the shared frames have fewer than 3 such pixels (or they all lie
   at one point) the chunk is chained through its first shared camera at scale 1 with a
   :class:`Pi3StitchWarning`, which the pipeline records in the store's warnings.
3. Validity: ``conf`` is sigmoid(logit) in [0, 1]; lifting keeps pixels with conf > 0.1 that
   are not on depth edges (relative 3×3 range > 0.03), the reference pipeline's rule
   (``recon4d.lift.lifting.LiftConfig``); :func:`recon4d.lift.lifting.valid_point_mask` gives that mask.
4. World frame: π³'s own world has no reference view; the stitched poses are expressed in
   the camera of the clip's first frame (like ``classic``), which changes no answer.
5. Intrinsics: π³ predicts none; a pinhole focal length per frame is fitted to the confident
   local points (principal point at the image centre), reported in source-video pixels.

Weights: ``$RECON4D_HOME/weights/pi3/model.safetensors`` (the public checkpoint, strict
keys), optional ``pi3/config.json`` with :class:`recon4d.models.pi3.Pi3Config` fields for
other sizes. On CUDA the network runs under bf16 autocast; attention is SDPA.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from recon4d import __version__
from recon4d.backends import config_from_options
from recon4d.errors import GeometryError, Recon4dError
from recon4d.geometry import umeyama_sim3
from recon4d.types import Clip, ProgressFn, Reconstruction, Tracks2D

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_ALIGN_POINTS = 20_000
_ALIGN_TRIM = 0.8


@dataclass(frozen=True)
class Pi3BackendConfig:
    """How clips are fed to π³."""

    pixel_budget: int = 255_000
    """Pixels per frame for the network (sides rounded to multiples of 14), the reference's."""
    chunk_frames: int = 64
    """Frames per forward pass; longer clips are processed in overlapping chunks."""
    overlap: int | None = None
    """Frames shared by consecutive chunks, used to align them (Sim(3)); None: a quarter of
    ``chunk_frames``, at most 8."""
    conf_threshold: float = 0.1
    """Confidence (post-sigmoid) above which pixels align chunks and fit the focal length."""
    dtype: str = "auto"
    """"auto" (bf16 autocast on CUDA, float32 on CPU), "float32" or "bfloat16"."""

    def __post_init__(self) -> None:
        if self.pixel_budget < 14 * 14:
            raise Recon4dError(f"pi3 pixel_budget must be at least 196 (one 14×14 patch), got {self.pixel_budget}.")
        if self.chunk_frames < 2:
            raise Recon4dError(f"pi3 chunk_frames must be at least 2, got {self.chunk_frames}.")
        if self.overlap is None:
            object.__setattr__(self, "overlap", max(1, min(8, self.chunk_frames // 4)))
        if not 1 <= self.overlap < self.chunk_frames:
            raise Recon4dError(f"pi3 overlap must be between 1 and chunk_frames - 1 ({self.chunk_frames - 1}), "
                               f"got {self.overlap}.")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise Recon4dError(f"pi3 dtype must be auto, float32 or bfloat16, got {self.dtype!r}.")


def chunk_spans(n_frames: int, chunk_frames: int, overlap: int) -> list[tuple[int, int]]:
    """[start, stop) spans covering ``range(n_frames)``; consecutive spans share at least
    ``overlap`` frames, every span but a lone one has ``chunk_frames`` frames (the last is
    moved back to end at ``n_frames`` rather than left short)."""
    if n_frames <= chunk_frames:
        return [(0, n_frames)]
    step = chunk_frames - overlap
    spans, start = [], 0
    while True:
        stop = start + chunk_frames
        if stop >= n_frames:
            spans.append((n_frames - chunk_frames, n_frames))
            return spans
        spans.append((start, stop))
        start += step


def fit_focal(local_points: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Least-squares (fx, fy) in pixels of one frame with the principal point at the centre.

    local_points (H, W, 3) camera frame; weight (H, W) bool pixels to use. NaN when too few.
    """
    height, width = weight.shape
    x, y, z = (local_points[..., i].astype(np.float64) for i in range(3))
    use = weight & np.isfinite(z) & (z > 0)
    if use.sum() < 10:
        return math.nan, math.nan
    rows, cols = np.nonzero(use)
    u, v = cols + 0.5 - width / 2, rows + 0.5 - height / 2
    a, b = x[use] / z[use], y[use] / z[use]
    fx = float((u * a).sum() / max((a * a).sum(), 1e-12))
    fy = float((v * b).sum() / max((b * b).sum(), 1e-12))
    return fx, fy


def _to_world(cam_to_world: np.ndarray, local_points: np.ndarray) -> np.ndarray:
    """(S, H, W, 3) world points of camera-frame points (S, H, W, 3) under poses (S, 4, 4)."""
    return np.einsum("sij,shwj->shwi", cam_to_world[:, :3, :3], local_points) + cam_to_world[:, None, None, :3, 3]


def _align_chunk(prev_world: np.ndarray, prev_ok: np.ndarray, new_world: np.ndarray, new_ok: np.ndarray):
    """Similarity mapping the new chunk's world onto the previous one from shared pixels.

    *_world (S, H, W, 3) world points of the S shared frames; *_ok (S, H, W) confident pixels.
    Returns ((scale, R, t), "") or (None, why) when the shared pixels cannot fix a similarity:
    fewer than 3 confident in both, or all at one point (:class:`~recon4d.errors.GeometryError`
    of :func:`~recon4d.geometry.umeyama_sim3`). A trimmed refit that is degenerate keeps the
    first fit.
    """
    both = prev_ok & new_ok & np.isfinite(prev_world).all(-1) & np.isfinite(new_world).all(-1)
    idx = np.flatnonzero(both)
    if idx.size > _ALIGN_POINTS:
        idx = idx[np.linspace(0, idx.size - 1, _ALIGN_POINTS).astype(np.int64)]
    src = new_world.reshape(-1, 3)[idx].astype(np.float64)
    dst = prev_world.reshape(-1, 3)[idx].astype(np.float64)
    try:
        scale, rotation, translation = umeyama_sim3(src, dst)
    except GeometryError as exc:
        return None, f"{idx.size} pixels are confident in both: {exc}"
    residual = np.linalg.norm(scale * src @ rotation.T + translation - dst, axis=1)
    keep = residual <= np.quantile(residual, _ALIGN_TRIM)
    try:
        scale, rotation, translation = umeyama_sim3(src[keep], dst[keep])
    except GeometryError:
        pass  # the trimmed points alone are degenerate: the untrimmed fit stands
    return (float(scale), rotation, translation), ""


class Pi3StitchWarning(UserWarning):
    """Consecutive chunks could not be aligned on their shared frames (see ``Pi3Reconstructor``)."""


def check_weights(path: Path) -> str:
    """Check a ``pi3`` weights directory without building the network's memory: every key and
    shape of ``model.safetensors`` against the model (config.json or the public sizes)."""
    import torch

    from recon4d.optional import require
    from recon4d.models.pi3 import Pi3
    from recon4d.models.pi3.weights import check_state_dict

    path = Path(path)
    config = load_config(path)
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise Recon4dError(f"{file} does not exist: put the π³ checkpoint (model.safetensors) there.")
    safetensors = require("safetensors", extra="pi3", purpose="reading π³ weights")
    try:
        with safetensors.safe_open(str(file), framework="pt") as handle:
            found = {key: torch.empty(handle.get_slice(key).get_shape(), device="meta") for key in handle.keys()}
    except Exception as exc:  # a truncated or non-safetensors file
        raise Recon4dError(f"{file} is not a readable safetensors file ({exc}); download it again.") from exc
    with torch.device("meta"):
        model = Pi3(config)
    check_state_dict(model.state_dict(), found, f"checkpoint {file}")
    n_params = sum(t.numel() for t in found.values())
    return f"π³ ({'public sizes' if config is None else 'config.json'}), {len(found)} tensors, {n_params / 1e6:.1f}M values"


def load_config(path: Path):
    """The :class:`Pi3Config` of ``path/config.json``, or None (the public architecture)."""
    from recon4d.models.pi3 import Pi3Config

    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise Recon4dError(f"{file} is not valid JSON ({exc}); fix or delete it (without it the public "
                           "π³ sizes are used).") from exc
    names = {f.name for f in fields(Pi3Config)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise Recon4dError(f"{file} has unknown π³ config fields {unknown}; valid fields are {sorted(names)}.")
    return Pi3Config(**data)


class Pi3Reconstructor:
    """Reconstruct a clip with π³ (see the module docstring)."""

    name = "pi3"
    version = __version__

    def __init__(self, model, config: Pi3BackendConfig = Pi3BackendConfig(), device: str = "cpu",
                 weights_sha256: str | None = None) -> None:
        self.model = model
        self.config = config
        self.device = device
        self.weights_sha256 = weights_sha256

    @classmethod
    def from_config(cls, options: dict | None = None, device: str = "cpu",
                    weights_dir: Path | None = None) -> Pi3Reconstructor:
        """Load ``weights_dir/pi3`` (default ``$RECON4D_HOME/weights``) onto ``device``."""
        from recon4d.optional import require
        from recon4d.settings import weights_dir as default_weights_dir
        from recon4d.weights import sha256_path

        config = config_from_options(Pi3BackendConfig, options, "pi3 backend")
        torch = require("torch", extra="pi3", purpose="the π³ backend")
        from recon4d.models.pi3 import Pi3

        directory = Path(weights_dir or default_weights_dir()) / "pi3"
        file = directory / WEIGHTS_FILE
        if not file.is_file():
            raise Recon4dError(f"the π³ weights {file} are missing. Download the public checkpoint "
                               "(model.safetensors) yourself and put it there, or choose --recon classic.")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise Recon4dError("--device cuda was asked for but torch sees no CUDA device; use --device cpu.")
        model = Pi3.from_pretrained(file, load_config(directory)).to(device)
        return cls(model, config, str(device), sha256_path(file))

    def _network_size(self, width: int, height: int) -> tuple[int, int]:
        from recon4d.video import resize_to_budget

        patch = self.model.config.patch_size
        if width % patch == 0 and height % patch == 0 and width * height <= self.config.pixel_budget:
            return width, height
        return resize_to_budget(width, height, self.config.pixel_budget, patch)

    def _forward(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """π³ on (N, H, W, 3) uint8 frames → numpy local_points, conf (sigmoid), camera_poses."""
        import torch

        imgs = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        imgs = imgs.permute(0, 3, 1, 2).float().div_(255.0)[None]
        on_cuda = self.device.startswith("cuda")
        bf16 = self.config.dtype == "bfloat16" or (self.config.dtype == "auto" and on_cuda)
        with torch.inference_mode(), torch.autocast(device_type="cuda" if on_cuda else "cpu",
                                                    dtype=torch.bfloat16, enabled=bf16):
            out = self.model(imgs)
        return {
            "local_points": out["local_points"][0].float().cpu().numpy(),
            "conf": torch.sigmoid(out["conf"][0, ..., 0].float()).cpu().numpy(),
            "camera_poses": out["camera_poses"][0].double().cpu().numpy(),
        }

    def reconstruct(self, clip: Clip, tracks: Tracks2D | None = None,
                    progress: ProgressFn | None = None) -> Reconstruction:
        """Point maps (clip resolution), confidences and poses of every clip frame.

        ``tracks`` is not needed: π³ copes with moving objects itself.
        """
        import cv2

        height, width = clip.frames.shape[1:3]
        net_w, net_h = self._network_size(width, height)
        frames = clip.frames
        if (net_w, net_h) != (width, height):
            frames = np.stack([cv2.resize(f, (net_w, net_h), interpolation=cv2.INTER_AREA) for f in frames])
        n_frames = clip.n_frames
        local_points = np.full((n_frames, net_h, net_w, 3), np.nan, np.float32)
        conf = np.zeros((n_frames, net_h, net_w), np.float32)
        cam_to_world = np.tile(np.eye(4), (n_frames, 1, 1))
        placed = np.zeros(n_frames, bool)
        spans = chunk_spans(n_frames, self.config.chunk_frames, self.config.overlap)
        for i, (start, stop) in enumerate(spans):
            out = self._forward(frames[start:stop])
            poses, lp = out["camera_poses"], out["local_points"]
            shared = np.flatnonzero(placed[start:stop])
            if shared.size:
                frames_shared = shared + start
                ok_prev = conf[frames_shared] > self.config.conf_threshold
                ok_new = out["conf"][shared] > self.config.conf_threshold
                sim, why = _align_chunk(_to_world(cam_to_world[frames_shared], local_points[frames_shared]),
                                        ok_prev, _to_world(poses[shared], lp[shared]), ok_new)
                if sim is None:  # chain through the first shared camera; the scale cannot be known
                    delta = cam_to_world[frames_shared[0]] @ np.linalg.inv(poses[shared[0]])
                    scale, rotation, translation = 1.0, delta[:3, :3], delta[:3, 3]
                    warnings.warn(f"chunk {i + 1} of {len(spans)} (frames {start}-{stop - 1}) could not be aligned "
                                  f"on its {shared.size} shared frame(s) ({why}); it is chained through frame "
                                  f"{frames_shared[0]} at scale 1, so its scale may differ from the previous "
                                  "chunk's. A larger overlap (-O recon.overlap) or chunk_frames may help.",
                                  Pi3StitchWarning, stacklevel=2)
                else:
                    scale, rotation, translation = sim
                poses = poses.copy()
                poses[:, :3, 3] = scale * poses[:, :3, 3] @ rotation.T + translation
                poses[:, :3, :3] = rotation @ poses[:, :3, :3]
                lp = (lp * scale).astype(np.float32)
            new = ~placed[start:stop]
            idx = np.arange(start, stop)[new]
            local_points[idx], conf[idx] = lp[new], out["conf"][new]
            cam_to_world[idx] = poses[new]
            placed[idx] = True
            if progress is not None:
                progress(i + 1, len(spans))

        cam_to_world = np.linalg.inv(cam_to_world[0]) @ cam_to_world  # world = camera of frame 0, as classic
        intrinsics = self._intrinsics(local_points, conf, clip)
        if (net_w, net_h) != (width, height):
            local_points = np.stack([cv2.resize(p, (width, height), interpolation=cv2.INTER_NEAREST)
                                     for p in local_points])
            conf = np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_NEAREST) for c in conf])
        return Reconstruction(cam_to_world=cam_to_world, local_points=local_points, conf=conf, intrinsics=intrinsics,
                              unit="arbitrary")

    def _intrinsics(self, local_points: np.ndarray, conf: np.ndarray, clip: Clip) -> np.ndarray:
        """(T, 3, 3) float32 pinhole intrinsics in source-video pixels (NaN where unfit)."""
        n_frames, height, width = conf.shape
        src_w, src_h = clip.source_size
        ok = conf > self.config.conf_threshold
        intrinsics = np.zeros((n_frames, 3, 3), np.float32)
        for t in range(n_frames):  # one least-squares fit per frame; the pixel work is vectorised
            fx, fy = fit_focal(local_points[t], ok[t])
            intrinsics[t] = [[fx * src_w / width, 0, src_w / 2], [0, fy * src_h / height, src_h / 2], [0, 0, 1]]
        return intrinsics
