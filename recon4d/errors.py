"""Exceptions raised by recon4d. Each message says what was wrong and what to do."""


class Recon4dError(Exception):
    """Base class of every error recon4d raises on bad input or a missing dependency."""


class ShapeError(Recon4dError, ValueError):
    """An array has the wrong shape or dtype for the function it was passed to."""


class StoreError(Recon4dError):
    """A path is not a valid recon4d scene store (or cannot be written as one)."""


class VideoError(Recon4dError):
    """A video cannot be probed or decoded."""


class MissingDependencyError(Recon4dError, ImportError):
    """An optional dependency of recon4d is not installed."""


class OutputError(Recon4dError):
    """An output path cannot be written: something is in the way, it exists without --overwrite,
    the folder is read-only or full, or another run is writing it."""


class OptionError(Recon4dError, ValueError):
    """A value given on the command line (or to a config) is invalid on its own; the CLI treats
    it as a usage error (exit code 2)."""


class GeometryError(Recon4dError, ValueError):
    """Points or poses too degenerate for a geometric fit (too few, all at one place, not finite)."""
