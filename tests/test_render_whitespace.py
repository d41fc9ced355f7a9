"""The HTML view highlights text, never the whitespace around or between it."""

from __future__ import annotations

import html
import re

import pytest

import pyllmattr as pla

PARAGRAPHS = (
    "Dave lives in Palm Coast. He is a lawyer.\n\n"
    "His weekends are for golf.  He reads history\nbooks at night.\n\n\n"
    "He cooks Italian food."
)
# A span with a background: the highlight of (part of) a feature.
HIGHLIGHT = re.compile(
    r'<span class="pla-feature[^"]*" data-feature="(\d+)"[^>]*style="[^"]*">(.*?)</span>'
)


@pytest.fixture(scope="module")
def result(tiny):
    inp = pla.TextTemplateInput.from_text(PARAGRAPHS, by="sentence")
    return pla.FeatureAblation(tiny).attribute(inp, target=" He", noise_floor=False)


def highlighted(page: str) -> list[tuple[int, str]]:
    return [(int(f), html.unescape(text)) for f, text in HIGHLIGHT.findall(page)]


def test_no_highlight_starts_or_ends_with_whitespace_or_holds_a_line_break(result):
    spans = highlighted(result._repr_html_())
    assert spans, "no highlighted span found"
    for _, text in spans:
        assert text == text.strip() and "\n" not in text, repr(text)


def test_every_feature_keeps_its_visible_text(result):
    """The highlighted runs of a feature are its text without the whitespace at line breaks."""
    by_feature: dict[int, list[str]] = {}
    for feature, text in highlighted(result._repr_html_()):
        by_feature.setdefault(feature, []).append(text)
    for feature, (text, _) in enumerate(s for s in result.prompt_segments if s[1] is not None):
        assert by_feature[feature] == [line.strip() for line in text.strip().split("\n")], text


def test_the_page_still_renders_the_prompt_byte_for_byte(result):
    body = result._repr_html_()
    text = html.unescape(re.sub(r"<[^>]+>", "", body.split('<div style="font-size:smaller')[0]))
    assert text == PARAGRAPHS + result.target


def test_a_whitespace_token_is_addressable_but_not_highlighted(tiny):
    inp = pla.TextTokenInput("One.\n\nTwo.", tiny)
    result = pla.FeatureAblation(tiny).attribute(inp, target=" Three", noise_floor=False)
    page = result._repr_html_()
    newline = [i for i, label in enumerate(result.input_features) if not label.strip()]
    assert newline, result.input_features
    for feature in newline:
        assert f'pla-space" data-feature="{feature}"' in page
        assert feature not in [f for f, _ in highlighted(page)]
