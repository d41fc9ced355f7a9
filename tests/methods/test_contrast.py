"""Contrastive attribution: log p(target) - log p(contrast), for every method."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import pyllmattr as pla

TEMPLATE = "{name} lives in {city}, {state} and is a {job}. His interests include"
VALUES = {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer"}
BASELINES = {"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor"}
TARGET, SAME_LENGTH, LONGER = " golf", " chess", " reading history books"


def template_input():
    return pla.TextTemplateInput(TEMPLATE, VALUES, baselines=BASELINES)


def count_engine_calls(monkeypatch, model):
    """Counts model.score_pairs calls (and the share_prefix of each)."""
    calls = []
    original = model.score_pairs

    def counting(sequences, targets, share_prefix=True, **kwargs):
        calls.append(share_prefix)
        return original(sequences, targets, share_prefix, **kwargs)

    monkeypatch.setattr(model, "score_pairs", counting)
    return calls


def test_contrastive_ablation_is_the_difference_of_the_two_ablations(exact):
    fa = pla.FeatureAblation(exact)
    target = fa.attribute(template_input(), target=TARGET)
    contrast = fa.attribute(template_input(), target=SAME_LENGTH)
    both = fa.attribute(template_input(), target=TARGET, contrast=SAME_LENGTH)
    np.testing.assert_allclose(both.seq_attr, target.seq_attr - contrast.seq_attr, atol=1e-5)
    np.testing.assert_allclose(both.token_attr, target.token_attr - contrast.token_attr, atol=1e-5)
    assert both.token_attr_of == "difference"


def test_target_and_contrast_are_scored_in_one_engine_call(exact, monkeypatch):
    calls = count_engine_calls(monkeypatch, exact)
    pla.FeatureAblation(exact).attribute(
        template_input(), target=TARGET, contrast=SAME_LENGTH, noise_floor=False
    )
    assert calls == [True]


def test_the_noise_floor_is_measured_on_the_difference_in_one_more_call(exact, monkeypatch):
    calls = count_engine_calls(monkeypatch, exact)
    result = pla.FeatureAblation(exact).attribute(
        template_input(), target=TARGET, contrast=SAME_LENGTH
    )
    assert calls == [True, False]  # the attribution, then the reference alone
    prompt = exact.tokenize(result.prompt)
    alone_t, alone_c = exact.score_pairs([prompt, prompt], [TARGET, SAME_LENGTH], False)
    in_batch = result.target_logprob - result.contrast_logprob
    assert result.noise_floor == pytest.approx(abs(in_batch - (alone_t.sum() - alone_c.sum())))


def test_a_contrast_of_another_length_keeps_the_targets_token_attributions(exact):
    fa = pla.FeatureAblation(exact)
    target = fa.attribute(template_input(), target=TARGET)
    contrast = fa.attribute(template_input(), target=LONGER)
    both = fa.attribute(template_input(), target=TARGET, contrast=LONGER)
    np.testing.assert_allclose(both.seq_attr, target.seq_attr - contrast.seq_attr, atol=1e-5)
    np.testing.assert_allclose(both.token_attr, target.token_attr, atol=1e-5)
    assert both.token_attr_of == "target"


def test_the_result_describes_the_contrast(exact):
    result = pla.FeatureAblation(exact).attribute(template_input(), target=TARGET, contrast=LONGER)
    ids = exact.tokenize(LONGER, add_special=False)
    assert result.contrast_ids == ids
    assert result.contrast_tokens == [exact.token_to_str(t) for t in ids]
    assert result.contrast == LONGER
    prompt = exact.tokenize(result.prompt)
    alone = exact.score([prompt], ids, share_prefix=False)[0]
    assert result.contrast_logprob == pytest.approx(alone.sum(), abs=1e-4)
    assert result.quantity == f"log p(target) - log p(contrast {LONGER!r})"


def test_the_html_view_and_plots_say_the_target_is_attributed_against_the_contrast(exact):
    result = pla.FeatureAblation(exact).attribute(
        template_input(), target=TARGET, contrast=SAME_LENGTH
    )
    view = result.to_html()
    assert "rather than &#x27; chess&#x27;" in view
    assert f"log p(contrast &#x27; chess&#x27;) = {result.contrast_logprob:.3f}" in view
    assert "favours the target over &#x27; chess&#x27;" in view
    matplotlib.use("Agg")
    _, ax = result.plot_seq_attr()
    assert ax.get_ylabel() == "attribution (log p(target) - log p(contrast ' chess'))"
    assert ax.get_title() == "FeatureAblation: 'golf' rather than 'chess'"  # labels are trimmed


def test_contrast_token_ids_work_like_the_text(exact):
    fa = pla.FeatureAblation(exact)
    by_text = fa.attribute(template_input(), target=TARGET, contrast=SAME_LENGTH)
    ids = exact.tokenize(SAME_LENGTH, add_special=False)
    by_ids = fa.attribute(template_input(), target=TARGET, contrast=ids)
    np.testing.assert_array_equal(by_ids.seq_attr, by_text.seq_attr)


def test_the_contrast_objective_object_is_the_contrast_option(exact):
    fa = pla.FeatureAblation(exact)
    by_option = fa.attribute(template_input(), target=TARGET, contrast=SAME_LENGTH)
    by_object = fa.attribute(template_input(), target=TARGET, attr_target=pla.Contrast(SAME_LENGTH))
    np.testing.assert_array_equal(by_object.seq_attr, by_option.seq_attr)


def test_contrastive_shapley_values_sum_to_the_change_of_the_difference(exact):
    result = pla.ShapleyValues(exact).attribute(
        template_input(), target=TARGET, contrast=SAME_LENGTH
    )
    encoding = template_input().encode(exact)
    rng = np.random.default_rng(0)
    full, empty = encoding.sequences(np.array([[1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool), rng)
    t = exact.score([full, empty], TARGET, share_prefix=False).sum(axis=1)
    c = exact.score([full, empty], SAME_LENGTH, share_prefix=False).sum(axis=1)
    assert result.seq_attr.sum() == pytest.approx((t[0] - c[0]) - (t[1] - c[1]), abs=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"contrast": SAME_LENGTH, "attr_target": "prob"}, "use attr_target='log_prob'"),
        ({"contrast": ""}, "contrast '' tokenizes to nothing"),
        ({"contrast": []}, "contrast is empty"),
        ({"contrast": [10**9]}, "outside this model's vocabulary"),
        ({"contrast": " a", "attr_target": pla.Contrast(" b")}, "give the contrast once"),
    ],
)
def test_contrast_misuse_is_explained(exact, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pla.FeatureAblation(exact).attribute(template_input(), target=TARGET, **kwargs)


def test_contrast_fields_round_trip_through_json(exact):
    result = pla.FeatureAblation(exact).attribute(template_input(), target=TARGET, contrast=LONGER)
    back = pla.AttributionResult.from_json(result.to_json())
    assert back.contrast_tokens == result.contrast_tokens
    assert back.contrast_ids == result.contrast_ids
    assert back.contrast_logprob == result.contrast_logprob
    np.testing.assert_array_equal(back.contrast_token_logprobs, result.contrast_token_logprobs)
    assert back.token_attr_of == "target"


def test_results_saved_before_contrasts_existed_still_load(exact):
    result = pla.FeatureAblation(exact).attribute(template_input(), target=TARGET)
    old = result.to_dict()
    for name in (
        "contrast_tokens",
        "contrast_ids",
        "contrast_logprob",
        "contrast_token_logprobs",
        "token_attr_of",
    ):
        del old[name]
    back = pla.AttributionResult.from_json(json.dumps(old))
    assert back.contrast_tokens is None and back.contrast_logprob is None
    assert back.token_attr_of == "target"
    assert back.quantity == "log p(target)"


def test_integrated_gradients_of_a_contrast_are_the_difference_of_both(smollm2_torch):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and is a",
        {"name": "John", "city": "Chicago"},
        baselines={"name": "Mary", "city": "Boston"},
    )
    ig = pla.IntegratedGradients(smollm2_torch)
    target = ig.attribute(inp, target=" lawyer", n_steps=4)
    contrast = ig.attribute(inp, target=" doctor", n_steps=4)
    both = ig.attribute(inp, target=" lawyer", contrast=" doctor", n_steps=4)
    np.testing.assert_allclose(both.seq_attr, target.seq_attr - contrast.seq_attr, atol=1e-4)
    np.testing.assert_allclose(both.token_attr, target.token_attr - contrast.token_attr, atol=1e-4)
    assert both.token_attr_of == "difference"
    assert both.contrast_logprob == pytest.approx(contrast.target_logprob, abs=1e-5)


def test_the_command_line_attributes_a_contrast(tmp_path, tiny_path):
    out = tmp_path / "out.json"
    exe = Path(sys.executable).parent / "pyllmattr"
    done = subprocess.run(
        [
            str(exe), "attribute", "--model", str(tiny_path),
            "--prompt", "Dave lives in Palm Coast", "--target", TARGET, "--contrast", LONGER,
            "--json", str(out), "--no-progress",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"contrast: {LONGER!r}" in done.stdout
    assert f"raises (+) or lowers (-) log p(target) - log p(contrast {LONGER!r})" in done.stdout
    result = pla.AttributionResult.from_json(out.read_text())
    assert result.contrast == LONGER
