"""Neural networks implemented in recon4d (state-dict compatible with their public checkpoints)."""
