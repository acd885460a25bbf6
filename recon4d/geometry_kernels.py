"""numba kernels behind :mod:`recon4d.geometry` (DESIGN §5: parallel, no fastmath).

Imported lazily by ``geometry.to_observer_frame`` so that importing the geometry module
(e.g. from the numpy-only QA compiler) does not pay numba's import cost.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, fastmath=False, cache=True)
def observer_frame_kernel(
    points_world: np.ndarray,
    rotation: np.ndarray,
    translation: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write ``R_pᵀ (x_kt − t_p)`` into ``out`` for every object ``k`` and frame ``t``.

    points_world: (K, T, 3) float64; rotation: (P, 3, 3) float64 observer→world, columns are
    the observer's forward/left/up axes; translation: (P, 3) float64 observer origin in world;
    out: (K, T, 3) float64. ``P == T`` uses pose ``t`` for frame ``t`` (relative viewpoint);
    ``P == 1`` uses the single pose for every frame (absolute viewpoint). NaN propagates
    because fastmath is off.
    """
    n_obj, n_frames = points_world.shape[0], points_world.shape[1]
    per_frame = rotation.shape[0] > 1
    for flat in numba.prange(n_obj * n_frames):
        k = flat // n_frames
        t = flat % n_frames
        p = t if per_frame else 0
        d0 = points_world[k, t, 0] - translation[p, 0]
        d1 = points_world[k, t, 1] - translation[p, 1]
        d2 = points_world[k, t, 2] - translation[p, 2]
        for i in range(3):
            out[k, t, i] = rotation[p, 0, i] * d0 + rotation[p, 1, i] * d1 + rotation[p, 2, i] * d2
