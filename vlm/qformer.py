"""The GSM's Q-Former block: cross-attention with multimodal RoPE on both streams, then an MLP.

``q = q + CrossAttn(RMSNorm1(q), RMSNorm1(target)); q = q + MLP(RMSNorm2(q))`` (VLM_FACTS §1.3),
batched over B videos with additive key masks, so every video keeps its own queries, keys and
positions. Parameter names follow the released checkpoint (``norm1``, ``attn.q_proj``, ...).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from transformers.activations import ACT2FN
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRMSNorm


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) → (−x2, x1) over the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate (B, heads, L, d) by per-token tables (B, L, d)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return x * cos + rotate_half(x) * sin


class QFormerAttention(nn.Module):
    """Grouped-query cross-attention (the LLM's head layout), returning the attention probabilities."""

    def __init__(self, hidden_size: int, num_heads: int, num_kv_heads: int, dropout: float = 0.0,
                 head_dim: int | None = None) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        # Qwen2.5-VL: hidden / heads; Qwen3-VL states its own head_dim (e.g. 4B: 2560 wide, 32 × 128).
        self.head_dim = head_dim or hidden_size // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(hidden_size, num_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(hidden_size, num_kv_heads * self.head_dim, bias=True)
        self.v_proj = nn.Linear(hidden_size, num_kv_heads * self.head_dim, bias=True)
        self.o_proj = nn.Linear(num_heads * self.head_dim, hidden_size, bias=False)

    def forward(self, query: Tensor, target: Tensor, key_bias: Tensor, query_rope: tuple[Tensor, Tensor],
                key_rope: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """=============  ===============  ===========================================
        name           shape            meaning
        =============  ===============  ===========================================
        query          (B, Q, D)        normed query stream
        target         (B, K, D)        normed key/value stream (padded per video)
        key_bias       (B, K)           0 for a real key, −inf for padding
        query_rope     2 × (B, Q, d)    cos, sin of the query positions
        key_rope       2 × (B, K, d)    cos, sin of the key positions
        returns        (B, Q, D)        attention output
        returns probs  (B, heads, Q, K) softmax probabilities (before dropout)
        =============  ===============  ===========================================
        """
        batch, n_query, _ = query.shape
        n_key = target.shape[1]
        q = self.q_proj(query).view(batch, n_query, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(target).view(batch, n_key, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(target).view(batch, n_key, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rope(q, *query_rope)
        k = apply_rope(k, *key_rope)
        # Query head j reads KV head j // (heads / kv_heads), as the LLM's repeat_kv.
        groups = self.num_heads // self.num_kv_heads
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        # Divide by sqrt(d) (not multiply by its inverse) and upcast the softmax, as the reference does.
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        scores = scores + key_bias[:, None, None, :].to(scores.dtype)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        weights = nn.functional.dropout(probs, p=self.dropout, training=self.training)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(batch, n_query, -1)
        return self.o_proj(out), probs


class QFormerMLP(nn.Module):
    """``down(act(gate(x)) * up(x))`` with biases (Qwen's vision MLP layout)."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str = "silu") -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=True)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=True)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=True)
        self.act_fn = ACT2FN[hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class QFormerBlock(nn.Module):
    """One Q-Former: pre-norm cross-attention (``norm1`` on both streams) and a pre-norm MLP."""

    def __init__(self, text_config) -> None:
        super().__init__()
        hidden = text_config.hidden_size
        self.norm1 = Qwen2_5_VLRMSNorm(hidden, eps=1e-6)
        self.norm2 = Qwen2_5_VLRMSNorm(hidden, eps=1e-6)
        self.attn = QFormerAttention(hidden, text_config.num_attention_heads, text_config.num_key_value_heads,
                                     dropout=text_config.attention_dropout or 0.0,
                                     head_dim=getattr(text_config, "head_dim", None))
        self.mlp = QFormerMLP(hidden, text_config.intermediate_size, text_config.hidden_act)

    def forward(self, query: Tensor, target: Tensor, key_bias: Tensor, query_rope: tuple[Tensor, Tensor],
                key_rope: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, Q, D) queries over (B, K, D) targets → (B, Q, D) and probabilities (B, heads, Q, K)."""
        attended, probs = self.attn(self.norm1(query), self.norm1(target), key_bias, query_rope, key_rope)
        query = query + attended
        return query + self.mlp(self.norm2(query)), probs
