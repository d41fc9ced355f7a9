"""Gradient methods on the PyTorch model: Captum parity, completeness, features, baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from captum.attr import LayerIntegratedGradients
from numeric import assert_close_to_scale

import pyllmattr as pla

pytestmark = pytest.mark.torch

PROMPT = "Dave lives in Palm Coast, FL and is a"
TARGET = " lawyer in the"
# A template whose baselines have as many tokens as its values, slot by slot.
ALIGNED = pla.TextTemplateInput(
    "{name} lives in {city} and is a",
    {"name": "John", "city": "Chicago"},
    baselines={"name": "Mary", "city": "Boston"},
)


def captum_token_attributions(tm, prompt_ids, target_ids, n_steps):
    """Captum's LayerIntegratedGradients on the embedding layer, one run per target token,
    the forward returning every target token's log-prob under teacher forcing."""
    model, n_target = tm.model, len(target_ids)
    target = torch.tensor([target_ids])

    def forward(input_ids):
        forced = target[:, :-1].expand(input_ids.shape[0], -1)
        logits = model(input_ids=torch.cat([input_ids, forced], dim=1)).logits[:, -n_target:]
        logprobs = logits.float().log_softmax(-1)
        return logprobs.gather(-1, target.expand(input_ids.shape[0], -1)[..., None])[..., 0]

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    inputs = torch.tensor([prompt_ids])
    rows, deltas = [], []
    for t in range(n_target):
        attr, delta = lig.attribute(
            inputs,
            baselines=torch.zeros_like(inputs),  # token id 0 everywhere
            target=t,
            n_steps=n_steps,
            method="gausslegendre",
            internal_batch_size=n_steps,
            return_convergence_delta=True,
        )
        rows.append(attr[0, : len(prompt_ids)].sum(-1).detach().numpy())
        deltas.append(float(delta))
    return np.array(rows), np.array(deltas)


@pytest.mark.slow  # over a minute on a 2-core machine (durations of the full run)
@pytest.mark.filterwarnings("ignore:integrated gradients")  # token 0 is a rough baseline
def test_integrated_gradients_agree_with_captum_layer_integrated_gradients(smollm2_torch):
    tm = smollm2_torch
    inp = pla.TextTokenInput(PROMPT, tm, baselines=0)
    ours = pla.IntegratedGradients(tm).attribute(inp, target=TARGET, n_steps=16)
    ids, target = tm.tokenize(PROMPT), tm.tokenize(TARGET, add_special=False)
    theirs, deltas = captum_token_attributions(tm, ids, target, n_steps=16)
    assert ours.token_attr.shape == theirs.shape == (3, len(ids))
    for t in range(3):
        assert np.corrcoef(ours.token_attr[t], theirs[t])[0, 1] >= 0.98
    assert np.corrcoef(ours.seq_attr, theirs.sum(axis=0))[0, 1] >= 0.98
    # Both report the same integration error: sum of attributions - (f(x) - f(baseline)).
    np.testing.assert_allclose(ours.completeness_gap, deltas, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("method", ["riemann_trapezoid", "gausslegendre"])
def test_the_completeness_gap_shrinks_as_n_steps_grows(smollm2_torch, method):
    ig = pla.IntegratedGradients(smollm2_torch)
    coarse = ig.attribute(ALIGNED, target=" lawyer", n_steps=4, method=method)
    fine = ig.attribute(ALIGNED, target=" lawyer", n_steps=32, method=method)
    assert np.abs(fine.completeness_gap[0]) < np.abs(coarse.completeness_gap[0]) / 4
    change = fine.target_logprob - fine.baseline_logprob
    assert fine.seq_attr.sum() == pytest.approx(change, abs=1e-3)


def test_a_large_gap_warns_to_raise_n_steps(smollm2_torch):
    inp = pla.TextTokenInput(PROMPT, smollm2_torch, baselines=0)
    with pytest.warns(UserWarning, match="raise n_steps"):
        pla.IntegratedGradients(smollm2_torch).attribute(inp, target=" lawyer", n_steps=2)


def test_whole_target_attribution_is_computed_the_same_without_per_token_backwards(
    smollm2_torch,
):
    ig = pla.IntegratedGradients(smollm2_torch)
    full = ig.attribute(ALIGNED, target=TARGET, n_steps=8)
    seq_only = ig.attribute(ALIGNED, target=TARGET, n_steps=8, per_token=False)
    assert seq_only.token_attr is None and seq_only.completeness_gap is None
    assert_close_to_scale(seq_only.seq_attr, full.seq_attr)
    np.testing.assert_allclose(full.token_attr.sum(axis=0), full.seq_attr, atol=1e-6)
    assert full.stats["n_backward_calls"] == 3 * seq_only.stats["n_backward_calls"]


def test_probability_attributions_are_complete_too(smollm2_torch):
    result = pla.IntegratedGradients(smollm2_torch).attribute(
        ALIGNED, target=TARGET, attr_target="prob", n_steps=12
    )
    prob, baseline_prob = np.exp(result.target_logprob), np.exp(result.baseline_logprob)
    assert result.seq_attr.sum() == pytest.approx(prob - baseline_prob, abs=1e-4)
    assert np.abs(result.completeness_gap).max() < 1e-3


@pytest.mark.filterwarnings("ignore:integrated gradients")
def test_word_attributions_are_sums_of_their_token_attributions(smollm2_torch):
    ig = pla.IntegratedGradients(smollm2_torch)
    tokens = ig.attribute(
        pla.TextTokenInput(PROMPT, smollm2_torch), target=" lawyer", n_steps=8, baselines=0
    )
    words = ig.attribute(
        pla.TextTemplateInput.from_text(PROMPT), target=" lawyer", n_steps=8, baselines=0
    )
    assert words.input_features == ["Dave", "lives", "in", "Palm", "Coast,", "FL", "and", "is", "a"]
    # "Dave" is the tokens "D" + "ave", "Coast," is " Coast" + ","
    expected = [
        tokens.seq_attr[0] + tokens.seq_attr[1],
        *tokens.seq_attr[2:5],
        tokens.seq_attr[5] + tokens.seq_attr[6],
        *tokens.seq_attr[7:],
    ]
    assert_close_to_scale(words.seq_attr, expected)


def test_template_features_are_attributed_against_their_text_baselines(smollm2_torch):
    result = pla.IntegratedGradients(smollm2_torch).attribute(
        pla.TextTemplateInput(
            "{name} lives in {city} and works as a {job}. At work, {name} spends the day in",
            {"name": "John", "city": "Chicago", "job": "lawyer"},
            baselines={"name": "Mary", "city": "Boston", "job": "baker"},
        ),
        target=" court",
        n_steps=16,
    )
    assert result.input_features == ["John", "Chicago", "lawyer"]
    assert result.top_features(1)[0][0] == "lawyer"
    assert result.seq_attr.sum() == pytest.approx(
        result.target_logprob - result.baseline_logprob, abs=0.05
    )


def test_removal_baselines_have_no_same_length_path(smollm2_torch):
    inp = pla.TextTemplateInput.from_text(PROMPT)  # absent words are removed
    with pytest.raises(ValueError, match=r"same length.*11 tokens.*render to 0.*token id"):
        pla.IntegratedGradients(smollm2_torch).attribute(inp, target=" lawyer")


def test_baselines_whose_tokens_shift_are_rejected(smollm2_torch):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and is a",
        {"name": "John", "city": "Palm Coast"},  # 1 + 2 tokens
        baselines={"name": "Kate", "city": "Boston"},  # 2 + 1 tokens
    )
    with pytest.raises(ValueError, match="belongs to no feature"):
        pla.IntegratedGradients(smollm2_torch).attribute(inp, target=" lawyer")


