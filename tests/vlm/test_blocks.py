"""The GSM's pieces against slow, plain references: patch rebuild, grouping, Q-Former, GeoSR, text selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.vlm.conftest import random_frames, torch

from recon4d.vlm.configuration import TokenIds  # noqa: E402
from recon4d.vlm.geometry_tokens import frames_from_patches, group_2x2x2, renormalise  # noqa: E402
from recon4d.vlm.geosr import gated_fusion, keep_mask, relevance  # noqa: E402
from recon4d.vlm.layout import qformer_text_mask, video_owners, video_slot_runs  # noqa: E402
from recon4d.vlm.processing import video_pixels  # noqa: E402
from recon4d.vlm.qformer import QFormerAttention  # noqa: E402

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def test_frames_are_rebuilt_from_qwens_patches():
    frames = random_frames(4, 56, 84)
    video = video_pixels(frames)
    rebuilt = frames_from_patches(video.pixel_values_videos, torch.tensor(video.video_grid_thw), 14)
    assert rebuilt.shape == (4, 3, 56, 84)
    pixels = renormalise(rebuilt, CLIP_MEAN, CLIP_STD, (0, 0, 0), (1, 1, 1)) * 255
    assert float((pixels - torch.from_numpy(frames).permute(0, 3, 1, 2).float()).abs().max()) < 1e-3


def test_renormalisation_keeps_the_reference_green_mean_quirk():
    x = torch.zeros(1, 3, 2, 2)
    quirk = renormalise(x, (0.48145466, 0.4576275, 0.40821073), CLIP_STD, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    exact = renormalise(x, CLIP_MEAN, CLIP_STD, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    offset = (quirk - exact)[0, :, 0, 0]
    assert float(offset[0]) == 0.0 and float(offset[2]) == 0.0
    assert float(offset[1]) == pytest.approx(-0.0002 / 0.224, rel=1e-3)


def test_grouping_pairs_two_frames_and_2x2_patches_per_token():
    t, h, w, channels = 2, 4, 6, 3
    tokens = torch.arange(2 * t * h * w * channels, dtype=torch.float32).view(2 * t, h * w, channels)
    grouped = group_2x2x2(tokens, torch.tensor([t, h, w]))
    assert grouped.shape == (t * (h // 2) * (w // 2), 8 * channels)
    for row in range(grouped.shape[0]):
        tt, rest = divmod(row, (h // 2) * (w // 2))
        i, j = divmod(rest, w // 2)
        expected = [tokens[2 * tt + dt, (2 * i + dy) * w + 2 * j + dx]
                    for dt in range(2) for dy in range(2) for dx in range(2)]
        assert torch.equal(grouped[row], torch.cat(expected))


def slow_cross_attention(attn: QFormerAttention, query, target, n_keys, query_rope, key_rope):
    """One video, one head at a time, plain formulas."""
    d = attn.head_dim
    q = attn.q_proj(query).view(-1, attn.num_heads, d)
    k = attn.k_proj(target[:n_keys]).view(-1, attn.num_kv_heads, d)
    v = attn.v_proj(target[:n_keys]).view(-1, attn.num_kv_heads, d)

    def rotate(x, cos, sin):
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        return x * cos[:, None] + torch.cat([-x2, x1], -1) * sin[:, None]

    q = rotate(q, *query_rope)
    k = rotate(k, key_rope[0][:n_keys], key_rope[1][:n_keys])
    heads, probs = [], []
    for head in range(attn.num_heads):
        kv = head // (attn.num_heads // attn.num_kv_heads)
        weights = torch.softmax(q[:, head] @ k[:, kv].T / math.sqrt(d), dim=-1)
        probs.append(weights)
        heads.append(weights @ v[:, kv])
    return attn.o_proj(torch.cat(heads, dim=-1)), torch.stack(probs)


def test_qformer_attention_matches_a_per_head_per_video_reference():
    torch.manual_seed(0)
    attn = QFormerAttention(hidden_size=32, num_heads=4, num_kv_heads=2)
    query = torch.randn(2, 5, 32)
    target = torch.randn(2, 7, 32)
    n_keys = [7, 4]
    valid = torch.arange(7)[None] < torch.tensor(n_keys)[:, None]
    bias = torch.zeros(2, 7).masked_fill(~valid, float("-inf"))
    query_rope = (torch.randn(2, 5, 8), torch.randn(2, 5, 8))
    key_rope = (torch.randn(2, 7, 8), torch.randn(2, 7, 8))
    with torch.no_grad():
        out, probs = attn(query, target, bias, query_rope, key_rope)
    for video in range(2):
        with torch.no_grad():
            slow_out, slow_probs = slow_cross_attention(attn, query[video], target[video], n_keys[video],
                                                        (query_rope[0][video], query_rope[1][video]),
                                                        (key_rope[0][video], key_rope[1][video]))
        assert torch.allclose(out[video], slow_out, atol=1e-5)
        assert torch.allclose(probs[video, :, :, :n_keys[video]], slow_probs, atol=1e-6)
        assert float(probs[video, :, :, n_keys[video]:].abs().sum()) == 0.0


def test_relevance_is_min_max_of_the_mean_attention():
    probs = torch.tensor([[[0.1, 0.3, 0.6, 0.0], [0.3, 0.3, 0.4, 0.0]], [[0.2, 0.2, 0.6, 0.0], [0.2, 0.4, 0.4, 0.0]]])
    scores = relevance(probs, n_keys=3)
    mean = np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(scores.numpy(), (mean - 0.2) / 0.3, atol=1e-6)
    flat = relevance(torch.full((1, 2, 3), 1 / 3), n_keys=3)
    assert torch.equal(flat, torch.zeros(3))  # uniform attention: clamp, not division by zero


def test_keep_mask_drops_the_most_relevant_ceil_fraction():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.0])
    assert keep_mask(scores, 0.8).tolist() == [False, False, False, False, True]
    assert keep_mask(scores, 0.4).tolist() == [True, False, True, False, True]
    assert keep_mask(scores, 0.0).all()


def test_gated_fusion_takes_the_gate_from_unmasked_tokens():
    torch.manual_seed(0)
    norm_v, norm_g = torch.nn.LayerNorm(4), torch.nn.LayerNorm(4)
    gate = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Sigmoid())
    visual, geometry = torch.randn(3, 4), torch.randn(3, 4)
    keep = torch.tensor([True, False, True])
    fused = gated_fusion(visual, geometry, norm_v, norm_g, gate, keep)
    alpha = gate(torch.cat([norm_v(visual), norm_g(geometry)], -1))
    expected = alpha * norm_v(visual) * keep[:, None] + (1 - alpha) * norm_g(geometry)
    assert torch.allclose(fused, expected)
    assert torch.allclose(fused[1], (1 - alpha[1]) * norm_g(geometry)[1])


def test_qformer_text_selection_in_training_and_inference():
    ids = TokenIds()
    S, E, V, N = ids.im_start, ids.im_end, ids.video_pad, 198
    # <|im_start|>system \n w <|im_end|> \n <|im_start|>user \n <vs> V V <ve> q <|im_end|> \n <|im_start|>assistant \n A <|im_end|> \n
    row = [S, 8948, N, 11, E, N, S, 872, N, ids.vision_start, V, V, ids.vision_end, 12, E, N, S, 77091, N, 13, E, N]
    labels = [-100] * 19 + [13, E, N]
    input_ids = torch.tensor([row])
    train = qformer_text_mask(input_ids[:1], ids.non_text(), torch.tensor([labels]))
    kept = [row[i] for i in torch.nonzero(train[0]).flatten().tolist()]
    assert kept == [8948, N, 11, N, 872, N, 12, N]
    infer = qformer_text_mask(input_ids[:1, :19], ids.non_text())
    assert [row[i] for i in torch.nonzero(infer[0]).flatten().tolist()] == kept + [77091, N]
    # Right padding: the pads' −100 labels must not move the "last unsupervised token".
    padded = torch.tensor([row + [ids.endoftext] * 3])
    padded_labels = torch.tensor([labels + [-100] * 3])
    mask = torch.tensor([[1] * len(row) + [0] * 3])
    assert torch.equal(qformer_text_mask(padded, ids.non_text(), padded_labels, mask)[0, :len(row)], train[0])


def test_video_owners_and_slot_runs():
    ids = TokenIds()
    rows = torch.tensor([[ids.vision_start, ids.video_pad, ids.video_pad, ids.vision_end, 5, 5],
                         [5, ids.vision_start, ids.video_pad, ids.vision_end, ids.vision_start, ids.video_pad]])
    assert video_owners(rows, ids.vision_start, ids.video_pad) == [0, 1, 1]
    assert video_slot_runs(rows, ids.video_pad) == [2, 1, 1]
