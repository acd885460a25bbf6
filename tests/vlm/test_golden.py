"""recon4d's GSM and GeoSR against the reference code's golden run (vlm_golden, float32, CPU).

Every stored stage is compared for both weight rules; positions, text selection and keep masks
exactly. ``strict`` weights make attention uniform, so the position/mask/text-order checks that
matter are the ``normone`` ones (both run).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.vlm.conftest import build, torch

pytestmark = pytest.mark.slow

RUNS = [("dsr_gsm", "gsm", "strict"), ("dsr_gsm", "gsm", "normone"), ("geosr", "geosr", "strict"),
        ("geosr", "geosr", "normone")]
TOLERANCE = 1e-4


def capture(model, store: dict):
    """Hooks recording the golden's stages of one forward into ``store``; returns their handles."""
    visual = model.model.visual

    def keep(name, pick=lambda out: out):
        return lambda module, args, out: store.__setitem__(name, pick(out).detach().clone())

    handles = [
        visual.spatial_encoder.register_forward_pre_hook(lambda m, args: store.__setitem__("encoder_input", args[0])),
        visual.spatial_encoder.register_forward_hook(keep("encoder_patch_tokens")),
        visual.spatial_merger.register_forward_hook(keep("spatial_tokens")),
        visual.q_former_1.register_forward_hook(keep("q_former_1_out", lambda out: out[0][0])),
        visual.q_former_2.register_forward_hook(keep("q_former_2_out", lambda out: out[0][0])),
        visual.q_former_norm.register_forward_hook(keep("gsm_tokens", lambda out: out[0])),
        model.model.language_model.register_forward_pre_hook(
            lambda m, args, kwargs: store.update(llm_inputs_embeds=kwargs["inputs_embeds"].clone(),
                                                 llm_position_ids=kwargs["position_ids"].clone()),
            with_kwargs=True),
    ]
    return handles


@pytest.fixture(scope="module", params=RUNS, ids=["-".join(run[1:]) for run in RUNS])
def golden_run(request, vlm_golden):
    """Run recon4d's model on the golden inputs; returns (golden arrays, ours, run tag)."""
    from recon4d.vlm import tiny_config
    from recon4d.vlm.layout import qformer_text_mask

    name, fusion, rule = request.param
    inputs = np.load(vlm_golden / "inputs.npz")
    golden = dict(np.load(vlm_golden / f"{name}_{rule}.npz"))
    model = build(tiny_config(fusion), rule)
    pixels = torch.from_numpy(inputs["pixel_values_videos"])
    grid = torch.from_numpy(inputs["video_grid_thw"])
    seconds = torch.from_numpy(inputs["second_per_grid_ts"])
    selection = torch.from_numpy(golden["vocab_selection"])
    ours: dict = {}
    with torch.no_grad():
        train: dict = {}
        handles = capture(model, train)
        ids = torch.from_numpy(inputs["input_ids_train"])
        labels = torch.from_numpy(inputs["labels_train"])
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, pixel_values_videos=pixels,
                    video_grid_thw=grid, second_per_grid_ts=seconds)
        train.update(logits_sel=out.logits[0][:, selection], logits_rowsum=out.logits[0].double().sum(-1),
                     loss=out.loss)
        ours.update({f"train__{k}": v for k, v in train.items()})
        for handle in handles:
            handle.remove()

        infer: dict = {}
        handles = capture(model, infer)
        ids = torch.from_numpy(inputs["input_ids_infer"])
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=pixels,
                    video_grid_thw=grid, second_per_grid_ts=seconds)
        infer.update(logits_last=out.logits[0, -1], logits_sel=out.logits[0][:, selection],
                     rope_deltas=model.model.rope_deltas)
        ours.update({f"infer__{k}": v for k, v in infer.items()})
        for handle in handles:
            handle.remove()

        text_mask = qformer_text_mask(torch.from_numpy(inputs["input_ids_train"]), model.geometry.token_ids.non_text(),
                                      torch.from_numpy(inputs["labels_train"]))
        ours["visual__text_index_in_sequence"] = torch.nonzero(text_mask[0]).flatten()
        text_states = torch.from_numpy(golden["visual__text_states"])
        tower = model.model.visual
        tokens = tower.video_tokens(pixels, grid, [text_states], [seconds[0]], masked=[False])
        ours["visual__output"] = tokens.embeds
        if fusion == "geosr":
            masked = tower.video_tokens(pixels, grid, [text_states], [seconds[0]], masked=[True])
            ours.update(visual__masked_output=masked.embeds, visual__relevance=masked.relevance[0],
                        visual__keep=masked.keep[0])
    return golden, {k: v.numpy() for k, v in ours.items()}, f"{fusion}/{rule}"


FLOAT_STAGES = [
    "train__encoder_input", "train__encoder_patch_tokens", "train__spatial_tokens", "train__q_former_1_out",
    "train__q_former_2_out", "train__gsm_tokens", "train__llm_inputs_embeds", "train__logits_sel",
    "train__logits_rowsum", "train__loss", "infer__q_former_1_out", "infer__gsm_tokens", "infer__llm_inputs_embeds",
    "infer__logits_last", "infer__logits_sel", "visual__output",
]


@pytest.mark.parametrize("stage", FLOAT_STAGES)
def test_float_stage_matches_the_reference(golden_run, stage):
    golden, ours, tag = golden_run
    assert ours[stage].shape == golden[stage].shape, f"{tag} {stage}"
    # The row sums add 151936 logits: their float64 sum of float32 values carries ~1e-4 of rounding.
    tolerance = 2e-3 if stage == "train__logits_rowsum" else TOLERANCE
    error = float(np.abs(ours[stage].astype(np.float64) - golden[stage]).max())
    assert error <= tolerance, f"{tag} {stage}: max abs error {error}"


@pytest.mark.parametrize("stage", ["train__llm_position_ids", "infer__llm_position_ids", "infer__rope_deltas",
                                   "visual__text_index_in_sequence"])
def test_positions_and_text_selection_are_exact(golden_run, stage):
    golden, ours, tag = golden_run
    np.testing.assert_array_equal(ours[stage], golden[stage], err_msg=f"{tag} {stage}")


def test_geosr_relevance_keep_and_masked_fusion(golden_run):
    golden, ours, tag = golden_run
    if tag.startswith("gsm"):
        # GSM writes the unfused visual tokens: neither side has GeoSR stages.
        assert not {"visual__keep", "visual__relevance", "visual__masked_output"} & (set(golden) | set(ours))
        return
    np.testing.assert_array_equal(ours["visual__keep"], golden["visual__keep"], err_msg=tag)
    assert int((~golden["visual__keep"]).sum()) == 15  # ceil(0.8 · 18) most relevant tokens masked
    assert float(np.abs(ours["visual__relevance"] - golden["visual__relevance"]).max()) <= TOLERANCE, tag
    error = float(np.abs(ours["visual__masked_output"] - golden["visual__masked_output"]).max())
    assert error <= TOLERANCE, f"{tag} masked output: {error}"
