"""``orient-anything``: each agent's orientation per frame from Orient Anything (DESIGN §4).

For every agent (``Tracks2D.is_agent``) in every frame where it is visible:

1. Crop, as the public demo prepares an image (``utils.background_preprocess``): the mask's
   bounding box, centred in a square whose side is the box's longer side / ``foreground_ratio``
   (0.85: the public ``resize_foreground``), with every pixel outside the mask, and outside the
   frame, set to ``fill_rgb``. The public demo cuts the object out with rembg; we have the
   tracker's mask instead. Its cut-out is transparent black, and the transformers 4.x processor
   it ran with turned transparency into the stored colour, so the model saw black: ``fill_rgb``
   defaults to (0, 0, 0). Without masks (``Tracks2D.masks`` is None) the same square is cut around
   the box with its background kept, and a warning says so once.
2. Model input as the DINOv2 image processor (facebook/dinov2-large ``BitImageProcessor``):
   shorter side resized to ``resize_size`` (256, bicubic, antialiased), centre crop
   ``image_size`` (224), /255, ImageNet mean/std. All crops of a clip are batched
   (``batch_size``) through the network under ``torch.no_grad`` (bf16 autocast on CUDA).
3. Decoding (:func:`decode_logits`, the public ``inference.get_3angle``): argmax per group;
   azimuth = bin, polar = bin − 90, rotation = bin − 90 (180 bins, 722 outputs) or bin − 180
   (360 bins, 902 outputs), in degrees; conf = softmax(last two logits)[0].
4. Test-time augmentation (``tta``, the public ``get_3angle_infer_aug``): ``tta_crops`` random
   crops (each side 80–95 %) of the square with its background and as many of the cut-out
   (box crops only when there are no masks), decoded one by one and voted by
   :func:`combine_views`: outliers dropped by the 1.5 × IQR rule, azimuth averaged on the
   circle (:func:`circular_mean_deg`), polar and rotation averaged (rotation on the circle
   when it has 360 bins), conf averaged. Crops are drawn from a generator seeded with
   ``tta_seed``, so runs repeat exactly.
5. Gating: frames whose conf is below ``conf_threshold`` (0.6) get NaN angles but keep their
   conf, so a consumer can see that the model was unsure; ``conf_threshold=0`` keeps every
   prediction (the public demo draws its axes above 0.5).

Non-agents, frames where an agent is not visible and visible frames with an empty mask get NaN
angles and NaN conf. Angles are camera-relative as DESIGN §2 defines them (Orient Anything's
own convention).

Weights (``$RECON4D_HOME/weights/orient-anything/``, nothing is downloaded)::

    orient-anything/
        dino_weight.pt        the public checkpoint: exactly one *.pt file, a state dict of the whole
                              model (fine-tuned DINOv2 + head) from Hugging Face Viglong/Orient-Anything,
                              e.g. croplargeEX2/dino_weight.pt (722 outputs) or ronormsigma1/dino_weight.pt
                              (902 outputs, the one the public demo Space runs)
        dinov2/config.json    config.json of the DINOv2 it was trained on (facebook/dinov2-large)

    OrientAnythingOrienter.from_config({"tta": True}, "cuda", weights_dir).orient(clip, tracks) -> Orientations
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from recon4d.checks import check_shape
from recon4d.backends import config_from_options
from recon4d.errors import Recon4dError
from recon4d.orient.orient_anything.layout import N_AZIMUTH, N_POLAR, ROTATION_BINS
from recon4d.types import Clip, Orientations, Tracks2D

__all__ = [
    "COMPONENT",
    "OrientAnythingConfig",
    "OrientAnythingOrienter",
    "ROTATION_BINS",
    "check_weights",
    "circular_mean_deg",
    "combine_views",
    "decode_logits",
    "extract_crop",
    "mask_bbox",
    "box_bbox",
    "random_subcrop",
    "square_window",
    "to_model_input",
]

ProgressFn = Callable[[int, int], None]

COMPONENT = "orient-anything"
"""Directory of the weights under the weights root (``recon4d.weights``)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TTA_CROP_SCALE = (0.8, 0.95)
"""Side fraction range of the public test-time random crops (``utils.random_crop``)."""
IQR_THRESHOLD = 1.5
"""Outlier rule of the public test-time vote (``remove_outliers_and_average``)."""


