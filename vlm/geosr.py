"""GeoSR (dynamic): relevance of visual tokens, top-⌈γN⌉ masking and gated fusion (VLM_FACTS §2.1).

    Vn = LN_v(V);  Gn = LN_g(G);  α = σ(W[Vn ‖ Gn] + b)  (from the *unmasked* Vn)
    F  = α ⊙ (Vn ⊙ keep) + (1 − α) ⊙ Gn,   G = MHA(RMSNorm_q(S), RMSNorm_kv(Z))

The paper's Eq. 12 takes α from the masked tokens and writes +ε in the relevance denominator;
the released code (followed here) does neither.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def relevance(probs: Tensor, n_keys: int) -> Tensor:
    """Relevance of one video's N visual tokens from Q-Former 2's attention: (N,) float32 in [0, 1].

    ``probs``: (heads, Q, K ≥ N) probabilities of this video; the mean over heads and queries is
    min-max normalised with the denominator clamped at 1e-6.
    """
    scores = probs[:, :, :n_keys].detach().mean(dim=(0, 1)).to(torch.float32)
    scores = scores - scores.min()
    return scores / scores.max().clamp_min(1e-6)


def keep_mask(scores: Tensor, fraction: float) -> Tensor:
    """(N,) bool: False for the ⌈fraction·N⌉ *most* relevant tokens (``torch.topk`` ties as the reference)."""
    n = scores.shape[0]
    keep = torch.ones(n, dtype=torch.bool, device=scores.device)
    n_masked = min(int(math.ceil(n * fraction)), n)
    if n_masked > 0:
        keep[torch.topk(scores, k=n_masked, largest=True).indices] = False
    return keep


def gated_fusion(visual: Tensor, geometry: Tensor, norm_visual: nn.Module, norm_geometry: nn.Module,
                 gate: nn.Module, keep: Tensor | None = None) -> Tensor:
    """Fuse (…, N, D) visual tokens with (…, N, D) attended geometry; ``keep`` (…, N) bool or None."""
    visual = norm_visual(visual)
    geometry = norm_geometry(geometry)
    alpha = gate(torch.cat([visual, geometry], dim=-1))
    values = visual if keep is None else visual * keep.unsqueeze(-1).to(visual.dtype)
    return alpha * values + (1.0 - alpha) * geometry
