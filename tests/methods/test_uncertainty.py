"""Standard errors and top-k order probabilities of the sampling methods (a seeded
bootstrap over their coalitions), in the result and the CLI table."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.cli.table import format_result
from pyllmattr.methods.shapley import ShapleyValueSampling, contributions
from pyllmattr.methods.uncertainty import bootstrap_rng, top_k_prob

PROMPT = "Dave lives in Palm Coast, FL and is a"


@pytest.fixture(scope="module")
def words():
    return pla.TextTemplateInput.from_text(PROMPT)


def test_top_k_prob_counts_replicates_that_keep_the_order():
    values = np.array([3.0, -2.0, 1.0])
    replicates = np.array([[3.0, -2.0, 1.0], [3.0, 1.0, 2.0], [1.0, 3.0, 0.0], [2.5, -2.1, 0.1]])
    # Ranks by |value|: 0, 1, 2. Replicate 1 keeps rank 1 only; 2 none; 0 and 3 all.
    assert top_k_prob(replicates, values) == [0.75, 0.5, 0.5]


def test_the_bootstrap_standard_error_of_shapley_sampling_matches_the_formula():
    rng = np.random.default_rng(0)
    method = ShapleyValueSampling.__new__(ShapleyValueSampling)
    masks = method.masks(6, rng, n_samples=40)
    outputs = rng.normal(size=(len(masks), 2)) + masks[:, :1] * 3.0
    replicates = method.replicates(masks, outputs, bootstrap_rng(0))
    per_sample = contributions(masks, outputs)
    formula = per_sample.std(axis=0) / np.sqrt(len(per_sample))  # of a mean of iid samples
    np.testing.assert_allclose(replicates.std(axis=0, ddof=1), formula, rtol=0.2)
    np.testing.assert_allclose(per_sample.mean(axis=0), method.solve(masks, outputs))


@pytest.mark.parametrize(
    "method, options",
    [
        (pla.ShapleyValueSampling, {"n_samples": 6}),
        (pla.KernelShap, {"n_samples": 30}),
        (pla.Lime, {"n_samples": 30}),
    ],
)
def test_sampling_methods_report_standard_errors_and_order_probabilities(
    tiny, words, method, options
):
    result = method(tiny).attribute(words, target=" lawyer", seed=3, **options)
    n = words.n_features
    assert result.seq_attr_stderr.shape == (n,) and (result.seq_attr_stderr >= 0).all()
    assert result.seq_attr_stderr.max() > 0
    assert result.token_attr_stderr.shape == result.token_attr.shape
    probs = result.top_k_prob
    assert len(probs) == 5 and all(0 <= p <= 1 for p in probs)
    assert probs == sorted(probs, reverse=True)  # keeping k+1 ranks keeps k
    again = method(tiny).attribute(words, target=" lawyer", seed=3, **options)
    np.testing.assert_array_equal(again.seq_attr_stderr, result.seq_attr_stderr)
    assert again.top_k_prob == probs
    back = pla.AttributionResult.from_json(result.to_json())
    np.testing.assert_array_equal(back.seq_attr_stderr, result.seq_attr_stderr)
    assert back.top_k_prob == probs
    table = format_result(result)
    assert "± std.err" in table and "top-1" in table


def test_more_trials_shrink_the_standard_error(tiny, words):
    one = pla.ShapleyValueSampling(tiny).attribute(words, target=" lawyer", n_samples=4, seed=0)
    four = pla.ShapleyValueSampling(tiny).attribute(
        words, target=" lawyer", n_samples=4, num_trials=4, seed=0
    )
    # The mean over 4 trials of 4 orderings: about half the error of one trial.
    ratio = np.median(four.seq_attr_stderr / one.seq_attr_stderr)
    assert 0.3 < ratio < 0.8


def test_context_cite_reports_standard_errors(tiny):
    inp = pla.ContextInput(
        ["Ravenna Creek is a town. It has a mill.", "Ostrel is a river. It is long."],
        "Which town has a mill?",
    )
    result = pla.ContextCite(tiny).attribute(inp, target=" Ravenna", n_samples=16, seed=0)
    assert result.seq_attr_stderr.shape == (4,) and len(result.top_k_prob) == 4


def test_exact_methods_report_none(tiny, words):
    result = pla.FeatureAblation(tiny).attribute(words, target=" lawyer")
    assert result.seq_attr_stderr is None and result.top_k_prob is None
    assert "std.err" not in format_result(result)
