"""Lifting stage: instance masks + point maps → per-object 3D centres, visibility, extent (DESIGN §5).

- :mod:`~recon4d.lift.lifting`: ``LiftConfig``, ``lift_objects``, ``valid_point_mask`` and the
  numpy reference the kernels are tested against;
- :mod:`~recon4d.lift.kernels`: the numba kernel over T×H×W data;
- :mod:`~recon4d.lift.order_statistics`: median / trimmed-mean selection used by the kernel.
"""
