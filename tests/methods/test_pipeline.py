"""The one pipeline: the same checks, lock and noise floor for perturbation and gradient
methods, and warnings that point at the caller."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.pipeline import attribution_lock
from pyllmattr.pipeline.scoring import merge_stats

TEMPLATE = "{name} lives in {city}, {state} and is a {job}. His interests include"
VALUES = {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer"}
BASELINES = {"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor"}
ALIGNED = pla.TextTemplateInput(
    "{name} lives in {city} and is a",
    {"name": "John", "city": "Chicago"},
    baselines={"name": "Mary", "city": "Boston"},
)


def template_input():
    return pla.TextTemplateInput(TEMPLATE, VALUES, baselines=BASELINES)


def engine_calls(monkeypatch, model):
    """Records the share_prefix of every model.score_pairs call."""
    calls = []
    original = model.score_pairs

    def recording(sequences, targets, share_prefix=True, **kwargs):
        calls.append(share_prefix)
        return original(sequences, targets, share_prefix, **kwargs)

    monkeypatch.setattr(model, "score_pairs", recording)
    return calls


def lock_is_free_elsewhere(model) -> bool:
    """Whether another thread could take the model's attribution lock right now."""
    lock, free = attribution_lock(model), []

    def probe() -> None:
        got = lock.acquire(blocking=False)
        free.append(got)
        if got:
            lock.release()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return free[0]


# ---------------------------------------------------------------- context length


@pytest.fixture(scope="module")
def short_context(tiny_path):
    with pla.load_gguf(tiny_path, n_ctx=256, n_threads=2) as model:
        yield model


def test_perturbation_methods_check_the_context_before_scoring(short_context, monkeypatch):
    calls = engine_calls(monkeypatch, short_context)
    long_text = " ".join(["Dave lives in Palm Coast."] * short_context.n_ctx)
    inp = pla.TextTemplateInput.from_text(long_text, by="sentence")
    limit = short_context.n_ctx
    with pytest.raises(ValueError, match=rf"tokens\) exceed the model's context of {limit}"):
        pla.FeatureAblation(short_context).attribute(inp, target=" golf")
    assert calls == []  # refused before any scoring


def test_gradient_methods_check_the_context_the_same_way(smollm2_torch):
    small = pla.TorchModel(smollm2_torch.model, smollm2_torch.tokenizer, n_ctx=4)
    with pytest.raises(ValueError, match=r"\(\d+ tokens\) exceed the model's context of 4"):
        pla.IntegratedGradients(small).attribute(ALIGNED, target=" lawyer", n_steps=2)


def test_the_context_check_counts_the_longer_of_target_and_contrast(short_context):
    model, n_ctx = short_context, short_context.n_ctx
    prompt = " ".join(["Dave"] * (n_ctx - 20))
    n_prompt = len(model.tokenize(prompt))
    contrast = " and" * (n_ctx - n_prompt + 5)
    n_tokens = n_prompt + len(model.tokenize(contrast, add_special=False))
    assert n_prompt + 1 <= n_ctx < n_tokens  # the target fits, the contrast does not
    inp = pla.TextTemplateInput.from_text(prompt)
    with pytest.raises(ValueError, match=rf"\({n_tokens} tokens\) exceed"):
        pla.FeatureAblation(model).attribute(inp, target=" golf", contrast=contrast)


# ---------------------------------------------------------------- lock


def test_a_perturbation_attribution_holds_the_models_lock_while_it_scores(exact):
    held = []
    pla.FeatureAblation(exact).attribute(
        template_input(),
        target=" golf",
        progress=lambda d, t: held.append(not lock_is_free_elsewhere(exact)),
    )
    assert held and all(held)
    assert lock_is_free_elsewhere(exact)  # released at the end


def test_a_gradient_attribution_holds_the_models_lock_too(smollm2_torch):
    held = []
    pla.IntegratedGradients(smollm2_torch).attribute(
        ALIGNED,
        target=" lawyer",
        n_steps=2,
        progress=lambda d, t: held.append(not lock_is_free_elsewhere(smollm2_torch)),
    )
    assert held == [True]
    assert lock_is_free_elsewhere(smollm2_torch)
    assert attribution_lock(smollm2_torch) is smollm2_torch.attribution_lock  # public, too


def test_the_lock_of_a_llama_model_is_the_one_close_waits_for(exact):
    assert attribution_lock(exact) is exact.attribution_lock
    with attribution_lock(exact):
        assert not lock_is_free_elsewhere(exact)


# ---------------------------------------------------------------- noise floor


