"""The ``sam2`` tracker: GroundingDINO boxes from a category prompt, SAM2 video masks.

- :mod:`~recon4d.tracking.sam2.grounding`: GroundingDINO detection and box selection;
- :mod:`~recon4d.tracking.sam2.video`: loading SAM2 and propagating masks from memory;
- :mod:`~recon4d.tracking.sam2.tracker`: ``Sam2Tracker``, the backend itself.
"""
