"""Text that breaks naive text handling, for the input layer's fuzz and property tests,
and the contract every encoded input keeps whatever its text."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import pyllmattr as pla

ODD_PIECES = [
    "{1}",
    "{\u0663}",
    "\u0301",  # combining acute accent
    "e\u0301",
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew (right-to-left)
    "\u202e",  # right-to-left override
    "\u200d",  # zero-width joiner
    "\U0001f44d\U0001f3fd",  # emoji with a skin tone modifier
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family emoji (ZWJ sequence)
    "\x00",
    "\ud800",  # lone surrogates: not text
    "\udfff",
    "{",
    "}",
    "{}",
    "{{",
    "}}",
    "{0}",
    "{name}",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    ".",
    "! ",
    "word",
    "Palm Coast",
    "",
]
piece = st.one_of(st.sampled_from(ODD_PIECES), st.characters(), st.text(max_size=4))
odd_text = st.lists(piece, max_size=24).map("".join)
# Occasionally long: a piece repeated hundreds of times.
long_text = st.builds(
    lambda p, n: p * n, st.sampled_from(["ab ", "\u05e9 ", "{} ", "x"]), st.integers(100, 600)
)
any_text = st.one_of(odd_text, odd_text, odd_text, long_text)

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_encoding(model, inp, reference_text: str | None = None) -> None:
    """The contract every encoded input keeps, whatever its text."""
    try:
        encoding = inp.encode(model)
    except ValueError as exc:
        # The one refusal a valid input may get: a feature that changes no token.
        assert "tokenizes the same" in str(exc)
        return
    assert encoding.n_features == len(encoding.labels)
    if isinstance(inp, pla.TextTemplateInput):
        assert encoding.n_features == inp.n_features
    if reference_text is not None:
        assert encoding.reference_ids == model.tokenize(reference_text)
    assert len(encoding.feature_tokens) == encoding.n_features
    for tokens in encoding.feature_tokens:
        assert all(0 <= t < model.n_vocab for t in tokens)
    rng = np.random.default_rng(0)
    all_present = np.ones((1, encoding.n_features), dtype=bool)
    assert encoding.sequences(all_present, rng) == [encoding.reference_ids]
    for row in encoding.sequences(~np.eye(encoding.n_features, dtype=bool), rng):
        assert all(0 <= t < model.n_vocab for t in row)
