"""Shapley interactions: exact indices against brute force and shapiq, the game on the
engine (one batch, one call), progress and cancellation, bad input, results."""

from __future__ import annotations

import math
import re
import sys
from itertools import combinations

import matplotlib
import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.methods import interactions as interactions_module

matplotlib.use("Agg")

TEMPLATE = "{name} lives in {city}, {state} and is a {job}. His {what} include {hobby}"
VALUES = {
    "name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer",
    "what": "interests", "hobby": "golf",
}  # fmt: skip
BASELINES = {
    "name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor",
    "what": "hobbies", "hobby": "chess",
}  # fmt: skip
TARGET = " and books"
N = 6


def template_input(**kwargs):
    return pla.TextTemplateInput(TEMPLATE, VALUES, baselines=BASELINES, **kwargs)


def coalition_scores(model, inp, target):
    """f (2^n, 1 + T) of every coalition, row r the subset with the bits of r, straight
    from model.score (no pipeline)."""
    masks = ((np.arange(2**N)[:, None] >> np.arange(N)) & 1).astype(bool)
    sequences = inp.encode(model).sequences(masks, np.random.default_rng(0))
    return pla.LogProb().outputs([model.score(sequences, target)])


def derivative(f, s_bits, t_bits):
    """The discrete derivative of f at T with respect to S: sum over L ⊆ S of
    (-1)^(|S|-|L|) f(T ∪ L)."""
    members = [i for i in range(N) if s_bits >> i & 1]
    total = 0.0
    for size in range(len(members) + 1):
        for chosen in combinations(members, size):
            total = total + (-1) ** (len(members) - size) * f[t_bits | sum(1 << i for i in chosen)]
    return total


def outside(s_bits):
    """Every T ⊆ N \\ S as (bits, size)."""
    for t_bits in range(2**N):
        if not t_bits & s_bits:
            yield t_bits, bin(t_bits).count("1")


def brute_sii(f, coalition):
    s = len(coalition)
    s_bits = sum(1 << i for i in coalition)
    total = 0.0
    for t_bits, t in outside(s_bits):
        weight = math.factorial(N - t - s) * math.factorial(t) / math.factorial(N - s + 1)
        total = total + weight * derivative(f, s_bits, t_bits)
    return total


def brute_stii_pair(f, pair):
    s_bits = sum(1 << i for i in pair)
    total = 0.0
    for t_bits, t in outside(s_bits):
        total = total + derivative(f, s_bits, t_bits) / math.comb(N - 1, t)
    return 2 / N * total


def brute_force(f, index):
    """Order-2 values of ``index`` for every singleton and pair, by their definitions."""
    pairs = list(combinations(range(N), 2))
    out = {}
    if index == "STII":
        for i in range(N):
            out[(i,)] = f[1 << i] - f[0]
        for pair in pairs:
            out[pair] = brute_stii_pair(f, pair)
        return out
    sii = {pair: brute_sii(f, pair) for pair in pairs}
    for i in range(N):
        out[(i,)] = brute_sii(f, (i,))
        if index == "k-SII":  # Bernoulli B_1 = -1/2 spreads each pair over its members
            out[(i,)] = out[(i,)] - 0.5 * sum(v for pair, v in sii.items() if i in pair)
    out.update(sii)
    return out


@pytest.fixture(scope="module")
def smollm2_target(smollm2):
    return smollm2.tokenize(TARGET, add_special=False)


@pytest.fixture(scope="module")
def smollm2_f(smollm2, smollm2_target):
    return coalition_scores(smollm2, template_input(), smollm2_target)


@pytest.fixture(scope="module")
def smollm2_results(smollm2, smollm2_target):
    """ShapleyInteractions on SmolLM2 per index, computed once for the tests that read them."""
    cache = {}

    def result(index):
        if index not in cache:
            cache[index] = pla.ShapleyInteractions(smollm2).attribute(
                template_input(), target=smollm2_target, index=index, order=2
            )
        return cache[index]

    return result


@pytest.fixture(scope="module")
def target(tiny):
    return tiny.tokenize(TARGET, add_special=False)


