"""Token features: every token of the prompt is a feature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import WrongTypeError
from .._text import check_text
from .base import Encoding, InterpretableInput


class TextTokenInput(InterpretableInput):
    """Every token of ``text`` is a feature, replaced by a baseline token when absent.

    ``baselines`` is a token id or a string that tokenizes to one token (Captum's
    default is token 0); ``None`` deletes absent tokens instead. ``skip_tokens``
    (ids or strings) stay in the prompt but are not features; by default the
    model's BOS/EOS tokens are skipped.

    Example:
        >>> inp = pla.TextTokenInput("Dave lives in Palm Coast", model)  # doctest: +SKIP
        >>> pla.FeatureAblation(model).attribute(inp, target=" FL")  # doctest: +SKIP
    """

    def __init__(
        self,
        text: str,
        model: Any,
        baselines: int | str | None = 0,
        skip_tokens: Sequence[int | str] | None = None,
    ) -> None:
        if not isinstance(text, str):
            raise WrongTypeError("TextTokenInput: text must be a non-empty string")
        if not text:
            raise ValueError("TextTokenInput: text must be a non-empty string")
        check_text(text, "TextTokenInput: the text")
        self.text = text
        self.model = model
        self.baseline_id = None if baselines is None else _single_token(model, baselines)
        self.skip_ids = _skip_ids(model, skip_tokens)

    def encode(self, model: Any, add_special: bool = True) -> Encoding:
        if model is not self.model and model.n_vocab != self.model.n_vocab:
            raise ValueError(
                "TextTokenInput was tokenized with a different model; build it with this model"
            )
        ids = self.model.tokenize(self.text, add_special=add_special)
        positions = [i for i, t in enumerate(ids) if t not in self.skip_ids]
        if not positions:
            raise ValueError(f"TextTokenInput: {self.text!r} has no tokens left to attribute")
        pieces = [self.model.token_to_str(t, render_special=False) for t in ids]
        feature_of = {p: f for f, p in enumerate(positions)}
        baseline = self.baseline_id

        def render(mask: np.ndarray, rng: np.random.Generator) -> list[int]:
            out = []
            for i, token in enumerate(ids):
                f = feature_of.get(i)
                if f is None or mask[f]:
                    out.append(token)
                elif baseline is not None:
                    out.append(baseline)
            return out

        return Encoding(
            labels=[pieces[p] for p in positions],
            reference_ids=ids,
            segments=[(piece, feature_of.get(i)) for i, piece in enumerate(pieces)],
            feature_tokens=[[ids[p]] for p in positions],
            render=render,
            feature_positions=[[p] for p in positions],
        )


def _single_token(model: Any, baseline: int | str) -> int:
    if isinstance(baseline, (int, np.integer)):
        if not 0 <= baseline < model.n_vocab:
            raise ValueError(f"baseline token id {baseline} is outside the vocabulary")
        return int(baseline)
    if isinstance(baseline, str):
        ids = model.tokenize(baseline, add_special=False, parse_special=True)
        if len(ids) != 1:
            raise ValueError(
                f"baseline {baseline!r} is {len(ids)} tokens, not one; pass a token id or a "
                "single-token string (or None to delete absent tokens)"
            )
        return ids[0]
    raise WrongTypeError(f"baselines must be a token id, a string or None, got {baseline!r}")


def _skip_ids(model: Any, skip_tokens: Sequence[int | str] | None) -> set[int]:
    if skip_tokens is None:
        return {t for t in (model.bos_token_id, model.eos_token_id) if t is not None}
    return {_single_token(model, t) for t in skip_tokens}
