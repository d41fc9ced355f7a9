"""The engine's options, strategies and stats cross into Python as named, typed values."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyllmattr as pla
from pyllmattr._bench import load_gguf_layout
from pyllmattr._native import _core
from pyllmattr.models import REQUANTIZE_TYPES


def test_the_options_in_effect_are_reported_by_name(tiny_path):
    with pla.load_gguf(tiny_path, n_ctx=64, n_threads=1) as model:
        options = model._engine.options
    assert options.layout == _core.Layout.exact  # the default
    assert options.flash_attn == _core.FlashAttn.off  # the exact layout runs without it
    assert options.n_batch <= options.n_ctx  # llama.cpp caps the batch at the context
    assert options.max_branches == 8
    assert options.n_threads == 1


def test_the_flash64_layout_reports_its_own_options(tiny_path):
    with load_gguf_layout(tiny_path, "flash64", n_ctx=64, n_threads=1) as model:
        options = model._engine.options
    assert options.layout == _core.Layout.flash64
    assert options.flash_attn == _core.FlashAttn.on  # the flash64 layout forces it
    assert options.n_batch % 64 == 0  # whole 64-cell tiles
    assert options.max_branches == 64


def test_strategies_have_the_names_users_give(tiny):
    labels = [s.label for s in _core.Strategy.__members__.values()]
    assert labels == ["trie", "trie-per-wave", "independent"]
    assert tiny.sharing == "trie"
    _, stats = tiny.score([[1, 2, 3]], [4], strategy="trie-per-wave", return_stats=True)
    assert stats.strategy == "trie-per-wave"


def test_an_unknown_strategy_names_the_known_ones(tiny):
    with pytest.raises(ValueError, match="unknown strategy 'greedy'.*trie-per-wave"):
        tiny.score([[1, 2, 3]], [4], strategy="greedy")


def test_conversion_targets_are_the_engines_file_types():
    assert set(REQUANTIZE_TYPES) == {"f16", "q4_0", "q8_0", "q4_k_m"}
    assert all(isinstance(t, _core.FileType) for t in REQUANTIZE_TYPES.values())


def test_test_hooks_live_in_the_testing_seam_only():
    assert not any("plan_slack" in name for name in dir(_core.Engine))
    assert not hasattr(_core, "plan_stats")
    assert hasattr(_core.testing, "set_plan_slack") and hasattr(_core.testing, "plan_stats")


# ------------------------------------------------------------ the stub (pyllmattr/_core.pyi)

STUB = Path(pla.__file__).parent / "_core.pyi"  # the installed one: it ships with the package


def public(names) -> set[str]:
    return {name for name in names if not name.startswith("_")}


def stub_classes() -> dict[str, ast.ClassDef]:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def stub_members(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> dict[str, ast.AST]:
    """Names a stub class declares, with those of the stub classes it derives from."""
    members: dict[str, ast.AST] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            members.update(stub_members(classes[base.id], classes))
    for node in cls.body:
        if isinstance(node, ast.FunctionDef):
            members[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members[node.target.id] = node
    return members


def stub_parameters(node: ast.FunctionDef) -> list[str]:
    args = node.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg != "self"]


def runtime_parameters(function) -> list[str]:
    """Parameter names from pybind11's signature line: ``name(a: T, *, b: U = 1) -> R``."""
    line = function.__doc__.splitlines()[0]
    inside, depth, parts, current = line[line.index("(") + 1 :], 0, [], ""
    for char in inside:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                break
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    names = [part.split(":")[0].strip() for part in parts]
    return [name for name in names if name and name not in ("self", "*")]


def check_functions(stub: dict[str, ast.AST], runtime_owner, where: str) -> None:
    for name, node in stub.items():
        if not isinstance(node, ast.FunctionDef) or name.startswith("__") and name != "__init__":
            continue
        if any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
            continue
        found = runtime_parameters(getattr(runtime_owner, name))
        assert stub_parameters(node) == found, f"{where}.{name}: the stub's parameters"


def test_the_stub_declares_every_name_of_the_extension_and_nothing_else():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    top: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            top[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top[node.target.id] = node
    assert public(top) == public(dir(_core))
    check_functions(top, _core, "_core")
    classes = stub_classes()
    for name in public(top) & set(classes):
        members = stub_members(classes[name], classes)
        assert public(members) == public(vars(getattr(_core, name))), name
        check_functions(members, getattr(_core, name), name)
    testing = stub_members(classes["_Testing"], classes)
    assert public(testing) == public(dir(_core.testing))
    check_functions(testing, _core.testing, "_core.testing")


def test_the_stub_checks_parameters_against_the_signature_line():
    assert runtime_parameters(_core.Engine.score) == [
        "sequences", "target", "strategy", "progress", "cancel"
    ]  # fmt: skip
    assert runtime_parameters(_core.EngineOptions.__init__)[-3:] == [
        "flash_attn", "kv_f32", "layout"
    ]  # fmt: skip
