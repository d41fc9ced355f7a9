"""HierarchicalAblation, ContextCite and proxy= on the tiny model with exact scoring."""

from __future__ import annotations

import re

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.methods.lasso import lasso, spearman

DOCS = [
    "Harrowgate is a mill town. It was founded in 1742.\n\nIts mill closed. The town makes glass.",
    "The Ostrel is a river. Barges carry coal on it.\n\nIt floods in spring.",
    "Brindle Moss is a fern. It grows on old walls.",
]
QUERY = "When was Harrowgate founded?"
TARGET = " 1742"


@pytest.fixture()
def inp() -> pla.ContextInput:
    return pla.ContextInput(DOCS, QUERY)


def exact_loo(model, inp) -> np.ndarray:
    return pla.FeatureAblation(model).attribute(inp, target=TARGET, noise_floor=False).seq_attr


# ------------------------------------------------------------ HierarchicalAblation


def test_refining_every_unit_is_exact_leave_one_out(exact, inp):
    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("paragraph", "sentence"), keep=5, noise_floor=False
    )
    np.testing.assert_allclose(result.seq_attr, exact_loo(exact, inp), atol=1e-4)
    assert all(result.refined) and result.input_features == inp.labels


def test_each_level_is_one_call_over_the_candidates_the_level_above_kept(exact, inp):
    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("document", "paragraph", "sentence"), keep=1, noise_floor=False
    )
    assert [(lv["level"], len(lv["units"])) for lv in result.levels] == [
        ("document", 3),
        ("paragraph", 2),  # the two paragraphs of the strongest document
        ("sentence", 2),  # the two sentences of its strongest paragraph
    ]
    # Each call scores the unperturbed prompt and that level's perturbations.
    assert result.stats["n_calls"] == 3 and result.stats["n_score_calls"] == 3
    assert result.stats["n_evaluations"] == (1 + 3) + (1 + 2) + (1 + 2)
    # Every ScoreStats count is summed over the calls, distinct pairs too (distinct
    # prompts here: each removes another unit).
    assert result.stats["n_unique"] == result.stats["n_evaluations"]


def test_on_exact_scores_later_levels_reuse_the_unperturbed_prompts_score(tiny, inp):
    assert tiny.scores_are_exact  # the default layout on the CPU back end
    result = pla.HierarchicalAblation(tiny).attribute(
        inp, target=TARGET, levels=("document", "sentence"), keep=1
    )
    refined = np.array(result.refined)
    assert result.stats["n_evaluations"] == (1 + 3) + refined.sum()  # the prompt scored once
    loo = pla.FeatureAblation(tiny).attribute(inp, target=TARGET).seq_attr
    np.testing.assert_array_equal(result.seq_attr[refined], loo[refined])  # bit for bit


def test_units_not_refined_share_their_coarse_value_flagged(exact, inp):
    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("document", "sentence"), keep=1, noise_floor=False
    )
    documents, sentences = result.levels
    kept = documents["units"][int(np.argmax(documents["seq_attr"]))]
    parent = inp.parent_index("sentence", "document")
    for s, refined in enumerate(result.refined):
        assert refined == (parent[s] == kept)
        if not refined:  # an equal share: the document's sentences sum to its value
            share = documents["seq_attr"][parent[s]] / np.sum(parent == parent[s])
            assert result.seq_attr[s] == pytest.approx(share)
    fine = exact_loo(exact, inp)
    np.testing.assert_allclose(result.seq_attr[parent == kept], fine[parent == kept], atol=1e-4)


def test_unrefined_copy_gives_each_sub_unit_the_coarse_value(exact, inp):
    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("document", "sentence"), keep=1, unrefined="copy",
        noise_floor=False,
    )  # fmt: skip
    documents = result.levels[0]
    parent = inp.parent_index("sentence", "document")
    for s in np.flatnonzero(~np.array(result.refined)):
        assert result.seq_attr[s] == pytest.approx(documents["seq_attr"][parent[s]])


