"""Scene store: one Zarr v3 group per clip, format ``recon4d.scene`` version 2 (DESIGN §3).

    attrs: format, version, source (with video_id), backends, config, unit, warnings, created,
           recon4d_version
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
    objects/observed         (K,T)       bool   found by the tracker, not carried (optional)
    objects/masks            (K,T,H,⌈W/8⌉) uint8, bits packed along W (optional)
    quality/object/<field>   (K,)        ObjectQuality fields: float32, or int32 for counts (optional)
    quality/object/issues    (K,)        str
    quality/object/frame_ok  (K,T)       bool
    quality/camera/<field>   (T,)        inlier_ratio, reprojection_px float32; frozen, frame_ok bool
                                         (optional; attrs: motion, scale_source, score)

Version 2 added ``quality/`` (the per-object and per-camera quality record); version 1 stores
still open, without it. Object quality fields added within version 2 (``noise_m``,
``smooth_lambda_s3``; then ``track_fraction``, ``box_stable_fraction``) read as NaN from a
version 2 store written before them. A store of a newer version is refused with a clear error.

``unit`` says what one world unit is ("metric", "arbitrary": one unknown scale, e.g. π³, or
"unknown" in stores written before it was recorded); ``warnings`` lists the fallbacks taken
while the scene was made. Point maps are float16: values beyond its range (±65504) are
clamped to it and the number of clamped values is recorded in ``geometry/local_points``'s
attrs (``clamped``) and in ``warnings``, never stored as inf.

A store is written to a unique hidden temporary folder beside ``PATH`` and swapped into place
when complete (:mod:`recon4d.outputs`), so a crash never leaves something that opens as a
finished store, and a second writer of the same path is refused. ``attrs["integrity"]``
records every array's chunk count and content sha256 and their combined checksum:
:func:`open_scene` checks every array's presence and every chunk file (a missing chunk is an
error naming it, never zeros), :func:`verify_scene` re-reads everything and recomputes the
checksum. Heavy arrays are read lazily.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recon4d import __version__
from recon4d.errors import ShapeError, StoreError
from recon4d.types import CameraQuality, ObjectQuality, PackedMasks, Scene, SourceInfo

FORMAT = "recon4d.scene"
VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Store versions this recon4d opens (1: before the quality record and warnings)."""

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
    "observed": ("objects/observed", np.bool_, ("K", "T"), False),
}
_CATEGORY_PATH = "objects/category"
_POINTS_PATH = "geometry/local_points"
_CONF_PATH = "geometry/conf"
_MASKS_PATH = "objects/masks"
_CHECKSUM_ALGORITHM = "recon4d-content-sha256-v1"
# Every chunk is written, even one equal to the fill value, so a missing chunk file is damage.
_WRITE_ALL_CHUNKS = {"write_empty_chunks": True}
_OBJECT_QUALITY = "quality/object"
_CAMERA_QUALITY = "quality/camera"
_OBJECT_QUALITY_ARRAYS = {name: np.int32 if name in ("depth_jumps", "id_switch_steps") else np.float32
                          for name in ObjectQuality.FIELDS} | {"frame_ok": np.bool_}
_CAMERA_QUALITY_ARRAYS = {"inlier_ratio": np.float32, "reprojection_px": np.float32, "frozen": np.bool_,
                          "frame_ok": np.bool_}
_ISSUES_PATH = f"{_OBJECT_QUALITY}/issues"
_LATER_OBJECT_FIELDS = {"noise_m": np.nan, "smooth_lambda_s3": np.nan, "track_fraction": np.nan,
                        "box_stable_fraction": np.nan, "motion_evidence": np.nan}
"""Quality fields added within version 2, and the value they read as where a store lacks them."""
_STRING_ARRAYS = (_CATEGORY_PATH, _ISSUES_PATH)
_QUALITY_PATHS = ([f"{_OBJECT_QUALITY}/{n}" for n in _OBJECT_QUALITY_ARRAYS] + [_ISSUES_PATH]
                  + [f"{_CAMERA_QUALITY}/{n}" for n in _CAMERA_QUALITY_ARRAYS])


