"""Object discovery and per-frame masks/boxes (classic motion segmentation, GroundingDINO + SAM2)."""
