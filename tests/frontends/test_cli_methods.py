"""How the command line picks methods: from pla.METHODS, with the PyTorch back end when needed."""

from __future__ import annotations

import pytest
from no_torch import run_without_torch

import pyllmattr as pla
from pyllmattr.cli import main
from pyllmattr.cli.commands import _method_options
from pyllmattr.cli.parser import build_parser


def test_every_registered_method_is_a_choice(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["attribute", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for name in pla.METHODS:
        assert name in help_text


def test_exactly_the_gradient_methods_load_the_pytorch_back_end():
    torch_methods = {name for name, cls in pla.METHODS.items() if cls.needs_gradients}
    assert torch_methods == set(pla.GRADIENT_METHODS)
    assert {"integrated-gradients", "saliency"} <= torch_methods
    assert "feature-ablation" not in torch_methods


def test_a_gradient_method_without_the_torch_extra_fails_clearly():
    done = run_without_torch(
        """
        from pyllmattr.cli import main
        code = main(["attribute", "--prompt", "Hi there", "--method", "integrated-gradients"])
        assert "torch" not in sys.modules
        print(code)
        """
    )
    assert done.stdout.strip() == "1", done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("pyllmattr: error: ")
    assert 'pip install "pyllmattr[torch]"' in line


def test_layer_applies_to_the_gradient_methods_only(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["attribute", "--prompt", "Hi there", "--layer", "3"])
    assert exit_.value.code == 2
    assert "--layer applies to the gradient methods only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "layer"),
    [
        ("12", 12),
        ("-1", -1),
        ("model.layers.3.mlp", "model.layers.3.mlp"),
        ("embeddings", "embeddings"),
    ],
)
def test_layer_is_a_decoder_layer_index_or_a_module_name(text, layer):
    parser = build_parser()
    args = parser.parse_args(
        ["attribute", "--prompt", "Hi", "--method", "gradient-shap", "--layer", text]
    )
    assert _method_options(args, pla.METHODS["gradient-shap"], parser) == {"layer": layer}
