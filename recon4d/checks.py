"""Shape checks at public boundaries (STYLE §3): one helper, one readable error."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from recon4d.errors import ShapeError

Dim = int | str | None


def check_shape(
    name: str,
    array,
    shape: Sequence[Dim],
    dims: dict[str, int] | None = None,
    dtype_kind: str | None = None,
) -> dict[str, int]:
    """Check ``array.shape`` against a spec and return the bound named dimensions.

    ``shape`` entries are ints (exact), ``None`` (any) or names; a name seen twice (here or
    in ``dims``) must have the same size every time. ``dtype_kind`` is a string of numpy
    dtype kinds accepted (``"f"``, ``"iu"``, ``"b"``...).

    >>> dims = check_shape("masks", masks, ("K", "T", "H", "W"), dtype_kind="b")
    >>> check_shape("local_points", pts, ("T", "H", "W", 3), dims)
    """
    dims = dict(dims or {})
    actual = tuple(getattr(array, "shape", ()))
    want = "(" + ", ".join(str(s) if s is not None else "*" for s in shape) + ")"
    if len(actual) != len(shape):
        raise ShapeError(
            f"{name} must have shape {want} ({len(shape)} dims) but has shape {actual}; "
            f"check the array passed as {name}."
        )
    for axis, (size, spec) in enumerate(zip(actual, shape)):
        if spec is None:
            continue
        if isinstance(spec, str):
            if spec in dims and dims[spec] != size:
                raise ShapeError(
                    f"{name} has {size} along axis {axis} ({spec}) but {spec}={dims[spec]} "
                    f"elsewhere; every array of one clip must agree on {spec} (got {name}.shape={actual})."
                )
            dims[spec] = size
        elif size != spec:
            raise ShapeError(
                f"{name} must have shape {want} but has shape {actual} (axis {axis} is {size}, not {spec})."
            )
    if dtype_kind is not None:
        kind = np.dtype(getattr(array, "dtype", np.float64)).kind
        if kind not in dtype_kind:
            raise ShapeError(
                f"{name} has dtype {getattr(array, 'dtype', None)} but a dtype of kind "
                f"{dtype_kind!r} is required (f=float, i/u=integer, b=bool)."
            )
    return dims
