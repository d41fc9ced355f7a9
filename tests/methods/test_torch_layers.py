"""Gradient methods at inner layers (``layer=``), against Captum's layer methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerGradientShap, LayerGradientXActivation, LayerIntegratedGradients
from numeric import assert_close_to_scale

import pyllmattr as pla

pytestmark = pytest.mark.torch

PROMPT = "Dave lives in Palm Coast"
TARGET = " and is"


def teacher_forced(tm, target_ids, embeds=False):
    """A Captum forward: each target token's log-prob after the prompt (token ids or
    input embeddings) with the target teacher-forced after it."""
    model, target, n_target = tm.model, torch.tensor([target_ids]), len(target_ids)

    def forward(inputs):
        batch = inputs.shape[0]
        if embeds:
            forced = tm.embed(target_ids[:-1])[None].expand(batch, -1, -1)
            out = model(inputs_embeds=torch.cat([inputs, forced], dim=1))
        else:
            forced = target[:, :-1].expand(batch, -1)
            out = model(input_ids=torch.cat([inputs, forced], dim=1))
        logits = out.logits[:, -n_target:].float()
        picked = logits.gather(-1, target.expand(batch, -1)[..., None])[..., 0]
        return picked - torch.logsumexp(logits, dim=-1)

    return forward


def per_target_token(attribute, n_target, n_prompt):
    """Captum's attributions at the prompt's positions, one run per target token,
    summed over the layer's width: (target tokens, prompt tokens)."""
    return np.array([attribute(t)[0, :n_prompt].sum(-1).detach().numpy() for t in range(n_target)])


@pytest.fixture(scope="module")
def ids(smollm2_torch):
    return smollm2_torch.tokenize(PROMPT), smollm2_torch.tokenize(TARGET, add_special=False)


def test_input_x_gradient_at_an_inner_layer_equals_captum_layer_gradient_x_activation(
    smollm2_torch, ids
):
    tm, (prompt, target) = smollm2_torch, ids
    ours = pla.InputXGradient(tm).attribute(pla.TextTokenInput(PROMPT, tm), target=TARGET, layer=15)
    captum = LayerGradientXActivation(teacher_forced(tm, target), tm.model.model.layers[15])
    theirs = per_target_token(
        lambda t: captum.attribute(torch.tensor([prompt]), target=t), len(target), len(prompt)
    )
    assert_close_to_scale(ours.token_attr, theirs)


@pytest.mark.filterwarnings("ignore:integrated gradients")  # token 0 is a rough baseline
def test_integrated_gradients_at_an_inner_decoder_layer_agree_with_captum(smollm2_torch, ids):
    tm, (prompt, target) = smollm2_torch, ids
    inp = pla.TextTokenInput(PROMPT, tm, baselines=0)
    ours = pla.IntegratedGradients(tm).attribute(inp, target=TARGET, n_steps=8, layer=10)
    captum = LayerIntegratedGradients(teacher_forced(tm, target), tm.model.model.layers[10])
    runs = [
        captum.attribute(
            torch.tensor([prompt]),
            baselines=torch.zeros((1, len(prompt)), dtype=torch.long),  # token 0 everywhere
            target=t,
            n_steps=8,
            method="gausslegendre",
            return_convergence_delta=True,
        )
        for t in range(len(target))
    ]
    theirs = np.array([attr[0, : len(prompt)].sum(-1).detach().numpy() for attr, _ in runs])
    for t in range(len(target)):
        assert np.corrcoef(ours.token_attr[t], theirs[t])[0, 1] >= 0.98
    # The gap counts the target's own positions at that layer, as Captum's delta does.
    deltas = [float(delta) for _, delta in runs]
    np.testing.assert_allclose(ours.completeness_gap, deltas, rtol=5e-3, atol=5e-3)


@pytest.mark.slow  # over a minute on a 2-core machine (durations of the full run)
def test_gradient_shap_at_an_inner_layer_agrees_with_captum_in_expectation(smollm2_torch, ids):
    tm, (prompt, target) = smollm2_torch, ids
    target = target[:1]
    inp = pla.TextTokenInput(PROMPT, tm, baselines=0)
    ours = pla.GradientShap(tm).attribute(
        inp, target=target, n_samples=200, stdevs=0.0, layer=24, seed=0
    )
    captum = LayerGradientShap(teacher_forced(tm, target, embeds=True), tm.model.model.layers[24])
    torch.manual_seed(0)
    np.random.seed(0)  # Captum draws its points with numpy
    theirs = captum.attribute(
        tm.embed(prompt)[None],
        baselines=tm.embed([0] * len(prompt))[None],
        target=0,
        n_samples=200,
        stdevs=0.0,
    )[0, : len(prompt)].sum(-1)
    assert np.corrcoef(ours.seq_attr, theirs.detach().numpy())[0, 1] >= 0.9


def test_a_layer_index_and_its_module_name_are_the_same_layer(smollm2_torch):
    tm = smollm2_torch
    saliency = pla.Saliency(tm)
    inp = pla.TextTokenInput(PROMPT, tm)
    by_index = saliency.attribute(inp, target=" and", layer=-1)
    by_name = saliency.attribute(inp, target=" and", layer="model.layers.29")
    np.testing.assert_array_equal(by_index.seq_attr, by_name.seq_attr)
    assert by_name.settings["layer"] == "model.layers.29"


def test_the_embedding_modules_name_is_the_default_embeddings_layer(smollm2_torch):
    tm = smollm2_torch
    method, inp = pla.InputXGradient(tm), pla.TextTokenInput(PROMPT, tm)
    default = method.attribute(inp, target=" and")
    named = method.attribute(inp, target=" and", layer="model.embed_tokens")
    np.testing.assert_array_equal(named.token_attr, default.token_attr)


def test_a_sublayer_is_attributed_at_its_own_output(smollm2_torch):
    tm = smollm2_torch
    inp = pla.TextTokenInput(PROMPT, tm)
    result = pla.InputXGradient(tm).attribute(inp, target=" and", layer="model.layers.3.mlp")
    captum = LayerGradientXActivation(
        teacher_forced(tm, tm.tokenize(" and", add_special=False)), tm.model.model.layers[3].mlp
    )
    expected = captum.attribute(torch.tensor([tm.tokenize(PROMPT)]), target=0)[0].sum(-1)
    assert_close_to_scale(result.seq_attr, expected.detach().numpy())


@pytest.mark.parametrize(
    "method", [pla.IntegratedGradients, pla.Saliency, pla.InputXGradient, pla.GradientShap]
)
@pytest.mark.parametrize("layer", ["model.layers.99", 30, "decoder"])
def test_an_unknown_layer_is_rejected_naming_the_valid_ones(smollm2_torch, method, layer):
    inp = pla.TextTokenInput(PROMPT, smollm2_torch, baselines=0)
    with pytest.raises(ValueError, match=r"'embeddings', a decoder layer index 0\.\.29"):
        method(smollm2_torch).attribute(inp, target=" and", layer=layer)


def test_a_module_without_one_vector_per_token_is_rejected(smollm2_torch):
    inp = pla.TextTokenInput(PROMPT, smollm2_torch)
    with pytest.raises(ValueError, match="'lm_head' outputs .* not one vector per token"):
        pla.Saliency(smollm2_torch).attribute(inp, target=" and", layer="lm_head")
