"""Reconstruction stage: a clip (and its tracks) → camera poses, point maps, confidences.

Backends (registered in :mod:`recon4d.backends`):

- ``classic`` (:mod:`recon4d.recon.classic`): weights-free KLT tracks, essential matrix / PnP /
  bundle adjustment, ground-plane metric scale, object depth from contact or size;
- ``pi3`` (:mod:`recon4d.recon.pi3`): the in-repo π³ network (:mod:`recon4d.models.pi3`), chunked
  and Sim(3)-stitched over long clips.
"""
