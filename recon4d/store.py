"""Scene store: one Zarr v3 group per clip, format ``recon4d.scene`` version 1 (DESIGN §3).

    attrs: format, version, source, backends, config, created, recon4d_version
    time/timestamps          (T,)        float64
    time/frame_index         (T,)        int64
    camera/cam_to_world      (T,4,4)     float64
    camera/intrinsics        (T,3,3)     float32
    geometry/local_points    (T,H,W,3)   float16  chunk = one frame   (optional)
    geometry/conf            (T,H,W)     float16                      (optional)
    objects/id               (K,)        int32
    objects/category         (K,)        str
    objects/is_agent         (K,)        bool
    objects/visible          (K,T)       bool
    objects/box_xyxy         (K,T,4)     float32
    objects/center_world     (K,T,3)     float64
    objects/extent           (K,T,3)     float32                      (optional)
    objects/orientation      (K,T,3)     float32
    objects/orient_conf      (K,T)       float32
    objects/masks            (K,T,H,⌈W/8⌉) uint8, bits packed along W (optional)

A store is written to ``PATH.partial`` and renamed when complete, so a crash never leaves
something that opens as a finished store. Heavy arrays are read lazily.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recon4d import __version__
from recon4d.errors import ShapeError, StoreError
from recon4d.types import Scene, SourceInfo

FORMAT = "recon4d.scene"
VERSION = 1

# name → (store path, dtype, dims, required)
_SMALL_ARRAYS = {
    "timestamps_s": ("time/timestamps", np.float64, ("T",), True),
    "frame_index": ("time/frame_index", np.int64, ("T",), True),
    "cam_to_world": ("camera/cam_to_world", np.float64, ("T", 4, 4), True),
    "intrinsics": ("camera/intrinsics", np.float32, ("T", 3, 3), True),
    "ids": ("objects/id", np.int32, ("K",), True),
    "is_agent": ("objects/is_agent", np.bool_, ("K",), True),
    "visible": ("objects/visible", np.bool_, ("K", "T"), True),
    "box_xyxy": ("objects/box_xyxy", np.float32, ("K", "T", 4), True),
    "center_world": ("objects/center_world", np.float64, ("K", "T", 3), True),
    "orientation": ("objects/orientation", np.float32, ("K", "T", 3), True),
    "orient_conf": ("objects/orient_conf", np.float32, ("K", "T"), True),
    "extent": ("objects/extent", np.float32, ("K", "T", 3), False),
}
_CATEGORY_PATH = "objects/category"
_POINTS_PATH = "geometry/local_points"
_CONF_PATH = "geometry/conf"
_MASKS_PATH = "objects/masks"


def _zarr():
    import zarr  # a core dependency; imported here to keep `import recon4d` light

    return zarr


class PackedMasks:
    """Lazy (K, T, H, W) bool view of bit-packed masks in a store.

    Index it like a numpy array on the first two axes (``masks[k, t]``, ``masks[:, t]``);
    only the chunks touched are read and unpacked. ``np.asarray(masks)`` reads everything.
    """

    def __init__(self, packed, width: int):
        self._packed = packed
        self.width = int(width)
        k, t, h, _ = packed.shape
        self.shape = (k, t, h, self.width)
        self.dtype = np.dtype(bool)
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if not isinstance(index, tuple):
            index = (index,)
        if any(i is Ellipsis for i in index) or len(index) > 4:
            raise IndexError("PackedMasks takes up to four explicit indices (k, t, y, x), no Ellipsis")
        index = index + (slice(None),) * (4 - len(index))
        packed = np.asarray(self._packed[index[:3] + (slice(None),)])
        bits = np.unpackbits(packed, axis=-1, count=self.width).astype(bool)
        return bits[..., index[3]]

    def __array__(self, dtype=None, copy=None):
        bits = self[:]
        return bits if dtype is None else bits.astype(dtype)


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def write_scene(scene: Scene, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``scene`` as a store at ``path`` (conventionally ``NAME.zarr``).

    Everything goes to ``path + ".partial"`` first and is renamed at the end. Heavy arrays
    are copied one frame at a time, so a lazy source (another store) is never loaded whole.
    Raises StoreError if ``path`` exists and ``overwrite`` is False.
    """
    zarr = _zarr()
    path = Path(path)
    if path.exists() and not overwrite:
        raise StoreError(
            f"{path} already exists; choose another output path or pass overwrite=True "
            "(--overwrite on the command line) to replace it."
        )
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        root = zarr.open_group(str(partial), mode="w", zarr_format=3)
        for name, (store_path, dtype, _, required) in _SMALL_ARRAYS.items():
            value = getattr(scene, name)
            if value is None:
                continue
            root.create_array(store_path, data=np.ascontiguousarray(value, dtype=dtype))
        categories = np.array(list(scene.categories), dtype=str) if scene.categories else np.zeros(0, str)
        cat = root.create_array(_CATEGORY_PATH, shape=(scene.n_objects,), dtype=str)
        if scene.n_objects:
            cat[:] = categories
        if scene.local_points is not None:
            _write_framewise(root, _POINTS_PATH, scene.local_points, np.float16, frame_axis=0)
        if scene.conf is not None:
            _write_framewise(root, _CONF_PATH, scene.conf, np.float16, frame_axis=0)
        if scene.masks is not None:
            _write_masks(root, scene.masks)
        root.attrs.update(
            {
                "format": FORMAT,
                "version": VERSION,
                "source": scene.source.to_json() if scene.source else None,
                "backends": scene.backends,
                "config": scene.config,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "recon4d_version": __version__,
            }
        )
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    partial.rename(path)
    return path


