"""What the front ends share: the command line (:mod:`pyllmattr.cli`), the explorer
(:mod:`pyllmattr.serve`) and the dataset runner (:mod:`pyllmattr.dataset`).

Each front end reads its own syntax (flags, a JSON request, a JSON-lines record) and
comes here for the domain: the feature kinds, an input built from what was given (a
prompt, a template and its values), the model file a name stands for, and the model a
method runs on. A front end reads what a method declares (``needs_gradients``,
``needs_context_input``, ``context_method``, ``proxy_options``, ``auto_options``, the
option names in ``defaults``), never its name, and asks :func:`missing_extra` whether it
can run here.

Example:
    >>> prompt_input("Dave lives in Palm Coast", "word").n_features
    5
    >>> prompt_input("Dave lives in Palm Coast", "token").needs_model  # built on a model later
    True
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._checks import WrongTypeError
from ._text import check_text
from .inputs import InterpretableInput, TextTemplateInput, TextTokenInput
from .inputs.context import LEVELS
from .inputs.split import UNITS, units_with_leading_space
from .inputs.template import escape_braces
from .models.interface import ScoringModel

if TYPE_CHECKING:
    from .pipeline import AttributionMethod

    MethodClass = type[AttributionMethod]

# Fine to coarse, as the front ends list them.
PROMPT_FEATURES = ("token", *reversed(UNITS))  # token, character, word, sentence, paragraph
CONTEXT_UNITS = tuple(reversed(LEVELS[1:]))  # a context's units inside its documents
FEATURE_KINDS = (*PROMPT_FEATURES, "document")  # documents: the coarsest unit of a context


# ---------------------------------------------------------------- methods


def method_class(method: str | type) -> MethodClass:
    """A method class from its name in :data:`pla.METHODS` (or the class itself)."""
    from .methods import METHODS

    return cast("MethodClass", method if isinstance(method, type) else METHODS[method])


def takes_option(cls: MethodClass, option: str, proxy: bool = False) -> bool:
    """Whether ``cls`` takes ``option`` (with a ``proxy=`` model when ``proxy``)."""
    return option in cls.defaults and (proxy or option not in cls.proxy_options)


# What pla.load_torch_gguf imports: a method that needs gradients needs these (the torch extra).
TORCH_MODULES = ("torch", "transformers", "gguf")


def missing_extra(cls: MethodClass) -> str | None:
    """Why ``cls`` cannot run here (an extra it needs is not installed), or None.

    Example:
        >>> missing_extra(method_class("feature-ablation")) is None
        True
    """
    if not cls.needs_gradients:
        return None
    missing = [name for name in TORCH_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    from .models.torch import INSTALL_HINT

    return (
        f"{cls.__name__} needs gradients, computed on PyTorch from the same GGUF file, and "
        f"{missing[0]} is not installed: {INSTALL_HINT}"
    )


def layer_option(text: str) -> int | str:
    """A gradient method's ``layer=`` from text: a decoder layer's index (``"12"``, ``"-1"``)
    or a module name / ``"embeddings"`` (the method checks that it exists).

    Example:
        >>> layer_option("12"), layer_option("model.layers.3.mlp")
        (12, 'model.layers.3.mlp')
    """
    return int(text) if text.lstrip("-").isdigit() else text


def baselines_option(text: str) -> int | str | None:
    """A gradient method's ``baselines=`` from text: empty for None (the input's own
    baselines), a token id (``"0"``), ``"zero"`` (zero embeddings) or a baseline text.

    Example:
        >>> baselines_option(""), baselines_option("0"), baselines_option("zero")
        (None, 0, 'zero')
    """
    if not text.strip():
        return None
    return int(text) if text.strip().isdigit() else text


def levels_option(text: str) -> tuple[str, ...] | None:
    """Hierarchical ``levels=`` from text: unit levels coarse to fine, comma-separated;
    empty for None (the method's default).

    Example:
        >>> levels_option("paragraph, sentence"), levels_option("")
        (('paragraph', 'sentence'), None)
    """
    levels = tuple(part.strip() for part in text.split(",") if part.strip())
    return levels or None


def budget_option(text: str) -> int | None:
    """An interactions ``budget=`` from text: a number of coalitions, empty for None.

    Example:
        >>> budget_option("512"), budget_option(" ")
        (512, None)
    """
    if not text.strip():
        return None
    if not text.strip().isdigit():
        raise ValueError(f"budget must be a whole number of coalitions (or empty), got {text!r}")
    return int(text)


# Options a front end reads from text (a flag, a form field) although their values are
# not all strings: the option's name in a method's ``defaults`` -> how to read it.
TEXT_OPTIONS = {
    "layer": layer_option,
    "baselines": baselines_option,
    "levels": levels_option,
    "budget": budget_option,
}


def methods_taking(option: str) -> list[str]:
    """The names of the methods that take ``option`` without a proxy, for messages."""
    from .methods import METHODS

    return [name for name, cls in METHODS.items() if takes_option(cls, option)]


def methods_taking_auto(option: str | None = None) -> list[str]:
    """The names of the methods that take ``"auto"`` for ``option`` (any option: None)."""
    from .methods import METHODS

    return [
        name
        for name, cls in METHODS.items()
        if cls.auto_options and (option is None or option in cls.auto_options)
    ]


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PromptSpec:
    """A prompt whose tokens, words, sentences or paragraphs are the features, as a
    front end was given it; token features are built with the model of whoever runs
    them (:meth:`build`), so a spec travels to other processes without one.

    ``baseline`` is what an absent feature becomes: one string for every unit, or for
    tokens a token id or single-token string (None: units are removed, tokens become
    token 0, or are deleted with ``delete_absent``). ``after`` is fixed text after the
    prompt, never a feature (a question about it).

    Example:
        >>> spec = PromptSpec("Dave lives in Palm Coast", "token")
        >>> spec.build(model).n_features  # doctest: +SKIP
        5
    """

    text: str
    features: str = "word"
    baseline: int | str | None = None
    after: str = ""
    skip_tokens: tuple[int | str, ...] | None = None
    delete_absent: bool = False

    def __post_init__(self) -> None:
        check_features(self.features)
        if not isinstance(self.text, str):
            raise WrongTypeError(f"the prompt must be a string, got {type(self.text).__name__}")
        if self.features == "token":
            if self.baseline is not None and not isinstance(self.baseline, (int, str)):
                raise WrongTypeError("the baseline of token features is a token id or a string")
            if self.after:
                raise ValueError("token features take no fixed text after the prompt")
        elif self.baseline is not None and not isinstance(self.baseline, str):
            raise WrongTypeError("the baseline must be a string (what each absent unit becomes)")

    @property
    def needs_model(self) -> bool:
        """Token features are the model's tokens: the input is built with it."""
        return self.features == "token"

    def build(self, model: Any = None) -> InterpretableInput:
        """The input: a TextTokenInput on ``model``, or a TextTemplateInput of the units."""
        if self.features != "token":
            check_text(self.text, "the prompt")
            lead, units, trail = units_with_leading_space(self.text, self.features)
            return TextTemplateInput.from_units(
                units,
                before=lead,
                after=trail + self.after,
                baseline=cast(str | None, self.baseline),
            )
        if model is None:
            raise ValueError("token features need the model whose tokens they are")
        skip = None if self.skip_tokens is None else list(self.skip_tokens)
        baseline: int | str | None = 0 if self.baseline is None else self.baseline
        if self.delete_absent:  # else Captum's default: token 0
            baseline = None
        return TextTokenInput(self.text, model, baselines=baseline, skip_tokens=skip)

    @classmethod
    def of(cls, inp: TextTokenInput) -> PromptSpec:
        """The spec that rebuilds ``inp`` on another model of the same tokenizer."""
        baseline, skip = inp.baseline_id, tuple(sorted(inp.skip_ids))
        return cls(inp.text, "token", baseline, skip_tokens=skip, delete_absent=baseline is None)


def check_features(features: Any) -> None:
    """ValueError unless ``features`` is a kind of prompt features."""
    if features not in PROMPT_FEATURES:
        hint = "; documents are the units of a context" if features in LEVELS else ""
        raise ValueError(f"features must be one of {PROMPT_FEATURES}, got {features!r}{hint}")


def prompt_input(
    text: str, features: str = "word", baseline: int | str | None = None, *, after: str = ""
) -> InterpretableInput | PromptSpec:
    """The input of a prompt, checked now: built, or for token features its spec (built
    with the model that runs it; see :class:`PromptSpec`)."""
    spec = PromptSpec(text, features, baseline, after)
    return spec if spec.needs_model else spec.build()


def build_input(inp: InterpretableInput | PromptSpec, model: Any) -> InterpretableInput:
    """``inp`` itself, or the input a spec describes, built with ``model``."""
    return inp.build(model) if isinstance(inp, PromptSpec) else inp


def template_input(
    template: Any,
    values: Any,
    baselines: Any = None,
    mask: Any = None,
    fixed: Mapping[str, str] | None = None,
) -> TextTemplateInput:
    """A template whose slots are the features; ``fixed`` slots are filled with text
    that is not a feature (a query after few-shot examples)."""
    if fixed is not None:
        template = fill_slots(template, fixed)
    return TextTemplateInput(template, values, baselines=baselines, mask=mask)


def fill_slots(template: Any, fixed: Any) -> str:
    """``template`` with the ``fixed`` slots written in as literal text."""
    if not isinstance(template, str):
        raise WrongTypeError("the template must be a string with {name} or {} slots")
    if not isinstance(fixed, Mapping) or not all(isinstance(v, str) for v in fixed.values()):
        raise WrongTypeError('"fixed" must be an object of slot name -> text')
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r} is malformed ({exc})") from exc
    out = []
    for literal, field, spec, conversion in parsed:
        out.append(escape_braces(literal))
        if field is None:
            continue
        if field in fixed:
            out.append(escape_braces(fixed[field]))
        else:
            suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            out.append("{" + field + suffix + "}")
    unused = sorted(set(fixed) - {f for _, f, _, _ in parsed if f})
    if unused:
        raise ValueError(f'"fixed" slot(s) {unused} are not in the template')
    return "".join(out)