def test_zero_embeddings_at_the_path_start_give_a_clear_error(smollm2_torch):
    inp = pla.TextTokenInput(PROMPT, smollm2_torch)
    with pytest.raises(ValueError, match="not finite.*gausslegendre"):
        pla.IntegratedGradients(smollm2_torch).attribute(
            inp, target=" lawyer", baselines="zero", n_steps=2, method="riemann_trapezoid"
        )


def test_a_text_baseline_of_the_same_length_is_a_whole_baseline_prompt(smollm2_torch):
    ig = pla.IntegratedGradients(smollm2_torch)
    from_input = ig.attribute(ALIGNED, target=" lawyer", n_steps=8)
    from_text = ig.attribute(
        ALIGNED, target=" lawyer", n_steps=8, baselines="Mary lives in Boston and is a"
    )
    np.testing.assert_allclose(from_text.seq_attr, from_input.seq_attr, atol=1e-6)


def test_saliency_is_the_gradient_norm_of_each_token(smollm2_torch):
    tm = smollm2_torch
    result = pla.Saliency(tm).attribute(pla.TextTokenInput(PROMPT, tm), target=TARGET)
    embeds = tm.embed(tm.tokenize(PROMPT))[None].clone().requires_grad_(True)
    logprob = tm.target_logprobs(embeds, tm.tokenize(TARGET, add_special=False)).sum()
    (grad,) = torch.autograd.grad(logprob, embeds)
    assert_close_to_scale(result.seq_attr, grad[0].norm(dim=-1).numpy())
    assert np.all(result.token_attr >= 0)


def test_input_x_gradient_multiplies_embeddings_by_gradients(smollm2_torch):
    tm = smollm2_torch
    result = pla.InputXGradient(tm).attribute(pla.TextTokenInput(PROMPT, tm), target=" lawyer")
    embeds = tm.embed(tm.tokenize(PROMPT))[None].clone().requires_grad_(True)
    logprob = tm.target_logprobs(embeds, tm.tokenize(" lawyer", add_special=False)).sum()
    (grad,) = torch.autograd.grad(logprob, embeds)
    expected = (embeds * grad)[0].sum(dim=-1).detach().numpy()
    assert_close_to_scale(result.seq_attr, expected)


