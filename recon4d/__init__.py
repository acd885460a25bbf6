"""recon4d: geometry-first 4D reconstruction, DSR question compiler and geometry-aware VLMs.

Importing this package is cheap: it never imports torch, open3d or other heavy extras.
"""

import warnings

__version__ = "0.1.0"

# numba finds an older TBB (pulled in by other packages) and falls back to OpenMP by itself;
# the warning it prints is noise for users.
warnings.filterwarnings("ignore", message="The TBB threading layer requires TBB version")

from recon4d.errors import Recon4dError, ShapeError, StoreError, VideoError  # noqa: E402

__all__ = ["__version__", "Recon4dError", "ShapeError", "StoreError", "VideoError"]
