"""Recovering from llama_decode failures without taking the process down.

A KV cache too full for a batch is provoked for real: the planner is told
(through the test-only hook pyllmattr._testing.set_plan_slack) that the cache
has more cells than it has, so waves overcommit it and llama_decode really
returns 1. The fast layout then retries the batch in halves down to one token
and reports a clear error; the exact layout, whose cells are placed before the
decode, reports the full cache when a placement fails. Either way the cache is
cleared and the model stays usable. Each scenario runs in a child process:
before the engine capped its batches at llama.cpp's n_batch (which llama.cpp lowers to n_ctx), the
overcommitted batch tripped an assertion inside llama.cpp and aborted the process.
"""

from __future__ import annotations

import pytest
from isolated import run_isolated

OVERCOMMIT = """
import json
import numpy as np
from pyllmattr._bench import load_gguf_layout
from pyllmattr._testing import set_plan_slack
model = load_gguf_layout({path!r}, {layout!r}, n_ctx=64, n_threads=1, max_branches=16)
# 16 sequences of 30 tokens that share nothing: one wave of 16 leaves needs 512 cells,
# and llama.cpp gave the context {{n_ctx}} cells.
sequences = [[100 + i] + list(range(1000, 1029)) for i in range(16)]
fresh = model.score(sequences[:1], [5, 6])
set_plan_slack(model, 4096)
try:
    model.score(sequences, [5, 6])
    error = None
except RuntimeError as exc:
    error = str(exc)
set_plan_slack(model, 0)
after = model.score(sequences[:1], [5, 6])
everything = model.score(sequences, [5, 6])  # within the real cache: scored in waves
print(json.dumps({{
    "n_ctx": model.n_ctx,
    "error": error,
    "usable": bool(np.array_equal(after, fresh)),
    "all_finite": bool(np.isfinite(everything).all()),
    "first_row_equal": bool(np.array_equal(everything[:1], fresh)),
}}))
"""


@pytest.mark.parametrize(
    "layout, reported",
    [
        ("fast", "no free KV cache cells (code 1) even for a batch of 1 token"),
        ("exact", "no free KV cache cells to restore"),
        ("flash64", "no free KV cache cells (code 1) even for a batch of 64 tokens"),
    ],
)
def test_a_full_kv_cache_is_retried_reported_and_survived(tiny_path, layout, reported):
    report = run_isolated(OVERCOMMIT.format(path=str(tiny_path), layout=layout))
    assert report["n_ctx"] < 16 * 32  # the overcommitted wave cannot fit
    assert report["error"] is not None
    assert reported in report["error"]
    assert "larger n_ctx" in report["error"]
    assert report["usable"]
    assert report["all_finite"]
    if layout != "fast":  # batch-invariant: alone or among 16, the same numbers
        assert report["first_row_equal"]
