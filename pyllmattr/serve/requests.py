"""What the page asks for, checked and turned into an input, a method and its options.

A request is a JSON object (the page's form); anything wrong in it raises ValueError
with a message the page shows as it is. Nothing here touches the web server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..inputs.split import units_with_leading_space

FEATURES = ("token", "word", "sentence", "paragraph", "template")
CONTEXT_UNITS = ("sentence", "paragraph", "word")
CONTEXT_METHODS = ("hierarchical", "context-cite")  # they need a context: its units nest
CONTEXT_TEMPLATE = "{context}\n\n{query}"  # the question after the context, as in the page
MAX_TEXT = 200_000  # characters of a prompt, context or template: far above any n_ctx


def page_methods() -> dict[str, type]:
    """The methods the page offers: every perturbation method, and the context methods
    in the context mode (all run on llama.cpp)."""
    from ..methods import METHODS, PerturbationMethod

    return {
        name: cls
        for name, cls in METHODS.items()
        if issubclass(cls, PerturbationMethod) or name in CONTEXT_METHODS
    }


def method_modes(name: str) -> list[str]:
    """The page modes a method works in."""
    return ["context"] if name in CONTEXT_METHODS else ["prompt", "context"]


def method_options(cls: type) -> dict[str, Any]:
    """A method's options the page can set: those with a number, text or flag default."""
    defaults = getattr(cls, "defaults", {})
    return {k: v for k, v in defaults.items() if isinstance(v, (bool, int, float, str))}


@dataclass
class Job:
    """A checked request: what to attribute, to which target, with which method.

    Example:
        >>> job = parse_job({"prompt": "Dave lives in Palm Coast", "target": " FL"}, "default")
        >>> job.method, job.features, job.target
        ('feature-ablation', 'word', ' FL')
    """

    model: str
    fast: bool  # the fast layout (deterministic=False) instead of the exact default
    method: str
    options: dict[str, Any]
    target: str | None
    max_new_tokens: int
    seed: int | None
    num_trials: int
    chat: bool | dict[str, str]
    features: str
    text: dict[str, Any]

    def make_input(self, model: Any) -> Any:
        """The pla input the request describes (needs the model for token features)."""
        import pyllmattr as pla

        text = self.text
        baseline = text.get("baseline")
        if text["mode"] == "context" and self.method in CONTEXT_METHODS:
            return pla.ContextInput(
                text["context"], text["question"], template=CONTEXT_TEMPLATE, by=self.features
            )
        if text["mode"] == "context":
            return context_input(text["context"], text["question"], self.features, baseline)
        if self.features == "template":
            return pla.TextTemplateInput(
                text["template"], text["values"], baselines=text.get("baselines") or None
            )
        if self.features == "token":
            if baseline is None:
                return pla.TextTokenInput(text["prompt"], model)
            return pla.TextTokenInput(text["prompt"], model, baselines=baseline)
        return pla.TextTemplateInput.from_text(text["prompt"], by=self.features, baselines=baseline)


def parse_job(data: Any, default_model: str) -> Job:
    """Check a request (a dict from JSON) and return the job it asks for."""
    if not isinstance(data, Mapping):
        raise ValueError("the request must be a JSON object")
    methods = page_methods()
    method = _choice(data, "method", list(methods), "feature-ablation")
    mode = _choice(data, "mode", ["prompt", "context"], "prompt")
    features = _choice(
        data, "features", list(CONTEXT_UNITS if mode == "context" else FEATURES), "word"
    )
    if mode not in method_modes(method):
        raise ValueError(
            f"{method} attributes the units of a context: choose the context mode "
            "(a context and a question)"
        )
    if method in CONTEXT_METHODS and data.get("baseline") is not None:
        raise ValueError(f"{method} removes context units: leave the baseline empty")
    target = _text(data, "target", required=False)
    return Job(
        model=_text(data, "model", required=False) or default_model,
        fast=_flag(data, "fast"),
        method=method,
        options=_options(data.get("options"), methods[method]),
        target=target or None,
        max_new_tokens=_integer(data, "max_new_tokens", 25, 1, 512),
        seed=_integer(data, "seed", None, 0, 2**32 - 1),
        num_trials=_integer(data, "num_trials", 1, 1, 50),
        chat=_chat(data),
        features=features,
        text=_texts(data, mode, features),
    )


def context_input(context: str, question: str, by: str, baseline: str | None) -> Any:
    """The context's units as features, the question after them fixed (never a feature)."""
    import pyllmattr as pla

    lead, units, trail = units_with_leading_space(context, by)
    slots = {f"u{i}": unit for i, unit in enumerate(units)}
    template = _literal(lead) + "".join(f"{{{k}}}" for k in slots) + _literal(trail)
    template += _literal("\n\n" + question)
    baselines = None
    if baseline is not None:
        baselines = {k: v[: len(v) - len(v.lstrip())] + baseline for k, v in slots.items()}
    return pla.TextTemplateInput(template, slots, baselines=baselines)


# ---------------------------------------------------------------- fields


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _texts(data: Mapping, mode: str, features: str) -> dict[str, Any]:
    baseline = data.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise ValueError("baseline must be a text (or null: remove absent features)")
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
        raise ValueError(f"{key} must be a text")
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
        raise ValueError(f"{key} must map slot names to texts")
    return dict(value)


def _choice(data: Mapping, key: str, allowed: list[str], default: str) -> str:
    value = data.get(key) or default
    if value not in allowed:
        raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
    return value


def _flag(data: Mapping, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _integer(data: Mapping, key: str, default: Any, low: int, high: int) -> Any:
    value = data.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer from {low} to {high}, got {value!r}")
    return value


def _options(value: Any, cls: type) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("options must be an object of option names and values")
    known = method_options(cls)
    out = {}
    for name, given in value.items():
        if name not in known:
            raise ValueError(f"{cls.__name__} has no option {name!r}; its options: {list(known)}")
        kind = type(known[name])
        if kind is float and isinstance(given, int) and not isinstance(given, bool):
            given = float(given)
        if not isinstance(given, kind) or (kind is int and isinstance(given, bool)):
            raise ValueError(f"option {name} must be a {kind.__name__}, got {given!r}")
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
