"""GradientShap on the input embeddings: sampling, seeding, spread and baselines."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.methods.gradient_shap import baseline_distribution

ALIGNED = pla.TextTemplateInput(
    "{name} lives in {city} and is a",
    {"name": "John", "city": "Chicago"},
    baselines={"name": "Mary", "city": "Boston"},
)


def test_gradient_shap_is_a_registered_gradient_method():
    assert pla.METHODS["gradient-shap"] is pla.GradientShap
    assert pla.GRADIENT_METHODS["gradient-shap"] is pla.GradientShap


def test_the_same_seed_gives_the_same_attributions_and_another_seed_others(smollm2_torch):
    shap = pla.GradientShap(smollm2_torch)
    first = shap.attribute(ALIGNED, target=" lawyer", n_samples=4, seed=3)
    again = shap.attribute(ALIGNED, target=" lawyer", n_samples=4, seed=3)
    other = shap.attribute(ALIGNED, target=" lawyer", n_samples=4, seed=4)
    np.testing.assert_array_equal(again.seq_attr, first.seq_attr)
    assert not np.allclose(other.seq_attr, first.seq_attr)


def test_the_spread_across_samples_is_reported_per_feature_and_target_token(smollm2_torch):
    result = pla.GradientShap(smollm2_torch).attribute(
        ALIGNED, target=" lawyer in", n_samples=6, seed=0
    )
    assert result.seq_attr_std.shape == (2,)
    assert result.token_attr_std.shape == (2, 2)
    assert np.all(result.seq_attr_std > 0)  # the points differ from sample to sample
    assert result.settings["n_samples"] == 6 and result.settings["num_trials"] == 1
    assert result.stats["n_evaluations"] == 6


def test_noise_on_the_input_embeddings_changes_the_attributions(smollm2_torch):
    shap = pla.GradientShap(smollm2_torch)
    plain = shap.attribute(ALIGNED, target=" lawyer", n_samples=4, seed=0)
    noisy = shap.attribute(ALIGNED, target=" lawyer", n_samples=4, seed=0, stdevs=0.01)
    assert not np.allclose(noisy.seq_attr, plain.seq_attr)


@pytest.mark.parametrize("stdevs", [-0.1, "much", True])
def test_stdevs_must_be_a_non_negative_number(smollm2_torch, stdevs):
    with pytest.raises(ValueError, match="stdevs must be a number >= 0"):
        pla.GradientShap(smollm2_torch).attribute(ALIGNED, target=" lawyer", stdevs=stdevs)


def test_product_baselines_are_sampled_as_the_distribution(smollm2_torch):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and is a",
        {"name": "John", "city": "Chicago"},
        baselines=pla.ProductBaselines({"name": ["Mary", "Tom"], "city": ["Boston", "Denver"]}),
    )
    result = pla.GradientShap(smollm2_torch).attribute(inp, target=" lawyer", n_samples=8, seed=1)
    assert result.seq_attr.shape == (2,) and np.all(np.isfinite(result.seq_attr))


def test_a_list_of_baselines_is_a_distribution_and_a_list_of_ids_one_baseline():
    assert baseline_distribution(["Mary lives in Boston", 0, "zero"]) == [
        "Mary lives in Boston",
        0,
        "zero",
    ]
    assert baseline_distribution([[1, 2], [3, 4]]) == [[1, 2], [3, 4]]
    assert baseline_distribution([5, 6, 7]) == [[5, 6, 7]]
    assert baseline_distribution(None) == [None]
    assert baseline_distribution(0) == [0]


def test_text_baselines_of_another_length_are_rejected(smollm2_torch):
    with pytest.raises(ValueError, match="same length"):
        pla.GradientShap(smollm2_torch).attribute(
            ALIGNED, target=" lawyer", n_samples=2, baselines=["Mary lives in Boston", "Tom"]
        )