@dataclass(frozen=True)
class OrientAnythingConfig:
    """Settings of :class:`OrientAnythingOrienter` (module docstring); defaults follow the public demo."""

    conf_threshold: float = 0.6
    """Frames with conf below this get NaN angles (conf kept); 0 keeps every prediction."""
    tta: bool = False
    """Test-time augmentation: vote over random crops (the public demo's option, off by default there too)."""
    tta_crops: int = 3
    """Random crops per source image with ``tta`` (the public demo: 3 with background + 3 cut out)."""
    tta_seed: int = 0
    """Seed of the test-time crops."""
    batch_size: int = 32
    """Crops per forward pass."""
    foreground_ratio: float = 0.85
    """Fraction of the square crop's side the agent's longer box side fills (public: 0.85)."""
    resize_size: int = 256
    """Shorter side after resizing, before the centre crop (DINOv2 processor: 256)."""
    image_size: int = 224
    """Side of the centre crop fed to the network (DINOv2 processor: 224)."""
    fill_rgb: tuple[int, int, int] = (0, 0, 0)
    """Colour of the removed background and of the padding outside the frame."""
    dtype: str = "auto"
    """"auto" (bf16 autocast on CUDA, float32 on CPU), "float32" or "bfloat16"."""

    def __post_init__(self) -> None:
        fill = tuple(int(c) for c in np.ravel(self.fill_rgb))
        if len(fill) != 3 or not all(0 <= c <= 255 for c in fill):
            raise Recon4dError(f"orient-anything fill_rgb must be three integers in [0, 255], got {self.fill_rgb}.")
        object.__setattr__(self, "fill_rgb", fill)
        if not 0.0 <= self.conf_threshold <= 1.0:
            raise Recon4dError(f"orient-anything conf_threshold must lie in [0, 1], got {self.conf_threshold}.")
        if self.batch_size < 1 or self.tta_crops < 1:
            raise Recon4dError(f"orient-anything batch_size and tta_crops must be at least 1, got "
                               f"{self.batch_size} and {self.tta_crops}.")
        if not 0.0 < self.foreground_ratio <= 1.0:
            raise Recon4dError(f"orient-anything foreground_ratio must lie in (0, 1], got {self.foreground_ratio}.")
        if not 1 <= self.image_size <= self.resize_size:
            raise Recon4dError(f"orient-anything needs 1 ≤ image_size ≤ resize_size, got image_size="
                               f"{self.image_size}, resize_size={self.resize_size}.")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise Recon4dError(f"orient-anything dtype must be auto, float32 or bfloat16, got {self.dtype!r}.")


