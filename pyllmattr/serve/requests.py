"""What the page asks for, checked and turned into an input, a method and its options.

A request is a JSON object (the page's form); anything wrong in it raises ValueError
with a message the page shows as it is. Nothing here touches the web server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._checks import WrongTypeError, check_int
from ..frontend import (
    CONTEXT_UNITS,
    PROMPT_FEATURES,
    TEXT_OPTIONS,
    PromptSpec,
    missing_extra,
    template_input,
)

if TYPE_CHECKING:
    from ..frontend import MethodClass

FEATURES = (*PROMPT_FEATURES, "template")  # of a prompt; a context's are CONTEXT_UNITS
CONTEXT_TEMPLATE = "{context}\n\n{query}"  # the question after the context, as in the page
MAX_TEXT = 200_000  # characters of a prompt, context or template: far above any n_ctx


def page_methods() -> dict[str, MethodClass]:
    """The methods the page offers: all of them. Gradient methods run on PyTorch, on the
    same GGUF file (``frontend.load_model``); without the torch extra the page lists
    them as unavailable (``frontend.missing_extra``)."""
    from ..methods import METHODS

    return dict(METHODS)


def method_modes(cls: MethodClass) -> list[str]:
    """The page modes a method works in: a context method in the context mode only."""
    return ["context"] if cls.context_method else ["prompt", "context"]


def method_options(cls: MethodClass) -> dict[str, Any]:
    """A method's options the page can set: those with a number, text or flag default,
    and those the front ends read from text (``frontend.TEXT_OPTIONS``; None shows as
    an empty field)."""
    return {
        k: "" if v is None and k in TEXT_OPTIONS else v
        for k, v in cls.defaults.items()
        if isinstance(v, (bool, int, float, str)) or k in TEXT_OPTIONS
    }


def method_config(name: str, cls: MethodClass) -> dict[str, Any]:
    """What the page needs to know of a method: its options, the modes it works in, and
    what it declares (gradients: a PyTorch model; options that also take "auto")."""
    return {
        "name": name,
        "class": cls.__name__,
        "options": method_options(cls),
        "modes": method_modes(cls),
        "needs_gradients": cls.needs_gradients,
        "auto_options": sorted(cls.auto_options),
        "unavailable": missing_extra(cls),
    }


@dataclass
class RunRequest:
    """A checked request of the page: what to attribute, to which target, with which
    method, on which model.

    Example:
        >>> request = parse_request({"prompt": "Dave lives in Palm Coast", "target": " FL"},
        ...                         "default")
        >>> request.method, request.features, request.target
        ('feature-ablation', 'word', ' FL')
    """

    model: str
    fast: bool  # the fast layout (deterministic=False) instead of the exact default
    method: str
    options: dict[str, Any]
    target: str | None
    contrast: str | None  # attribute log p(target) - log p(contrast)
    evaluate: bool  # also measure the attributions' faithfulness (pla.evaluate)
    max_new_tokens: int
    seed: int | None
    num_trials: int
    chat: bool | dict[str, str]
    features: str
    text: dict[str, Any]
    form: dict[str, Any] = field(default_factory=dict)  # the request as the page sent it

    @property
    def method_class(self) -> MethodClass:
        return page_methods()[self.method]

    @property
    def engine(self) -> str:
        """What runs it: ``"torch"`` (gradients, PyTorch), else llama.cpp's layout."""
        if self.method_class.needs_gradients:
            return "torch"
        return "fast" if self.fast else "exact"

    def make_input(self, model: Any) -> Any:
        """The pla input the request describes (needs the model for token features)."""
        from ..inputs import ContextInput

        text, baseline = self.text, self.text.get("baseline")
        if text["mode"] == "context":
            if page_methods()[self.method].context_method:
                return ContextInput(
                    text["context"], text["question"], template=CONTEXT_TEMPLATE, by=self.features
                )
            # The context's units as plain features (a baseline may replace them), the
            # question fixed after them, as the context template places it.
            after = CONTEXT_TEMPLATE.format(context="", query=text["question"])
            return PromptSpec(text["context"], self.features, baseline, after).build()
        if self.features == "template":
            return template_input(text["template"], text["values"], text.get("baselines") or None)
        return PromptSpec(text["prompt"], self.features, baseline).build(model)


