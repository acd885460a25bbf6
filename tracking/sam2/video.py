"""SAM2's video predictor driven from memory: loading, in-memory frames, propagation.

- Loading (:func:`load_sam2_predictor`): one ``*.pt`` checkpoint (``{"model": state_dict}``)
  with the sam2 package's bundled config chosen by its public file name, or a ``config.yaml``
  beside it; built with hydra's ``instantiate`` as ``SAM2VideoPredictor`` and loaded strictly.
- Frames (:class:`ClipImages`, :func:`new_inference_state`): the normalised ``image_size``
  tensors the predictor's JPEG loader would make, produced on demand from the clip's uint8
  frames, so no temporary files are written and the video never sits on the device whole.
- Propagation (:func:`propagate_masks`): boxes on one frame tracked forwards then backwards,
  optionally in chunks of fresh sessions, yielding one frame of masks at a time.
"""

from __future__ import annotations

import importlib.util
from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

import numpy as np

from recon4d.checks import check_shape
from recon4d.optional import require
from recon4d.errors import Recon4dError

__all__ = ["ClipImages", "bundled_config_name", "check_sam2_weights", "load_sam2_config", "load_sam2_predictor",
           "mask_boxes", "new_inference_state", "propagate_masks"]

_SIZES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)


def bundled_config_name(checkpoint: str | Path) -> str | None:
    """The sam2 package's config for a public checkpoint file name, e.g. sam2.1_hiera_large.pt →
    configs/sam2.1/sam2.1_hiera_l.yaml; None for any other name."""
    stem = Path(checkpoint).name.lower().replace("-", "_").removesuffix(".pt")
    for family in ("sam2.1", "sam2"):
        for size, short in _SIZES.items():
            if stem == f"{family}_hiera_{size}":
                return f"configs/{family}/{family}_hiera_{short}.yaml"
    return None


def _checkpoint_file(path: Path) -> Path:
    checkpoints = sorted(p for p in Path(path).glob("*.pt") if p.is_file())
    if len(checkpoints) != 1:
        found = ", ".join(p.name for p in checkpoints) or "none"
        raise Recon4dError(f"{path} must hold exactly one SAM2 checkpoint (*.pt), found {found}. Keep the one you "
                           "want (e.g. sam2.1_hiera_large.pt from facebookresearch/sam2) and remove the others.")
    return checkpoints[0]


def _targets(node) -> Iterator[str]:
    omegaconf = require("omegaconf", extra="track", purpose="reading SAM2 configs")
    if isinstance(node, omegaconf.DictConfig):
        for key in node:
            value = node[key]
            if key == "_target_":
                yield str(value)
            else:
                yield from _targets(value)
    elif isinstance(node, omegaconf.ListConfig):
        for value in node:
            yield from _targets(value)


def load_sam2_config(path: Path):
    """(OmegaConf model config of the video predictor, config name) for a ``sam2/`` directory.

    ``config.yaml`` beside the checkpoint wins; otherwise the sam2 package's config for the
    checkpoint's file name. The overrides are those ``sam2.build_sam.build_sam2_video_predictor``
    applies (SAM2VideoPredictor, dynamic multimask fallback, binarised prompt masks in the
    memory encoder, hole filling).
    """
    omegaconf = require("omegaconf", extra="track", purpose="reading SAM2 configs")
    sam2 = require("sam2", extra="track", purpose="SAM2 video masks")
    path = Path(path)
    checkpoint = _checkpoint_file(path)
    custom = path / "config.yaml"
    if custom.is_file():
        config_file, name = custom, "config.yaml"
    else:
        name = bundled_config_name(checkpoint)
        if name is None:
            raise Recon4dError(f"{checkpoint.name} is not a public SAM2 checkpoint name (sam2.1_hiera_tiny/small/"
                               f"base_plus/large.pt or sam2_hiera_*.pt), so its model config is unknown. Put the "
                               f"hydra config it was trained with at {custom} (e.g. a copy of "
                               "sam2/configs/sam2.1/sam2.1_hiera_l.yaml from the sam2 package).")
        config_file = Path(sam2.__file__).parent / name
    try:
        config = omegaconf.OmegaConf.load(config_file)
    except Exception as exc:
        raise Recon4dError(f"the SAM2 config {config_file} is not valid YAML ({exc}); fix or replace it.") from exc
    if "model" not in config:
        raise Recon4dError(f"the SAM2 config {config_file} has no top-level 'model' entry; use a config like "
                           "sam2/configs/sam2.1/sam2.1_hiera_l.yaml.")
    foreign = sorted({t for t in _targets(config.model) if not t.startswith("sam2.")})
    if foreign:
        # instantiating arbitrary targets would run arbitrary code from a weights folder
        raise Recon4dError(f"the SAM2 config {config_file} instantiates classes outside the sam2 package "
                           f"({', '.join(foreign)}); only sam2.* targets are allowed.")
    config = omegaconf.OmegaConf.merge(config, {"model": {
        "_target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
        "sam_mask_decoder_extra_args": {"dynamic_multimask_via_stability": True,
                                        "dynamic_multimask_stability_delta": 0.05,
                                        "dynamic_multimask_stability_thresh": 0.98},
        "binarize_mask_from_pts_for_mem_enc": True,
        # Hole filling needs the sam2 CUDA extension; without it SAM2 warns on every frame and
        # leaves the masks unchanged, so turn it off there instead.
        "fill_hole_area": 8 if importlib.util.find_spec("sam2._C") is not None else 0,
    }})
    omegaconf.OmegaConf.resolve(config)
    return config.model, name