def test_gradient_results_measure_the_noise_floor_as_perturbation_results_do(smollm2_torch):
    result = pla.IntegratedGradients(smollm2_torch).attribute(ALIGNED, target=" lawyer", n_steps=2)
    ids = smollm2_torch.tokenize(result.prompt)
    alone = smollm2_torch.score([ids], " lawyer", share_prefix=False)[0]
    assert result.noise_floor == pytest.approx(abs(result.target_logprob - alone.sum()), abs=1e-9)
    assert result.token_noise_floor.shape == (1,)
    off = pla.IntegratedGradients(smollm2_torch).attribute(
        ALIGNED, target=" lawyer", n_steps=2, noise_floor=False
    )
    assert off.noise_floor is None


@pytest.fixture(scope="module")
def deterministic_tiny(tiny_path):
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=2, deterministic=True) as model:
        yield model


def test_a_deterministic_cpu_model_has_a_zero_noise_floor_without_measuring(
    deterministic_tiny, monkeypatch
):
    calls = engine_calls(monkeypatch, deterministic_tiny)
    result = pla.FeatureAblation(deterministic_tiny).attribute(template_input(), target=" golf")
    assert calls == [True]
    assert result.noise_floor == 0.0


def test_a_deterministic_model_on_a_gpu_measures_its_noise_floor(deterministic_tiny, monkeypatch):
    # Nothing guarantees batch invariance of GPU kernels, so the floor is measured there.
    monkeypatch.setattr(type(deterministic_tiny), "n_gpu_layers", property(lambda self: 1))
    assert deterministic_tiny.deterministic and not deterministic_tiny.scores_are_exact
    calls = engine_calls(monkeypatch, deterministic_tiny)
    result = pla.FeatureAblation(deterministic_tiny).attribute(template_input(), target=" golf")
    assert calls == [True, False]  # the attribution, then the reference alone
    ids = deterministic_tiny.tokenize(result.prompt)
    alone = deterministic_tiny.score([ids], " golf", share_prefix=False)[0]
    assert result.noise_floor == pytest.approx(abs(result.target_logprob - alone.sum()), abs=1e-9)


def test_the_stats_of_several_calls_sum_every_field_of_score_stats():
    counts = [f.name for f in dataclasses.fields(pla.ScoreStats) if f.name != "strategy"]
    first = pla.ScoreStats(*range(1, len(counts) + 1), strategy="trie")
    second = pla.ScoreStats(*range(10, 10 * len(counts) + 1, 10), strategy="trie-per-wave")
    merged = merge_stats([dataclasses.asdict(first), dataclasses.asdict(second)])
    for name in counts:
        assert merged[name] == getattr(first, name) + getattr(second, name), name
    assert merged["strategy"] == "trie"  # the first call's
    assert merge_stats([]) == dict.fromkeys(counts, 0) | {"seconds": 0.0}


# ---------------------------------------------------------------- one builder, one pipeline


def test_attribute_is_a_batch_of_one(exact):
    fa = pla.FeatureAblation(exact)
    alone = fa.attribute(template_input(), target=" golf", noise_floor=False)
    (batched,) = fa.attribute_batch([template_input()], targets=[" golf"], noise_floor=False)
    np.testing.assert_array_equal(batched.seq_attr, alone.seq_attr)
    np.testing.assert_array_equal(batched.token_attr, alone.token_attr)
    assert batched.settings == alone.settings


def test_objects_and_strings_name_the_same_objectives(exact):
    fa = pla.FeatureAblation(exact)
    by_string = fa.attribute(template_input(), target=" golf", attr_target="prob")
    by_object = fa.attribute(template_input(), target=" golf", attr_target=pla.Prob())
    np.testing.assert_array_equal(by_object.seq_attr, by_string.seq_attr)
    assert by_object.attr_target == "prob" and by_object.quantity == "p(target)"


def test_warnings_point_at_the_callers_line_through_attribute(exact):
    with pytest.warns(UserWarning, match="Lime: 4 samples") as caught:
        pla.Lime(exact).attribute(template_input(), target=" golf", n_samples=4, seed=0)
    assert caught[0].filename == __file__


def test_integrated_gradients_warnings_point_at_the_callers_line(smollm2_torch):
    inp = pla.TextTokenInput("Dave lives in Palm Coast, FL and is a", smollm2_torch, baselines=0)
    with pytest.warns(UserWarning, match="raise n_steps") as caught:
        pla.IntegratedGradients(smollm2_torch).attribute(inp, target=" lawyer", n_steps=2)
    assert caught[0].filename == __file__


def test_methods_check_the_model_interface(exact):
    class NotAModel:
        pass

    with pytest.raises(TypeError, match="needs a model from pla.load_gguf"):
        pla.FeatureAblation(NotAModel())
    assert isinstance(exact, pla.ScoringModel) and not isinstance(exact, pla.GradientModel)
