"""Checks on text before it reaches the tokenizer."""

from __future__ import annotations

import unicodedata


def check_text(text: str, what: str) -> None:
    """Raise ValueError when ``text`` cannot be encoded as UTF-8.

    Python strings may hold lone surrogates (from ``errors="surrogateescape"``
    decoding or broken JSON), which are not text and which no tokenizer accepts.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise ValueError(
            f"{what} contains U+{code:04X} at index {exc.start}, a lone surrogate that is not "
            "valid text; decode the source with errors='replace' or remove the character"
        ) from None


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters
    take two, combining marks and format characters (joiners) none.

    Example:
        >>> display_width("東京は"), display_width("Tokyo")
        (6, 5)
    """
    return sum(_char_width(c) for c in text)


def fit_width(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` columns, with "…" where it was cut."""
    if display_width(text) <= limit:
        return text
    out, used = [], 1  # the ellipsis takes one column
    for char in text:
        used += _char_width(char)
        if used > limit:
            break
        out.append(char)
    return "".join(out) + "…"


def pad_width(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` columns (what str.ljust does for ASCII)."""
    return text + " " * max(0, width - display_width(text))


def _char_width(char: str) -> int:
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
