"""pla.summarize: per-feature statistics over many attributions of the same features."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.render import short_label

EXAMPLES = {"a": "Q: 2+2? A: 4.", "b": "Q: 3+3? A: 6.", "c": "Q: 5+1? A: 6."}
QUERIES = ["Q: 1+1? A:", "Q: 4+4? A:", "Q: 2+5? A:"]


def few_shot_input(query: str) -> pla.TextTemplateInput:
    """The three examples are the features; the query is fixed text after them."""
    template = "{a}\n{b}\n{c}\n" + query.replace("{", "{{").replace("}", "}}")
    return pla.TextTemplateInput(template, EXAMPLES)


def result_with(features: list[str], seq_attr: list[float], method: str = "FeatureAblation"):
    return pla.AttributionResult(
        seq_attr=np.array(seq_attr, dtype=float),
        token_attr=None,
        input_features=features,
        output_tokens=[" x"],
        target_logprob=-1.0,
        target_token_logprobs=np.array([-1.0]),
        method=method,
    )


@pytest.fixture(scope="module")
def few_shot_results(tiny):
    method = pla.FeatureAblation(tiny)
    return [method.attribute(few_shot_input(q), target=" 2", progress=False) for q in QUERIES]


def test_summary_statistics_of_real_attributions_are_the_per_feature_mean_stderr_and_share(
    few_shot_results,
):
    summary = pla.summarize(few_shot_results)
    values = np.stack([r.seq_attr for r in few_shot_results])
    assert summary.features == list(EXAMPLES.values())
    assert summary.n_inputs == len(QUERIES)
    np.testing.assert_allclose(summary.mean, values.mean(axis=0))
    np.testing.assert_allclose(summary.stderr, values.std(axis=0, ddof=1) / math.sqrt(3))
    np.testing.assert_array_equal(summary.share_positive, (values > 0).mean(axis=0))


def test_summary_of_known_values():
    results = [result_with(["x", "y"], [1.0, -1.0]), result_with(["x", "y"], [3.0, 2.0])]
    summary = pla.summarize(results)
    np.testing.assert_allclose(summary.mean, [2.0, 0.5])
    np.testing.assert_allclose(summary.stderr, [1.0, 1.5])  # std (ddof=1) / sqrt(2)
    np.testing.assert_allclose(summary.share_positive, [1.0, 0.5])


def test_features_are_matched_by_name_in_any_order():
    summary = pla.summarize([result_with(["x", "y"], [1.0, 5.0]), result_with(["y", "x"], [7, 3])])
    assert summary.features == ["x", "y"]
    np.testing.assert_allclose(summary.mean, [2.0, 6.0])


def test_the_dict_form_written_by_the_command_line_is_accepted(few_shot_results):
    dicts = [json.loads(r.to_json()) for r in few_shot_results]
    np.testing.assert_allclose(pla.summarize(dicts).mean, pla.summarize(few_shot_results).mean)


def test_one_result_has_no_standard_error():
    summary = pla.summarize([result_with(["x"], [0.5])])
    assert math.isnan(summary.stderr[0])
    assert summary.to_dict()["features"][0]["stderr"] is None
    assert "—" in str(summary)


def test_no_results_is_a_value_error():
    with pytest.raises(ValueError, match="no results"):
        pla.summarize([])


def test_results_over_other_features_name_the_result_and_the_features():
    results = [result_with(["x", "y"], [1, 2]), result_with(["x", "z"], [1, 2])]
    with pytest.raises(ValueError, match=r"result 1 .*missing \['y'\], extra \['z'\]"):
        pla.summarize(results)


def test_a_different_number_of_features_is_a_value_error():
    results = [result_with(["x", "y"], [1, 2]), result_with(["x", "y", "y"], [1, 2, 3])]
    with pytest.raises(ValueError, match=r"result 1 .*3 features vs 2"):
        pla.summarize(results)


def test_repeated_names_in_another_order_cannot_be_matched():
    results = [result_with(["x", "x", "y"], [1, 2, 3]), result_with(["x", "y", "x"], [1, 2, 3])]
    with pytest.raises(ValueError, match="repeated names"):
        pla.summarize(results)


def test_results_of_different_methods_are_not_averaged():
    results = [result_with(["x"], [1]), result_with(["x"], [1], method="Lime")]
    with pytest.raises(ValueError, match="result 1 has method 'Lime'"):
        pla.summarize(results)


def test_results_with_and_without_a_contrast_are_not_averaged():
    contrastive = result_with(["x"], [1])
    contrastive.contrast_tokens, contrastive.contrast_ids = [" y"], [7]
    with pytest.raises(ValueError, match="result 1 has a contrast and result 0 does not"):
        pla.summarize([result_with(["x"], [1]), contrastive])


def test_something_that_is_not_a_result_is_a_value_error():
    with pytest.raises(ValueError, match="result 0 is a str"):
        pla.summarize(["not a result"])


def test_the_table_ranks_features_by_absolute_mean():
    summary = pla.summarize([result_with(["small", "big", "neg"], [0.1, 2.0, -0.5])])
    lines = summary.to_markdown().splitlines()
    rows = lines[lines.index("| ---: | --- | ---: | ---: | ---: |") + 1 :]
    assert [row.split("|")[2].strip() for row in rows] == ["big", "neg", "small"]
    assert rows[0].split("|")[3].strip() == "+2.0000"


def test_to_dict_is_json_and_lists_every_feature(few_shot_results):
    data = json.loads(json.dumps(pla.summarize(few_shot_results).to_dict()))
    assert data["n_inputs"] == 3
    assert data["method"] == "FeatureAblation"
    assert [f["feature"] for f in data["features"]] == list(EXAMPLES.values())


def test_plot_draws_one_bar_per_feature_with_standard_error_bars(few_shot_results):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.container import BarContainer

    summary = pla.summarize(few_shot_results)
    fig, ax = summary.plot()
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    np.testing.assert_allclose([bar.get_height() for bar in bars], summary.mean)
    segments = bars.errorbar.lines[2][0].get_segments()  # one vertical line per bar
    np.testing.assert_allclose([s[:, 1].min() for s in segments], summary.mean - summary.stderr)
    np.testing.assert_allclose([s[:, 1].max() for s in segments], summary.mean + summary.stderr)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [short_label(f) for f in EXAMPLES.values()]
    matplotlib.pyplot.close(fig)
