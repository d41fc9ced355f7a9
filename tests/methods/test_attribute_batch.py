"""attribute_batch: many inputs in one job, each result what attribute gives it alone."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla
import pyllmattr.pipeline.scoring

PROMPTS = [
    "Dave lives in Palm Coast and is a lawyer. On weekends he plays",
    "Maria teaches piano in Vienna. After her lessons she enjoys",
    "The old fisherman mended his nets at dawn, then he",
]
TARGETS = [" golf", " a walk in the park", " sailed out"]


def inputs():
    return [pla.TextTemplateInput.from_text(p) for p in PROMPTS]


@pytest.fixture(scope="module")
def deterministic(smollm2_path):
    with pla.load_gguf(smollm2_path, n_ctx=1024, n_threads=2, deterministic=True) as model:
        yield model


def count_engine_calls(monkeypatch, model):
    calls = []
    original = model.score_pairs

    def counting(sequences, targets, share_prefix=True, **kwargs):
        calls.append(len(sequences))
        return original(sequences, targets, share_prefix, **kwargs)

    monkeypatch.setattr(model, "score_pairs", counting)
    return calls


def assert_same_result(got, want):
    np.testing.assert_array_equal(got.seq_attr, want.seq_attr)
    np.testing.assert_array_equal(got.token_attr, want.token_attr)
    assert got.target_ids == want.target_ids
    assert got.target_logprob == want.target_logprob
    assert got.input_features == want.input_features


@pytest.mark.parametrize(
    "method, options",
    [(pla.FeatureAblation, {}), (pla.ShapleyValueSampling, {"n_samples": 2, "seed": 7})],
)
def test_each_result_equals_attribute_alone_on_a_deterministic_model(
    deterministic, method, options
):
    attributor = method(deterministic)
    batch = attributor.attribute_batch(inputs(), targets=TARGETS, **options)
    for inp, target, got in zip(inputs(), TARGETS, batch, strict=True):
        assert_same_result(got, attributor.attribute(inp, target=target, **options))


def test_all_inputs_are_scored_in_one_engine_call(exact, monkeypatch):
    calls = count_engine_calls(monkeypatch, exact)
    results = pla.FeatureAblation(exact).attribute_batch(
        inputs(), targets=TARGETS, noise_floor=False
    )
    assert calls == [sum(r.stats["n_evaluations"] for r in results)]
    assert all(r.stats["n_inputs"] == 3 for r in results)


def test_small_chunks_give_the_same_results_with_one_rising_progress_count(exact, monkeypatch):
    fa = pla.FeatureAblation(exact)
    whole = fa.attribute_batch(inputs(), targets=TARGETS, noise_floor=False)
    monkeypatch.setattr(pyllmattr.pipeline.scoring, "CHUNK_TOKENS", 100)
    calls = count_engine_calls(monkeypatch, exact)
    reports = []
    chunked = fa.attribute_batch(
        inputs(), targets=TARGETS, noise_floor=False, progress=lambda d, t: reports.append((d, t))
    )
    assert len(calls) > 3  # more chunks than inputs: chunks ignore input boundaries
    for got, want in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(got.seq_attr, want.seq_attr, atol=1e-5)
    done = [d for d, _ in reports]
    assert done == sorted(done)
    assert reports[-1] == (chunked[0].stats["n_decoded"],) * 2


def test_missing_targets_are_generated_for_each_input(exact):
    results = pla.FeatureAblation(exact).attribute_batch(
        inputs(), gen_args={"max_new_tokens": 3}, noise_floor=False
    )
    for prompt, result in zip(PROMPTS, results, strict=True):
        assert result.target_ids == exact.generate(exact.tokenize(prompt), max_new_tokens=3)


def test_contrasts_are_per_input(exact):
    fa = pla.FeatureAblation(exact)
    contrasts = [" chess", None, " slept"]
    batch = fa.attribute_batch(inputs(), targets=TARGETS, contrasts=contrasts)
    for inp, target, contrast, got in zip(inputs(), TARGETS, contrasts, batch, strict=True):
        alone = fa.attribute(inp, target=target, contrast=contrast)
        np.testing.assert_allclose(got.seq_attr, alone.seq_attr, atol=1e-5)
        assert got.contrast_ids == alone.contrast_ids


def test_an_error_names_the_input_it_is_about(exact):
    with pytest.raises(ValueError, match=r"inputs\[1\]: the target '' tokenizes to nothing"):
        pla.FeatureAblation(exact).attribute_batch(inputs(), targets=[" a", "", " b"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"targets": [" a"]}, "targets has 1 entries for 3 inputs"),
        ({"targets": " a"}, "targets must be a list"),
        ({"contrasts": [" a", " b"]}, "contrasts has 2 entries"),
    ],
)
def test_per_input_lists_must_match_the_inputs(exact, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pla.FeatureAblation(exact).attribute_batch(inputs(), **kwargs)


def test_an_empty_batch_is_refused(exact):
    with pytest.raises(ValueError, match="non-empty list"):
        pla.FeatureAblation(exact).attribute_batch([])


def test_cancelling_stops_the_whole_batch(exact):
    token = pla.CancelToken()
    token.cancel()
    with pytest.raises(pla.Cancelled):
        pla.FeatureAblation(exact).attribute_batch(inputs(), targets=TARGETS, cancel=token)
    with pytest.raises(pla.Cancelled):
        pla.FeatureAblation(exact).attribute_batch(
            inputs(), targets=TARGETS, progress=lambda d, t: False
        )


def test_a_warning_points_at_the_callers_line(exact):
    with pytest.warns(UserWarning, match="KernelShap: 2 samples") as caught:
        pla.KernelShap(exact).attribute_batch(inputs(), targets=TARGETS, n_samples=2, seed=0)
    assert {w.filename for w in caught} == {__file__}


def test_gradient_methods_batch_through_the_same_pipeline(smollm2_torch):
    aligned = [
        pla.TextTemplateInput(
            "{name} lives in {city} and is a", {"name": name, "city": city}, baselines=base
        )
        for name, city, base in [
            ("John", "Chicago", {"name": "Mary", "city": "Boston"}),
            ("Anna", "Paris", {"name": "Paul", "city": "Rome"}),
        ]
    ]
    ig = pla.IntegratedGradients(smollm2_torch)
    calls = []
    report = lambda d, t: calls.append((d, t))  # noqa: E731
    batch = ig.attribute_batch(aligned, targets=[" lawyer", " doctor"], n_steps=4, progress=report)
    assert calls == [(4, 8), (8, 8)]  # one count over both inputs
    for inp, target, got in zip(aligned, [" lawyer", " doctor"], batch, strict=True):
        alone = ig.attribute(inp, target=target, n_steps=4)
        np.testing.assert_allclose(got.seq_attr, alone.seq_attr, rtol=1e-6, atol=1e-7)
        assert got.seq_completeness_gap == pytest.approx(alone.seq_completeness_gap, abs=1e-6)
