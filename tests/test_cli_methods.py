"""How the command line picks methods: from pla.METHODS, with the PyTorch back end when needed."""

from __future__ import annotations

import pytest

import pyllmattr as pla
from pyllmattr.cli import main


class GradientMethod(pla.FeatureAblation):
    """Stands for a method that needs a PyTorch model (like integrated gradients)."""

    name = "test-gradients"
    needs_gradients = True


def test_every_registered_method_is_a_choice(monkeypatch, capsys):
    monkeypatch.setitem(pla.METHODS, GradientMethod.name, GradientMethod)
    with pytest.raises(SystemExit) as exit_:
        main(["attribute", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for name in pla.METHODS:
        assert name in help_text


def test_a_gradient_method_without_the_torch_back_end_fails_clearly(monkeypatch, capsys):
    monkeypatch.setitem(pla.METHODS, GradientMethod.name, GradientMethod)
    monkeypatch.delattr(pla, "load_torch_gguf", raising=False)
    code = main(["attribute", "--prompt", "Hi there", "--method", GradientMethod.name])
    assert code == 1
    err = capsys.readouterr().err
    assert err == (
        "pyllmattr: error: --method test-gradients needs the PyTorch back end "
        "(pla.load_torch_gguf), which this installation of pyllmattr does not have\n"
    )


def test_a_gradient_method_loads_the_gguf_with_the_torch_loader(monkeypatch, capsys):
    loaded = []

    def load_torch_gguf(path):
        loaded.append(path)
        return pla.load_gguf(path, n_ctx=512, n_threads=2)  # any model with the interface

    monkeypatch.setitem(pla.METHODS, GradientMethod.name, GradientMethod)
    monkeypatch.setattr(pla, "load_torch_gguf", load_torch_gguf, raising=False)
    args = ["attribute", "--prompt", "Hi there", "--target", " friend"]
    assert main([*args, "--method", GradientMethod.name, "--no-progress"]) == 0
    assert loaded == [pla.default_model_path()]
    assert "GradientMethod" in capsys.readouterr().out
