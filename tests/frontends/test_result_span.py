"""result.span(start, end): the attribution of part of the answer, by character offsets."""

from __future__ import annotations

import numpy as np
import pytest

import pyllmattr as pla

TOKENS = [" Har", "row", "gate", " in", " 1742"]
TOKEN_ATTR = np.array([[1.0, 0.0], [2.0, 0.5], [4.0, 0.25], [8.0, 0.0], [16.0, -1.0]])


def made_up(token_attr=TOKEN_ATTR) -> pla.AttributionResult:
    return pla.AttributionResult(
        seq_attr=TOKEN_ATTR.sum(axis=0),
        token_attr=token_attr,
        input_features=["a", "b"],
        output_tokens=TOKENS,
        target_logprob=-3.0,
        target_token_logprobs=np.full(len(TOKENS), -0.6),
        method="FeatureAblation",
    )


def test_a_span_sums_the_tokens_it_overlaps():
    result = made_up()
    assert result.target == " Harrowgate in 1742"
    start = result.target.index("rowgate")
    np.testing.assert_array_equal(result.span(start, start + len("rowgate")), [6.0, 0.75])


def test_a_span_inside_one_token_is_that_token():
    result = made_up()
    start = result.target.index("742")
    np.testing.assert_array_equal(result.span(start, start + 2), [16.0, -1.0])


def test_the_whole_target_is_the_sequence_attribution(exact):
    inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast and is a")
    result = pla.FeatureAblation(exact).attribute(inp, target=" lawyer in FL", noise_floor=False)
    whole = result.span(0, len(result.target))
    np.testing.assert_allclose(whole, result.seq_attr, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("start, end", [(3, 3), (5, 2), (-1, 4), (0, 20), (0.5, 3)])
def test_an_empty_or_out_of_range_span_is_refused(start, end):
    with pytest.raises(ValueError, match="0 <= start < end <= 19"):
        made_up().span(start, end)


def test_a_result_without_token_rows_has_no_spans():
    with pytest.raises(ValueError, match="no per-token attributions"):
        made_up(token_attr=None).span(0, 4)
