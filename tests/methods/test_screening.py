"""Screened Shapley value sampling: additive features skip the orderings, interacting ones
do not; on a real model the screen follows its two measured effects."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.models.interface import ScoreStats

TEMPLATE = "Cities:{}{}{}{}{}"  # each slot one token: its word with its space
WORDS = [" Paris", " London", " Rome", " Berlin", " Madrid"]
BASELINE = " the"
WEIGHTS = np.array([0.8, -0.5, 0.3, 0.6, -0.2])
INTERACTION = 1.5  # added when features 3 and 4 are both present


class DesignedModel:
    """The tiny model's tokenizer with a designed score: each target token's log-prob is
    sum_i WEIGHTS[i] [word i present] + INTERACTION [words 3 and 4 present], so features
    0, 1, 2 are additive and 3, 4 interact. Scores are exact (no batch noise)."""

    scores_are_exact = True

    def __init__(self, model):
        self.model = model
        self.ids = [single_token(model, word) for word in WORDS]
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def value(self, sequence):
        present = np.array([token in sequence for token in self.ids])
        return WEIGHTS @ present + INTERACTION * (present[3] and present[4])

    def score_pairs(self, sequences, targets, return_stats=False, **kwargs):
        self.calls += 1
        scores = [np.full(len(t), self.value(s)) for s, t in zip(sequences, targets, strict=True)]
        stats = ScoreStats(0, 0, 0, 0, 0, 0, n_unique=len(sequences), seconds=0.0, strategy="x")
        return (scores, stats) if return_stats else scores


def single_token(model, word):
    ids = model.tokenize(word, add_special=False)
    assert len(ids) == 1, word
    return ids[0]


def designed_input():
    return pla.TextTemplateInput(TEMPLATE, WORDS, baselines=[BASELINE] * 5)


def test_additive_features_are_screened_and_exact_interacting_ones_are_sampled(tiny):
    model = DesignedModel(tiny)
    target = [single_token(tiny, " and")]
    result = pla.ShapleyValueSampling(model).attribute(
        designed_input(), target=target, screen=True, n_samples=400, seed=0
    )
    assert result.screened == [True, True, True, False, False]
    np.testing.assert_allclose(result.seq_attr[:3], WEIGHTS[:3], atol=1e-12)
    # Features 3 and 4 share the interaction: w + 1.5 / 2 each in expectation.
    np.testing.assert_allclose(result.seq_attr[3:], WEIGHTS[3:] + INTERACTION / 2, atol=0.2)
    # Two calls: the screen (2n + 1 prompts) and orderings over the two others (3 each).
    assert model.calls == 2  # exact scores: no noise floor to measure
    assert result.stats["n_evaluations"] == 1 + 2 * 5 + 1 + 400 * 3
    exact = pla.ShapleyValues(model).attribute(designed_input(), target=target)
    assert result.seq_attr.sum() == pytest.approx(exact.seq_attr.sum(), abs=1e-9)  # efficiency
    assert result.leave_one_out[3] == pytest.approx(WEIGHTS[3] + INTERACTION)
    assert result.add_one_in[3] == pytest.approx(WEIGHTS[3])


def test_with_everything_additive_no_ordering_is_scored(tiny):
    model = DesignedModel(tiny)
    target = [single_token(tiny, " and")]
    result = pla.ShapleyValueSampling(model).attribute(
        designed_input(), target=target, screen=True, screen_tol=2.0, noise_floor=False
    )
    assert all(result.screened) and model.calls == 1
    assert result.stats["n_evaluations"] == 1 + 2 * 5 + 1


def test_on_a_real_model_the_screen_follows_the_two_effects(tiny):
    inp = pla.TextTemplateInput(
        "{} lives in {}, {} and is a {}. His {} include",
        ["Dave", "Palm Coast", "FL", "lawyer", "interests"],
        baselines=["Sarah", "Seattle", "WA", "doctor", "hobbies"],
    )
    target = tiny.tokenize(" golf and books", add_special=False)
    n = 5
    masks = np.vstack([np.ones((1, n)), np.zeros((1, n)), 1 - np.eye(n), np.eye(n)]).astype(bool)
    prompts = inp.encode(tiny).sequences(masks, np.random.default_rng(0))
    f = tiny.score(prompts, target).sum(axis=1)
    leave_one_out, add_one_in = f[0] - f[2 : 2 + n], f[2 + n :] - f[1]
    tol = float(np.median(np.abs(leave_one_out - add_one_in)))  # about half pass
    result = pla.ShapleyValueSampling(tiny).attribute(
        inp, target=target, screen=True, screen_tol=tol, n_samples=5, seed=0
    )
    expected = np.abs(leave_one_out - add_one_in) <= tol
    assert result.screened == expected.tolist() and 0 < expected.sum() < n
    np.testing.assert_allclose(result.leave_one_out, leave_one_out, atol=1e-9)
    np.testing.assert_allclose(
        result.seq_attr[expected], ((leave_one_out + add_one_in) / 2)[expected], atol=1e-9
    )
    m = n - int(expected.sum())
    assert result.stats["n_evaluations"] == 1 + 2 * n + 1 + 5 * (m + 1)
    assert result.stats["n_calls"] == 2
    back = type(result).from_json(result.to_json())
    assert back.screened == result.screened and back.screen_tol == tol


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"screen_tol": 0.1}, "screen_tol sets the screening's tolerance: give screen=True"),
        ({"screen": "yes"}, "screen must be True or False"),
        ({"screen": True, "screen_tol": -1}, "screen_tol must be a number >= 0"),
    ],
)
def test_bad_screen_options_say_what_to_do(tiny, options, message):
    with pytest.raises(ValueError, match=message):
        pla.ShapleyValueSampling(tiny).attribute(designed_input(), target=[5], **options)
