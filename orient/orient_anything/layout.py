"""The output layout of the Orient Anything head, shared by the network and its decoding."""

ROTATION_BINS = {722: 180, 902: 360}
"""Output count → rotation bins: 360 azimuth + 180 polar + rotation + 2 confidence logits."""
N_AZIMUTH, N_POLAR = 360, 180
"""Azimuth and polar bins (one degree each)."""