def _check_state_dict(model, state: dict, source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = sorted(f"{k} {tuple(state[k].shape)} (model wants {tuple(expected[k].shape)})"
                        for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = [f"{what}: {some(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", mis_shaped)) if keys]
    if problems:
        raise Recon4dError(f"the SAM2 checkpoint {source} does not match its config ({'; '.join(problems)}). "
                           "Use the config the checkpoint was trained with (config.yaml beside it, or the public "
                           "file name so the bundled config is used), or re-download the checkpoint.")


def load_sam2_predictor(path: Path, device: str = "cpu"):
    """The SAM2 video predictor of a ``sam2/`` weights directory, strictly loaded, in eval mode.

    Returns (predictor, config name).
    """
    torch = require("torch", extra="track", purpose="SAM2 video masks")
    hydra_utils = require("hydra.utils", extra="track", purpose="building the SAM2 model")
    path = Path(path)
    config, name = load_sam2_config(path)
    checkpoint = _checkpoint_file(path)
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Recon4dError(f"the SAM2 checkpoint {checkpoint} cannot be read ({type(exc).__name__}: {exc}); it is "
                           "truncated or not a PyTorch checkpoint. Re-download it.") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise Recon4dError(f"the SAM2 checkpoint {checkpoint} has no 'model' state dict (keys: "
                           f"{sorted(payload)[:5] if isinstance(payload, dict) else type(payload).__name__}); use a "
                           "checkpoint from facebookresearch/sam2, which stores {'model': state_dict}.")
    try:
        predictor = hydra_utils.instantiate(config, _recursive_=True)
    except Exception as exc:
        raise Recon4dError(f"the SAM2 config {name} for {path} does not build a model ({exc}); fix config.yaml "
                           "or remove it to use the bundled config of a public checkpoint.") from exc
    _check_state_dict(predictor, payload["model"], checkpoint)
    predictor.load_state_dict(payload["model"], strict=True)
    return predictor.to(device).eval(), name


def check_sam2_weights(path: Path) -> str:
    """Load a ``sam2/`` weights directory on the CPU (strict) and summarise it; Recon4dError if it fails."""
    predictor, name = load_sam2_predictor(Path(path), "cpu")
    n = sum(p.numel() for p in predictor.parameters())
    size = f"{n / 1e6:.0f}M" if n >= 10e6 else f"{n / 1e6:.1f}M"
    return f"SAM2 ({Path(name).name}, {size} params, {predictor.image_size} px)"


class ClipImages:
    """Clip frames as the SAM2 predictor's ``inference_state["images"]``: item t is frame t
    resized to ``image_size`` × ``image_size`` (bicubic, as the predictor's JPEG loader does
    with PIL) and ImageNet-normalised, (3, S, S) float32, made on first use.

    Only the last few frames are cached, so memory does not grow with the clip.
    """

    def __init__(self, frames: np.ndarray, image_size: int, device="cpu", cache: int = 2) -> None:
        self.frames = frames
        self.image_size = int(image_size)
        self.device = device
        self.cache_size = cache
        self._cache: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int):
        torch = require("torch", extra="track", purpose="SAM2 video masks")
        image_module = require("PIL.Image", extra="track", purpose="resizing frames for SAM2")
        index = int(index)
        if index in self._cache:
            return self._cache[index]
        size = (self.image_size, self.image_size)
        resized = np.asarray(image_module.fromarray(np.asarray(self.frames[index])).resize(
            size, image_module.Resampling.BICUBIC), np.float32) / 255.0
        tensor = torch.from_numpy(resized).permute(2, 0, 1)
        tensor = (tensor - torch.tensor(_IMAGE_MEAN)[:, None, None]) / torch.tensor(_IMAGE_STD)[:, None, None]
        tensor = tensor.to(self.device)
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[index] = tensor
        return tensor


