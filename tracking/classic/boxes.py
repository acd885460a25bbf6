"""Box helpers of the classic tracker: IoU, the box of a mask, the part of a box inside the image.

Boxes are (4,) or (N, 4) float64 xyxy in pixel edges.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "box_iou",
    "mask_box",
    "mask_window",
]


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) of xyxy boxes (N, 4) and (M, 4); NaN boxes give 0."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(1, -1, 4)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area_a + area_b - inter)
    return np.nan_to_num(iou, nan=0.0)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """(4,) float64 xyxy pixel-edge box of a non-empty (h, w) bool mask (x2 = last column + 1)."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return np.array([x, y, x + w, y + h], np.float64)


def mask_window(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice]:
    """Rows and columns of the bounding box of an (h, w) bool mask grown by ``margin`` px within
    the frame (empty slices for an empty mask and no margin): a mask's pixels read through the
    window come in the same raster order as on the whole frame, for a fraction of the work."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    height, width = mask.shape
    return (slice(max(y - margin, 0), min(y + h + margin, height)),
            slice(max(x - margin, 0), min(x + w + margin, width)))


def inside_fraction(box: np.ndarray, size: tuple[int, int]) -> float:
    width, height = size
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    inner_w = max(0.0, min(box[2], width) - max(box[0], 0))
    inner_h = max(0.0, min(box[3], height) - max(box[1], 0))
    return inner_w * inner_h / area
