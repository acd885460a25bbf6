"""The ``orient-anything`` orienter: DINOv2-L CLS → MLP head on each agent's background-free crop.

- :mod:`~recon4d.orient.orient_anything.model`: the network and its strict checkpoint loading;
- :mod:`~recon4d.orient.orient_anything.orienter`: crops, decoding, TTA and the backend.
"""
