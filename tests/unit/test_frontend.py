"""What the front ends share (pyllmattr.frontend): the feature kinds from the inputs' own
lists, inputs from a spec, the model file a name stands for, and method capabilities read
from what a method declares, never from its name."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr import frontend
from pyllmattr.cli.commands import _method_options
from pyllmattr.cli.parser import build_parser
from pyllmattr.inputs.context import LEVELS
from pyllmattr.inputs.split import UNITS
from pyllmattr.methods import METHODS
from pyllmattr.serve.requests import method_config, method_modes, page_methods, parse_request


def help_text(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_the_feature_kinds_are_the_inputs_own_units(capsys):
    assert set(frontend.PROMPT_FEATURES) == {"token", *UNITS}
    assert set(frontend.CONTEXT_UNITS) == set(LEVELS) - {"document"}
    kinds = ("token", "character", "word", "clause", "sentence", "paragraph", "document")
    assert kinds == frontend.FEATURE_KINDS  # fine to coarse, as the command line lists them
    listed = "--features {" + ",".join(frontend.FEATURE_KINDS) + "}"
    assert listed in help_text("attribute", capsys)
    listed = "--features {" + ",".join(frontend.PROMPT_FEATURES) + "}"
    assert listed in help_text("attribute-dataset", capsys)


class ContextOnly(pla.FeatureAblation):
    """A made-up method that declares it needs a ContextInput and is for contexts."""

    name = "context-only"
    needs_context_input = True
    context_method = True


def test_front_ends_read_what_a_method_declares(monkeypatch, capsys):
    monkeypatch.setitem(METHODS, ContextOnly.name, ContextOnly)
    parser = build_parser()
    args = parser.parse_args(["attribute", "--prompt", "Hi", "--method", "context-only"])
    with pytest.raises(SystemExit):
        _method_options(args, ContextOnly, parser)
    assert "--method context-only needs --context" in capsys.readouterr().err
    assert "context-only" in page_methods() and method_modes(ContextOnly) == ["context"]
    with pytest.raises(ValueError, match="choose the context mode"):
        parse_request({"prompt": "Hi", "method": "context-only"}, "default")


class GradientsOfMyOwn(pla.FeatureAblation):
    """A made-up method that declares it needs gradients (no name the front ends know)."""

    name = "my-gradients"
    needs_gradients = True
    auto_options = frozenset({"keep"})


def test_a_method_that_declares_gradients_runs_on_pytorch_and_needs_its_extra(monkeypatch):
    monkeypatch.setitem(METHODS, GradientsOfMyOwn.name, GradientsOfMyOwn)
    # the torch extra as present (modules every environment has), whatever is installed
    monkeypatch.setattr(frontend, "TORCH_MODULES", ("colorsys", "wave"))
    assert frontend.missing_extra(GradientsOfMyOwn) is None
    request = parse_request({"prompt": "Hi", "method": "my-gradients"}, "default")
    assert request.engine == "torch"  # the model is loaded with pla.load_torch_gguf
    assert parse_request({"prompt": "Hi"}, "default").engine == "exact"
    assert parse_request({"prompt": "Hi", "fast": True}, "default").engine == "fast"
    config = method_config("my-gradients", GradientsOfMyOwn)
    assert config["needs_gradients"] and config["auto_options"] == ["keep"]
    monkeypatch.setitem(sys.modules, "wave", None)  # one of them missing
    assert "wave is not installed: pip install" in frontend.missing_extra(GradientsOfMyOwn)
    assert frontend.missing_extra(pla.FeatureAblation) is None
    with pytest.raises(ValueError, match=r"pyllmattr\[torch\]"):
        parse_request({"prompt": "Hi", "method": "my-gradients"}, "default")


def test_options_given_as_text_are_read_as_the_methods_take_them():
    assert frontend.layer_option("12") == 12 and frontend.layer_option("-1") == -1
    assert frontend.layer_option("model.layers.3.mlp") == "model.layers.3.mlp"
    assert frontend.baselines_option("") is None and frontend.baselines_option("0") == 0
    assert frontend.baselines_option("zero") == "zero"
    assert frontend.baselines_option("Sarah lives") == "Sarah lives"
    body = {"prompt": "Hi", "method": "integrated-gradients",
            "options": {"layer": "2", "baselines": "0", "n_steps": "auto"}}  # fmt: skip
    options = parse_request(body, "default").options
    assert options == {"layer": 2, "baselines": 0, "n_steps": "auto"}


def test_options_whose_default_is_none_are_offered_as_text_and_read_back():
    hierarchical = method_config("hierarchical", pla.HierarchicalAblation)["options"]
    assert hierarchical["levels"] == ""  # an empty field: the method's own default
    assert method_config("interactions", pla.ShapleyInteractions)["options"]["budget"] == ""
    body = {"mode": "context", "context": "A. B.\n\nC.", "question": "Which?",
            "method": "hierarchical", "options": {"levels": "paragraph, sentence"}}  # fmt: skip
    assert parse_request(body, "default").options == {"levels": ("paragraph", "sentence")}
    body = {"prompt": "Hi there", "method": "interactions", "options": {"budget": "64"}}
    assert parse_request(body, "default").options == {"budget": 64}
    with pytest.raises(ValueError, match="budget must be a whole number of coalitions"):
        parse_request({**body, "options": {"budget": "lots"}}, "default")


def test_options_apply_as_the_methods_declare_them():
    assert frontend.methods_taking("keep_alone") == ["hierarchical"]
    assert frontend.methods_taking("keep") == ["hierarchical"]  # the others: with a proxy
    assert frontend.takes_option(pla.ContextCite, "keep", proxy=True)
    assert not frontend.takes_option(pla.ContextCite, "keep")
    assert not frontend.takes_option(pla.Lime, "proxy", proxy=True)


def test_a_token_spec_travels_without_a_model_and_builds_on_one(tiny):
    spec = frontend.prompt_input("Dave lives in Palm Coast", "token")
    assert isinstance(spec, frontend.PromptSpec)
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(ValueError, match="need the model"):
        spec.build()
    built = frontend.build_input(spec, tiny)
    assert built.baseline_id == 0  # the front ends' default, Captum's
    deleting = pla.TextTokenInput("Dave lives", tiny, baselines=None, skip_tokens=[])
    again = frontend.PromptSpec.of(deleting).build(tiny)
    assert again.baseline_id is None and again.skip_ids == set()
    assert again.encode(tiny).reference_ids == deleting.encode(tiny).reference_ids


def test_a_prompt_with_fixed_text_after_it():
    inp = frontend.prompt_input("Dave {x}. He is.", "sentence", "_", after="\n\nWho {y}?")
    assert inp.labels == ["Dave {x}.", "He is."]
    assert inp.render(np.array([False, True]), inp.baselines)[0] == "_ He is.\n\nWho {y}?"
    with pytest.raises(ValueError, match="documents are the units of a context"):
        frontend.prompt_input("Dave lives", "document")
    with pytest.raises(TypeError, match="baseline must be a string"):
        frontend.prompt_input("Dave lives", "word", 3)


def test_fixed_template_slots_are_literal_text():
    inp = frontend.template_input("{a}{q}:", {"a": "x\n"}, fixed={"q": "{Italy}"})
    assert inp.labels == ["x"]
    assert inp.render(np.array([True]), inp.baselines)[0] == "x\n{Italy}:"


def test_a_model_name_is_checked_before_anything_loads(tmp_path, tiny_path):
    assert frontend.model_file(tiny_path) == tiny_path.resolve()
    with pytest.raises(ValueError, match="model file not found"):
        frontend.model_file(tmp_path / "missing.gguf")
    with pytest.raises(TypeError, match="model must be a .gguf path"):
        frontend.model_file(3)
    with pytest.raises(ValueError, match=r"Saliency runs on PyTorch .*\['deterministic'\]"):
        frontend.load_model(tiny_path, pla.Saliency, {"deterministic": True})
