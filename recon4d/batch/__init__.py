"""Batch processing (`recon4d batch`): a manifest of videos → one scene store (and questions) per
video, exactly once, on a local process pool or on Ray; see :mod:`recon4d.batch.runner`."""

from recon4d.batch.manifest import ManifestEntry, ManifestError, read_manifest
from recon4d.batch.state import BatchError, BatchSettings, Layout, VideoState

__all__ = ["BatchError", "BatchSettings", "Layout", "ManifestEntry", "ManifestError", "VideoState", "read_manifest"]
