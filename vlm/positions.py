"""M-RoPE positions: the reference LLM rule (transformers 4.51) and the Q-Formers' positions.

transformers 5.x continues text after a vision block at ``start + max(h, w)/merge``; the
released model was trained with 4.51's rule, which continues at ``max(block) + 1`` and so gives
the 32 GSM slots (extra ``<|video_pad|>`` after the visual tokens) text positions
(VLM_FACTS §1.4, §3). recon4d computes the 4.51 rule itself, in training and in generation.
"""

from __future__ import annotations

import torch
from torch import Tensor


def vision_block_positions(grid_thw: Tensor, merge_size: int, seconds_per_grid: float | Tensor,
                           seconds_scale: float) -> Tensor:
    """(t, h, w) indices of one vision block's merged tokens, raster order: (3, T·H/m·W/m) int64.

    The temporal index is ``floor(t · seconds_per_grid · seconds_scale)`` computed in float32 as
    the reference does (``0 * x`` for images).
    """
    t, h, w = (int(v) for v in grid_thw.tolist())
    h, w = h // merge_size, w // merge_size
    seconds = torch.as_tensor(seconds_per_grid, dtype=torch.float32)
    time = (torch.arange(t).view(-1, 1).expand(-1, h * w) * seconds * seconds_scale).long().flatten()
    rows = torch.arange(h).view(1, -1, 1).expand(t, -1, w).flatten()
    cols = torch.arange(w).view(1, 1, -1).expand(t, h, -1).flatten()
    return torch.stack([time, rows, cols])


def reference_rope_index(
    input_ids: Tensor,
    *,
    image_grid_thw: Tensor | None,
    video_grid_thw: Tensor | None,
    second_per_grid_ts: Tensor | None,
    attention_mask: Tensor | None,
    merge_size: int,
    tokens_per_second: float,
    vision_start_id: int,
    image_id: int,
    video_id: int,
) -> tuple[Tensor, Tensor]:
    """LLM position ids of transformers 4.51's ``get_rope_index`` (= DSR's ``get_rope_index_25``).

    =====================  ==============  ==================================================
    name                   shape           meaning
    =====================  ==============  ==================================================
    input_ids              (B, L)          token ids (images/videos in row-major order)
    attention_mask         (B, L) or None  1 = real token; padding gets position 1
    returns positions      (3, B, L)       (t, h, w) per token, int64
    returns rope_deltas    (B, 1)          max position + 1 − L (continues decoding)
    =====================  ==============  ==================================================

    Text runs are sequential; a vision block starts at the position after the text before it and
    covers only its T·H/m·W/m merged tokens; the next text (and so the 32 GSM slots that follow a
    video's visual tokens) continues at ``max(block) + 1``.
    """
    batch, length = input_ids.shape
    device = input_ids.device
    if image_grid_thw is None and video_grid_thw is None:
        return text_rope_index(input_ids, attention_mask)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    positions = torch.ones(3, batch, length, dtype=torch.long)
    deltas = []
    image_index = video_index = 0
    ids_cpu, mask_cpu = input_ids.cpu(), attention_mask.cpu().bool()
    for row in range(batch):
        ids = ids_cpu[row][mask_cpu[row]]
        starts = torch.nonzero(ids[:-1] == vision_start_id).flatten().tolist()
        pieces: list[Tensor] = []
        next_pos, cursor = 0, 0
        for start in starts:
            kind = int(ids[start + 1])
            if kind == image_id:
                grid, seconds = image_grid_thw[image_index], 0.0
                image_index += 1
            elif kind == video_id:
                grid = video_grid_thw[video_index]
                seconds = second_per_grid_ts[video_index] if second_per_grid_ts is not None else 1.0
                video_index += 1
            else:
                continue
            text_len = start + 1 - cursor
            pieces.append(torch.arange(text_len).view(1, -1).expand(3, -1) + next_pos)
            block = vision_block_positions(grid.cpu(), merge_size, seconds, tokens_per_second)
            pieces.append(block + next_pos + text_len)
            next_pos = int(pieces[-1].max()) + 1
            cursor = start + 1 + block.shape[1]
        if cursor < len(ids):
            pieces.append(torch.arange(len(ids) - cursor).view(1, -1).expand(3, -1) + next_pos)
        row_positions = torch.cat(pieces, dim=1)
        positions[:, row, mask_cpu[row]] = row_positions
        deltas.append(int(row_positions.max()) + 1 - length)
    return positions.to(device), torch.tensor(deltas, device=device).unsqueeze(1)


def text_rope_index(input_ids: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Positions of a text-only batch as 4.51 gives them: (3, B, L) and rope deltas (B, 1)."""
    batch, length = input_ids.shape
    if attention_mask is None:
        positions = torch.arange(length, device=input_ids.device).view(1, 1, -1).expand(3, batch, -1)
        return positions, torch.zeros(batch, 1, dtype=torch.long, device=input_ids.device)
    positions = attention_mask.long().cumsum(-1) - 1
    positions = positions.masked_fill(attention_mask == 0, 1).unsqueeze(0).expand(3, -1, -1)
    deltas = positions.max(0)[0].max(-1, keepdim=True)[0] + 1 - length
    return positions, deltas


def spatial_key_positions(grid_thw: Tensor, merge_size: int, seconds_per_grid: float | Tensor,
                          seconds_scale: float) -> Tensor:
    """Q-Former 2 key positions of one video, (3, N): block positions with no offset (VLM_FACTS §1.3)."""
    return vision_block_positions(grid_thw, merge_size, seconds_per_grid, seconds_scale)


def rope_inv_freq(head_dim: int, theta: float, device=None) -> Tensor:
    """Default RoPE inverse frequencies (head_dim/2,) float32, as 4.51 and 5.x compute them."""
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim))


def mrope_cos_sin(positions: Tensor, inv_freq: Tensor, mrope_section: list[int], dtype: torch.dtype,
                  interleaved: bool = False) -> tuple[Tensor, Tensor]:
    """Multimodal RoPE tables for (3, B, L) positions: cos, sin (B, L, head_dim) in ``dtype``.

    Computed in float32 (the reference's ``Qwen2_5_VLRotaryEmbedding_Mine``). Qwen2.5-VL layout:
    channel chunk i of ``mrope_section * 2`` takes axis ``i % 3``. ``interleaved`` (Qwen3-VL
    layout): frequency j takes h for j ≡ 1, w for j ≡ 2 (mod 3) within the first 3·section[1] resp.
    3·section[2] frequencies, t elsewhere; both halves alike.
    """
    freqs = positions.float()[..., None] * inv_freq.float()
    if interleaved:
        index = torch.arange(freqs.shape[-1], device=freqs.device)
        axis = torch.zeros_like(index)
        axis[(index % 3 == 1) & (index < 3 * mrope_section[1])] = 1
        axis[(index % 3 == 2) & (index < 3 * mrope_section[2])] = 2
        half = torch.gather(freqs, 0, axis.view(1, 1, 1, -1).expand(1, *freqs.shape[1:]))[0]
        emb = torch.cat((half, half), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)
    emb = torch.cat((freqs, freqs), dim=-1)
    sections = list(mrope_section) * 2

    def pick(table: Tensor) -> Tensor:
        return torch.cat([chunk[i % 3] for i, chunk in enumerate(table.split(sections, dim=-1))], dim=-1)

    return pick(emb.cos()).to(dtype), pick(emb.sin()).to(dtype)