@pytest.mark.parametrize("index", ["SII", "k-SII", "STII"])
def test_exact_order_2_equals_brute_force_from_the_64_coalitions(
    smollm2, smollm2_target, smollm2_f, smollm2_results, index
):
    assert smollm2.scores_are_exact  # the default layout: a prompt scores the same anywhere
    result = smollm2_results(index)
    expected = brute_force(smollm2_f, index)
    assert result.exact and result.approximator == "exact" and result.budget_used == 2**N
    assert set(result.interactions) == set(expected)
    for key, value in expected.items():
        assert result.interactions[key] == pytest.approx(value[0], abs=1e-9), key
    # Per target token, from the same scores.
    for t in range(len(smollm2_target)):
        for key, value in expected.items():
            i, j = key if len(key) == 2 else key * 2
            assert result.token_interaction_matrix[t, i, j] == pytest.approx(value[1 + t], abs=1e-9)
    np.testing.assert_allclose(result.seq_attr, [expected[(i,)][0] for i in range(N)], atol=1e-9)


def test_k_sii_values_sum_to_the_change_from_all_baselines(smollm2_f, smollm2_results):
    result = smollm2_results("k-SII")
    full, empty = smollm2_f[-1, 0], smollm2_f[0, 0]
    assert sum(result.interactions.values()) == pytest.approx(full - empty, abs=1e-9)
    assert result.target_logprob - result.baseline_logprob == pytest.approx(full - empty, abs=1e-9)
    # The matrix holds the same values: main effects on the diagonal, each pair twice.
    matrix = result.interaction_matrix
    assert np.trace(matrix) + np.triu(matrix, 1).sum() == pytest.approx(full - empty, abs=1e-9)