def test_the_finest_level_must_be_the_inputs_feature_level(exact, inp):
    with pytest.raises(ValueError, match="levels end at 'paragraph'"):
        pla.HierarchicalAblation(exact).attribute(
            inp, target=TARGET, levels=("document", "paragraph")
        )


def test_without_levels_the_level_above_the_features_is_refined(exact, inp):
    result = pla.HierarchicalAblation(exact).attribute(inp, target=TARGET, noise_floor=False)
    assert [lv["level"] for lv in result.levels] == ["paragraph", "sentence"]
    words = pla.HierarchicalAblation(exact).attribute(
        inp.at("word"), target=TARGET, keep=1, noise_floor=False
    )
    assert [lv["level"] for lv in words.levels] == ["sentence", "word"]


def test_the_kept_units_are_those_with_the_largest_attributions(exact, inp):
    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("paragraph", "sentence"), keep=2, noise_floor=False
    )
    paragraphs = np.array(result.levels[0]["seq_attr"])
    top = set(np.argsort(-paragraphs)[:2].tolist())
    refined_parents = set(inp.parent_index("sentence", "paragraph")[result.levels[1]["units"]])
    assert refined_parents == top


def test_levels_name_their_units_and_the_html_view_shows_every_level(exact, inp):
    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("document", "paragraph", "sentence"), keep=1, noise_floor=False
    )
    for level, below in zip(result.levels, [*result.levels[1:], None], strict=True):
        units = inp.units(level["level"])
        assert level["labels"] == [units[u].text for u in level["units"]]
        if below is not None:  # the unit refined: the parent of every unit scored below
            parents = inp.parent_index(below["level"], level["level"])[below["units"]]
            assert level["kept"] == sorted(set(parents.tolist()))
    assert "kept" not in result.levels[-1]
    page = result.to_html()
    tables = re.findall(r'<table class="pla-level" data-level="(\w+)"(.*?)</table>', page, re.S)
    assert [name for name, _ in tables] == ["document", "paragraph", "sentence"]
    for (_, table), level in zip(tables, result.levels, strict=True):
        values = [float(v) for v in re.findall(r'text-align:right">([-+][\d.]+)</td>', table)]
        np.testing.assert_allclose(values, level["seq_attr"], atol=5e-4)
        assert table.count(">refined<") == len(level.get("kept", []))


def alone_scores(model, inp, level: str) -> np.ndarray:
    """log p(target) with only one unit of ``level`` in the context, unit by unit."""
    parent = inp.parent_index(inp.by, level)
    prompts = [model.tokenize(inp.render(parent == u)) for u in range(parent.max() + 1)]
    return model.score(prompts, TARGET, share_prefix=False).sum(axis=1)


def test_keep_alone_also_refines_the_units_that_score_best_on_their_own(tiny, inp):
    result = pla.HierarchicalAblation(tiny).attribute(
        inp, target=TARGET, levels=("document", "sentence"), keep=1, keep_alone=1
    )
    documents = result.levels[0]
    alone = alone_scores(tiny, inp, "document")
    np.testing.assert_array_equal(documents["alone"], alone)  # exact: as scored alone
    by_removal = int(np.argmax(documents["seq_attr"]))
    kept = {by_removal, int(np.argmax(alone))}
    parent = inp.parent_index("sentence", "document")
    assert set(parent[result.levels[1]["units"]]) == kept
    refined = np.array(result.refined)
    assert np.array_equal(refined, np.isin(parent, list(kept)))
    loo = pla.FeatureAblation(tiny).attribute(inp, target=TARGET).seq_attr
    np.testing.assert_array_equal(result.seq_attr[refined], loo[refined])