# ---------------------------------------------------------------- models


def is_loaded(model: Any) -> bool:
    """Whether ``model`` is a loaded model rather than a file or a name."""
    return isinstance(model, ScoringModel)


def model_file(model: str | os.PathLike) -> Path:
    """The GGUF file of ``model``: ``"default"`` (the demo model), a reference
    (``ollama:``, ``lmstudio:``, ``hf:``) or a path; absolute (Ray actors may run
    elsewhere) and checked to be a GGUF file."""
    from .models import default_model_path, resolve_model
    from .models.gguf_file import check_gguf_file

    if not isinstance(model, (str, os.PathLike)):
        raise WrongTypeError(
            f"model must be a .gguf path, a model reference, 'default' or a loaded model, "
            f"got {type(model).__name__}"
        )
    path = default_model_path() if model == "default" else resolve_model(model)
    path = Path(path).expanduser().resolve()
    check_gguf_file(path)
    return path


def load_model(
    model: str | os.PathLike, method: MethodClass | None = None, load_args: Mapping | None = None
) -> Any:
    """The model ``method`` runs on, loaded from ``model``'s GGUF file (:func:`model_file`):
    into PyTorch (``pla.load_torch_gguf``) for a method that needs gradients, with
    llama.cpp (``pla.load_gguf``) otherwise. ``load_args`` are ``load_gguf``'s options;
    on PyTorch ``n_threads`` sets torch's CPU threads and an option it does not take
    raises ValueError. The caller closes the model.

    Example:
        >>> with load_model("default", pla.Saliency) as model: ...  # doctest: +SKIP
    """
    from .models import load_gguf, load_torch_gguf

    path, args = model_file(model), dict(load_args or {})
    if method is None or not method.needs_gradients:
        return load_gguf(path, **args)
    threads = args.pop("n_threads", None)
    takes = set(inspect.signature(load_torch_gguf).parameters) - {"path"}
    if set(args) - takes:
        raise ValueError(
            f"{method.__name__} runs on PyTorch (pla.load_torch_gguf), which does not take "
            f"{sorted(set(args) - takes)}; those are llama.cpp's options"
        )
    loaded = load_torch_gguf(path, **args)
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    return loaded


def open_model(
    model: Any, method: MethodClass | None = None, load_args: Mapping | None = None
) -> Any:
    """A context manager giving the model: ``model`` itself when already loaded (left
    open), otherwise :func:`load_model`'s, closed on exit."""
    if is_loaded(model):
        return contextlib.nullcontext(model)
    return load_model(model, method, load_args)  # models close themselves on exit