def parse_request(data: Any, default_model: str) -> RunRequest:
    """Check a request (a dict from JSON) and return what it asks for."""
    if not isinstance(data, Mapping):
        raise WrongTypeError("the request must be a JSON object")
    methods = page_methods()
    method = _choice(data, "method", list(methods), "feature-ablation")
    mode = _choice(data, "mode", ["prompt", "context"], "prompt")
    features = _choice(
        data, "features", list(CONTEXT_UNITS if mode == "context" else FEATURES), "word"
    )
    cls = methods[method]
    unavailable = missing_extra(cls)
    if unavailable:
        raise ValueError(unavailable)
    if cls.needs_gradients and _flag(data, "fast"):
        raise ValueError(
            f"{method} runs on PyTorch (from the same GGUF file); the fast layout is "
            "llama.cpp's: untick it"
        )
    if mode not in method_modes(cls):
        raise ValueError(
            f"{method} attributes the units of a context: choose the context mode "
            "(a context and a question)"
        )
    if cls.context_method and data.get("baseline") is not None:
        raise ValueError(f"{method} removes context units: leave the baseline empty")
    target = _text(data, "target", required=False)
    return RunRequest(
        model=_text(data, "model", required=False) or default_model,
        fast=_flag(data, "fast"),
        method=method,
        options=_options(data.get("options"), cls),
        target=target or None,
        contrast=_text(data, "contrast", required=False) or None,
        evaluate=_flag(data, "evaluate"),
        max_new_tokens=_integer(data, "max_new_tokens", 25, 1, 512),
        seed=_integer(data, "seed", None, 0, 2**32 - 1),
        num_trials=_integer(data, "num_trials", 1, 1, 50),
        chat=_chat(data),
        features=features,
        text=_texts(data, mode, features),
        form=dict(data),
    )


# ---------------------------------------------------------------- fields


def _texts(data: Mapping, mode: str, features: str) -> dict[str, Any]:
    baseline = data.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise WrongTypeError("baseline must be a text (or null: remove absent features)")
    if mode == "context":
        return {
            "mode": mode,
            "context": _text(data, "context"),
            "question": _text(data, "question"),
            "baseline": baseline,
        }
    if features == "template":
        return {
            "mode": mode,
            "template": _text(data, "template"),
            "values": _slots(data.get("values"), "values"),
            "baselines": _slots(data.get("baselines"), "baselines", required=False),
        }
    return {"mode": mode, "prompt": _text(data, "prompt"), "baseline": baseline}


def _text(data: Mapping, key: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{key} is empty: type some text")
        return ""
    if not isinstance(value, str):
        raise WrongTypeError(f"{key} must be a text")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{key} has {len(value)} characters; at most {MAX_TEXT} are accepted")
    return value


def _slots(value: Any, key: str, required: bool = True) -> dict[str, str]:
    if not value:
        if required:
            raise ValueError(f"{key}: give a value for each {{slot}} of the template")
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise WrongTypeError(f"{key} must map slot names to texts")
    return dict(value)


def _choice(data: Mapping, key: str, allowed: list[str], default: str) -> str:
    value = data.get(key) or default
    if value not in allowed:
        raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
    return value


def _flag(data: Mapping, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise WrongTypeError(f"{key} must be true or false")
    return value


def _integer(data: Mapping, key: str, default: Any, low: int, high: int) -> Any:
    value = data.get(key)
    if value is None or value == "":
        return default
    return check_int(key, value, low, high)


def _options(value: Any, cls: MethodClass) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WrongTypeError("options must be an object of option names and values")
    known = method_options(cls)
    out = {}
    for name, given in value.items():
        if name not in known:
            raise ValueError(f"{cls.__name__} has no option {name!r}; its options: {list(known)}")
        if name in cls.auto_options and given == "auto":
            out[name] = given
            continue
        if name in TEXT_OPTIONS and isinstance(given, str):  # e.g. layer "12" is an index
            out[name] = TEXT_OPTIONS[name](given)
            continue
        kind = type(known[name])
        if kind is float and isinstance(given, int) and not isinstance(given, bool):
            given = float(given)
        if not isinstance(given, kind) or (kind is int and isinstance(given, bool)):
            also = " or 'auto'" if name in cls.auto_options else ""
            raise WrongTypeError(f"option {name} must be a {kind.__name__}{also}, got {given!r}")
        out[name] = given
    return out


def _chat(data: Mapping) -> bool | dict[str, str]:
    chat = _flag(data, "chat")
    system = _text(data, "system", required=False)
    template = _text(data, "chat_template", required=False)
    if not (chat or system or template):
        return False
    settings = {"system": system, "template": template}
    return {k: v for k, v in settings.items() if v} or True
