"""Words in scripts written without spaces (Chinese, Japanese, Thai), by BudouX.

Whitespace separates the words of Latin, Cyrillic, Greek, Hangul, Devanagari, Arabic
and most other scripts, and :mod:`pyllmattr.inputs.split` splits those on it. Chinese,
Japanese and Thai put no spaces between words, so a whitespace-delimited run there is a
clause or a whole paragraph. Such runs are cut by BudouX (``pip install
'pyllmattr[languages]'``): a small pure-Python model per language that returns the
phrases a reader would not break across lines. In Japanese they are bunsetsu, a word
with its particles (``東京は``, ``首都です。``), the unit Korean writes between spaces; in
Chinese and Thai they are words. Punctuation stays with the word before it (with the one
after it for opening brackets), as it does in space-separated text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

EXTRA_HINT = (
    "pip install 'pyllmattr[languages]' (BudouX, a small pure-Python segmenter), "
    "or split by 'sentence' or 'character', which need nothing"
)

# Code point ranges of the scripts written without spaces that BudouX has models for.
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3031, 0x3035),  # kana repeat marks
    (0x303B, 0x303C),  # 〻 〼
    (0x3041, 0x30FF),  # hiragana, katakana (with ー)
    (0x3100, 0x312F),  # bopomofo
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x20000, 0x3134F),  # CJK extensions B to G, compatibility supplement
)
_KANA_RANGES = ((0x3041, 0x3096), (0x30A1, 0x30FA), (0x31F0, 0x31FF), (0xFF66, 0xFF9D))
_THAI_RANGE = (0x0E01, 0x0E5B)


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in ranges)


def family(char: str) -> str | None:
    """``"cjk"`` or ``"thai"`` for a letter of a script written without spaces, else None."""
    if _in(_CJK_RANGES, char):
        return "cjk"
    if _THAI_RANGE[0] <= ord(char) <= _THAI_RANGE[1]:
        return "thai"
    return None


_UNSPACED = re.compile(
    "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in (*_CJK_RANGES, _THAI_RANGE)) + "]"
)


def needs_segmenter(text: str) -> bool:
    """Whether ``text`` holds letters of a script written without spaces."""
    return _UNSPACED.search(text) is not None


def han_language(text: str) -> str | None:
    """Which BudouX model reads the Chinese characters of ``text``: Japanese when it has
    kana, else simplified or traditional Chinese by which model knows more of its
    characters; None when it has none (nothing to choose)."""
    if any(_in(_KANA_RANGES, c) for c in text):
        return "ja"
    han = [c for c in text if family(c) == "cjk"]
    if not han:
        return None
    simplified, traditional = _variant_characters()
    votes = sum(c in traditional for c in han) - sum(c in simplified for c in han)
    return "zh-hant" if votes > 0 else "zh-hans"


def cuts(chunk: str, language: str | None) -> list[int]:
    """Offsets inside ``chunk`` (a run without whitespace) where a word ends.

    Example:
        >>> cuts("東京は日本の首都です。", "ja")  # doctest: +SKIP
        [3, 6]
    """
    language = language or han_language(chunk)
    found = set()
    for start, end, fam in _runs(chunk):
        parser = _parser("th" if fam == "thai" else language or "zh-hans")
        at = start
        for piece in parser.parse(chunk[start:end])[:-1]:
            at += len(piece)
            found.add(at)
        found.add(end)
    forced = {i for i in range(1, len(chunk)) if _must_cut(chunk[i - 1], chunk[i])}
    return sorted(i for i in found | forced if 0 < i < len(chunk) and _may_cut(chunk, i))


def _runs(chunk: str) -> list[tuple[int, int, str]]:
    """The chunk cut where it changes between Chinese/Japanese and Thai; the other
    characters (Latin, digits, punctuation) go with the letters before them."""
    families = [family(c) for c in chunk]
    current = next(f for f in families if f)
    runs, start = [], 0
    for i, fam in enumerate(families):
        if fam and fam != current:
            runs.append((start, i, current))
            start, current = i, fam
    runs.append((start, len(chunk), current))
    return runs


def _may_cut(chunk: str, i: int) -> bool:
    before, after = chunk[i - 1], chunk[i]
    if _joins(before, after):
        return False
    if _plain_word(before) and _plain_word(after):
        return False  # a Latin word or a number inside Chinese stays whole: "CEO", "2023"
    if unicodedata.category(after) in ("Pe", "Pf", "Po"):
        return False  # closing and trailing punctuation stay with the word before
    return unicodedata.category(before) not in ("Ps", "Pi")  # opening ones with the next


def _must_cut(before: str, after: str) -> bool:
    """After a comma or full stop, a new word starts (BudouX may keep a clause whole)."""
    return unicodedata.category(before) in ("Pe", "Pf", "Po") and (
        family(after) is not None or unicodedata.category(after) in ("Ps", "Pi")
    )


def _plain_word(char: str) -> bool:
    return family(char) is None and unicodedata.category(char)[0] in "LNM"


def attaches(char: str) -> bool:
    """Whether ``char`` belongs to the character before it and so starts no unit: a
    combining mark, a joiner or other format character, a variation selector, a skin tone."""
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me", "Cf")
        or 0xFE00 <= ord(char) <= 0xFE0F
        or 0x1F3FB <= ord(char) <= 0x1F3FF
    )


def _joins(before: str, after: str) -> bool:
    """Characters never parted: a base and its marks, joiners, variation selectors."""
    return attaches(after) or before == "\u200d"


@functools.cache
def _parser(language: str) -> Any:
    budoux = _budoux()
    load = {
        "ja": budoux.load_default_japanese_parser,
        "zh-hans": budoux.load_default_simplified_chinese_parser,
        "zh-hant": budoux.load_default_traditional_chinese_parser,
        "th": budoux.load_default_thai_parser,
    }[language]
    return load()


@functools.lru_cache(maxsize=1)
def _variant_characters() -> tuple[frozenset[str], frozenset[str]]:
    """Chinese characters only the simplified model knows, and only the traditional one."""

    def known(language: str) -> set[str]:
        model = _parser(language).model
        return {c for group in model.values() for key in group for c in key if family(c)}

    simplified, traditional = known("zh-hans"), known("zh-hant")
    return frozenset(simplified - traditional), frozenset(traditional - simplified)


def _budoux() -> Any:
    try:
        import budoux
    except ImportError as exc:
        raise ImportError(
            "splitting Chinese, Japanese or Thai text into words needs BudouX: " + EXTRA_HINT
        ) from exc
    return budoux
