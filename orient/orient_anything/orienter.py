"""``orient-anything``: each agent's orientation per frame from Orient Anything (DESIGN §4).

For every agent (``Tracks2D.is_agent``) in every frame where it is visible:

1. Crop, as the public demo prepares an image (``utils.background_preprocess``): the mask's
   bounding box as the public ``resize_foreground`` cuts it (:func:`mask_bbox`: from the first
   mask row/column to the last one, *excluded*), centred in a square whose side is the box's
   longer side / ``foreground_ratio`` (0.85), with every pixel outside the mask, and outside the
   box, set to ``fill_rgb``. The public demo cuts the object out with rembg; we have the
   tracker's mask instead. Its cut-out is transparent black, and the transformers 4.x processor
   it ran with dropped the alpha channel (transformers 5 composites onto white), so the model saw
   black: ``fill_rgb`` defaults to (0, 0, 0). A mask one pixel thick leaves that crop empty and is
   treated as an empty mask. Without masks (``Tracks2D.masks`` is None) the same square is cut
   around the box with its background kept, and a warning says so once.
2. Model input as the transformers 4.x DINOv2 image processor (facebook/dinov2-large
   ``BitImageProcessor``, :func:`processor_pixels`, :func:`normalise`): shorter side resized to
   ``resize_size`` (256) with Pillow's bicubic (two separable passes rounded to uint8 in between;
   a single float pass differs by up to 13 levels), centre crop ``image_size`` (224), /255,
   ImageNet mean/std in float32. All crops of a clip are batched (``batch_size``) through the
   network under ``torch.no_grad`` (bf16 autocast on CUDA with ``dtype="auto"``; the public demo
   runs float32, ``dtype="float32"``).
3. Decoding (:func:`decode_logits`, the public ``inference.get_3angle``): argmax per group;
   azimuth = bin, polar = bin − 90, rotation = bin − 90 (180 bins, 722 outputs) or bin − 180
   (360 bins, 902 outputs), in degrees; conf = softmax(last two logits)[0].
4. Test-time augmentation (``tta``, the public ``get_3angle_infer_aug``): ``tta_crops`` random
   crops (each side 80–95 %) of the whole frame, then as many of the cut-out square (of the box
   square with its background when there are no masks), drawn by :func:`tta_crop_boxes` exactly
   as the public ``random_crop`` draws them from Python's ``random`` (one ``random.Random``
   seeded with ``tta_seed`` per ``orient`` call, consumed agent by agent and frame by frame), so
   runs repeat exactly. The views are decoded one by one and voted by :func:`combine_views`:
   outliers dropped by the 1.5 × IQR rule, azimuth averaged on the circle
   (:func:`circular_mean_deg`), polar averaged, conf averaged. Rotation is averaged like polar
   with 180 bins and **on the circle with 360 bins**, a deliberate difference: the public code
   averages 360-bin rotation linearly, so views at −178° and 178° vote for 0° instead of 180°.
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

import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon4d.checks import check_shape
from recon4d.backends import config_from_options
from recon4d.errors import Recon4dError
from recon4d.orient.orient_anything.layout import N_AZIMUTH, N_POLAR, ROTATION_BINS
from recon4d.types import Clip, Orientations, ProgressFn, Tracks2D

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
    "normalise",
    "processor_pixels",
    "random_subcrop",
    "square_window",
    "tta_crop_boxes",
    "to_model_input",
    "vote_circular",
    "vote_linear",
]

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
    """Random crops per source image with ``tta`` (the public demo: 3 of the frame + 3 of the cut-out)."""
    tta_seed: int = 0
    """Seed of the ``random.Random`` that draws the test-time crops of one ``orient`` call."""
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


_CANCELLED = 1e-12
"""Mean unit-vector components below this are rounding noise of vectors that cancel."""


def circular_mean_deg(angles_deg: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean direction of angles (degrees) along ``axis``, in [0, 360): 350° and 10° give 0°.

    The direction of the mean unit vector. When the vectors cancel (0° and 180°) it is undefined:
    mean components under 1e-12 count as 0, so such sets give 0° rather than the direction of
    rounding noise (the public float32 vote returns 90° for one of them).
    """
    radians = np.radians(np.asarray(angles_deg, np.float64))
    mean_sin, mean_cos = np.sin(radians).mean(axis=axis), np.cos(radians).mean(axis=axis)
    mean_sin = np.where(np.abs(mean_sin) < _CANCELLED, 0.0, mean_sin)
    mean_cos = np.where(np.abs(mean_cos) < _CANCELLED, 0.0, mean_cos)
    mean = np.mod(np.degrees(np.arctan2(mean_sin, mean_cos)), 360.0)
    return np.where(mean >= 360.0, mean - 360.0, mean)


