"""Every method on every input kind, on the real SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla

PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"
TARGET = " playing golf"

METHODS = [
    (pla.FeatureAblation, {}),
    (pla.ShapleyValueSampling, {"n_samples": 3}),
    (pla.Lime, {"n_samples": 30}),
    (pla.KernelShap, {"n_samples": 30}),
]


def inputs(model):
    return {
        "tokens": pla.TextTokenInput("Dave lives in Palm Coast, FL", model),
        "tokens-removed": pla.TextTokenInput("Dave lives in Palm Coast, FL", model, baselines=None),
        "template": pla.TextTemplateInput(
            "{name} lives in {city}, {state} and is a {job}. His personal interests include",
            {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer"},
            baselines={"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor"},
            mask={"name": 0, "city": 1, "state": 1, "job": 2},
        ),
        "words": pla.TextTemplateInput.from_text(PROMPT),
        "sentences": pla.TextTemplateInput.from_text(PROMPT, by="sentence"),
    }


@pytest.mark.parametrize("kind", ["tokens", "tokens-removed", "template", "words", "sentences"])
@pytest.mark.parametrize("method, options", METHODS, ids=[m.__name__ for m, _ in METHODS])
def test_method_on_input_kind(smollm2, method, options, kind):
    inp = inputs(smollm2)[kind]
    result = method(smollm2).attribute(inp, target=TARGET, seed=0, **options)
    n_features = inp.encode(smollm2).n_features
    n_target = len(smollm2.tokenize(TARGET, add_special=False))
    assert result.seq_attr.shape == (n_features,)
    assert result.token_attr.shape == (n_target, n_features)
    assert np.all(np.isfinite(result.token_attr))
    assert result.target == TARGET
    assert result.target_logprob < 0
    np.testing.assert_allclose(result.token_attr.sum(axis=0), result.seq_attr, atol=1e-9)


def test_exact_shapley_values_sum_to_the_change_they_explain(smollm2):
    inp = inputs(smollm2)["sentences"]
    result = pla.ShapleyValues(smollm2).attribute(inp, target=TARGET)
    assert result.seq_attr.sum() == pytest.approx(
        result.target_logprob - result.baseline_logprob, abs=1e-9
    )


def test_kernel_shap_sums_to_the_change_it_explains(smollm2):
    inp = inputs(smollm2)["template"]
    result = pla.KernelShap(smollm2).attribute(inp, target=TARGET, n_samples=40, seed=0)
    assert result.seq_attr.sum() == pytest.approx(
        result.target_logprob - result.baseline_logprob, abs=1e-9
    )


def test_the_job_explains_the_lawyer(smollm2):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and works as a {job}. At work, {name} spends the day in",
        {"name": "Dave", "city": "Palm Coast", "job": "lawyer"},
        baselines={"name": "Sarah", "city": "Seattle", "job": "baker"},
    )
    result = pla.FeatureAblation(smollm2).attribute(inp, target=" court")
    assert result.top_features(1)[0][0] == "lawyer"
    assert result.seq_attr[2] > 1.0