@pytest.mark.parametrize("index", ["SII", "k-SII", "STII", "FSII"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_exact_values_equal_shapiqs_exact_computer(tiny, target, index, order):
    shapiq = pytest.importorskip("shapiq")
    inp = template_input()
    f = coalition_scores(tiny, inp, target)[:, 0]

    def game(coalitions):
        rows = np.atleast_2d(coalitions).astype(int) @ (1 << np.arange(N))
        return f[rows]

    reference = shapiq.ExactComputer(n_players=N, game=game)(index=index, order=order)
    result = pla.ShapleyInteractions(tiny).attribute(inp, target=target, index=index, order=order)
    scale = max(abs(v) for v in result.interactions.values())
    # shapiq solves FSII as a weighted least-squares problem (about 1e-9 relative).
    tolerance = 1e-7 * scale if index == "FSII" else 1e-9
    for key, value in result.interactions.items():
        assert value == pytest.approx(reference[key], abs=tolerance), key


def test_sii_first_order_values_are_the_shapley_values_also_with_a_contrast(tiny, target):
    inp = template_input()
    shapley = pla.ShapleyValues(tiny).attribute(inp, target=target, contrast=" and golf")
    result = pla.ShapleyInteractions(tiny).attribute(
        inp, target=target, contrast=" and golf", index="SII"
    )
    np.testing.assert_allclose(result.seq_attr, shapley.seq_attr, atol=1e-9)
    np.testing.assert_allclose(result.token_attr, shapley.token_attr, atol=1e-9)
    assert result.contrast == " and golf"


def test_a_batch_is_one_engine_call_and_each_input_as_alone(tiny, target):
    inputs = [template_input(), pla.TextTemplateInput("{} met {} in {}", ["Ann", "Bob", "Rome"])]
    counting = CountingModel(tiny)
    batch = pla.ShapleyInteractions(counting).attribute_batch(
        inputs, targets=[target, target], noise_floor=False
    )
    assert counting.score_calls == 1 and batch[0].stats["n_score_calls"] == 1
    alone = pla.ShapleyInteractions(tiny).attribute(inputs[1], target=target)
    assert batch[1].interactions == alone.interactions  # exact layout: bit for bit


class CountingModel:
    """Delegates to a model and counts its score_pairs calls."""

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


@pytest.fixture
def game_calls(monkeypatch):
    """Counts shapiq's calls of the game (batches of coalitions) and their sizes."""
    calls = []
    original = interactions_module.EngineGame.__call__

    def spy(self, coalitions):
        calls.append(len(np.atleast_2d(coalitions)))
        return original(self, coalitions)

    monkeypatch.setattr(interactions_module.EngineGame, "__call__", spy)
    return calls


def test_each_shapiq_batch_is_one_engine_call(tiny, target, game_calls):
    pytest.importorskip("shapiq")
    counting = CountingModel(tiny)
    result = pla.ShapleyInteractions(counting).attribute(
        template_input(), target=target, approximator="permutation", budget=1100, seed=0,
        noise_floor=False,
    )  # fmt: skip
    assert len(game_calls) >= 3  # the empty coalition, then permutation batches
    assert counting.score_calls == len(game_calls) == result.stats["n_score_calls"]
    assert result.stats["n_batches"] == len(game_calls)
    assert result.budget_used == sum(game_calls) <= 1100
    assert not result.exact and result.approximator == "PermutationSamplingSII"
    assert result.token_attr is None and result.token_interaction_matrix is None


def test_progress_rises_through_shapiqs_loop_to_its_total(tiny, target, game_calls):
    pytest.importorskip("shapiq")
    seen = []
    pla.ShapleyInteractions(tiny).attribute(
        template_input(), target=target, approximator="permutation", budget=1100, seed=0,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    done = [d for d, _ in seen]
    assert done == sorted(done) and all(d <= t for d, t in seen)
    assert seen[-1][0] == seen[-1][1] > 0
    assert len(game_calls) >= 3 and len(seen) >= len(game_calls)


def test_cancelling_stops_shapiqs_loop_between_batches(tiny, target, monkeypatch):
    pytest.importorskip("shapiq")
    token = pla.CancelToken()
    calls = []
    original = interactions_module.EngineGame.__call__

    def cancel_after_first(self, coalitions):
        calls.append(1)
        values = original(self, coalitions)
        token.cancel()
        return values

    monkeypatch.setattr(interactions_module.EngineGame, "__call__", cancel_after_first)
    with pytest.raises(pla.Cancelled):
        pla.ShapleyInteractions(tiny).attribute(
            template_input(), target=target, approximator="permutation", budget=1100,
            cancel=token,
        )  # fmt: skip
    assert len(calls) == 2  # the second batch found the token set
    tiny.score([tiny.tokenize("Dave")], target)  # the model still works


def test_a_progress_callback_returning_false_cancels_an_estimate(tiny, target):
    pytest.importorskip("shapiq")
    with pytest.raises(pla.Cancelled):
        pla.ShapleyInteractions(tiny).attribute(
            template_input(), target=target, approximator="permutation", budget=1100,
            progress=lambda done, total: False,
        )  # fmt: skip


def test_with_every_coalition_kernel_shap_iq_finds_the_exact_values(tiny, target):
    pytest.importorskip("shapiq")
    inp = template_input()
    exact = pla.ShapleyInteractions(tiny).attribute(inp, target=target, index="SII")
    estimate = pla.ShapleyInteractions(tiny).attribute(
        inp, target=target, index="SII", approximator="regression", budget=2**N, seed=0
    )
    assert estimate.approximator == "KernelSHAPIQ" and not estimate.exact
    scale = np.abs(exact.interaction_matrix).max()
    np.testing.assert_allclose(
        estimate.interaction_matrix, exact.interaction_matrix, atol=1e-4 * scale
    )


def test_estimates_with_sampled_baselines_over_trials(tiny, target):
    pytest.importorskip("shapiq")
    inp = pla.TextTemplateInput(
        TEMPLATE,
        VALUES,
        baselines=pla.ProductBaselines(
            {key: [value, BASELINES[key] + "s"] for key, value in BASELINES.items()}
        ),
    )
    result = pla.ShapleyInteractions(tiny).attribute(
        inp, target=target, budget=40, num_trials=2, seed=0
    )
    assert result.approximator == "KernelSHAPIQ" and result.budget_used == 40
    assert result.seq_attr_std.shape == (N,) and result.settings["num_trials"] == 2
    assert result.stats["n_batches"] == 2  # one batch per trial
    again = pla.ShapleyInteractions(tiny).attribute(
        inp, target=target, budget=40, num_trials=2, seed=0
    )
    assert again.interactions == result.interactions  # seeded: the same draws


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"order": 0}, "order must be a positive integer"),
        ({"order": 7}, "order=7 exceeds the input's 6 features; use order <= 6"),
        ({"index": "Banzhaf"}, "unknown interaction index 'Banzhaf'"),
        ({"approximator": "magic"}, "unknown approximator 'magic'"),
        ({"approximator": "regression", "index": "STII"}, "does not estimate STII"),
        ({"budget": 0}, "budget must be a positive integer"),
        ({"budget": 10}, "budget=10 is below the 22 coalitions"),
        ({"budget": 10, "approximator": "exact"}, "need 2^6 = 64 coalitions; pass budget=64"),
        ({"budget": 20, "approximator": "permutation"}, "below the 33 coalitions"),
        (
            {"budget": 100, "approximator": "spex"},
            r"budget=100 is below the \d+ coalitions the 'spex'",
        ),
    ],
)
def test_bad_options_say_what_to_do(tiny, target, options, message):
    with pytest.raises(ValueError, match=message.replace("^", r"\^")):
        pla.ShapleyInteractions(tiny).attribute(template_input(), target=target, **options)


