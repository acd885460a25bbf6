"""Geometry-aware Qwen2.5-VL (and Qwen3-VL): the DSR Suite GSM, GeoSR and the "none"/"add" baselines (one switch).

Importing ``recon4d.vlm`` is cheap; torch and transformers load when a model or config is built.

>>> from recon4d.vlm import GeometryQwen2_5_VL, tiny_config
>>> model = GeometryQwen2_5_VL(tiny_config("geosr"))
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "FUSIONS": "configuration",
    "GeometryConfig": "configuration",
    "TokenIds": "configuration",
    "VLMConfigError": "configuration",
    "tiny_config": "configuration",
    "micro_config": "configuration",
    "qwen2_5_vl_7b_config": "configuration",
    "qwen3_vl_micro_config": "configuration",
    "GeometryQwen2_5_VL": "modeling",
    "GeometryQwen3VL": "qwen3",
    "GeometryVisionTower": "vision",
    "VideoTokens": "vision",
    "released_key": "checkpoint",
    "model_key": "checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        if _EXPORTS[name] in ("modeling", "vision", "qwen3"):
            from recon4d.optional import require

            require("torch", extra="vlm", purpose="the geometry-aware VLM")
            require("transformers", extra="vlm", purpose="the geometry-aware VLM")
        return getattr(import_module(f"recon4d.vlm.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'recon4d.vlm' has no attribute {name!r}")
