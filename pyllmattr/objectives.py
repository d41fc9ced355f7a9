"""What an attribution attributes: objectives turn target log-probabilities into outputs.

An objective knows which continuations to score after every prompt (the target, and
for a contrast also the contrast) and turns their per-token log-probabilities into the
outputs the methods attribute: columns ``[whole target, token 1, ..., token T]``. The
same code runs on numpy arrays (perturbation methods) and on differentiable torch
tensors (gradient methods), so every method attributes exactly the same quantity.

``attr_target="log_prob"`` and ``"prob"`` (the methods' strings) are :class:`LogProb`
and :class:`Prob`; ``contrast=" B"`` is :class:`Contrast`. A method also accepts an
objective object as ``attr_target``.

Example:
    >>> import numpy as np
    >>> from pyllmattr.objectives import LogProb
    >>> LogProb().outputs([np.log([[0.5, 0.5]])]).round(3).tolist()
    [[-1.386, -0.693, -0.693]]
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

ATTR_TARGETS = ("log_prob", "prob")


class Objective(ABC):
    """The attributed quantity f, computed from the log-probs of the continuations it scores.

    Subclasses define ``attr_target`` (what ``result.attr_target`` says), ``columns``
    and, when they score more than the target, ``targets``.

    Example:
        >>> Prob().attr_target
        'prob'
    """

    attr_target: ClassVar[str] = "log_prob"

    def bind(self, model: Any) -> Objective:
        """This objective with its texts tokenized by ``model`` (a ValueError if unusable)."""
        return self

    def targets(self, target_ids: list[int]) -> list[list[int]]:
        """The continuations scored after every prompt, the target first."""
        return [list(target_ids)]

    @abstractmethod
    def columns(self, scored: Sequence[Any], exp: Callable[[Any], Any]) -> list[Any]:
        """f's columns [whole target, token 1..T], each of shape (n,).

        ``scored[k]`` holds the log-probs (n, len(targets()[k])) of continuation k;
        ``exp`` is numpy's or torch's exponential (the same code serves both).
        """

    def whole_is_token_sum(self, target_ids: list[int]) -> bool:
        """True when the whole-target output is the sum of the per-token outputs (then
        gradient methods need no backward of their own for it)."""
        return False

    def token_attr_of(self, target_ids: list[int]) -> str:
        """What ``token_attr`` rows attribute: "target" (the target's own tokens) or
        "difference" (per-token differences target - contrast)."""
        return "target"

    def describe(self) -> str:
        """The attributed quantity as plots and tables label it (``result.quantity``)."""
        return f"{self.attr_target}(target)"

    def outputs(self, scored: Sequence[np.ndarray]) -> np.ndarray:
        """Outputs (n, 1 + T) of numpy log-probs, one array per continuation of ``targets``."""
        return np.column_stack(self.columns([np.asarray(s) for s in scored], np.exp))


def _logprob_columns(logprobs: Any) -> list[Any]:
    return [logprobs.sum(axis=1), *(logprobs[:, t] for t in range(logprobs.shape[1]))]


@dataclass(frozen=True)
class LogProb(Objective):
    """The target's log-probability: whole (the sum) and per token. The default.

    Example:
        >>> pla.FeatureAblation(model).attribute(inp, attr_target=LogProb())  # doctest: +SKIP
    """

    attr_target: ClassVar[str] = "log_prob"

    def columns(self, scored: Sequence[Any], exp: Callable[[Any], Any]) -> list[Any]:
        return _logprob_columns(scored[0])

    def whole_is_token_sum(self, target_ids: list[int]) -> bool:
        return True

    def describe(self) -> str:
        return "log p(target)"


@dataclass(frozen=True)
class Prob(Objective):
    """The target's probability (whole target) and each token's probability.

    Example:
        >>> pla.FeatureAblation(model).attribute(inp, attr_target=Prob())  # doctest: +SKIP
    """

    attr_target: ClassVar[str] = "prob"

    def columns(self, scored: Sequence[Any], exp: Callable[[Any], Any]) -> list[Any]:
        return [exp(column) for column in _logprob_columns(scored[0])]

    def describe(self) -> str:
        return "p(target)"


@dataclass(frozen=True)
class Contrast(Objective):
    """log p(target) - log p(contrast): why the model prefers the target to the contrast.

    ``contrast`` is a text (tokenized without special tokens) or token ids. The whole
    output is the difference of the two sequences' log-probs; the per-token outputs are
    the token-by-token differences when both have the same number of tokens, otherwise
    the target's own token log-probs (``result.token_attr_of`` says which).

    Example:
        >>> result = pla.FeatureAblation(model).attribute(
        ...     inp, target=" Paris", attr_target=Contrast(" Lyon"))  # doctest: +SKIP
        >>> result.contrast_logprob  # doctest: +SKIP
    """

    contrast: Any
    contrast_ids: tuple[int, ...] = ()
    text: str = ""  # the contrast's tokens as the result shows them (set by bind)

    def bind(self, model: Any) -> Contrast:
        ids = contrast_token_ids(model, self.contrast)
        return Contrast(self.contrast, tuple(ids), "".join(map(model.token_to_str, ids)))

    def targets(self, target_ids: list[int]) -> list[list[int]]:
        if not self.contrast_ids:
            raise ValueError("Contrast: bind it to a model first (objective.bind(model))")
        return [list(target_ids), list(self.contrast_ids)]

    def columns(self, scored: Sequence[Any], exp: Callable[[Any], Any]) -> list[Any]:
        target, contrast = scored[0], scored[1]
        whole = target.sum(axis=1) - contrast.sum(axis=1)
        if target.shape[1] == contrast.shape[1]:
            return [whole, *(target[:, t] - contrast[:, t] for t in range(target.shape[1]))]
        return [whole, *(target[:, t] for t in range(target.shape[1]))]

    def whole_is_token_sum(self, target_ids: list[int]) -> bool:
        return len(target_ids) == len(self.contrast_ids)

    def token_attr_of(self, target_ids: list[int]) -> str:
        return "difference" if self.whole_is_token_sum(target_ids) else "target"

    def describe(self) -> str:
        text = self.text or self.contrast
        return f"log p(target) - log p(contrast {text!r})"


def contrast_token_ids(model: Any, contrast: Any) -> list[int]:
    """The contrast's token ids: a text tokenized without special tokens, or ids."""
    from .models.interface import token_list

    if isinstance(contrast, str):
        ids = model.tokenize(contrast, add_special=False)
        if not ids:
            raise ValueError(
                f"the contrast {contrast!r} tokenizes to nothing; give a non-empty contrast"
            )
        return ids
    ids = token_list(contrast, model.n_vocab, "contrast")
    if not ids:
        raise ValueError("the contrast is empty; give at least one contrast token")
    return ids


def describe_attr_target(attr_target: str, contrast: str | None = None) -> str:
    """The label of an objective known only by its ``attr_target`` (and contrast text):
    results built by hand, or saved before they stored ``quantity``.

    Example:
        >>> describe_attr_target("prob")
        'p(target)'
    """
    if contrast is not None:
        return Contrast(contrast, (), contrast).describe()
    pending: list[type[Any]] = [Objective]  # Any: the abstract ones are never instantiated
    while pending:  # every objective class defined so far, ContextCite's included
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__dict__.get("attr_target") == attr_target and not inspect.isabstract(cls):
            return cls().describe()
    return f"{attr_target}(target)"


def objective_for(attr_target: Any, contrast: Any, model: Any) -> Objective:
    """The objective of ``attribute(attr_target=..., contrast=...)``, bound to ``model``."""
    if isinstance(attr_target, Objective):
        objective = attr_target
    elif attr_target == "log_prob":
        objective = LogProb()
    elif attr_target == "prob":
        objective = Prob()
    else:
        raise ValueError(
            f"attr_target must be one of {ATTR_TARGETS} or a pyllmattr.objectives.Objective, "
            f"got {attr_target!r}"
        )
    if contrast is not None:
        if isinstance(objective, Prob):
            raise ValueError(
                "a contrast attributes log p(target) - log p(contrast), a difference of "
                "log-probs: use attr_target='log_prob' (the default) with contrast="
            )
        if isinstance(objective, Contrast):
            raise ValueError("give the contrast once: contrast= or attr_target=Contrast(...)")
        objective = Contrast(contrast)
    return objective.bind(model)