def _zarr():
    import zarr  # a core dependency; imported here to keep `import recon4d` light

    return zarr


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a folder a recon4d store was (or is being) written to: a Zarr group
    whose format is ``recon4d.scene``, or an empty folder. Only those are replaced by
    ``overwrite``, so a user's folder is never deleted by mistake."""
    path = Path(path)
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and isinstance(meta.get("attributes"), dict) \
        and meta["attributes"].get("format") == FORMAT


def write_scene(scene: Scene, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``scene`` as a store at ``path`` (conventionally ``NAME.zarr``).

    Everything goes to a unique hidden temporary folder beside ``path`` that is swapped into
    place at the end (:func:`recon4d.outputs.atomic_output`, which also locks ``path`` against
    a second writer). Heavy arrays are copied one frame at a time, so a lazy source (another
    store) is never loaded whole. Every chunk is written (even all-fill ones) and the store
    records its chunk counts and a content checksum (``attrs["integrity"]``) that
    :func:`open_scene` and :func:`verify_scene` check. Raises StoreError if ``path`` exists and
    ``overwrite`` is False, OutputError if it cannot be written.
    """
    from recon4d.outputs import atomic_output

    zarr = _zarr()
    path = Path(path)
    if os.path.lexists(path) and not overwrite:
        raise StoreError(
            f"{path} already exists; choose another output path or pass overwrite=True "
            "(--overwrite on the command line) to replace it."
        )
    with atomic_output(path, "dir", overwrite=overwrite, replaceable=is_store, what="scene store") as staging:
        root = zarr.open_group(str(staging), mode="w", zarr_format=3)
        digests: dict[str, str] = {}
        for name, (store_path, dtype, _, required) in _SMALL_ARRAYS.items():
            value = getattr(scene, name)
            if value is None:
                continue
            data = np.ascontiguousarray(value, dtype=dtype)
            root.create_array(store_path, data=data, config=_WRITE_ALL_CHUNKS)
            digests[store_path] = _digest_blocks(store_path, data.dtype, data.shape, [data])
        categories = np.array(list(scene.categories), dtype=str) if scene.categories else np.zeros(0, str)
        cat = root.create_array(_CATEGORY_PATH, shape=(scene.n_objects,), dtype=str, config=_WRITE_ALL_CHUNKS)
        if scene.n_objects:
            cat[:] = categories
        digests[_CATEGORY_PATH] = _digest_strings(scene.categories)
        notes = list(scene.warnings)
        if scene.local_points is not None:
            digests[_POINTS_PATH], clamped = _write_framewise(root, _POINTS_PATH, scene.local_points, np.float16)
            if clamped:
                notes.append(f"store: {clamped} point coordinates beyond the float16 range (±65504) were "
                             "clamped to it")
        if scene.conf is not None:
            digests[_CONF_PATH], _ = _write_framewise(root, _CONF_PATH, scene.conf, np.float16)
        if scene.masks is not None:
            digests[_MASKS_PATH] = _write_masks(root, scene.masks)
        if scene.object_quality is not None:
            digests.update(_write_object_quality(root, scene.object_quality))
        if scene.camera_quality is not None:
            digests.update(_write_camera_quality(root, scene.camera_quality))
        root.attrs.update(
            {
                "format": FORMAT,
                "version": VERSION,
                "source": scene.source.to_json() if scene.source else None,
                "backends": scene.backends,
                "config": scene.config,
                "unit": scene.unit,
                "warnings": notes,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "recon4d_version": __version__,
                "integrity": {
                    "algorithm": _CHECKSUM_ALGORITHM,
                    "sha256": _combine(digests),
                    "arrays": {p: {"chunks": _n_chunks(root[p]), "sha256": d} for p, d in sorted(digests.items())},
                },
            }
        )
    return path


def _write_framewise(root, store_path: str, source, dtype) -> tuple[str, int]:
    """Copy ``source`` one frame at a time; finite values beyond ``dtype``'s range are clamped
    to it (NaN and ±inf stay as they are). Returns the content digest and how many values were
    clamped, also written to the array's attrs as ``clamped``."""
    shape = tuple(source.shape)
    chunks = (1, *shape[1:])
    target = root.create_array(store_path, shape=shape, dtype=dtype, chunks=chunks, config=_WRITE_ALL_CHUNKS)
    digest = _ArrayDigest(store_path, np.dtype(dtype), shape)
    limit = float(np.finfo(dtype).max)
    clamped = 0
    for t in range(shape[0]):
        frame = np.asarray(source[t])
        beyond = np.isfinite(frame) & (np.abs(frame) > limit)
        if beyond.any():
            clamped += int(beyond.sum())
            frame = np.where(beyond, np.sign(frame) * limit, frame)
        frame = np.ascontiguousarray(frame, dtype=dtype)
        target[t] = frame
        digest.update(frame)
    target.attrs["clamped"] = clamped
    return digest.hexdigest(), clamped


def _write_masks(root, masks) -> str:
    k, t, h, w = masks.shape
    shape = (k, t, h, (w + 7) // 8)
    target = root.create_array(_MASKS_PATH, shape=shape, dtype=np.uint8, chunks=(1, 1, h, (w + 7) // 8),
                               config=_WRITE_ALL_CHUNKS)
    target.attrs.update({"encoding": "packbits", "width": int(w)})
    digest = _ArrayDigest(_MASKS_PATH, np.dtype(np.uint8), shape)
    for ti in range(t):
        packed = np.ascontiguousarray(np.packbits(np.asarray(masks[:, ti], dtype=bool), axis=-1))
        target[:, ti] = packed
        digest.update(packed)
    return digest.hexdigest()


def _write_small(root, store_path: str, value, dtype) -> str:
    data = np.ascontiguousarray(value, dtype=dtype)
    root.create_array(store_path, data=data, config=_WRITE_ALL_CHUNKS)
    return _digest_blocks(store_path, data.dtype, data.shape, [data])


def _write_object_quality(root, quality: ObjectQuality) -> dict[str, str]:
    digests = {f"{_OBJECT_QUALITY}/{name}": _write_small(root, f"{_OBJECT_QUALITY}/{name}", getattr(quality, name),
                                                         dtype)
               for name, dtype in _OBJECT_QUALITY_ARRAYS.items()}
    issues = root.create_array(_ISSUES_PATH, shape=(quality.n_objects,), dtype=str, config=_WRITE_ALL_CHUNKS)
    if quality.n_objects:
        issues[:] = np.array(list(quality.issues), dtype=str)
    digests[_ISSUES_PATH] = _digest_strings(quality.issues, _ISSUES_PATH)
    return digests


def _write_camera_quality(root, quality: CameraQuality) -> dict[str, str]:
    digests = {f"{_CAMERA_QUALITY}/{name}": _write_small(root, f"{_CAMERA_QUALITY}/{name}", getattr(quality, name),
                                                         dtype)
               for name, dtype in _CAMERA_QUALITY_ARRAYS.items()}
    root[_CAMERA_QUALITY].attrs.update({"motion": quality.motion, "scale_source": quality.scale_source,
                                        "score": None if math.isnan(quality.score) else float(quality.score)})
    return digests


def _read_quality(path: Path, root, integrity: dict | None):
    """(ObjectQuality | None, CameraQuality | None) of an open store; StoreError when damaged."""
    def arrays(group: str, names: dict) -> dict | None:
        first = _member(path, root, f"{group}/{next(iter(names))}", False, integrity)
        if first is None:
            return None
        values = {}
        for name, dtype in names.items():
            store_path = f"{group}/{name}"
            array = _member(path, root, store_path, name not in _LATER_OBJECT_FIELDS, integrity)
            if array is None:  # a field added after the store was written
                values[name] = np.full(first.shape, _LATER_OBJECT_FIELDS[name], dtype)
                continue
            if np.dtype(array.dtype) != np.dtype(dtype):
                raise StoreError(f"{path}: array {store_path} has dtype {array.dtype}, expected {np.dtype(dtype)}; "
                                 "the store is damaged or from another tool.")
            values[name] = _read(path, array, store_path)
        return values

    objects = arrays(_OBJECT_QUALITY, _OBJECT_QUALITY_ARRAYS)
    camera = arrays(_CAMERA_QUALITY, _CAMERA_QUALITY_ARRAYS)
    object_quality = camera_quality = None
    if objects is not None:
        issues = _read(path, _member(path, root, _ISSUES_PATH, True, integrity), _ISSUES_PATH)
        object_quality = ObjectQuality(**objects, issues=tuple(str(i) for i in issues.tolist()))
    if camera is not None:
        attrs = dict(root[_CAMERA_QUALITY].attrs)
        score = attrs.get("score")
        if not isinstance(score, (int, float, type(None))):
            raise StoreError(f"{path}: {_CAMERA_QUALITY} has a malformed 'score' attribute ({score!r}); the store "
                             "is damaged or was edited by hand. Re-create it.")
        camera_quality = CameraQuality(**camera, motion=str(attrs.get("motion", "unknown")),
                                       scale_source=str(attrs.get("scale_source", "unknown")),
                                       score=math.nan if score is None else float(score))
    return object_quality, camera_quality


def _stored_keys(array_dir: Path) -> set[str]:
    chunk_dir = array_dir / "c"
    found = set()
    for folder, _, files in os.walk(chunk_dir):
        rel = Path(folder).relative_to(array_dir)
        found.update((rel / name).as_posix() for name in files)
    return found


def _check_chunks(path: Path, store_path: str, array, recorded_chunks) -> None:
    """Every chunk of ``array`` must be a file in the store: a missing one reads as zeros."""
    expected_count = _n_chunks(array)
    if recorded_chunks is not None and recorded_chunks != expected_count:
        raise StoreError(f"{path}: array {store_path} should have {recorded_chunks} chunks but its metadata "
                         f"describes {expected_count}; the store is damaged (interrupted copy?). Re-create or "
                         "re-copy it.")
    grid = [range(n) for n in _chunk_grid_shape(array)]
    stored = _stored_keys(path / store_path)
    for coords in itertools.product(*grid):
        key = array.metadata.encode_chunk_key(coords)
        if key not in stored:
            raise StoreError(f"{path}: chunk {store_path}/{key} is missing (the store has {len(stored)} of "
                             f"{expected_count} chunks of {store_path}); reading it would give zeros instead of "
                             "data. The store is damaged (an interrupted copy?): copy it again or re-create it.")


def _chunk_grid_shape(array) -> tuple[int, ...]:
    return tuple(-(-size // chunk) for size, chunk in zip(array.shape, array.chunks))


def _n_chunks(array) -> int:
    return int(np.prod(_chunk_grid_shape(array), dtype=np.int64)) if array.ndim else 1


def _integrity(path: Path, attrs: dict) -> dict | None:
    integrity = attrs.get("integrity")
    if integrity is None:
        return None  # written before stores recorded their checksum: chunk counts cannot be checked
    arrays = integrity.get("arrays") if isinstance(integrity, dict) else None
    if (not isinstance(arrays, dict) or not isinstance(integrity.get("sha256"), str)
            or integrity.get("algorithm") != _CHECKSUM_ALGORITHM
            or not all(isinstance(v, dict) and isinstance(v.get("chunks"), int) and isinstance(v.get("sha256"), str)
                       for v in arrays.values())):
        raise StoreError(f"{path}: the store's integrity record (attrs['integrity']) is malformed; the store is "
                         "damaged or was edited by hand. Re-create it with `recon4d process`.")
    return integrity


def _check_attrs(path: Path, attrs: dict) -> None:
    kinds = {"source": (dict, type(None)), "backends": (dict, type(None)), "config": (dict, type(None)),
             "warnings": (list, type(None))}
    for key, kind in kinds.items():
        if not isinstance(attrs.get(key), kind):
            raise StoreError(f"{path}: attribute {key!r} should be a JSON {'list' if key == 'warnings' else 'object'} "
                             f"but is "
                             f"{type(attrs.get(key)).__name__} ({str(attrs.get(key))[:60]!r}); the store's "
                             "zarr.json is damaged or was edited by hand. Re-create the store.")


def _open_root(path: Path):
    zarr = _zarr()
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path} does not exist; pass the path of a scene store (a NAME.zarr folder "
                         "written by `recon4d process` or `recon4d synth`).")
    if not (path / "zarr.json").exists() and path.is_dir():
        from recon4d.outputs import stale_temporaries

        if stale_temporaries(path):
            raise StoreError(f"{path} was never completed (only a temporary {stale_temporaries(path)[0].name} "
                             "exists beside it); the run that wrote it stopped early — run it again.")
    if not path.is_dir() or not (path / "zarr.json").exists():
        raise StoreError(f"{path} is not a recon4d scene store (no Zarr v3 group there); pass the "
                         "NAME.zarr folder written by `recon4d process` or `recon4d synth`.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = zarr.open_group(str(path), mode="r")
            attrs = dict(root.attrs)
    except Exception as exc:  # zarr raises many types for a damaged zarr.json
        raise StoreError(f"{path} cannot be opened as a Zarr v3 group ({type(exc).__name__}: {exc}); it is not a "
                         "valid recon4d scene store. Re-create it with `recon4d process`.") from None
    if attrs.get("format") != FORMAT:
        raise StoreError(f"{path} is a Zarr group but not a recon4d scene store (format is "
                         f"{attrs.get('format')!r}, expected {FORMAT!r}).")
    version = attrs.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        age = "a newer" if isinstance(version, int) and version > VERSION else "an older or unknown"
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise StoreError(f"{path} has store version {version!r}, written by {age} recon4d; this "
                         f"recon4d ({__version__}) reads versions {readable}. Re-process the video with "
                         "this version, or open it with the recon4d version that wrote it "
                         f"({attrs.get('recon4d_version', 'unknown')}).")
    _check_attrs(path, attrs)
    return root, attrs


def _prefetch(path: Path, store_paths: list[str]) -> dict[str, tuple]:
    """Open and read whole arrays concurrently, in one round trip to zarr's event loop.

    Returns store path -> (array or the exception opening it raised, ndarray or the
    exception decoding it raised). One round trip per array costs ~1 ms each on a busy
    machine, most of the time opening a small store took; :func:`_member` and :func:`_read`
    then check the prefetched values exactly as they check what they read themselves.
    """
    import asyncio

    from zarr.core.sync import sync

    zarr = _zarr()

    async def read_one(group, store_path: str):
        try:
            array = await group.getitem(store_path)
        except Exception as exc:  # KeyError when absent; anything else is damaged metadata
            return exc, None
        if not isinstance(array, zarr.AsyncArray):
            return array, None
        try:
            return zarr.Array(array), np.asarray(await array.getitem(...))
        except Exception as exc:  # codecs raise many types for a garbage or truncated chunk
            return zarr.Array(array), exc

    async def read_all():
        group = await zarr.api.asynchronous.open_group(store=str(path), mode="r")
        return await asyncio.gather(*(read_one(group, p) for p in store_paths))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(zip(store_paths, sync(read_all())))


def _member(path: Path, root, store_path: str, required: bool, integrity: dict | None, fetched=None):
    recorded = integrity["arrays"].get(store_path) if integrity else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fetched is None:
                array = root[store_path]
            elif isinstance(fetched[0], BaseException):
                raise fetched[0]
            else:
                array = fetched[0]
    except KeyError:
        if required or recorded is not None:
            raise StoreError(f"{path} is missing the array {store_path}; the store is damaged or was not "
                             "written by recon4d. Re-create it.") from None
        return None
    except Exception as exc:
        raise StoreError(f"{path}: the metadata of array {store_path} cannot be read ({type(exc).__name__}: "
                         f"{exc}); the store is damaged. Re-create it.") from None
    if not hasattr(array, "shape") or not hasattr(array, "metadata") or not hasattr(array, "chunks"):
        raise StoreError(f"{path}: {store_path} is not an array; the store is damaged. Re-create it.")
    if integrity is not None:
        if recorded is None:
            raise StoreError(f"{path}: array {store_path} is not in the store's integrity record; the store "
                             "was altered after it was written. Re-create it.")
        _check_chunks(path, store_path, array, recorded["chunks"])
    return array


def _read(path: Path, array, store_path: str, fetched=None) -> np.ndarray:
    try:
        if fetched is not None:
            if isinstance(fetched[1], BaseException):
                raise fetched[1]
            return fetched[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(array[...])
    except Exception as exc:  # codecs raise many types for a garbage or truncated chunk
        raise StoreError(f"{path}: array {store_path} cannot be decoded ({type(exc).__name__}: {exc}); a chunk "
                         "file is damaged (truncated or overwritten). Copy the store again or re-create it.") from None


class LazyArray:
    """A store array read on demand (``array[t]``, ``np.asarray(array)``); decoding errors become
    StoreError naming the array instead of a codec traceback."""

    def __init__(self, array, store: Path, store_path: str):
        self._array = array
        self._where = (store, store_path)
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.asarray(self._array[index])
        except (IndexError, TypeError, ValueError) as exc:
            if "decod" not in str(exc).lower() and "codec" not in str(exc).lower():
                raise
            raise self._damaged(exc) from None
        except Exception as exc:
            raise self._damaged(exc) from None

    def _damaged(self, exc: Exception) -> StoreError:
        store, store_path = self._where
        return StoreError(f"{store}: array {store_path} cannot be decoded ({type(exc).__name__}: {exc}); a chunk "
                          "file is damaged. Copy the store again or re-create it.")

    def __array__(self, dtype=None, copy=None):
        values = self[...]
        return values if dtype is None else values.astype(dtype)


def open_scene(path: str | Path) -> Scene:
    """Open and validate a scene store; heavy arrays come back lazy.

    Raises StoreError when ``path`` is not a store, was written by another format or version,
    has missing/misshapen arrays, a missing chunk file, damaged chunks in the arrays read at
    open, or malformed attributes — the message says which and what to do. Chunk *contents*
    of the lazy heavy arrays are checked by :func:`verify_scene` (``recon4d inspect --verify``).
    """
    path = Path(path)
    root, attrs = _open_root(path)
    integrity = _integrity(path, attrs)
    fetched = _prefetch(path, [p for p, *_ in _SMALL_ARRAYS.values()] + [_CATEGORY_PATH])
    values: dict = {}
    for name, (store_path, dtype, dims, required) in _SMALL_ARRAYS.items():
        array = _member(path, root, store_path, required, integrity, fetched[store_path])
        if array is None:
            values[name] = None
            continue
        if np.dtype(array.dtype) != np.dtype(dtype):
            raise StoreError(f"{path}: array {store_path} has dtype {array.dtype}, expected "
                             f"{np.dtype(dtype)}; the store is damaged or from another tool.")
        values[name] = _read(path, array, store_path, fetched[store_path])
    category = _member(path, root, _CATEGORY_PATH, True, integrity, fetched[_CATEGORY_PATH])
    categories = _read(path, category, _CATEGORY_PATH, fetched[_CATEGORY_PATH])
    values["categories"] = tuple(str(c) for c in categories.tolist())
    points = _member(path, root, _POINTS_PATH, False, integrity)
    conf = _member(path, root, _CONF_PATH, False, integrity)
    values["local_points"] = LazyArray(points, path, _POINTS_PATH) if points is not None else None
    values["conf"] = LazyArray(conf, path, _CONF_PATH) if conf is not None else None
    masks = _member(path, root, _MASKS_PATH, False, integrity)
    if masks is not None:
        width = masks.attrs.get("width")
        if not isinstance(width, int) or not 0 < width <= 8 * masks.shape[-1] or width <= 8 * (masks.shape[-1] - 1):
            raise StoreError(f"{path}: {_MASKS_PATH} has a bad 'width' attribute ({width!r}) for packed rows of "
                             f"{masks.shape[-1]} bytes; the store is damaged. Re-create it.")
        values["masks"] = PackedMasks(LazyArray(masks, path, _MASKS_PATH), width)
    else:
        values["masks"] = None
    source = attrs.get("source")
    try:
        object_quality, camera_quality = _read_quality(path, root, integrity)
        return Scene(
            **values,
            source=SourceInfo.from_json(source) if source else None,
            backends=dict(attrs.get("backends") or {}),
            config=dict(attrs.get("config") or {}),
            unit=str(attrs.get("unit") or "unknown"),
            object_quality=object_quality,
            camera_quality=camera_quality,
            warnings=tuple(str(w) for w in attrs.get("warnings") or ()),
        )
    except ShapeError as exc:
        raise StoreError(f"{path} is inconsistent: {exc} The store is damaged; re-create it.") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{path}: the store's attributes are malformed ({type(exc).__name__}: {exc}); the "
                         "zarr.json is damaged or was edited by hand. Re-create the store.") from None


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_scene` found.

    path:      the store.
    recorded:  the content checksum the store recorded when written (None for older stores).
    computed:  the checksum recomputed from every array's decoded content.
    mismatched: arrays whose content differs from what was recorded (empty when ok).
    """

    path: str
    recorded: str | None
    computed: str
    mismatched: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.recorded is not None and self.recorded == self.computed and not self.mismatched


def verify_scene(path: str | Path, progress=None) -> Verification:
    """Read every array of a store (heavy ones frame by frame) and recompute its content checksum.

    Raises StoreError for anything :func:`open_scene` refuses and for undecodable chunks; a
    store whose content no longer matches the checksum it recorded comes back with
    ``ok == False`` and the arrays that differ.
    """
    path = Path(path)
    open_scene(path)
    root, attrs = _open_root(path)
    integrity = _integrity(path, attrs)
    recorded_arrays = integrity["arrays"] if integrity else {}
    names = sorted(recorded_arrays) if integrity else _present_arrays(root)
    digests: dict[str, str] = {}
    for done, store_path in enumerate(names):
        array = _member(path, root, store_path, True, integrity)
        lazy = LazyArray(array, path, store_path)
        if store_path in _STRING_ARRAYS:
            digests[store_path] = _digest_strings((str(c) for c in lazy[...].tolist()), store_path)
        elif store_path in (_POINTS_PATH, _CONF_PATH):
            digests[store_path] = _digest_blocks(store_path, lazy.dtype, lazy.shape,
                                                 (lazy[t] for t in range(lazy.shape[0])))
        elif store_path == _MASKS_PATH:
            digests[store_path] = _digest_blocks(store_path, lazy.dtype, lazy.shape,
                                                 (lazy[:, t] for t in range(lazy.shape[1])))
        else:
            digests[store_path] = _digest_blocks(store_path, lazy.dtype, lazy.shape, [lazy[...]])
        if progress is not None:
            progress(done + 1, len(names))
    mismatched = tuple(p for p in names if integrity and recorded_arrays[p]["sha256"] != digests[p])
    return Verification(path=str(path), recorded=integrity["sha256"] if integrity else None,
                        computed=_combine(digests), mismatched=mismatched)


def _present_arrays(root) -> list[str]:
    wanted = ([p for p, *_ in _SMALL_ARRAYS.values()] + [_CATEGORY_PATH, _POINTS_PATH, _CONF_PATH, _MASKS_PATH]
              + _QUALITY_PATHS)
    present = []
    for store_path in wanted:
        try:
            root[store_path]
        except KeyError:
            continue
        present.append(store_path)
    return sorted(present)


def store_checksum(path: str | Path) -> str:
    """The content checksum a store recorded when written (opening it validates the store);
    StoreError for stores written before checksums were recorded."""
    path = Path(path)
    open_scene(path)
    _, attrs = _open_root(path)
    integrity = _integrity(path, attrs)
    if integrity is None:
        raise StoreError(f"{path} records no content checksum (written by an older recon4d); re-create it.")
    return integrity["sha256"]


class _ArrayDigest:
    """sha256 of one array's decoded content: its path, little-endian dtype, shape, then the bytes
    in C order, fed block by block along the first axis the writer streams."""

    def __init__(self, store_path: str, dtype, shape):
        self._dtype = np.dtype(dtype).newbyteorder("<")
        header = f"{store_path}|{self._dtype.str}|{tuple(int(s) for s in shape)}\n"
        self._hash = hashlib.sha256(header.encode())

    def update(self, block) -> None:
        self._hash.update(np.ascontiguousarray(block, dtype=self._dtype).tobytes())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _digest_blocks(store_path: str, dtype, shape, blocks) -> str:
    digest = _ArrayDigest(store_path, dtype, shape)
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


def _digest_strings(strings, store_path: str = _CATEGORY_PATH) -> str:
    strings = [str(s) for s in strings]
    digest = hashlib.sha256(f"{store_path}|str|({len(strings)},)\n".encode())
    digest.update("\0".join(strings).encode("utf-8"))
    return digest.hexdigest()


def _combine(digests: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{p}:{d}\n" for p, d in sorted(digests.items())).encode()).hexdigest()


def store_attrs(path: str | Path) -> dict:
    """The root attributes of a store (format, version, source, backends, config, created...)."""
    open_scene(path)  # validates
    return _open_root(Path(path))[1]
