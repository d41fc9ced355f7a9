"""Splitting plain text into paragraph, sentence, clause, word or character features, in any script.

- paragraphs end at a blank line;
- sentences end at ``.``, ``!`` or ``?`` (and closing quotes or brackets) before
  whitespace, as in Latin, Cyrillic, Greek or Korean text; at once after the full-width
  and other scripts' terminators (``。！？``, the Devanagari danda ``।``, ``؟``, ...); and
  at a space between two Thai words, Thai's sentence separator;
- clauses also end at ``,`` ``;`` ``:`` before whitespace and at once after ``，；：``, so
  that a long sentence of Chinese, whose clauses a comma joins (``北京是中国的首都，上海是最大的
  城市。``), or of any language can be cut below the sentence;
- words are the runs between whitespace, punctuation included (``Coast,``), except in
  scripts written without spaces (Chinese, Japanese, Thai), which BudouX cuts into words
  and phrases (:mod:`pyllmattr.inputs.scripts`, the ``languages`` extra);
- characters are user-perceived characters (a letter with its combining marks, an emoji
  sequence), whitespace left out.

Every unit is a span of the text: the units and the text between them join back to it.
"""

from __future__ import annotations

import re
import unicodedata

from . import scripts

# The feature kinds of plain text, coarse to fine.
UNITS = ("paragraph", "sentence", "clause", "word", "character")

_CLOSERS = "\"')\\]”’»›」』）】〕〉》〗〙〛］｝＂＇"
# Terminators that end a sentence without a space after them.
_FULL_STOPS = "。｡！？‼⁇⁈⁉।॥။។៕።؟۔"
_THAI_LETTER = "\u0e01-\u0e2e\u0e30-\u0e45\u0e47-\u0e5b"  # without ฯ and ๆ, which precede spaces
_SENTENCE_ENDS = (
    rf"[.!?][{_CLOSERS}]*(?=\s)",  # Latin: a terminator before whitespace
    # Full-width and other scripts' terminators (the lookaheads take whole runs), except
    # 「…。」と: a quotation that the sentence goes on to quote.
    rf"[{_FULL_STOPS}]+(?![{_FULL_STOPS}{_CLOSERS}])",
    rf"[{_FULL_STOPS}]+[{_CLOSERS}]+(?![{_CLOSERS}\u3041-\u3096])",
    rf"．+(?![．0-9０-９])[{_CLOSERS}]*",  # the full-width full stop, not a decimal point
    rf"(?<=[{_THAI_LETTER}])(?=\s+[\u0e01-\u0e5b])",  # Thai: a space between two words
)
# A clause also ends at a comma, semicolon or colon: Latin ones before whitespace (not
# "1,000" or "3:30"), full-width ones at once. The enumeration comma 、 parts list items,
# not clauses.
_CLAUSE_ENDS = (rf"[,;:،؛][{_CLOSERS}]*(?=\s)", rf"[，；：﹐﹔﹕]+[{_CLOSERS}]*")


def _ending_at(ends: tuple[str, ...]) -> re.Pattern[str]:
    """A unit: from a non-space up to the first of ``ends`` or the end of the text."""
    return re.compile(r"\S.*?(?:" + "|".join((*ends, r"\Z")) + ")", re.S)


_SENTENCE = _ending_at(_SENTENCE_ENDS)
_CLAUSE = _ending_at(_CLAUSE_ENDS + _SENTENCE_ENDS)
_PARAGRAPH = re.compile(r"\S.*?(?=\n[ \t]*\n|\Z)", re.S)
_CHUNK = re.compile(r"\S+")


def split_units(text: str, by: str, language: str | None = None) -> list[tuple[int, int]]:
    """Character spans of the paragraphs, sentences, words or characters of ``text``.

    ``language`` ("ja", "zh-hans" or "zh-hant") says how to read Chinese characters when
    splitting words; by default it is told from ``text`` (kana: Japanese).

    Example:
        >>> split_units("東京は日本の首都です。大阪は第二の都市です。", "sentence")
        [(0, 11), (11, 22)]
        >>> split_units("北京是中国的首都，上海是最大的城市。", "clause")
        [(0, 9), (9, 18)]
    """
    if by not in UNITS:
        raise ValueError(f"from_text: by must be one of {list(UNITS)}, got {by!r}")
    if by == "word":
        return _words(text, language)
    if by == "character":
        return _characters(text)
    spans: list[tuple[int, int]] = []
    pattern = {"sentence": _SENTENCE, "clause": _CLAUSE, "paragraph": _PARAGRAPH}[by]
    for match in pattern.finditer(text):
        start, end = match.span()
        if spans and spans[-1][1] == start:  # marks right after "。" belong to it
            while start < end and scripts.attaches(text[start]):
                start += 1
            spans[-1] = (spans[-1][0], start)
            while start < end and text[start].isspace():
                start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _words(text: str, language: str | None) -> list[tuple[int, int]]:
    spans = []
    told = language is not None
    for match in _CHUNK.finditer(text):
        start, end = match.span()
        if not scripts.needs_segmenter(match.group()):
            spans.append((start, end))
            continue
        if not told:  # once, from the whole text: a kanji-only phrase of Japanese is Japanese
            language, told = scripts.han_language(text), True
        cuts = [0, *scripts.cuts(match.group(), language), end - start]
        spans += [(start + a, start + b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return spans


def _characters(text: str) -> list[tuple[int, int]]:
    """Spans of user-perceived characters, close to Unicode's extended grapheme clusters:
    a base with its marks, joiners, variation selectors, conjuncts and flag pairs."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        j = i + 1
        while j < len(text) and _continues(text, i, j):
            j += 1
        spans.append((i, j))
        i = j
    return spans


def _continues(text: str, start: int, j: int) -> bool:
    """Whether ``text[j]`` belongs to the character that starts at ``start``."""
    before, char = text[j - 1], text[j]
    if char.isspace():
        return False
    # Marks, joiners and other format characters (a soft hyphen, emoji tags), variation
    # selectors and skin tones: the ones that start no unit anywhere (scripts.attaches).
    if scripts.attaches(char) or char in "\u0e33\u0eb3":
        return True
    if before == "\u200d":
        return True  # an emoji sequence
    if unicodedata.combining(before) == 9 and unicodedata.category(char) == "Lo":
        return True  # a virama joins the next consonant: a conjunct (क्ष)
    regional = [0x1F1E6 <= ord(c) <= 0x1F1FF for c in text[start : j + 1]]
    return all(regional) and len(regional) == 2  # a flag is a pair of regional indicators


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