def _iqr_inliers(values: np.ndarray) -> np.ndarray:
    """Values within [q1 − 1.5 IQR, q3 + 1.5 IQR] (linear quantiles; all of them if that would leave none)."""
    q1, q3 = np.quantile(values, [0.25, 0.75])
    spread = IQR_THRESHOLD * (q3 - q1)
    keep = (values >= q1 - spread) & (values <= q3 + spread)
    return keep if keep.any() else np.ones_like(keep)


def vote_linear(values: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of the (V,) values that are not 1.5 × IQR outliers, and which were kept (V,) bool.

    The public ``remove_outliers_and_average`` (which runs in float32; this runs in float64).
    """
    values = np.asarray(values, np.float64)
    check_shape("values", values, ("V",))
    keep = _iqr_inliers(values)
    return float(values[keep].mean()), keep


def vote_circular(angles_deg: np.ndarray) -> tuple[float, np.ndarray]:
    """Circular mean in [0, 360) of the (V,) angles whose unit vectors are not 1.5 × IQR outliers
    in distance to the mean unit vector, and which were kept (V,) bool.

    The public ``remove_outliers_and_average_circular`` (float32 there, float64 here).
    """
    angles_deg = np.asarray(angles_deg, np.float64)
    check_shape("angles_deg", angles_deg, ("V",))
    radians = np.radians(angles_deg)
    points = np.stack([np.cos(radians), np.sin(radians)], axis=1)
    keep = _iqr_inliers(np.linalg.norm(points - points.mean(axis=0), axis=1))
    return float(circular_mean_deg(angles_deg[keep])), keep


def combine_views(angles_deg: np.ndarray, conf: np.ndarray, rotation_bins: int = 180) -> tuple[np.ndarray, float]:
    """Vote the decoded angles (V, 3) and confs (V,) of V test-time views into one (3,) and a conf.

    As the public ``get_3angle_infer_aug``: azimuth = :func:`vote_circular`, polar =
    :func:`vote_linear`, conf = mean. Rotation is voted like polar with 180 bins; with 360 bins it
    is a full circle and is voted like azimuth, wrapped to [−180, 180) (the public code votes it
    linearly, which averages −178° and 178° to 0°: a deliberate difference).
    """
    angles_deg = np.asarray(angles_deg, np.float64)
    dims = check_shape("angles_deg", angles_deg, ("V", 3))
    check_shape("conf", np.asarray(conf), ("V",), dims)
    if rotation_bins not in ROTATION_BINS.values():
        raise Recon4dError(f"Orient Anything heads have 180 or 360 rotation bins, not {rotation_bins}.")
    azimuth, polar, rotation = angles_deg.T
    if rotation_bins == 360:
        rotation_mean = (vote_circular(rotation)[0] + 180.0) % 360.0 - 180.0
    else:
        rotation_mean = vote_linear(rotation)[0]
    combined = np.array([vote_circular(azimuth)[0], vote_linear(polar)[0], rotation_mean])
    return combined, float(np.mean(conf))


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The crop (x0, y0, x1, y1), x1/y1 exclusive, of a (H, W) bool mask as the public
    ``resize_foreground`` cuts it: x0/y0 the first mask column/row, x1/y1 the *last* one, so the
    last mask column and row fall outside the crop. None when that crop is empty (an empty mask,
    or one a single pixel thick).
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or rows[-1] == rows[0] or cols[-1] == cols[0]:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


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
                 fill_rgb: tuple[int, int, int] = (0, 0, 0),
                 bbox: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The (side, side, 3) uint8 square ``window`` (x, y, side) of ``frame`` (H, W, 3).

    Pixels outside the frame, outside ``mask`` ((H, W) bool) when one is given, and outside
    ``bbox`` (x0, y0, x1, y1 exclusive) when one is given, are ``fill_rgb``: with the mask and
    :func:`mask_bbox` this is the public cut-out, which drops the mask's last row and column.
    """
    x, y, side = window
    height, width = frame.shape[:2]
    fill = np.asarray(fill_rgb, np.uint8)
    crop = np.empty((side, side, 3), np.uint8)
    crop[:] = fill
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + side, width), min(y + side, height)
    if bbox is not None:
        left, top = max(left, bbox[0]), max(top, bbox[1])
        right, bottom = min(right, bbox[2]), min(bottom, bbox[3])
    if right > left and bottom > top:
        region = frame[top:bottom, left:right]
        if mask is not None:
            region = np.where(np.asarray(mask[top:bottom, left:right], bool)[..., None], region, fill)
        crop[top - y:bottom - y, left - x:right - x] = region
    return crop


