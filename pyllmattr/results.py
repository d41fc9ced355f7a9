"""Attribution results: values, plots, serialization and the notebook view.

Serialization is derived from the dataclass fields, so a new field or a new result type
needs no serialization code:

* **A new field** on :class:`AttributionResult` (or on a subclass): declare it with a
  type annotation and a default (old files lack it). ``to_dict`` writes every field;
  ``from_dict`` rebuilds it from its annotation: ``np.ndarray`` from a list of numbers,
  ``float``/``int``/``str``/``bool`` as such, ``X | None``, ``list[X]``, ``tuple[...]``,
  ``dict[str, X]``, a dict with other keys (``dict[tuple[int, ...], float]``, written as
  ``[key, value]`` pairs, since JSON keys are strings) and a dataclass (written as an
  object of its own fields, e.g. a ``convergence`` or faithfulness section). A field
  typed ``Any`` holds JSON values: numpy arrays and scalars in it become lists and
  numbers, and stay so when read back.
* **A new result type**: a ``@dataclass(repr=False)`` subclass of
  :class:`AttributionResult` (as :class:`pyllmattr.methods.staged.StagedResult`), defined
  in a module that ``import pyllmattr`` imports. It registers itself by class name;
  ``to_dict`` writes ``"result_type": "ItsName"`` and ``AttributionResult.from_dict`` /
  ``from_json`` rebuild that class. A method returns it by setting
  ``Evaluation.result_type`` (its own fields in ``Evaluation.extras``).

Files written before ``result_type`` and ``quantity`` were stored still load: the type
is the registered subclass whose own fields the file has, the label is rebuilt from
``attr_target``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from . import objectives, render


@dataclass
class AttributionResult:
    """What an attribution found, per input feature and per target token.

    ``seq_attr[i]`` is feature i's attribution for the whole target (its total
    log-probability, or its probability with ``attr_target="prob"``);
    ``token_attr[t, i]`` the same for target token t. ``target_logprob`` is the
    target's log-probability under the unperturbed prompt and ``baseline_logprob``
    under the all-baseline prompt (when the method scored it), both from the same
    scoring call as the attributions. With ``num_trials > 1`` the ``*_std`` fields
    hold the spread across trials.

    ``noise_floor`` (and ``token_noise_floor``) is how far the unperturbed prompt's
    score moved between its place in the batch and being scored alone: attributions
    within it are within llama.cpp's batch noise (0 where scores are exact, the default
    on the CPU); plots and the HTML view mark them.

    Integrated gradients also report ``completeness_gap[t]``: the sum of target token
    t's attributions over all prompt tokens minus f(prompt) - f(baseline), the
    integration error (``seq_completeness_gap`` for the whole target); raise
    ``n_steps`` when it is large.

    With a contrast (``attribute(..., contrast=" B")``) the attributed quantity is
    log p(target) - log p(contrast): ``contrast_tokens``, ``contrast_ids`` and
    ``contrast_logprob`` (``contrast_token_logprobs`` per token) describe the contrast
    under the unperturbed prompt. ``token_attr_of`` says what the rows of
    ``token_attr`` attribute: ``"difference"`` (target token t minus contrast token t,
    when both have the same length) or ``"target"`` (the target's own tokens: always
    without a contrast, and with a contrast of another length).

    ``quantity`` is the attributed quantity as plots and tables label it (the
    objective's ``describe()``: ``"log p(target)"``, ``"p(target)"``, ContextCite's
    ``"logit p(target)"``, ``"log p(target) - log p(contrast ' B')"``).
    Sampling methods (Shapley value sampling, KernelSHAP, LIME, ContextCite) report
    how sure their values are, from a seeded bootstrap over the coalitions they
    sampled: ``seq_attr_stderr`` (``token_attr_stderr``) the standard error of each
    value and ``top_k_prob[k - 1]`` the probability that the k features ranked first
    by |seq_attr| come first in that order. Integrated gradients and GradientShap
    record in ``convergence`` how many points they used and how much the values still
    moved (``n_steps="auto"``, see :mod:`pyllmattr.methods.convergence`).

    ``faithfulness`` holds the :class:`pyllmattr.Faithfulness` of the result once
    ``pla.evaluate(result, model)`` measured it (the HTML view then shows it).

    Example:
        >>> result = pla.FeatureAblation(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
        >>> fig, ax = result.plot_token_attr()  # doctest: +SKIP
        >>> AttributionResult.from_json(result.to_json()).seq_attr  # doctest: +SKIP
    """

    seq_attr: np.ndarray
    token_attr: np.ndarray | None
    input_features: list[str]
    output_tokens: list[str]
    target_logprob: float
    target_token_logprobs: np.ndarray
    method: str
    attr_target: str = "log_prob"
    settings: dict[str, Any] = field(default_factory=dict)
    seq_attr_std: np.ndarray | None = None
    token_attr_std: np.ndarray | None = None
    prompt_segments: list[tuple[str, int | None]] = field(default_factory=list)
    feature_tokens: list[list[str]] = field(default_factory=list)
    target_ids: list[int] = field(default_factory=list)
    baseline_logprob: float | None = None
    noise_floor: float | None = None
    token_noise_floor: np.ndarray | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    completeness_gap: np.ndarray | None = None
    seq_completeness_gap: float | None = None
    contrast_tokens: list[str] | None = None
    contrast_ids: list[int] | None = None
    contrast_logprob: float | None = None
    contrast_token_logprobs: np.ndarray | None = None
    token_attr_of: str = "target"
    quantity: str = ""
    seq_attr_stderr: np.ndarray | None = None
    token_attr_stderr: np.ndarray | None = None
    top_k_prob: list[float] | None = None
    convergence: dict[str, Any] | None = None
    faithfulness: Any = None  # a pyllmattr.Faithfulness, set by pla.evaluate

    # Result types by class name: what ``from_dict`` rebuilds from ``"result_type"``.
    _types: ClassVar[dict[str, type[AttributionResult]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = AttributionResult._types.get(cls.__name__)
        if known is not None and _where(known) != _where(cls):
            raise TypeError(
                f"two result types are called {cls.__name__} ({_where(known)} and "
                f"{_where(cls)}); JSON names a result type by its class name: rename one"
            )
        AttributionResult._types[cls.__name__] = cls

    def __post_init__(self) -> None:
        if not self.quantity:  # built by hand, or read from a file that predates the field
            self.quantity = objectives.describe_attr_target(self.attr_target, self.contrast)

    @property
    def prompt(self) -> str:
        return "".join(text for text, _ in self.prompt_segments)

    @property
    def target(self) -> str:
        return "".join(self.output_tokens)

    @property
    def contrast(self) -> str | None:
        """The contrast's text, or None without a contrast."""
        return None if self.contrast_tokens is None else "".join(self.contrast_tokens)

    def below_noise(self) -> np.ndarray:
        """Boolean mask of features whose ``seq_attr`` is within the noise floor."""
        if not self.noise_floor:
            return np.zeros(len(self.input_features), dtype=bool)
        return np.abs(np.asarray(self.seq_attr)) <= self.noise_floor

    def top_features(self, k: int = 10) -> list[tuple[str, float]]:
        """The k features with the largest absolute attribution, largest first."""
        order = np.argsort(-np.abs(self.seq_attr), kind="stable")[:k]
        return [(self.input_features[i], float(self.seq_attr[i])) for i in order]

    def span(self, start: int, end: int) -> np.ndarray:
        """The attribution of the answer's characters ``[start, end)`` to each feature.

        Offsets index :attr:`target` (the target tokens' text joined), as ContextCite's
        ``get_attributions(start_idx, end_idx)``; the rows of ``token_attr`` of every
        target token that overlaps the span are summed (for ``attr_target="log_prob"``
        that is the span's log-probability attribution).

        Example:
            >>> where = result.target.index("1742")  # doctest: +SKIP
            >>> result.span(where, where + 4)  # doctest: +SKIP
            array([ 0.02, 3.91, -0.11])
        """
        if self.token_attr is None:
            raise ValueError(
                f"{self.method} computed no per-token attributions, so a span of the answer "
                "cannot be attributed; use seq_attr for the whole target"
            )
        n_chars = len(self.target)
        ok = all(isinstance(v, (int, np.integer)) for v in (start, end))
        if not ok or not 0 <= start < end <= n_chars:
            raise ValueError(
                f"span({start!r}, {end!r}): give character offsets with "
                f"0 <= start < end <= {n_chars} (the length of result.target)"
            )
        ends = np.cumsum([len(token) for token in self.output_tokens])
        starts = ends - [len(token) for token in self.output_tokens]
        overlap = (starts < end) & (ends > start)
        return np.asarray(self.token_attr)[overlap].sum(axis=0)

    # ------------------------------------------------------------ plots
    def plot_seq_attr(self, ax: Any = None) -> tuple[Any, Any]:
        """Bar chart of ``seq_attr`` (blue raises the target, red lowers it)."""
        return render.plot_seq_attr(self, ax)

    def plot_token_attr(self, ax: Any = None) -> tuple[Any, Any]:
        """Heatmap of ``token_attr``: target tokens x features, diverging colors centred at 0."""
        return render.plot_token_attr(self, ax)

    # ------------------------------------------------------------ notebook
    def _repr_html_(self) -> str:
        return render.to_html(self, self.faithfulness)

    def to_html(self, path: Any = None, faithfulness: Any = None) -> str:
        """A standalone HTML page of the result; written to ``path`` when given.

        ``faithfulness`` (a :class:`pyllmattr.Faithfulness`; default: the one
        ``pla.evaluate`` attached to this result, if any) adds its curves and scores.
        """
        page = render.html_page(self, faithfulness)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(page)
        return page

    # ------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON values, and ``"result_type"`` (the class name).

        Example:
            >>> result.to_dict()["result_type"]  # doctest: +SKIP
            'AttributionResult'
        """
        out: dict[str, Any] = {"result_type": type(self).__name__}
        for f in fields(self):
            value = getattr(self, f.name)
            # a nested result with its own format (faithfulness), else from the field's type
            out[f.name] = value.to_dict() if hasattr(value, "to_dict") else _encode(value)
        return out

    def to_json(self, **kwargs: Any) -> str:
        """``to_dict()`` as a JSON string (``kwargs`` go to ``json.dumps``)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributionResult:
        """The result ``to_dict`` wrote, as its own type (keys that are no field, such as
        a dataset line's ``"id"``, are ignored).

        Example:
            >>> again = pla.AttributionResult.from_dict(result.to_dict())  # doctest: +SKIP
            >>> type(again) is type(result)  # doctest: +SKIP
            True
        """
        result = _from_fields(_result_type(cls, data), data)
        if isinstance(result.faithfulness, dict):
            from .evaluation import Faithfulness

            result.faithfulness = Faithfulness.from_dict(result.faithfulness)
        return result

    @classmethod
    def from_json(cls, text: str) -> AttributionResult:
        """The result ``to_json`` wrote (see :meth:`from_dict`)."""
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        top = ", ".join(f"{name!r}: {value:+.3f}" for name, value in self.top_features(3))
        return (
            f"AttributionResult({self.method}, {len(self.input_features)} features, "
            f"target={self.target!r}, log p={self.target_logprob:.3f}, top: {top})"
        )


AttributionResult._types["AttributionResult"] = AttributionResult


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _result_type(cls: type[AttributionResult], data: dict[str, Any]) -> type[AttributionResult]:
    """The class ``data`` was written from: its ``result_type``, or, in files written
    before that key, the most derived registered subclass whose own fields are all there."""
    name = data.get("result_type")
    if name is not None:
        found = AttributionResult._types.get(name)
        if found is None:
            raise ValueError(
                f"unknown result_type {name!r}: import the module that defines it before "
                "reading the result"
            )
        if not issubclass(found, cls):
            raise ValueError(f"the data holds a {name}, not a {cls.__name__}")
        return found
    best = cls
    base_names = {f.name for f in fields(cls)}
    for candidate in AttributionResult._types.values():
        if not issubclass(candidate, cls):
            continue
        own = {f.name for f in fields(candidate)} - base_names
        if own and own <= data.keys() and issubclass(candidate, best):
            best = candidate
    return best


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields (cached per class)."""
    if cls not in _FIELD_TYPES:
        _FIELD_TYPES[cls] = typing.get_type_hints(cls)
    return _FIELD_TYPES[cls]


def _from_fields(cls: Any, data: dict[str, Any]) -> Any:
    """A dataclass built from the JSON values of its fields (missing ones take their default)."""
    hints = _field_types(cls)
    given = [f.name for f in fields(cls) if f.init and f.name in data]
    return cls(**{name: _decode(hints[name], data[name]) for name in given})


def _encode(value: Any) -> Any:
    """``value`` as JSON values: arrays and tuples as lists, numpy scalars as numbers,
    dataclasses as objects of their fields, dicts with non-string keys as [key, value]
    pairs."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: _encode(item) for key, item in value.items()}
        return [[_encode(key), _encode(item)] for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    return value


def _decode(kind: Any, value: Any) -> Any:
    """The JSON ``value`` of a field annotated ``kind``, as the field holds it."""
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        # A union of several types cannot say which one was written: keep the JSON value.
        return _decode(options[0], value) if len(options) == 1 else value
    if kind is np.ndarray:
        return np.asarray(value) if value else np.asarray(value, dtype=float)
    if kind in (float, int):
        return kind(value)
    if dataclasses.is_dataclass(kind) and isinstance(value, dict):
        return _from_fields(kind, value)
    if origin is list:
        return [_decode(args[0] if args else Any, item) for item in value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in value)
        return tuple(
            _decode(a, item) for a, item in zip(args or [Any] * len(value), value, strict=True)
        )
    if origin is dict:
        key_kind, item_kind = args or (Any, Any)
        if isinstance(value, dict):
            return {_decode(key_kind, k): _decode(item_kind, v) for k, v in value.items()}
        return {_decode(key_kind, k): _decode(item_kind, v) for k, v in value}
    return value