def decode_logits(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angles (N, 3) float64 degrees and conf (N,) from network outputs (N, 722 | 902).

    Layout: 360 azimuth bins, 180 polar bins, 180 or 360 rotation bins, 2 confidence logits.
    azimuth = argmax ∈ [0, 360); polar = argmax − 90 ∈ [−90, 90); rotation = argmax − 90 ∈
    [−90, 90) (180 bins) or argmax − 180 ∈ [−180, 180) (360 bins); conf = softmax(last 2)[0].
    """
    logits = np.asarray(logits, np.float64)
    check_shape("logits", logits, ("N", None))
    n_outputs = logits.shape[1]
    if n_outputs not in ROTATION_BINS:
        raise Recon4dError(f"Orient Anything outputs 722 or 902 logits per image, got {n_outputs}.")
    rotation_bins = ROTATION_BINS[n_outputs]
    polar_start = N_AZIMUTH
    rotation_start = polar_start + N_POLAR
    azimuth = np.argmax(logits[:, :polar_start], axis=1)
    polar = np.argmax(logits[:, polar_start:rotation_start], axis=1) - N_POLAR // 2
    rotation = np.argmax(logits[:, rotation_start:rotation_start + rotation_bins], axis=1) - rotation_bins // 2
    pair = logits[:, -2:]
    conf = 1.0 / (1.0 + np.exp(pair[:, 1] - pair[:, 0]))  # softmax(pair)[0], overflow-safe
    return np.stack([azimuth, polar, rotation], axis=1).astype(np.float64), conf


def circular_mean_deg(angles_deg: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean direction of angles (degrees) along ``axis``, in [0, 360): 350° and 10° give 0°.

    The direction of the mean unit vector; when the vectors cancel (0° and 180°) it is
    undefined and this returns 0.
    """
    radians = np.radians(np.asarray(angles_deg, np.float64))
    mean = np.degrees(np.arctan2(np.sin(radians).mean(axis=axis), np.cos(radians).mean(axis=axis)))
    mean = np.mod(mean, 360.0)
    return np.where(mean >= 360.0, mean - 360.0, mean)


def _iqr_inliers(values: np.ndarray) -> np.ndarray:
    """Values within [q1 − 1.5 IQR, q3 + 1.5 IQR] (all of them if that would leave none)."""
    q1, q3 = np.quantile(values, [0.25, 0.75])
    spread = IQR_THRESHOLD * (q3 - q1)
    keep = (values >= q1 - spread) & (values <= q3 + spread)
    return keep if keep.any() else np.ones_like(keep)


def _robust_circular_mean(angles_deg: np.ndarray) -> float:
    """Circular mean of the angles whose unit vectors are not IQR outliers in distance to the mean vector."""
    radians = np.radians(angles_deg)
    points = np.stack([np.cos(radians), np.sin(radians)], axis=1)
    distance = np.linalg.norm(points - points.mean(axis=0), axis=1)
    return float(circular_mean_deg(angles_deg[_iqr_inliers(distance)]))


def combine_views(angles_deg: np.ndarray, conf: np.ndarray, rotation_bins: int = 180) -> tuple[np.ndarray, float]:
    """Vote the decoded angles (V, 3) and confs (V,) of V test-time views into one (3,) and a conf.

    As the public ``get_3angle_infer_aug``: azimuth = circular mean, polar = mean, each over the
    views that are not 1.5 × IQR outliers; conf = mean. Rotation is averaged like polar with 180
    bins and like azimuth with 360 bins (it is then a full circle), wrapped to [−180, 180).
    """
    angles_deg = np.asarray(angles_deg, np.float64)
    dims = check_shape("angles_deg", angles_deg, ("V", 3))
    check_shape("conf", np.asarray(conf), ("V",), dims)
    azimuth, polar, rotation = angles_deg.T
    if rotation_bins == 360:
        rotation_mean = (_robust_circular_mean(rotation) + 180.0) % 360.0 - 180.0
    else:
        rotation_mean = float(rotation[_iqr_inliers(rotation)].mean())
    combined = np.array([_robust_circular_mean(azimuth), polar[_iqr_inliers(polar)].mean(), rotation_mean])
    return combined, float(np.mean(conf))


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Pixel bounds (x0, y0, x1, y1) of a (H, W) bool mask, x1/y1 exclusive; None when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def box_bbox(box_xyxy: np.ndarray, source_size: tuple[int, int],
             image_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """A box in source-video pixels → pixel bounds (x1/y1 exclusive) in frames of ``image_size``
    (width, height), clipped to the frame; None when NaN or empty."""
    box = np.asarray(box_xyxy, np.float64)
    if not np.isfinite(box).all():
        return None
    (src_w, src_h), (width, height) = source_size, image_size
    scale = np.array([width / src_w, height / src_h] * 2)
    x0, y0, x1, y1 = box * scale
    x0, y0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    x1, y1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def square_window(bbox: tuple[int, int, int, int], foreground_ratio: float = 0.85) -> tuple[int, int, int]:
    """(x, y, side) of the square crop around ``bbox`` (x0, y0, x1, y1): the box is padded to a
    square on its longer side, then by 1/foreground_ratio, centred as the public ``resize_foreground``."""
    x0, y0, x1, y1 = bbox
    width, height = x1 - x0, y1 - y0
    size = max(width, height)
    side = max(int(size / foreground_ratio), 1)
    margin = (side - size) // 2
    return x0 - (size - width) // 2 - margin, y0 - (size - height) // 2 - margin, side


def extract_crop(frame: np.ndarray, window: tuple[int, int, int], mask: np.ndarray | None = None,
                 fill_rgb: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """The (side, side, 3) uint8 square ``window`` (x, y, side) of ``frame`` (H, W, 3).

    Pixels outside the frame, and outside ``mask`` ((H, W) bool) when one is given, are ``fill_rgb``.
    """
    x, y, side = window
    height, width = frame.shape[:2]
    fill = np.asarray(fill_rgb, np.uint8)
    crop = np.empty((side, side, 3), np.uint8)
    crop[:] = fill
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + side, width), min(y + side, height)
    if right > left and bottom > top:
        region = frame[top:bottom, left:right]
        if mask is not None:
            region = np.where(np.asarray(mask[top:bottom, left:right], bool)[..., None], region, fill)
        crop[top - y:bottom - y, left - x:right - x] = region
    return crop


def random_subcrop(rng: np.random.Generator, height: int, width: int,
                   scale: tuple[float, float] = TTA_CROP_SCALE) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random crop whose sides are ``scale`` fractions of the image's
    (drawn independently, as the public ``random_crop``), placed uniformly."""
    crop_w = int(rng.integers(max(int(width * scale[0]), 1), max(int(width * scale[1]), 1) + 1))
    crop_h = int(rng.integers(max(int(height * scale[0]), 1), max(int(height * scale[1]), 1) + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return left, top, left + crop_w, top + crop_h


def to_model_input(crop: np.ndarray, resize_size: int = 256, image_size: int = 224, device: str = "cpu"):
    """(h, w, 3) uint8 RGB → (3, image_size, image_size) float32 torch tensor on ``device``, as the
    DINOv2 processor: shorter side resized to ``resize_size`` (bicubic, antialiased, rounded to
    uint8 like PIL), centre crop, /255, ImageNet normalisation.
    """
    import torch
    import torch.nn.functional as F

    check_shape("crop", crop, ("h", "w", 3))
    height, width = crop.shape[:2]
    short, long = min(height, width), max(height, width)
    new_long = int(resize_size * long / short)
    new_h, new_w = (resize_size, new_long) if height <= width else (new_long, resize_size)
    image = torch.from_numpy(np.ascontiguousarray(crop)).to(device).permute(2, 0, 1)[None].float()
    image = F.interpolate(image, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
    image = image.round().clamp(0, 255)[0]
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    image = image[:, top:top + image_size, left:left + image_size] / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    return (image - mean) / std


def check_weights(path: Path) -> str:
    """Load ``path`` (the orient-anything component directory) on CPU strictly; a short summary.

    Raises :class:`recon4d.errors.Recon4dError` naming a missing config or checkpoint, or the
    checkpoint keys that are missing, unexpected or mis-shaped.
    """
    from recon4d.optional import require

    require("torch", extra="track", purpose="the Orient Anything backend")
    from recon4d.orient.orient_anything.model import find_checkpoint, load_orient_anything

    path = Path(path)
    model = load_orient_anything(path)
    config = model.dinov2.config
    return (f"Orient Anything ({find_checkpoint(path).name}), DINOv2 {config.num_hidden_layers} layers × "
            f"{config.hidden_size}, {model.n_outputs} outputs ({model.rotation_bins} rotation bins)")


class OrientAnythingOrienter:
    """Learned orient backend: Orient Anything on each agent's background-free crop (module docstring)."""

    name = "orient-anything"
    version = "1"

    def __init__(self, model, config: OrientAnythingConfig = OrientAnythingConfig(), device: str = "cpu",
                 weights_sha256: str | None = None) -> None:
        self.model = model
        self.config = config
        self.device = str(device)
        self.weights_sha256 = weights_sha256

    @classmethod
    def from_pretrained(cls, directory: str | Path, config: OrientAnythingConfig = OrientAnythingConfig(),
                        device: str = "cpu") -> OrientAnythingOrienter:
        """Load the component directory (``*.pt`` + ``dinov2/config.json``) onto ``device``."""
        from recon4d.optional import require
        from recon4d.weights import sha256_path

        torch = require("torch", extra="track", purpose="the Orient Anything backend")
        require("transformers", extra="track", purpose="the Orient Anything backbone")
        from recon4d.orient.orient_anything.model import load_orient_anything

        directory = Path(directory)
        if not directory.is_dir():
            raise Recon4dError(f"the Orient Anything weights {directory}/ are missing: put the public checkpoint "
                               "(dino_weight.pt from Viglong/Orient-Anything) and facebook/dinov2-large's config.json "
                               "(as dinov2/config.json) there, or choose --orient motion.")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise Recon4dError("--device cuda was asked for but torch sees no CUDA device; use --device cpu.")
        model = load_orient_anything(directory).to(device)
        return cls(model, config, str(device), sha256_path(directory))

    @classmethod
    def from_config(cls, options: dict | None = None, device: str = "cpu",
                    weights_dir: Path | None = None) -> OrientAnythingOrienter:
        """Build from options named like :class:`OrientAnythingConfig` fields, loading
        ``weights_dir/orient-anything`` (default ``$RECON4D_HOME/weights``)."""
        from recon4d.settings import weights_dir as default_weights_dir

        config = config_from_options(OrientAnythingConfig, options, "orient-anything orienter")
        return cls.from_pretrained(Path(weights_dir or default_weights_dir()) / COMPONENT, config, device)

    def _logits(self, images: list) -> np.ndarray:
        """Network outputs (N, n) float32 of N model inputs (3, S, S)."""
        import torch

        batch = torch.stack(images).to(self.device)  # crops are prepared on the device already
        on_cuda = self.device.startswith("cuda")
        bf16 = self.config.dtype == "bfloat16" or (self.config.dtype == "auto" and on_cuda)
        with torch.no_grad(), torch.autocast(device_type="cuda" if on_cuda else "cpu", dtype=torch.bfloat16,
                                             enabled=bf16):
            return self.model(batch).float().cpu().numpy()

    def _crops(self, frame: np.ndarray, mask: np.ndarray | None, bbox, rng: np.random.Generator) -> list[np.ndarray]:
        """The views of one agent in one frame: the cut-out, or with ``tta`` random crops of it and of
        the same square with its background."""
        config = self.config
        window = square_window(bbox, config.foreground_ratio)
        clean = extract_crop(frame, window, mask, config.fill_rgb)
        if not config.tta:
            return [clean]
        sources = [clean, clean] if mask is None else [extract_crop(frame, window, None, config.fill_rgb), clean]
        views = []
        for source in sources:
            for _ in range(config.tta_crops):
                left, top, right, bottom = random_subcrop(rng, *source.shape[:2])
                views.append(source[top:bottom, left:right])
        return views

    def orient(self, clip: Clip, tracks: Tracks2D, recon=None, lifted=None,
               progress: ProgressFn | None = None) -> Orientations:
        """Orientation (K, T, 3) deg and conf (K, T) of every tracked object (module docstring).

        ``recon`` and ``lifted`` are not needed (the protocol passes them to every orienter).
        """
        config = self.config
        dims = check_shape("clip.frames", clip.frames, ("T", "H", "W", 3))
        dims = check_shape("tracks.visible", tracks.visible, ("K", "T"), dims)
        if tracks.masks is not None:
            check_shape("tracks.masks", tracks.masks, ("K", "T", "H", "W"), dims)
        n_objects, n_frames = dims["K"], dims["T"]
        angles = np.full((n_objects, n_frames, 3), np.nan)
        conf = np.full((n_objects, n_frames), np.nan)
        items = [(k, t) for k in np.flatnonzero(tracks.is_agent) for t in np.flatnonzero(tracks.visible[k])]
        if items and tracks.masks is None:
            warnings.warn("the tracks have no masks, so Orient Anything sees each agent's box crop with its "
                          "background (the model was made for background-free crops); orientations may be less "
                          "reliable. The sam2 tracker gives masks.", stacklevel=2)
        rng = np.random.default_rng(config.tta_seed)
        pending, owners, outputs = [], [], []
        for i, (k, t) in enumerate(items):
            if tracks.masks is None:
                mask = None
                bbox = box_bbox(tracks.boxes_xyxy[k, t], clip.source_size, clip.image_size)
            else:
                mask = np.asarray(tracks.masks[k, t], bool)
                bbox = mask_bbox(mask)
            if bbox is None:
                continue
            for crop in self._crops(clip.frames[t], mask, bbox, rng):
                pending.append(to_model_input(crop, config.resize_size, config.image_size, self.device))
                owners.append(i)
                if len(pending) == config.batch_size:
                    outputs.append(self._logits(pending))
                    pending = []
                    if progress is not None:
                        progress(i, len(items))
        if pending:
            outputs.append(self._logits(pending))
        if outputs:
            logits = np.concatenate(outputs)
            view_angles, view_conf = decode_logits(logits)
            rotation_bins = ROTATION_BINS[logits.shape[1]]
            owners = np.asarray(owners)
            starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
            for start, stop in zip(starts, np.r_[starts[1:], len(owners)]):
                k, t = items[owners[start]]
                if config.tta:
                    angles[k, t], conf[k, t] = combine_views(view_angles[start:stop], view_conf[start:stop],
                                                             rotation_bins)
                else:
                    angles[k, t], conf[k, t] = view_angles[start], view_conf[start]
        # Gating: an unsure prediction is reported as unknown, with its conf kept as evidence.
        angles[conf < config.conf_threshold] = np.nan
        if progress is not None:
            progress(max(len(items), 1), max(len(items), 1))
        return Orientations(angles_deg=angles.astype(np.float32), conf=conf.astype(np.float32))
