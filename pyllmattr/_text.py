"""Checks on text before it reaches the tokenizer."""

from __future__ import annotations


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
