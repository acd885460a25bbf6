"""Where things sit in a batch of token sequences: Q-Former 1's text and each video's owner sample."""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE_INDEX = -100


def qformer_text_mask(input_ids: Tensor, non_text_ids: tuple[int, ...], labels: Tensor | None = None,
                      attention_mask: Tensor | None = None) -> Tensor:
    """(B, L) bool: the tokens whose embeddings feed Q-Former 1 (VLM_FACTS §1.5).

    Every real token except the special ids; with ``labels`` (training) also except the supervised
    tokens and the three tokens ending at the last unsupervised one (``<|im_start|>assistant\\n``).
    Without labels the generation prompt's "assistant", "\\n" stay in, as in the reference.
    """
    valid = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    special = torch.isin(input_ids, torch.tensor(non_text_ids, device=input_ids.device))
    mask = valid & ~special
    if labels is not None:
        unsupervised = valid & (labels == IGNORE_INDEX)
        mask &= unsupervised
        length = input_ids.shape[1]
        index = torch.arange(length, device=input_ids.device)
        last = torch.where(unsupervised, index, torch.full_like(index, -1)).max(dim=1, keepdim=True).values
        mask &= ~((index >= last - 2) & (index <= last))
    return mask


def video_owners(input_ids: Tensor, vision_start_id: int, video_id: int,
                 attention_mask: Tensor | None = None) -> list[int]:
    """Batch row of every video, in the order videos appear (row-major, the order of ``video_grid_thw``)."""
    starts = input_ids[:, :-1] == vision_start_id
    starts &= input_ids[:, 1:] == video_id
    if attention_mask is not None:
        starts &= attention_mask[:, 1:].bool()
    return torch.nonzero(starts)[:, 0].tolist()


def video_slot_runs(input_ids: Tensor, video_id: int) -> list[int]:
    """Lengths of the runs of consecutive ``<|video_pad|>`` tokens, row-major (one run per video)."""
    is_pad = input_ids == video_id
    previous = torch.zeros_like(is_pad)
    previous[:, 1:] = is_pad[:, :-1]
    run_starts = torch.nonzero(is_pad & ~previous).tolist()
    runs = []
    for row, col in run_starts:
        tail = ~is_pad[row, col:]
        runs.append(int(tail.int().argmax()) if bool(tail.any()) else int(is_pad.shape[1] - col))
    return runs


def video_run_ends(input_ids: Tensor, video_id: int) -> list[tuple[int, int]]:
    """(row, end column + 1) of every run of consecutive ``<|video_pad|>`` tokens, row-major."""
    is_pad = input_ids == video_id
    following = torch.zeros_like(is_pad)
    following[:, :-1] = is_pad[:, 1:]
    return [(row, col + 1) for row, col in torch.nonzero(is_pad & ~following).tolist()]
