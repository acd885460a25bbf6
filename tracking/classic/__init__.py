"""The weights-free ``classic`` tracker: motion segmentation after camera-motion compensation.

- :mod:`~recon4d.tracking.classic.config`: ``ClassicTrackerConfig``;
- :mod:`~recon4d.tracking.classic.background`: the background's motion (homographies, or
  epipolar geometry with a local inverse-depth field);
- :mod:`~recon4d.tracking.classic.motion`: dense flow, residual motion and moving-pixel masks;
- :mod:`~recon4d.tracking.classic.segment`: moving regions, split where they move differently;
- :mod:`~recon4d.tracking.classic.boxes`: box helpers (IoU, mask boxes);
- :mod:`~recon4d.tracking.classic.association`: linking detections into tracks;
- :mod:`~recon4d.tracking.classic.cleanup`: joining, dropping and extending tracks afterwards;
- :mod:`~recon4d.tracking.classic.epipolar`: distance of motion from the epipolar lines (depth
  errors of the background model stay on them, movers leave them);
- :mod:`~recon4d.tracking.classic.people`: person evidence (HOG on crops) and labels;
- :mod:`~recon4d.tracking.classic.user_boxes`: propagating boxes the user gives (``--boxes``);
- :mod:`~recon4d.tracking.classic.tracker`: ``ClassicTracker``, the backend itself.
"""
