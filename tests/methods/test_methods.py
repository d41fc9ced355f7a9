"""Perturbation methods: definitions, exactness properties, options and results."""

from __future__ import annotations

import math
import warnings
from itertools import permutations

import numpy as np
import pytest

import pyllmattr as pla

TEMPLATE = "{name} lives in {city}, {state} and is a {job}. His interests include"
VALUES = {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer"}
BASELINES = {"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor"}
TARGET = " golf and books"


def template_input(**kwargs):
    return pla.TextTemplateInput(TEMPLATE, VALUES, baselines=BASELINES, **kwargs)


def f_of(model, inp, masks, target):
    """The method's function: log-probs of [whole target, each token] for each mask."""
    encoding = inp.encode(model)
    sequences = encoding.sequences(np.asarray(masks, dtype=bool), np.random.default_rng(0))
    return pla.LogProb().outputs([model.score(sequences, target, share_prefix=False)])


class CountingModel:
    """Delegates to a model and counts engine calls (score and score_pairs)."""

    def __init__(self, model):
        self.model, self.score_calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def score(self, *args, **kwargs):
        self.score_calls += 1
        return self.model.score(*args, **kwargs)

    def score_pairs(self, *args, **kwargs):
        self.score_calls += 1
        return self.model.score_pairs(*args, **kwargs)


def exact_shapley(f, n):
    """Shapley values by their permutation definition, from f over subset bit patterns."""
    phi = np.zeros((f.shape[1], n))
    for order in permutations(range(n)):
        subset = 0
        for i in order:
            phi[:, i] += f[subset | (1 << i)] - f[subset]
            subset |= 1 << i
    return phi / math.factorial(n)


def all_subsets(n):
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


@pytest.fixture(scope="module")
def target(exact):
    return exact.tokenize(TARGET, add_special=False)


def test_feature_ablation_is_the_drop_when_each_feature_is_removed(exact, target):
    inp = template_input()
    result = pla.FeatureAblation(exact).attribute(inp, target=target)
    masks = np.ones((5, 4), dtype=bool)
    masks[np.arange(1, 5), np.arange(4)] = False
    f = f_of(exact, inp, masks, target)
    np.testing.assert_allclose(result.seq_attr, f[0, 0] - f[1:, 0], atol=1e-5)
    np.testing.assert_allclose(result.token_attr, (f[0, 1:] - f[1:, 1:]).T, atol=1e-5)
    assert result.target_logprob == pytest.approx(f[0, 0], abs=1e-5)


def test_every_method_scores_all_its_prompts_in_one_call(exact, target):
    counting = CountingModel(exact)
    for method in (
        pla.FeatureAblation,
        pla.ShapleyValues,
        pla.ShapleyValueSampling,
        pla.Lime,
        pla.KernelShap,
    ):
        method(counting).attribute(
            template_input(), target=target, num_trials=2, seed=0, noise_floor=False
        )
    assert counting.score_calls == 5


def test_the_noise_floor_rescores_the_reference_alone(exact, target):
    counting = CountingModel(exact)
    result = pla.FeatureAblation(counting).attribute(template_input(), target=target)
    assert counting.score_calls == 2
    alone = exact.score([exact.tokenize(result.prompt)], target, share_prefix=False)[0]
    assert result.noise_floor == pytest.approx(abs(result.target_logprob - alone.sum()), abs=1e-9)
    assert result.token_noise_floor.shape == (len(target),)


def test_exact_shapley_matches_the_permutation_definition(exact, target):
    inp = template_input()
    result = pla.ShapleyValues(exact).attribute(inp, target=target)
    f = f_of(exact, inp, all_subsets(4), target)
    expected = exact_shapley(f, 4)
    np.testing.assert_allclose(result.seq_attr, expected[0], atol=1e-5)
    np.testing.assert_allclose(result.token_attr, expected[1:], atol=1e-5)


def test_exact_shapley_values_sum_to_the_full_change(exact, target):
    inp = template_input()
    result = pla.ShapleyValues(exact).attribute(inp, target=target)
    f = f_of(exact, inp, [[1, 1, 1, 1], [0, 0, 0, 0]], target)
    assert result.seq_attr.sum() == pytest.approx(f[0, 0] - f[1, 0], abs=1e-5)
    np.testing.assert_allclose(result.token_attr.sum(axis=1), f[0, 1:] - f[1, 1:], atol=1e-5)


def test_permutation_sampling_is_unbiased(exact, target):
    inp = template_input()
    exact_values = pla.ShapleyValues(exact).attribute(inp, target=target).seq_attr
    runs = np.array(
        [
            pla.ShapleyValueSampling(exact)
            .attribute(inp, target=target, n_samples=3, seed=s)
            .seq_attr
            for s in range(60)
        ]
    )
    # 180 orderings in all: the mean is within 4 standard errors of the exact values.
    stderr = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert np.all(np.abs(runs.mean(axis=0) - exact_values) <= 4 * stderr + 1e-6)


def test_kernel_shap_is_efficient_and_approaches_shapley_values(exact, target):
    inp = template_input()
    exact_values = pla.ShapleyValues(exact).attribute(inp, target=target).seq_attr
    result = pla.KernelShap(exact).attribute(inp, target=target, n_samples=3000, seed=0)
    assert result.seq_attr.sum() == pytest.approx(exact_values.sum(), abs=1e-6)
    np.testing.assert_allclose(result.seq_attr, exact_values, atol=0.1 * np.abs(exact_values).max())


def test_kernel_shap_warns_when_samples_are_fewer_than_unknowns(exact, target):
    with pytest.warns(UserWarning, match="KernelShap: 2 samples for 3 unknowns") as caught:
        pla.KernelShap(exact).attribute(template_input(), target=target, n_samples=2, seed=0)
    assert caught[0].filename == __file__  # points at the caller's line


def test_lime_warns_when_samples_are_fewer_than_unknowns(exact, target):
    with pytest.warns(UserWarning, match="Lime: 4 samples for 5 unknowns"):
        pla.Lime(exact).attribute(template_input(), target=target, n_samples=4, seed=0)


def test_enough_samples_give_no_warning(exact, target):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pla.KernelShap(exact).attribute(template_input(), target=target, n_samples=3, seed=0)
        pla.Lime(exact).attribute(template_input(), target=target, n_samples=5, seed=0)


def test_lime_recovers_an_additive_model():
    rng = np.random.default_rng(0)
    masks = pla.Lime.masks(None, 5, rng, n_samples=200)
    weights = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    outputs = np.column_stack([masks @ weights + 7.0, masks @ (2 * weights)])
    coefs = pla.Lime.solve(None, masks, outputs)
    np.testing.assert_allclose(coefs, [weights, 2 * weights], atol=1e-9)


def test_grouped_slots_share_one_attribution(exact, target):
    result = pla.FeatureAblation(exact).attribute(
        template_input(mask={"name": 0, "city": 1, "state": 1, "job": 2}), target=target
    )
    assert result.input_features == ["Dave", "Palm Coast + FL", "lawyer"]
    assert result.seq_attr.shape == (3,)


def test_token_attributions_add_up_to_the_sequence_attribution(exact, target):
    for method in (pla.FeatureAblation, pla.ShapleyValues, pla.Lime, pla.KernelShap):
        result = method(exact).attribute(template_input(), target=target, seed=0)
        assert result.token_attr.shape == (len(target), 4)
        np.testing.assert_allclose(result.token_attr.sum(axis=0), result.seq_attr, atol=1e-6)


def test_probability_target_attributes_the_probability(exact, target):
    inp = template_input()
    result = pla.FeatureAblation(exact).attribute(inp, target=target, attr_target="prob")
    f = np.exp(f_of(exact, inp, [[1, 1, 1, 1], [0, 1, 1, 1]], target))
    assert result.seq_attr[0] == pytest.approx(f[0, 0] - f[1, 0], rel=1e-4)


def test_trials_resample_baselines_and_report_the_spread(exact, target):
    inp = pla.TextTemplateInput(
        TEMPLATE,
        VALUES,
        baselines=pla.ProductBaselines(
            {
                "name": ["Sarah", "John"],
                "city": ["Seattle", "Boston"],
                "state": ["WA", "MA"],
                "job": ["doctor", "chef"],
            }
        ),
    )
    result = pla.FeatureAblation(exact).attribute(inp, target=target, num_trials=4, seed=1)
    assert result.seq_attr_std.shape == (4,)
    assert np.all(result.seq_attr_std > 0)
    again = pla.FeatureAblation(exact).attribute(inp, target=target, num_trials=4, seed=1)
    np.testing.assert_array_equal(result.seq_attr, again.seq_attr)


def test_missing_target_is_generated(exact):
    result = pla.FeatureAblation(exact).attribute(template_input(), gen_args={"max_new_tokens": 3})
    prompt = exact.tokenize(result.prompt)
    assert result.target_ids == exact.generate(prompt, max_new_tokens=3)


def test_token_input_attribution(exact, target):
    inp = pla.TextTokenInput("Dave lives in Palm Coast", exact)
    result = pla.FeatureAblation(exact).attribute(inp, target=target)
    assert result.input_features == [exact.token_to_str(t) for t in exact.tokenize(inp.text)]


@pytest.mark.parametrize(
    "method, kwargs, message",
    [
        (pla.FeatureAblation, {"n_samples": 3}, "unknown option"),
        (pla.ShapleyValueSampling, {"n_samples": 0}, "n_samples"),
        (pla.FeatureAblation, {"attr_target": "logit"}, "attr_target"),
        (pla.FeatureAblation, {"num_trials": 0}, "num_trials"),
        (pla.FeatureAblation, {"target": ""}, "tokenizes to nothing"),
        (pla.FeatureAblation, {"target": None, "gen_args": {"beams": 2}}, "unknown gen_args"),
    ],
)
def test_misuse_is_explained(exact, method, kwargs, message):
    kwargs = {"target": TARGET, **kwargs}
    with pytest.raises(ValueError, match=message):
        method(exact).attribute(template_input(), **kwargs)


def test_exact_shapley_refuses_many_features(exact):
    inp = pla.TextTemplateInput.from_text(" ".join(["word"] * 13))
    with pytest.raises(ValueError, match="ShapleyValueSampling"):
        pla.ShapleyValues(exact).attribute(inp, target=TARGET)


def test_not_an_input(exact):
    with pytest.raises(ValueError, match="TextTokenInput or pla.TextTemplateInput"):
        pla.FeatureAblation(exact).attribute("Dave lives in Palm Coast", target=TARGET)
