"""Splitting plain text into word, sentence or paragraph features."""

from __future__ import annotations

import re

# The text units, fine to coarse: what ``from_text(by=)`` splits and, with documents
# above them, the levels of a ContextInput.
_PATTERNS = {
    "word": re.compile(r"\S+"),
    # A sentence runs to . ! ? (plus closing quotes/brackets) before whitespace, or to the end.
    "sentence": re.compile(r"\S.*?(?:[.!?][\"')\]]*(?=\s)|\Z)", re.S),
    "paragraph": re.compile(r"\S.*?(?=\n[ \t]*\n|\Z)", re.S),
}
UNITS = tuple(_PATTERNS)


def split_units(text: str, by: str) -> list[tuple[int, int]]:
    """Character spans of the words, sentences or paragraphs of ``text``."""
    if by not in _PATTERNS:
        raise ValueError(f"from_text: by must be one of {sorted(UNITS)}, got {by!r}")
    spans = []
    for match in _PATTERNS[by].finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1].isspace():
            end -= 1
        if end > match.start():
            spans.append((match.start(), end))
    return spans


def units_with_leading_space(text: str, by: str) -> tuple[str, list[str], str]:
    """Splits ``text`` into (leading text, features, trailing text), concatenating back exactly.

    Each feature after the first carries the whitespace before it, so removing a
    feature removes its space too.
    """
    spans = split_units(text, by)
    if not spans:
        raise ValueError("from_text: the text has no words to attribute")
    features = []
    for i, (start, end) in enumerate(spans):
        begin = start if i == 0 else spans[i - 1][1]
        features.append(text[begin:end])
    return text[: spans[0][0]], features, text[spans[-1][1] :]
