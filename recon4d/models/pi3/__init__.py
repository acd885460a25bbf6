"""In-repo π³ network, state-dict compatible with the public checkpoint (DESIGN §4)."""

from recon4d.models.pi3.config import Pi3Config
from recon4d.models.pi3.model import Pi3
from recon4d.models.pi3.weights import CheckpointError, procedural_state_dict

__all__ = ["CheckpointError", "Pi3", "Pi3Config", "procedural_state_dict"]