@pytest.mark.parametrize("method", [pla.IntegratedGradients, pla.Saliency, pla.InputXGradient])
def test_gradient_methods_need_a_torch_model(smollm2, method):
    with pytest.raises(ValueError, match="load_torch_gguf"):
        method(smollm2)


def test_progress_counts_path_points_and_can_cancel(smollm2_torch):
    ig = pla.IntegratedGradients(smollm2_torch)
    calls = []
    ig.attribute(
        ALIGNED,
        target=" lawyer",
        n_steps=6,
        internal_batch_size=4,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(4, 6), (6, 6)]
    with pytest.raises(pla.Cancelled):
        ig.attribute(ALIGNED, target=" lawyer", n_steps=6, progress=lambda d, t: False)
    token = pla.CancelToken()
    token.cancel()
    with pytest.raises(pla.Cancelled):
        ig.attribute(ALIGNED, target=" lawyer", n_steps=6, cancel=token)


def test_sampled_baselines_are_averaged_over_trials(smollm2_torch):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and is a",
        {"name": "John", "city": "Chicago"},
        baselines=pla.ProductBaselines({"name": ["Mary", "Tom"], "city": ["Boston", "Denver"]}),
    )
    result = pla.IntegratedGradients(smollm2_torch).attribute(
        inp, target=" lawyer", n_steps=8, num_trials=4, seed=1
    )
    assert result.seq_attr_std.shape == (2,)
    assert np.all(result.seq_attr_std > 0)


def test_gradient_results_round_trip_through_json(smollm2_torch):
    result = pla.IntegratedGradients(smollm2_torch).attribute(ALIGNED, target=TARGET, n_steps=4)
    text = result.to_json()
    json.loads(text, parse_constant=reject_non_standard_json)  # no NaN or Infinity in it
    back = pla.AttributionResult.from_json(text)
    assert back.to_dict() == result.to_dict()  # every field, the arrays included
    np.testing.assert_array_equal(back.token_attr, result.token_attr)
    np.testing.assert_array_equal(back.completeness_gap, result.completeness_gap)
    assert back.seq_completeness_gap == result.seq_completeness_gap
    assert back.settings["n_steps"] == 4
    assert "completeness gap" in back._repr_html_()


def reject_non_standard_json(constant: str):
    raise AssertionError(f"to_json wrote {constant}, which strict JSON parsers reject")


# ---------------------------------------------------------------- chat


def test_integrated_gradients_work_inside_the_chat_template(smollm2_torch):
    tm = smollm2_torch
    result = pla.IntegratedGradients(tm).attribute(ALIGNED, target=" lawyer", n_steps=16, chat=True)
    rendered = tm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "John lives in Chicago and is a"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert result.prompt == rendered
    assert result.input_features == ["John", "Chicago"]  # only the user's text
    assert result.settings["chat"] is True
    # The baselines line up inside the frame: completeness holds as without chat.
    change = result.target_logprob - result.baseline_logprob
    assert result.seq_attr.sum() == pytest.approx(change, abs=1e-3)
    alone = tm.score([tm.tokenize(rendered, parse_special=True)], " lawyer")[0]
    assert result.target_logprob == pytest.approx(alone.sum(), abs=1e-4)


def test_a_chat_baseline_text_is_the_users_message_in_the_same_frame(smollm2_torch):
    ig = pla.IntegratedGradients(smollm2_torch)
    from_input = ig.attribute(ALIGNED, target=" lawyer", n_steps=4, chat=True)
    from_text = ig.attribute(
        ALIGNED, target=" lawyer", n_steps=4, chat=True, baselines="Mary lives in Boston and is a"
    )
    np.testing.assert_allclose(from_text.seq_attr, from_input.seq_attr, atol=1e-6)


@pytest.mark.parametrize("method", [pla.Saliency, pla.InputXGradient])
def test_point_gradients_attribute_only_the_users_tokens_inside_the_chat_template(
    smollm2_torch, method
):
    tm = smollm2_torch
    inp = pla.TextTokenInput(PROMPT, tm)
    result = method(tm).attribute(inp, target=" lawyer", chat={"system": "Be brief."})
    user_ids = tm.tokenize(PROMPT, add_special=False)
    assert result.input_features == [tm.token_to_str(t) for t in user_ids]
    assert result.prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    # Feature i is the gradient at user token i, wherever the frame puts it.
    frame_ids = tm.tokenize(result.prompt, parse_special=True)
    offset = next(i for i in range(len(frame_ids)) if frame_ids[i : i + len(user_ids)] == user_ids)
    embeds = tm.embed(frame_ids)[None].clone().requires_grad_(True)
    logprob = tm.target_logprobs(embeds, tm.tokenize(" lawyer", add_special=False)).sum()
    (grad,) = torch.autograd.grad(logprob, embeds)
    grad = grad[0, offset : offset + len(user_ids)]
    if method is pla.Saliency:
        expected = grad.norm(dim=-1).numpy()
    else:
        expected = (embeds[0, offset : offset + len(user_ids)] * grad).sum(dim=-1).detach().numpy()
    assert_close_to_scale(result.seq_attr, expected)
