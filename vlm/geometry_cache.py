"""Geometry-encoder features cached in Zarr next to the data, so epochs 2+ skip the frozen encoder.

The π³ DINOv2 encoder is frozen in training (VLM_FACTS §1.7), so its grouped patch tokens for a
given video view (file, frames, pixel bounds) never change: the cache stores them once, one
Zarr v3 array per view, under a folder named by the encoder's fingerprint (its weights, dtype and
input normalisation), so a different encoder never reads another's features:

    DATA.geometry-cache.zarr/          group, attrs {format: recon4d.geometry_cache, version: 1}
      <encoder fingerprint>/<view key>/  (N, 8·C) array; bf16 stored as its uint16 bits

Each entry is written to a temporary folder and renamed into place (``recon4d.outputs``), so a
killed run leaves no half entry; an entry of the wrong shape is recomputed. Size: 8·C values per
visual token (7B: 8192 × 2 bytes × 1728 tokens ≈ 28 MB per 32-frame 480² view).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import numpy as np

from recon4d.errors import OutputError

CACHE_FORMAT, CACHE_VERSION = "recon4d.geometry_cache", 1
ROOT_TRIES, ROOT_RETRY_S = 20, 0.05
"""How often, and how far apart, a process reads a root group another process is creating."""


def default_cache_path(data_file: str | Path) -> Path:
    """``DATA.geometry-cache.zarr`` beside the question file."""
    data_file = Path(data_file)
    return data_file.with_name(data_file.name + ".geometry-cache.zarr")


def encoder_fingerprint(model) -> str:
    """sha256 (first 24 hex) of the geometry encoder's tensors, their dtype and the input statistics."""
    import torch

    from contextlib import nullcontext

    visual = model.model.visual
    encoder = visual.spatial_encoder
    digest = hashlib.sha256()
    geometry = visual.geometry
    digest.update(repr((geometry.clip_mean, geometry.clip_std, geometry.imagenet_mean, geometry.imagenet_std,
                        visual.config.patch_size)).encode())
    partitioned = [p for p in encoder.parameters() if hasattr(p, "ds_id")]
    if partitioned:  # ZeRO-3 holds a slice of each tensor per process: hash the whole ones
        from deepspeed.runtime.zero.partition_parameters import GatheredParameters

        gathered = GatheredParameters(partitioned)
    else:
        gathered = nullcontext()
    with gathered:
        for name, tensor in sorted(encoder.state_dict().items()):
            data = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
            digest.update(data.view(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:24]


class GeometryCache:
    """Read and write cached encoder features of one encoder (see the module docstring)."""

    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.hits = self.misses = self.writes = 0
        self.disabled_reason: str | None = None
        self._ensure_root()

    def _ensure_root(self) -> None:
        """Open the root group, or create it with its attributes in one write. The processes of one
        launch (torchrun ranks) open the same root at the same moment: one that loses the race to
        create it, or finds its ``zarr.json`` half written, reads it again."""
        import zarr
        from zarr.errors import ContainsGroupError

        marker = {"format": CACHE_FORMAT, "version": CACHE_VERSION}
        for _ in range(ROOT_TRIES):
            if (self.root / "zarr.json").is_file():
                try:
                    attrs = dict(zarr.open_group(str(self.root), mode="r").attrs)
                except (ValueError, OSError):  # another process is writing it
                    time.sleep(ROOT_RETRY_S)
                    continue
                if attrs.get("format") != CACHE_FORMAT:
                    self.disable(f"{self.root} exists but is not a recon4d geometry cache")
                return
            try:
                zarr.create_group(str(self.root), zarr_format=3, attributes=marker)
                return
            except ContainsGroupError:
                continue  # another process created it first: read it
            except OSError as exc:
                self.disable(f"cannot create {self.root} ({exc.strerror or exc})")
                return
        self.disable(f"cannot read {self.root / 'zarr.json'} after {ROOT_TRIES} tries")

    def disable(self, reason: str) -> None:
        """Stop using the cache (say why once); training goes on with the encoder."""
        if self.disabled_reason is None:
            warnings.warn(f"geometry cache off: {reason}; the encoder runs on every step.", stacklevel=2)
        self.disabled_reason = reason

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    def entry(self, view_key: str) -> Path:
        return self.root / self.fingerprint / view_key

    def get(self, view_key: str, rows: int, width: int):
        """The cached (rows, width) features as a torch tensor, or None (missing or wrong shape)."""
        import torch
        import zarr

        path = self.entry(view_key)
        if not self.enabled or not (path / "zarr.json").is_file():
            self.misses += 1
            return None
        try:
            array = zarr.open_array(str(path), mode="r")
            values = array[...]
            dtype = array.attrs.get("torch_dtype", "float32")
        except (OSError, ValueError, KeyError):
            values = None
        if values is None or values.shape != (rows, width):
            self.misses += 1
            return None
        self.hits += 1
        tensor = torch.from_numpy(np.ascontiguousarray(values))
        return tensor.view(torch.bfloat16) if dtype == "bfloat16" else tensor

    def put(self, view_key: str, features) -> None:
        """Store (N, 8·C) ``features`` (a torch tensor) for ``view_key``; another writer of the same
        entry at the same moment wins and this one is dropped."""
        import torch
        import zarr

        from recon4d.outputs import atomic_output

        if not self.enabled or (self.entry(view_key) / "zarr.json").is_file():
            return  # off, or already there (several questions of one batch share a view)
        data = features.detach().cpu().contiguous()
        dtype = str(data.dtype).removeprefix("torch.")
        values = data.view(torch.uint16).numpy() if data.dtype == torch.bfloat16 else data.numpy()
        try:
            with atomic_output(self.entry(view_key), kind="dir", what="geometry cache entry") as staging:
                array = zarr.create_array(str(staging), shape=values.shape, dtype=values.dtype, chunks=values.shape,
                                          compressors=None, zarr_format=3, overwrite=True)
                array[...] = values
                array.attrs["torch_dtype"] = dtype
        except OutputError as exc:
            if "being written by another" in str(exc):
                return
            self.disable(str(exc).split(". ")[0])
            return
        self.writes += 1

    def stats(self) -> dict:
        """hits, misses, writes and whether the cache is on."""
        return {"hits": self.hits, "misses": self.misses, "writes": self.writes, "enabled": self.enabled,
                "path": str(self.root)}