def test_keep_alone_costs_one_prompt_per_coarse_unit_in_the_same_call(tiny, inp):
    method = pla.HierarchicalAblation(tiny)
    plain = method.attribute(inp, target=TARGET, levels=("document", "sentence"), keep=3)
    both = method.attribute(
        inp, target=TARGET, levels=("document", "sentence"), keep=3, keep_alone=1
    )
    # keep=3 already refines all three documents: the alone scores add three prompts only.
    assert both.stats["n_evaluations"] == plain.stats["n_evaluations"] + 3
    assert both.stats["n_calls"] == plain.stats["n_calls"] == 2
    np.testing.assert_array_equal(both.seq_attr, plain.seq_attr)
    assert "alone" not in plain.levels[0] and "alone" not in both.levels[1]


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_a_bad_keep_alone_is_refused(exact, inp, value):
    with pytest.raises(ValueError, match="keep_alone must be an integer >= 0"):
        pla.HierarchicalAblation(exact).attribute(inp, target=TARGET, keep_alone=value)


@pytest.mark.parametrize(
    "levels, message",
    [
        ("sentence", "levels must be a list"),
        (("sentence", "paragraph"), "coarse to fine"),
        (("paragraph", "token"), "unknown level"),
    ],
)
def test_bad_levels_are_refused(exact, inp, levels, message):
    with pytest.raises(ValueError, match=message):
        pla.HierarchicalAblation(exact).attribute(inp, target=TARGET, levels=levels)


def test_hierarchical_ablation_needs_a_context_input(exact):
    with pytest.raises(ValueError, match="needs a pla.ContextInput"):
        pla.HierarchicalAblation(exact).attribute(pla.TextTemplateInput.from_text("a b"), "c")


# ------------------------------------------------------------ ContextCite


def test_context_cite_scores_all_its_masks_in_one_call(exact, inp):
    result = pla.ContextCite(exact).attribute(inp, target=TARGET, n_samples=24, seed=0)
    assert result.stats["n_calls"] == 1 and result.stats["n_evaluations"] == 25
    assert result.seq_attr.shape == (inp.n_features,)
    n_target = len(exact.tokenize(TARGET, add_special=False))
    assert result.token_attr.shape == (n_target, inp.n_features)
    assert set(result.fit) >= {"r2", "lds", "folds"} and result.fit["model"] == "target"
    assert result.attr_target == "logit_prob"


def test_context_cite_repeats_itself_with_a_seed(exact, inp):
    first, again = (
        pla.ContextCite(exact).attribute(inp, target=TARGET, n_samples=16, seed=3, folds=2)
        for _ in range(2)
    )
    np.testing.assert_array_equal(first.seq_attr, again.seq_attr)


def test_without_a_penalty_the_surrogate_is_least_squares(exact, inp):
    result = pla.ContextCite(exact).attribute(
        inp, target=TARGET, n_samples=40, alpha=0.0, output="attr_target", seed=1
    )
    rng = np.random.default_rng(1)
    masks = rng.random((40, inp.n_features)) < 0.5
    encoding = inp.encode(exact)
    scores = exact.score(encoding.sequences(masks, rng), TARGET).sum(axis=1)
    design = np.column_stack([np.ones(40), masks])
    coef = np.linalg.lstsq(design, scores, rcond=None)[0]
    np.testing.assert_allclose(result.seq_attr, coef[1:], atol=1e-3)


@pytest.mark.parametrize(
    "option, message",
    [
        ({"keep_prob": 1.0}, "keep_prob"),
        ({"alpha": -1}, "alpha"),
        ({"output": "prob"}, "output must be one of"),
        ({"n_samples": 6, "folds": 4}, "n_samples >= 2 \\* folds"),
    ],
)
def test_bad_context_cite_options_are_refused(exact, inp, option, message):
    with pytest.raises(ValueError, match=message):
        pla.ContextCite(exact).attribute(inp, target=TARGET, **option)


