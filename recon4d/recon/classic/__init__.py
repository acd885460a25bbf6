"""The weights-free ``classic`` reconstruction backend.

- :mod:`~recon4d.recon.classic.config`: ``ClassicConfig`` (every option, with its default);
- :mod:`~recon4d.recon.classic.features`: KLT background/object feature tracks;
- :mod:`~recon4d.recon.classic.camera_motion`: initial pair, PnP, triangulation;
- :mod:`~recon4d.recon.classic.bundle_adjust`: robust Levenberg–Marquardt bundle adjustment (numba);
- :mod:`~recon4d.recon.classic.object_depth`: ground plane, metric scale, per-object depth;
- :mod:`~recon4d.recon.classic.reconstructor`: ``ClassicReconstructor``, the backend itself.
"""