def _write_framewise(root, store_path: str, source, dtype, frame_axis: int) -> None:
    shape = tuple(source.shape)
    chunks = tuple(1 if axis == frame_axis else size for axis, size in enumerate(shape))
    target = root.create_array(store_path, shape=shape, dtype=dtype, chunks=chunks)
    with np.errstate(over="ignore"):  # float16 overflow of far points becomes inf, not an error
        for t in range(shape[frame_axis]):
            target[t] = np.asarray(source[t], dtype=dtype)


def _write_masks(root, masks) -> None:
    k, t, h, w = masks.shape
    target = root.create_array(_MASKS_PATH, shape=(k, t, h, (w + 7) // 8), dtype=np.uint8,
                               chunks=(1, 1, h, (w + 7) // 8))
    target.attrs.update({"encoding": "packbits", "width": int(w)})
    for ti in range(t):
        frame = np.asarray(masks[:, ti], dtype=bool)
        target[:, ti] = np.packbits(frame, axis=-1)


def open_scene(path: str | Path) -> Scene:
    """Open and validate a scene store; heavy arrays come back lazy.

    Raises StoreError when ``path`` is not a store, was written by another format or version,
    or has missing/misshapen arrays — the message says which and what to do.
    """
    zarr = _zarr()
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path} does not exist; pass the path of a scene store (a NAME.zarr folder "
                         "written by `recon4d process` or `recon4d synth`).")
    if path.with_name(path.name + ".partial").exists() and not (path / "zarr.json").exists():
        raise StoreError(f"{path} was never completed (only {path.name}.partial exists); the run "
                         "that wrote it stopped early — run it again.")
    if not path.is_dir() or not (path / "zarr.json").exists():
        raise StoreError(f"{path} is not a recon4d scene store (no Zarr v3 group there); pass the "
                         "NAME.zarr folder written by `recon4d process` or `recon4d synth`.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise StoreError(f"{path} cannot be opened as a Zarr v3 group ({exc}); it is not a valid "
                         "recon4d scene store. Re-create it with `recon4d process`.") from exc
    attrs = dict(root.attrs)
    if attrs.get("format") != FORMAT:
        raise StoreError(f"{path} is a Zarr group but not a recon4d scene store (format is "
                         f"{attrs.get('format')!r}, expected {FORMAT!r}).")
    version = attrs.get("version")
    if version != VERSION:
        age = "newer" if isinstance(version, int) and version > VERSION else "older or unknown"
        raise StoreError(f"{path} has store version {version!r}, written by a {age} recon4d; this "
                         f"recon4d ({__version__}) reads version {VERSION}. Re-process the video with "
                         "this version, or open it with the recon4d version that wrote it "
                         f"({attrs.get('recon4d_version', 'unknown')}).")

    def read(store_path: str, required: bool):
        try:
            return root[store_path]
        except KeyError:
            if required:
                raise StoreError(f"{path} is missing the array {store_path}; the store is damaged or "
                                 "was not written by recon4d. Re-create it.") from None
            return None

    values: dict = {}
    for name, (store_path, dtype, dims, required) in _SMALL_ARRAYS.items():
        array = read(store_path, required)
        if array is None:
            values[name] = None
            continue
        if np.dtype(array.dtype) != np.dtype(dtype):
            raise StoreError(f"{path}: array {store_path} has dtype {array.dtype}, expected "
                             f"{np.dtype(dtype)}; the store is damaged or from another tool.")
        values[name] = np.asarray(array[...])
    categories = read(_CATEGORY_PATH, True)
    values["categories"] = tuple(str(c) for c in np.asarray(categories[...]).tolist())
    values["local_points"] = read(_POINTS_PATH, False)
    values["conf"] = read(_CONF_PATH, False)
    masks = read(_MASKS_PATH, False)
    values["masks"] = PackedMasks(masks, masks.attrs["width"]) if masks is not None else None
    source = attrs.get("source")
    try:
        return Scene(
            **values,
            source=SourceInfo.from_json(source) if source else None,
            backends=dict(attrs.get("backends") or {}),
            config=dict(attrs.get("config") or {}),
        )
    except ShapeError as exc:
        raise StoreError(f"{path} is inconsistent: {exc} The store is damaged; re-create it.") from exc


def store_attrs(path: str | Path) -> dict:
    """The root attributes of a store (format, version, source, backends, config, created...)."""
    open_scene(path)  # validates
    return dict(_zarr().open_group(str(path), mode="r").attrs)
