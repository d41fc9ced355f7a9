"""Attribution results: serialization, plots and the notebook view."""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pytest
from matplotlib.container import BarContainer

import pyllmattr as pla

matplotlib.use("Agg")


def bars(ax):
    """The bars of a bar chart (its error bars are another container)."""
    (container,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    return list(container.patches)


@pytest.fixture(scope="module")
def result(exact):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL & is a <lawyer>.")
    return pla.ShapleyValueSampling(exact).attribute(
        inp, target=" golf and books", n_samples=4, num_trials=2, seed=0
    )


def test_json_round_trip(result):
    again = pla.AttributionResult.from_json(result.to_json())
    assert again.to_dict() == result.to_dict()
    np.testing.assert_array_equal(again.token_attr, result.token_attr)
    assert again.prompt == result.prompt == "Dave lives in Palm Coast, FL & is a <lawyer>."


def test_result_describes_itself(result):
    assert result.method == "ShapleyValueSampling"
    assert result.settings == {"num_trials": 2, "seed": 0, "n_samples": 4}
    assert result.target == " golf and books"
    (name, value), _ = result.top_features(2)
    assert abs(value) == np.abs(result.seq_attr).max()
    assert name == result.input_features[int(np.argmax(np.abs(result.seq_attr)))]


def test_plots_return_figure_and_axes(result):
    fig, ax = result.plot_seq_attr()
    assert len(bars(ax)) == len(result.input_features)
    fig, ax = result.plot_token_attr()
    assert ax.images[0].get_array().shape == result.token_attr.shape
    assert [t.get_text() for t in ax.get_yticklabels()] == ["golf", "and", "books"]


def test_html_highlights_every_feature_and_escapes_text(result):
    page = result._repr_html_()
    assert page.count('class="pla-feature"') == len(result.input_features)
    assert "&lt;lawyer&gt;" in page and "&amp;" in page
    assert "<lawyer>" not in page


def test_features_within_the_noise_floor_are_marked(result):
    values = np.abs(result.seq_attr)
    floor = float(np.sort(values)[len(values) // 2])  # half the features fall within it
    noisy = dataclasses.replace(result, noise_floor=floor)
    quiet = noisy.below_noise()
    assert quiet.sum() == np.sum(values <= floor) > 0
    fig, ax = noisy.plot_seq_attr()
    assert [bar.get_hatch() == "//" for bar in bars(ax)] == quiet.tolist()
    page = noisy._repr_html_()
    assert page.count("pla-below-noise") == quiet.sum()
    assert f"noise floor ±{floor:.3f}" in page