def new_inference_state(predictor, frames: np.ndarray, offload_video_to_cpu: bool = False,
                        offload_state_to_cpu: bool = False) -> dict:
    """A SAM2 inference state over frames (T, H, W, 3) uint8 held in memory.

    The same dictionary ``SAM2VideoPredictor.init_state`` builds (sam2 1.1), with
    :class:`ClipImages` in place of the JPEG folder it would read; masks come out at H × W.
    """
    from collections import OrderedDict

    torch = require("torch", extra="track", purpose="SAM2 video masks")
    device = predictor.device
    return {
        "images": ClipImages(frames, predictor.image_size, torch.device("cpu") if offload_video_to_cpu else device),
        "num_frames": len(frames),
        "offload_video_to_cpu": offload_video_to_cpu,
        "offload_state_to_cpu": offload_state_to_cpu,
        "video_height": int(frames.shape[1]),
        "video_width": int(frames.shape[2]),
        "device": device,
        "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(..., 4) float64 pixel-edge xyxy boxes (x2 = last column + 1) of masks (..., H, W) bool; NaN if empty."""
    masks = np.asarray(masks, bool)
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)  # (..., H), (..., W)
    height, width = masks.shape[-2:]
    x1 = np.argmax(cols, axis=-1)
    x2 = width - np.argmax(cols[..., ::-1], axis=-1)
    y1 = np.argmax(rows, axis=-1)
    y2 = height - np.argmax(rows[..., ::-1], axis=-1)
    boxes = np.stack([x1, y1, x2, y2], axis=-1).astype(np.float64)
    boxes[~cols.any(axis=-1)] = np.nan
    return boxes


def _chunks(anchor: int, n_frames: int, chunk: int, step: int) -> Iterator[tuple[int, int]]:
    """(start frame, frames to track after it) of each chunk going ``step`` (±1) from ``anchor``."""
    last = n_frames - 1 if step > 0 else 0
    start = anchor
    while True:
        count = min(chunk - 1, abs(last - start))
        yield start, count
        start += step * count
        if start == last or count == 0:
            return


def propagate_masks(predictor, frames: np.ndarray, anchor: int, boxes_xyxy: np.ndarray,
                    chunk_frames: int | None = None, offload_video_to_cpu: bool = False,
                    offload_state_to_cpu: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Track K boxes given on frame ``anchor`` through frames (T, H, W, 3) uint8 with SAM2.

    boxes_xyxy: (K, 4) pixels of ``frames``. Yields (t, masks (K, H, W) bool) once for every
    frame t: ``anchor`` first, then forwards to T − 1, then backwards to 0. With
    ``chunk_frames`` each direction runs in sessions of at most that many frames (module
    docstring, step 3); None tracks each direction in one session.
    """
    torch = require("torch", extra="track", purpose="SAM2 video masks")
    check_shape("frames", frames, ("T", "H", "W", 3), dtype_kind="u")
    boxes_xyxy = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    n_frames, n_objects = len(frames), len(boxes_xyxy)
    if not 0 <= anchor < n_frames:
        raise Recon4dError(f"the prompt frame {anchor} is outside the clip's {n_frames} frames (0..{n_frames - 1}).")
    chunk = n_frames if chunk_frames is None else int(chunk_frames)
    if chunk < 2:
        raise Recon4dError(f"chunk_frames must be at least 2 (a chunk shares one frame with the previous), got {chunk}.")
    if n_objects == 0:
        order = [anchor, *range(anchor + 1, n_frames), *range(anchor - 1, -1, -1)]
        yield from ((t, np.zeros((0, *frames.shape[1:3]), bool)) for t in order)
        return
    on_cuda = predictor.device.type == "cuda"

    def precision():
        # bf16 on the GPU as SAM2's own examples run it; float32 on the CPU
        return torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else nullcontext()

    for step in (1, -1):
        if step < 0 and anchor == 0:
            break
        previous = None
        for start, count in _chunks(anchor, n_frames, chunk, step):
            state = new_inference_state(predictor, frames, offload_video_to_cpu, offload_state_to_cpu)
            with precision():
                for k, box in enumerate(boxes_xyxy):
                    predictor.add_new_points_or_box(state, frame_idx=anchor, obj_id=k, box=box)
                if start != anchor:
                    for k in range(n_objects):
                        if previous[k].any():
                            predictor.add_new_mask(state, frame_idx=start, obj_id=k, mask=torch.from_numpy(previous[k]))
            frames_out = predictor.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=count,
                                                      reverse=step < 0)
            while True:
                # step the predictor's generator under autocast, but yield outside it
                with precision():
                    item = next(frames_out, None)
                    if item is None:
                        break
                    t, obj_ids, logits = item
                    masks = (logits[:, 0] > 0).cpu().numpy()
                if list(obj_ids) != list(range(n_objects)):
                    raise RuntimeError(f"SAM2 returned objects {obj_ids}, expected 0..{n_objects - 1}")
                previous = masks
                if t != start or (start == anchor and step > 0):
                    yield int(t), masks
            del state, frames_out
