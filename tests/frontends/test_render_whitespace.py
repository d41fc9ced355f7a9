"""The HTML view highlights text, never the whitespace around or between it."""

from __future__ import annotations

import html
import re

import numpy as np
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


@pytest.mark.browser
def test_in_a_browser_the_blank_line_between_paragraphs_stays_blank(tmp_path):
    """Chromium draws the page; the band between the paragraphs has no pixel but white."""
    import matplotlib.image
    from browser import Chromium

    segments = [
        ("The first paragraph has a sentence.", 0),
        (" And another one.", 1),
        ("\n\nThe second paragraph starts here.", 2),
        (" It ends here.", 3),
    ]
    result = pla.AttributionResult(
        seq_attr=np.array([2.0, -1.5, 0.05, 0.8]),
        token_attr=None,
        input_features=[text.strip() for text, _ in segments],
        output_tokens=[" ok"],
        target_logprob=-1.0,
        target_token_logprobs=np.array([-1.0]),
        method="FeatureAblation",
        prompt_segments=segments,
        noise_floor=0.1,  # feature 2 is within it: outlined, dashed
    )
    view = tmp_path / "view.html"
    result.to_html(view)
    with Chromium(tmp_path, 900, 400) as page:
        page.goto(view.as_uri())
        first, second = page.js(
            "[1, 2].map(f => document.querySelector(`[data-feature='${f}']`)"
            ".getBoundingClientRect()).map(r => [r.left, r.top, r.right, r.bottom])"
        )
        assert second[1] > first[3] + 10, "the paragraphs are not on separate lines"
        image = matplotlib.image.imread(page.screenshot(tmp_path / "view.png", full_page=False))
    band = image[int(first[3]) + 2 : int(second[1]) - 2, :, :3] * 255
    assert band.size and band.min() >= 250, "something is drawn on the blank line"
