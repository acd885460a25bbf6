"""The weights-free ``classic`` tracker: motion segmentation after camera-motion compensation.

- :mod:`~recon4d.tracking.classic.config`: ``ClassicTrackerConfig``;
- :mod:`~recon4d.tracking.classic.motion`: camera-motion compensation and moving-pixel masks;
- :mod:`~recon4d.tracking.classic.boxes`: box helpers (IoU, mask boxes);
- :mod:`~recon4d.tracking.classic.association`: linking detections into tracks, agent labels;
- :mod:`~recon4d.tracking.classic.user_boxes`: propagating boxes the user gives (``--boxes``);
- :mod:`~recon4d.tracking.classic.tracker`: ``ClassicTracker``, the backend itself.
"""