def random_subcrop(rng: random.Random, width: int, height: int,
                   scale: tuple[float, float] = TTA_CROP_SCALE) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random crop of a ``width`` × ``height`` image, drawn as the
    public ``random_crop``: ``rng.randint`` for the width, the height (each ``scale`` of the
    image's, independently), then the left and top offsets, in that order. Sides are at least 1
    (the public code would fail on an image under 2 pixels)."""
    crop_w = rng.randint(max(int(width * scale[0]), 1), max(int(width * scale[1]), 1))
    crop_h = rng.randint(max(int(height * scale[0]), 1), max(int(height * scale[1]), 1))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    return left, top, left + crop_w, top + crop_h


def tta_crop_boxes(rng: random.Random, frame_size: tuple[int, int], square_side: int,
                   n_crops: int = 3) -> list[tuple[int, int, int, int]]:
    """The 2·``n_crops`` test-time crop boxes (left, top, right, bottom) of one prediction, in the
    public order: ``n_crops`` of the frame (``frame_size`` = (width, height)), then ``n_crops`` of
    the ``square_side`` square. ``random.Random(s)`` gives the boxes of ``random.seed(s)`` before
    the public ``get_3angle_infer_aug``."""
    sizes = [tuple(frame_size)] * n_crops + [(square_side, square_side)] * n_crops
    return [random_subcrop(rng, width, height) for width, height in sizes]


def processor_pixels(crop: np.ndarray, resize_size: int = 256, image_size: int = 224) -> np.ndarray:
    """(h, w, 3) uint8 RGB → (image_size, image_size, 3) uint8, as the transformers 4.x DINOv2
    processor before rescaling: the shorter side resized to ``resize_size`` and the longer to
    ``int(resize_size · long / short)`` by Pillow's bicubic (``reducing_gap=None``), then the
    centre crop at ((h' − image_size) // 2, (w' − image_size) // 2).

    Pillow resizes in two separable passes with fixed-point weights and rounds to uint8 between
    them; the public inputs are reproduced bit for bit only by Pillow itself.
    """
    from recon4d.optional import require

    image_module = require("PIL.Image", extra="track", purpose="the Orient Anything image processor")
    check_shape("crop", crop, ("h", "w", 3))
    height, width = crop.shape[:2]
    short, long = min(height, width), max(height, width)
    new_long = int(resize_size * long / short)
    new_h, new_w = (resize_size, new_long) if height <= width else (new_long, resize_size)
    image = image_module.fromarray(np.ascontiguousarray(crop, np.uint8), "RGB")
    resized = np.asarray(image.resize((new_w, new_h), image_module.Resampling.BICUBIC, reducing_gap=None))
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    return resized[top:top + image_size, left:left + image_size]


def normalise(pixels: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 → (3, S, S) float32 ImageNet-normalised, in the processor's float32
    arithmetic: x / 255 then (x − mean) / std, each rounded to float32."""
    check_shape("pixels", pixels, ("S", "S", 3))
    scaled = pixels.astype(np.float32) / np.float32(255.0)  # the same bits as the processor's x · (1/255) in float64
    normalised = (scaled - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(np.moveaxis(normalised, -1, 0))


def to_model_input(crop: np.ndarray, resize_size: int = 256, image_size: int = 224, device: str = "cpu"):
    """(h, w, 3) uint8 RGB → (3, image_size, image_size) float32 torch tensor on ``device``:
    :func:`processor_pixels` then :func:`normalise`, the public model input."""
    import torch

    return torch.from_numpy(normalise(processor_pixels(crop, resize_size, image_size))).to(device)


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

    def _crops(self, frame: np.ndarray, mask: np.ndarray | None, bbox, rng: random.Random) -> list[np.ndarray]:
        """The views of one agent in one frame: the cut-out (the box square when there is no mask),
        or with ``tta`` random crops of the whole frame and of that square (module docstring)."""
        config = self.config
        window = square_window(bbox, config.foreground_ratio)
        if mask is None:
            square = extract_crop(frame, window, None, config.fill_rgb)
        else:
            square = extract_crop(frame, window, mask, config.fill_rgb, bbox)
        if not config.tta:
            return [square]
        height, width = frame.shape[:2]
        boxes = tta_crop_boxes(rng, (width, height), window[2], config.tta_crops)
        sources = [frame] * config.tta_crops + [square] * config.tta_crops
        return [source[top:bottom, left:right] for source, (left, top, right, bottom) in zip(sources, boxes)]

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
        rng = random.Random(config.tta_seed)
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
        angles[~(conf >= config.conf_threshold)] = np.nan  # a NaN conf is not confident either
        if progress is not None:
            progress(max(len(items), 1), max(len(items), 1))
        return Orientations(angles_deg=angles.astype(np.float32), conf=conf.astype(np.float32))
