"""The one place that imports optional dependencies (STYLE §6)."""

from __future__ import annotations

import importlib
from types import ModuleType

from recon4d.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise a readable error naming the extra that installs it.

    >>> o3d = require("open3d", extra="viz", purpose="rendering synthetic scenes")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"The optional dependency '{module}' is not installed{why}: {exc}. "
            f"Install it with `pip install 'recon4d[{extra}]'` (or `pip install -e '.[{extra}]'` "
            f"in a checkout), then run the command again."
        ) from exc
