"""Convergence of integrated gradients and GradientShap: n_steps / n_samples="auto", the
half-points check of a fixed n_steps, and result.convergence."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.methods.convergence import AutoPoints, half_rule, relative_change
from pyllmattr.methods.integrated_gradients import integration_points

TEMPLATE = "{} works as a {} in {} and every day walks to the"
VALUES = ["Dave", "lawyer", "Palm Coast"]
# Same token counts as the values ("D"+"ave" / "Em"+"ma", "Palm Coast" / "New York"), so
# the path runs token by token between two ordinary prompts.
TEXT_BASELINES = ["Emma", "doctor", "New York"]


@pytest.fixture(scope="module")
def shop():
    return pla.TextTemplateInput(TEMPLATE, VALUES)


# ---------------------------------------------------------------- the rules


@pytest.mark.parametrize("n", [2, 7, 50, 512])
def test_the_half_rule_of_gauss_legendre_integrates_low_degree_polynomials(n):
    alphas, _ = integration_points("gausslegendre", n)
    weights = half_rule("gausslegendre", alphas)
    used = np.flatnonzero(weights)
    assert len(used) == (n + 1) // 2 and (weights >= 0).all()
    for degree in range(len(used)):
        assert weights @ alphas**degree == pytest.approx(1 / (degree + 1), abs=1e-12)


def test_the_half_rule_of_a_nested_trapezoid_is_the_trapezoid_of_half_the_intervals():
    alphas, _ = integration_points("riemann_trapezoid", 9)
    _, coarse = integration_points("riemann_trapezoid", 5)
    np.testing.assert_allclose(half_rule("riemann_trapezoid", alphas)[::2], coarse)
    for method in ("riemann_left", "riemann_right", "riemann_middle"):
        weights = half_rule(method, integration_points(method, 8)[0])
        assert weights.sum() == pytest.approx(1.0) and np.count_nonzero(weights) == 4


def test_auto_points_stop_when_settled_and_warn_at_the_cap():
    auto = AutoPoints(rtol=0.05, cap=1024, what="test")
    estimates = {16: [1.0, 2.0], 32: [1.5, 2.0], 64: [1.52, 2.0]}
    steps = [auto.step(n, estimates.get(n // 2), estimates[n]) for n in (16, 32, 64)]
    assert steps == [False, False, True]
    record = auto.record("n_steps")
    assert record["n_steps"] == 64 and record["converged"] and record["n_points"] == 112
    assert record["last_change"] == pytest.approx(0.02 / 2.0)
    capped = AutoPoints(rtol=0.001, cap=32, what="test")
    assert list(capped.counts()) == [16, 32]
    capped.step(16, None, [1.0])
    capped.step(32, [1.0], [2.0])
    with pytest.warns(UserWarning, match="stopped at 32 .* the cap"):
        assert not capped.record("n_steps")["converged"]


def test_auto_points_do_not_settle_while_the_completeness_gap_is_large():
    auto = AutoPoints(rtol=0.05, cap=64, what="test")
    assert not auto.step(16, None, [1.0, -2.0], gap=0.5)
    assert not auto.step(32, [1.0, -2.0], [1.01, -2.0], gap=0.5)  # agree, but 25 % gap
    assert auto.last_gap == pytest.approx(0.25) and auto.last_change == pytest.approx(0.005)
    assert auto.step(64, [1.01, -2.0], [1.02, -2.0], gap=0.05)  # 2.5 % gap
    assert auto.record("n_steps")["last_gap"] == pytest.approx(0.025)
    # Gaps at float32 rounding never block values that are all near zero.
    tiny = AutoPoints(rtol=0.05, cap=64, what="test")
    tiny.step(16, None, [1e-4], gap=2e-4)
    assert tiny.step(32, [1e-4], [1e-4], gap=2e-4)
    # Without a gap (GradientShap) the values alone decide, and the record has no gap.
    sampled = AutoPoints(rtol=0.05, cap=32, what="test", cost="last")
    sampled.step(16, None, [1.0])
    assert sampled.step(32, [1.0], [1.0]) and "last_gap" not in sampled.record("n_samples")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_steps": "many"}, "n_steps must be a positive integer or 'auto'"),
        ({"n_steps": "auto", "rtol": 0}, r"rtol must be a fraction .* in \(0, 1\)"),
        ({"n_steps": "auto", "max_steps": 16}, "max_steps must be an integer >= 32"),
    ],
)
def test_bad_auto_options_say_what_to_do(smollm2_torch, shop, options, message):
    with pytest.raises(ValueError, match=message):
        pla.IntegratedGradients(smollm2_torch).attribute(shop, target=" shop", **options)


# ---------------------------------------------------------------- integrated gradients


@pytest.mark.slow
def test_auto_steps_land_within_two_percent_of_512_steps(smollm2_torch):
    # A same-length text baseline, as in docs/gradients.md. Not baseline token 0: on
    # SmolLM2 that is <|endoftext|>, and two of them at the start of the baseline prompt
    # are both attention sinks (a layer-3 norm of 921 where "ave" has 79), whose decay
    # along the path puts spikes of width ~0.006 into the integrand; 512 Gauss-Legendre
    # steps then miss "Dave" by 7.6 % of the largest |attribution| (the exact value
    # follows from completeness), so 512 steps are no reference there (the test below
    # and docs/gradients.md, "Convergence").
    shop = pla.TextTemplateInput(TEMPLATE, VALUES, baselines=TEXT_BASELINES)
    ig = pla.IntegratedGradients(smollm2_torch)
    common = {"target": " shop", "per_token": False}
    auto = ig.attribute(shop, n_steps="auto", **common)
    reference = ig.attribute(shop, n_steps=512, **common)
    record = auto.convergence
    assert record["converged"] and record["check"] == "doubling"
    assert record["n_steps"] in (32, 64, 128, 256, 512, 1024)
    assert record["last_change"] <= 0.02 and len(record["history"]) >= 1
    assert auto.stats["n_evaluations"] == record["n_points"]
    largest = np.abs(reference.seq_attr).max()
    assert np.abs(auto.seq_attr - reference.seq_attr).max() <= 0.02 * largest


@pytest.mark.slow
def test_auto_steps_do_not_settle_while_the_gap_says_they_are_off(smollm2_torch, shop):
    # Baseline token 0: 256 and 512 Gauss-Legendre steps agree to 3.6 % of the largest
    # |attribution|, yet "Dave" is still off by 7.6 % of it, which the completeness gap
    # (-0.138 of f(input) - f(baseline) = -0.224) shows. Without the gap, rtol=0.05 would
    # have called 512 steps converged.
    with pytest.warns(UserWarning) as seen:  # the cap's warning, and the gap's own
        result = pla.IntegratedGradients(smollm2_torch).attribute(
            shop, target=" shop", baselines=0, n_steps="auto", rtol=0.05, max_steps=512,
            per_token=False,
        )  # fmt: skip
    cap = r"stopped at 512 .* miss f\(input\) - f\(baseline\) by [0-9.]+% of it"
    assert any(re.search(cap, str(w.message)) for w in seen)
    record = result.convergence
    assert record["n_steps"] == 512 and not record["converged"]
    assert record["last_change"] <= 0.05 < record["last_gap"]
    largest = np.abs(result.seq_attr).max()
    assert record["last_gap"] == pytest.approx(abs(result.seq_completeness_gap) / largest)


def test_too_few_fixed_steps_warn_naming_auto(smollm2_torch, shop):
    with pytest.warns(UserWarning, match="n_steps='auto'") as seen:
        result = pla.IntegratedGradients(smollm2_torch).attribute(
            shop, target=" shop", baselines=0, n_steps=8, per_token=False
        )
    assert any("every other point" in str(w.message) for w in seen)
    record = result.convergence
    assert record["check"] == "half" and record["n_steps"] == 8
    assert record["last_change"] > 0.10 and not record["converged"]
    assert result.stats["n_evaluations"] == 8  # the check reuses the same gradients


def test_auto_steps_at_a_layer(smollm2_torch, shop):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cap may stop it; the record says so
        result = pla.IntegratedGradients(smollm2_torch).attribute(
            shop, target=" shop", baselines=0, n_steps="auto", max_steps=64, rtol=0.05,
            layer=3, per_token=False,
        )  # fmt: skip
    record = result.convergence
    assert record["n_steps"] in (32, 64)
    assert record["n_points"] == sum(n for n in (16, 32, 64) if n <= record["n_steps"])
    assert result.seq_completeness_gap is not None


# ---------------------------------------------------------------- GradientShap


@pytest.mark.slow
def test_gradient_shap_auto_samples_keep_their_samples(smollm2_torch, shop):
    gs = pla.GradientShap(smollm2_torch)
    with pytest.warns(UserWarning, match="n_samples='auto' stopped at 32"):
        capped = gs.attribute(
            shop, target=" shop", baselines=0, n_samples="auto", max_samples=32,
            rtol=1e-6, seed=0, per_token=False,
        )  # fmt: skip
    record = capped.convergence
    assert record["n_samples"] == 32 and record["n_points"] == 32 and not record["converged"]
    assert capped.stats["n_evaluations"] == 32  # the first 16 samples are kept, not redrawn
    # The first 16 samples are those a fixed n_samples=16 draws from the same seed.
    fixed = gs.attribute(shop, target=" shop", baselines=0, n_samples=16, seed=0, per_token=False)
    first = record["history"][0]
    assert first[0] == 32
    assert relative_change(fixed.seq_attr, capped.seq_attr) == pytest.approx(first[1], rel=1e-9)
