"""Both back ends are models of the interface in pyllmattr/models/interface.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyllmattr as pla
import pyllmattr.models

MODELS = Path(pyllmattr.models.__file__).parent
TORCH_MODULES = ["torch.py", "torch_load.py", "torch_vocab.py"]


def test_the_llama_cpp_model_is_a_scoring_model_without_gradients(tiny):
    assert isinstance(tiny, pla.ScoringModel)
    assert not isinstance(tiny, pla.GradientModel)


def test_the_torch_model_is_a_gradient_model(smollm2_torch):
    assert isinstance(smollm2_torch, pla.ScoringModel)
    assert isinstance(smollm2_torch, pla.GradientModel)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", TORCH_MODULES)
def test_the_torch_back_end_imports_nothing_of_the_llama_cpp_back_end(module):
    imports = imported_modules(MODELS / module)
    assert not imports & {".llama", ".requantize", ".._native", "llama_cpp"}


@pytest.mark.parametrize("model", ["tiny", "smollm2_torch"])
def test_both_back_ends_report_the_same_stats_type(model, request):
    scorer = request.getfixturevalue(model)
    ids = scorer.tokenize("Dave lives in Palm Coast")
    _, stats = scorer.score_pairs([ids, ids], [" FL", " Florida"], return_stats=True)
    assert type(stats) is pla.ScoreStats
    assert stats.n_unique == 2
    assert stats.n_decoded >= stats.n_trie