def test_the_lasso_meets_its_optimality_conditions():
    rng = np.random.default_rng(0)
    x = (rng.random((64, 30)) < 0.5).astype(float)
    y = x[:, :3] @ [2.0, -1.0, 0.5] + 0.1 * rng.standard_normal(64)
    alpha = 0.05
    w, b = lasso(x, y, alpha)
    xs = (x - x.mean(axis=0)) / x.std(axis=0)
    residual = y - b[0] - x @ w[:, 0]
    gradient = xs.T @ residual / len(x)  # equals alpha * sign(w) where w != 0
    active = w[:, 0] != 0
    np.testing.assert_allclose(gradient[active], alpha * np.sign(w[active, 0]), atol=1e-6)
    assert np.all(np.abs(gradient[~active]) <= alpha + 1e-9)
    assert set(np.flatnonzero(active)) >= {0, 1, 2}


def test_spearman_ranks_with_ties():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 2, 3], [3, 2, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


# ------------------------------------------------------------ proxies


def test_a_proxy_prunes_and_the_target_rescores_only_the_survivors(exact, tiny, inp):
    result = pla.FeatureAblation(exact).attribute(inp, target=TARGET, proxy=tiny, keep=2)
    assert result.computed_by.count("target") == 2
    assert result.stats["n_evaluations"] == 1 + 2
    assert result.stats["proxy"]["n_evaluations"] == 1 + inp.n_features
    survivors = [i for i, who in enumerate(result.computed_by) if who == "target"]
    proxy_values = np.array(result.levels[0]["seq_attr"])
    assert set(survivors) == set(np.argsort(-np.abs(proxy_values))[:2].tolist())
    np.testing.assert_allclose(
        result.seq_attr[survivors], exact_loo(exact, inp)[survivors], atol=1e-4
    )
    assert result.settings["proxy"].endswith(".gguf")


def test_a_hierarchical_proxy_computes_the_coarse_levels(exact, tiny, inp):
    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("document", "sentence"), keep=1, proxy=tiny
    )
    assert [lv["model"] for lv in result.levels] == ["proxy", "target"]
    refined = np.array(result.refined)
    assert result.stats["n_evaluations"] == 1 + refined.sum()
    assert {who for who, r in zip(result.computed_by, refined, strict=True) if r} == {"target"}


def test_a_context_cite_proxy_fits_and_the_target_rescores_the_top(exact, tiny, inp):
    result = pla.ContextCite(exact).attribute(
        inp, target=TARGET, n_samples=16, seed=0, proxy=tiny, keep=3, output="attr_target"
    )
    assert result.fit["model"] == "proxy" and result.stats["n_evaluations"] == 1 + 3
    survivors = [i for i, who in enumerate(result.computed_by) if who == "target"]
    np.testing.assert_allclose(
        result.seq_attr[survivors], exact_loo(exact, inp)[survivors], atol=1e-4
    )


def test_a_proxy_must_be_a_model(exact, inp):
    with pytest.raises(ValueError, match="proxy must be a model"):
        pla.FeatureAblation(exact).attribute(inp, target=TARGET, proxy="small.gguf")


def test_keep_without_a_proxy_is_refused(exact, inp):
    with pytest.raises(ValueError, match="give proxy= too"):
        pla.FeatureAblation(exact).attribute(inp, target=TARGET, keep=2)


def test_the_new_methods_are_listed_by_their_cli_names():
    assert pla.METHODS["hierarchical"] is pla.HierarchicalAblation
    assert pla.METHODS["context-cite"] is pla.ContextCite


def test_a_staged_result_round_trips_through_json(exact, inp):
    from pyllmattr.methods.staged import StagedResult

    result = pla.HierarchicalAblation(exact).attribute(
        inp, target=TARGET, levels=("document", "sentence"), keep=1, noise_floor=False
    )
    again = StagedResult.from_json(result.to_json())
    assert again.levels == result.levels and again.refined == result.refined
    np.testing.assert_array_equal(again.seq_attr, result.seq_attr)
