"""Attribution results: serialization, plots and the notebook view."""

from __future__ import annotations

import dataclasses
import json

import matplotlib
import numpy as np
import pytest
from matplotlib.container import BarContainer

import pyllmattr as pla
from pyllmattr.methods.staged import StagedResult

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


# ------------------------------------------------------------ serialization of every result type

DOCS = [
    "Harrowgate is a mill town. It was founded in 1742.\n\nIts mill closed.",
    "The Ostrel is a river. It floods in spring.",
]


def assert_same(back, value, where="result"):
    """``back`` equals ``value`` with the same container types: arrays stay arrays,
    tuples tuples, NaN equals NaN."""
    if isinstance(value, np.ndarray):
        assert isinstance(back, np.ndarray), where
        np.testing.assert_array_equal(back, value, err_msg=where)
    elif isinstance(value, dict):
        assert isinstance(back, dict) and back.keys() == value.keys(), where
        for key in value:
            assert_same(back[key], value[key], f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        assert type(back) is type(value) and len(back) == len(value), where
        for i, (b, v) in enumerate(zip(back, value, strict=True)):
            assert_same(b, v, f"{where}[{i}]")
    elif isinstance(value, float) and np.isnan(value):
        assert isinstance(back, float) and np.isnan(back), where
    else:
        assert back == value and type(back) is type(value), f"{where}: {back!r} != {value!r}"


def assert_round_trips(result):
    back = pla.AttributionResult.from_json(result.to_json())
    assert type(back) is type(result)
    for f in dataclasses.fields(result):
        assert_same(getattr(back, f.name), getattr(result, f.name), f.name)
    return back


PERTURBATION_OPTIONS = {
    "feature-ablation": {},
    "shapley-sampling": {"n_samples": 2},
    "shapley": {},
    "lime": {"n_samples": 12},
    "kernel-shap": {"n_samples": 12},
    "hierarchical": {"levels": ("document", "sentence"), "keep": 1},
    "context-cite": {"n_samples": 16, "folds": 2},
}


@pytest.mark.parametrize("name", sorted(PERTURBATION_OPTIONS))
def test_every_perturbation_methods_result_round_trips_through_json(exact, name):
    inp = pla.ContextInput(DOCS, "When was Harrowgate founded?")
    method = pla.METHODS[name](exact)
    result = method.attribute(inp, target=" 1742", seed=0, **PERTURBATION_OPTIONS[name])
    back = assert_round_trips(result)
    if name in ("hierarchical", "context-cite"):  # StagedResult: its own fields survive
        assert back.levels and back.computed_by and back.refined
        assert (back.fit is not None) == (name == "context-cite")


@pytest.fixture(scope="module")
def tiny_torch(tiny_path):
    pytest.importorskip("torch")
    return pla.load_torch_gguf(tiny_path)


@pytest.mark.parametrize("name", sorted(pla.GRADIENT_METHODS))
def test_every_gradient_methods_result_round_trips_through_json(tiny_torch, name):
    inp = pla.TextTemplateInput(
        "{name} lives in {city}",
        {"name": "John", "city": "Chicago"},
        baselines={"name": "Mary", "city": "Boston"},  # as many tokens as the values
    )
    options = {"integrated-gradients": {"n_steps": 4}, "gradient-shap": {"n_samples": 3}}
    method = pla.GRADIENT_METHODS[name](tiny_torch)
    assert_round_trips(method.attribute(inp, target=" and", seed=0, **options.get(name, {})))


def test_a_contrastive_result_with_trials_round_trips(exact):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast and is a")
    result = pla.ShapleyValueSampling(exact).attribute(
        inp, target=" lawyer", contrast=" doctor", n_samples=2, num_trials=3, seed=1
    )
    assert result.contrast_tokens is not None and result.seq_attr_std is not None
    back = assert_round_trips(result)
    assert back.quantity == result.quantity == "log p(target) - log p(contrast ' doctor')"


def test_the_label_says_what_each_objective_attributes(exact):
    inp = pla.ContextInput(DOCS, "When was Harrowgate founded?")
    cite = pla.ContextCite(exact).attribute(inp, target=" 1742", n_samples=16, folds=2, seed=0)
    assert cite.attr_target == "logit_prob" and cite.quantity == "logit p(target)"
    fig, ax = cite.plot_seq_attr()
    assert ax.get_ylabel() == "attribution (logit p(target))"
    regressed = pla.ContextCite(exact).attribute(
        inp, target=" 1742", n_samples=16, folds=2, seed=0, output="attr_target"
    )
    assert regressed.quantity == "log p(target)"


def test_a_result_built_by_hand_is_labelled_from_its_attr_target():
    values = np.zeros(2)
    result = pla.AttributionResult(values, None, ["a", "b"], [" x"], -1.0, values[:1], "M",
                                   attr_target="logit_prob")  # fmt: skip
    assert result.quantity == "logit p(target)"


@dataclasses.dataclass
class Section:
    """A section of a result (as a convergence or faithfulness report would be)."""

    values: np.ndarray
    steps: int = 0


@dataclasses.dataclass(repr=False)
class PairResult(pla.AttributionResult):
    """A result type with fields of the kinds a new one may add."""

    pairs: dict[tuple[int, ...], float] = dataclasses.field(default_factory=dict)
    section: Section | None = None
    spans: list[tuple[int, int]] = dataclasses.field(default_factory=list)


def test_new_fields_and_result_types_round_trip_from_their_annotations():
    values = np.array([0.5, -0.25])
    result = PairResult(values, None, ["a", "b"], [" x"], -1.0, values[:1], "M",
                        pairs={(0, 1): 0.125, (1,): -2.0}, section=Section(values, 3),
                        spans=[(0, 2)])  # fmt: skip
    back = pla.AttributionResult.from_json(result.to_json())
    assert type(back) is PairResult and back.pairs == {(0, 1): 0.125, (1,): -2.0}
    assert back.spans == [(0, 2)] and back.section.steps == 3
    np.testing.assert_array_equal(back.section.values, values)
    with pytest.raises(ValueError, match="holds a PairResult, not a StagedResult"):
        StagedResult.from_json(result.to_json())


def test_an_unknown_result_type_is_refused_by_name():
    data = json.loads(OLD_STAGED_JSON)
    data["result_type"] = "NoSuchResult"
    with pytest.raises(ValueError, match="unknown result_type 'NoSuchResult'"):
        pla.AttributionResult.from_dict(data)


# As pyllmattr wrote them before results stored "result_type" and "quantity" (commit
# b369aa2): HierarchicalAblation and ContextCite (attr_target "logit_prob", which that
# version labelled "log p(target)") on the tiny model, target " 17", noise_floor=False.
OLD_STAGED_JSON = (
    '{"seq_attr": [0.7406570396070151, -0.6191319691962178, 1.0336389039866347], "token_attr"'
    ": [[1.3119276168620875, 1.2817854641307598, 0.9295629285985072], [-0.19499349341138839, "
    "-1.276684130471292, -0.14379422864656632], [-0.3762770838436822, -0.6242333028556857, 0."
    '24787020403469207]], "input_features": ["Harrowgate was founded in 1742.", "It has a mil'
    'l.", "The Ostrel is a river."], "output_tokens": [" ", "1", "7"], "target_logprob": -34.'
    '65306328070478, "target_token_logprobs": [-11.185150072623525, -12.591532070783497, -10.'
    '876381137297756], "method": "HierarchicalAblation", "attr_target": "log_prob", "settings'
    '": {"num_trials": 1, "seed": null, "levels": ["document", "sentence"], "keep": 1, "keep_'
    'alone": 0, "proxy": null, "unrefined": "split"}, "seq_attr_std": null, "token_attr_std":'
    ' null, "prompt_segments": [["Context: ", null], ["Harrowgate was founded in 1742.", 0], '
    '[" It has a mill.", 1], ["\\n\\nThe Ostrel is a river.", 2], ["\\n\\nQuery: When was Harrowg'
    'ate founded?", null]], "feature_tokens": [[" Har", "row", "gate", " was", " founded", " '
    'in", " ", "1", "7", "4", "2", "."], [" It", " has", " a", " mill", "."], ["\\n", "\\n", "T'
    'he", " Ost", "rel", " is", " a", " river", "."]], "target_ids": [216, 33, 39], "baseline'
    '_logprob": null, "noise_floor": null, "token_noise_floor": null, "stats": {"n_evaluation'
    's": 6, "n_decoded": 171, "n_trie": 171, "n_naive": 210, "n_decode_calls": 2, "n_waves": '
    '2, "n_padding": 0, "seconds": 4.094332469000051, "n_calls": 2, "n_score_calls": 2, "n_in'
    'puts": 1, "strategy": "trie"}, "completeness_gap": null, "seq_completeness_gap": null, "'
    'contrast_tokens": null, "contrast_ids": null, "contrast_logprob": null, "contrast_token_'
    'logprobs": null, "token_attr_of": "target", "levels": [{"level": "document", "model": "t'
    'arget", "units": [0, 1], "seq_attr": [1.4659603844840419, 1.0336389039866347]}, {"level"'
    ': "sentence", "model": "target", "units": [0, 1], "seq_attr": [0.7406570396070151, -0.61'
    '91319691962178]}], "computed_by": ["target", "target", "target"], "refined": [true, true'
    ', false], "fit": null}'
)
OLD_CITE_JSON = (
    '{"seq_attr": [0.6943057214172242, 0.0, 0.2910798106965411], "token_attr": [[1.4373392748'
    "513336, -0.09889302383871712, 0.2518012452981907], [-0.014034377958260933, 0.11412752832"
    "089751, -0.75684788165093], [-0.6359024018933163, -0.04101891259028459, 0.87430688229129"
    '2]], "input_features": ["Harrowgate was founded in 1742.", "It has a mill.", "The Ostrel'
    ' is a river."], "output_tokens": [" ", "1", "7"], "target_logprob": -34.65306366152735, '
    '"target_token_logprobs": [-11.185150275481769, -12.591532377666024, -10.876381008379555]'
    ', "method": "ContextCite", "attr_target": "logit_prob", "settings": {"num_trials": 1, "s'
    'eed": 0, "n_samples": 8, "keep_prob": 0.5, "alpha": 0.01, "output": "logit_prob", "proxy'
    '": null, "keep": 5, "folds": 2}, "seq_attr_std": null, "token_attr_std": null, "prompt_s'
    'egments": [["Context: ", null], ["Harrowgate was founded in 1742.", 0], [" It has a mill'
    '.", 1], ["\\n\\nThe Ostrel is a river.", 2], ["\\n\\nQuery: When was Harrowgate founded?", n'
    'ull]], "feature_tokens": [[" Har", "row", "gate", " was", " founded", " in", " ", "1", "'
    '7", "4", "2", "."], [" It", " has", " a", " mill", "."], ["\\n", "\\n", "The", " Ost", "re'
    'l", " is", " a", " river", "."]], "target_ids": [216, 33, 39], "baseline_logprob": null,'
    ' "noise_floor": null, "token_noise_floor": null, "stats": {"n_evaluations": 9, "n_decode'
    'd": 132, "n_trie": 132, "n_naive": 262, "n_decode_calls": 1, "n_waves": 1, "n_padding": '
    '0, "seconds": 0.5456886990000385, "n_calls": 1, "n_score_calls": 1, "n_inputs": 1, "stra'
    'tegy": "trie"}, "completeness_gap": null, "seq_completeness_gap": null, "contrast_tokens'
    '": null, "contrast_ids": null, "contrast_logprob": null, "contrast_token_logprobs": null'
    ', "token_attr_of": "target", "levels": [{"level": "features", "model": "target", "units"'
    ': [0, 1, 2], "seq_attr": [0.6943057214172242, -0.0, 0.2910798106965411]}], "computed_by"'
    ': ["target", "target", "target"], "refined": [true, true, true], "fit": {"r2": -1.453916'
    '2540315451, "lds": -0.3086654989529968, "folds": 2, "intercept": -35.949847730843885, "m'
    'odel": "target"}}'
)


def test_results_written_before_result_types_were_stored_still_load():
    staged = pla.AttributionResult.from_json(OLD_STAGED_JSON)
    assert type(staged).__name__ == "StagedResult" and staged.method == "HierarchicalAblation"
    assert [level["level"] for level in staged.levels] == ["document", "sentence"]
    assert staged.computed_by == ["target"] * 3 and staged.quantity == "log p(target)"
    assert isinstance(staged.seq_attr, np.ndarray) and staged.token_attr.shape == (3, 3)
    assert staged.prompt_segments[1] == ("Harrowgate was founded in 1742.", 0)
    cite = pla.AttributionResult.from_json(OLD_CITE_JSON)
    assert set(cite.fit) >= {"r2", "lds"} and cite.quantity == "logit p(target)"
    # Read again and written anew, it round-trips in the current format.
    assert_round_trips(cite)