def test_without_shapiq_estimates_name_the_extra_and_exact_values_still_work(
    tiny, target, monkeypatch
):
    monkeypatch.setitem(sys.modules, "shapiq", None)  # import shapiq now raises ImportError
    with pytest.raises(ImportError, match=r"pyllmattr\[interactions\]"):
        pla.ShapleyInteractions(tiny).attribute(template_input(), target=target, budget=30)
    result = pla.ShapleyInteractions(tiny).attribute(template_input(), target=target)
    assert result.exact


@pytest.fixture(scope="module")
def result(tiny, target):
    return pla.ShapleyInteractions(tiny).attribute(template_input(), target=target)


def test_the_result_round_trips_through_json(result):
    back = pla.InteractionResult.from_json(result.to_json())
    assert back.interactions == result.interactions
    np.testing.assert_array_equal(back.interaction_matrix, result.interaction_matrix)
    np.testing.assert_array_equal(back.token_interaction_matrix, result.token_interaction_matrix)
    assert (back.index, back.order, back.budget_used, back.approximator, back.exact) == (
        "k-SII", 2, 64, "exact", True,
    )  # fmt: skip


def test_the_strongest_interactions_come_first(result):
    top = result.top_interactions(3)
    pairs = sorted(
        ((k, v) for k, v in result.interactions.items() if len(k) == 2), key=lambda kv: -abs(kv[1])
    )
    assert top == [
        (tuple(result.input_features[i] for i in key), value) for key, value in pairs[:3]
    ]
    assert "InteractionResult(k-SII order 2" in repr(result)


def test_plots_show_the_matrix_and_the_ranked_table(result):
    fig, ax = result.plot_interactions()
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image, result.interaction_matrix)  # main effects on the diagonal
    assert [t.get_text() for t in ax.get_xticklabels()] == result.input_features
    fig, ax = result.plot_top_interactions(k=4)
    cells = ax.tables[0].get_celld()
    names, value = result.top_interactions(1)[0]
    assert cells[1, 1].get_text().get_text() == " × ".join(names)
    assert cells[1, 2].get_text().get_text() == f"{value:+.3f}"


def test_the_html_view_lists_the_top_pairs(result):
    page = result.to_html()
    names, value = result.top_interactions(1)[0]
    assert 'class="pla-top-pairs"' in page and " × ".join(names) in page
    assert f"{value:+.3f}" in page


def test_the_html_view_shows_the_interaction_matrix(result):
    page = result.to_html()
    cells = re.findall(r'<td data-row="(\d+)" data-col="(\d+)"[^>]*>([^<]+)</td>', page)
    n = len(result.input_features)
    assert 'class="pla-interaction-matrix"' in page and len(cells) == n * n
    for row, col, text in cells:
        assert text == f"{result.interaction_matrix[int(row), int(col)]:+.2f}"


def test_the_method_is_listed_for_front_ends():
    assert pla.METHODS["interactions"] is pla.ShapleyInteractions


def test_the_cli_passes_the_interaction_flags_and_refuses_them_elsewhere(capsys):
    from pyllmattr.cli.commands import _method_options
    from pyllmattr.cli.parser import build_parser

    parser = build_parser()
    flags = ["--order", "3", "--index", "STII", "--budget", "500", "--approximator", "svarm"]
    args = parser.parse_args(["attribute", "--prompt", "Hi", "--method", "interactions", *flags])
    assert _method_options(args, pla.ShapleyInteractions, parser) == {
        "order": 3, "index": "STII", "budget": 500, "approximator": "svarm",
    }  # fmt: skip
    args = parser.parse_args(["attribute", "--prompt", "Hi", "--order", "2"])
    with pytest.raises(SystemExit):
        _method_options(args, pla.FeatureAblation, parser)
    assert "--order applies to --method interactions" in capsys.readouterr().err


def test_the_cli_prints_the_strongest_interactions(tmp_path):
    from cli_run import run

    out = tmp_path / "out.json"
    done = run(
        "attribute", "--model", "default", "--prompt", "Dave lives in Palm Coast, FL",
        "--target", " and", "--method", "interactions", "--index", "SII", "--json", str(out),
        "--plot", str(tmp_path / "out.png"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = pla.AttributionResult.from_json(out.read_text())
    assert isinstance(result, pla.InteractionResult) and result.index == "SII"
    assert result.budget_used == 2 ** len(result.input_features)
    assert f"strongest SII interactions (exact, {result.budget_used} coalitions):" in done.stdout
    names, value = result.top_interactions(1)[0]
    assert f"{value:+11.4f}  {' x '.join(names)}" in done.stdout
