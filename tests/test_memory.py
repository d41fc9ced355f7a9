"""Memory: long loops keep RSS flat; models are freed deterministically."""

from __future__ import annotations

import gc
import os
import sys

import numpy as np
import pytest

import pyllmattr as pla

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

MB = 1 << 20


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def one_thread(tiny_path):
    # One thread: on a busy machine OpenMP's barriers make tiny decodes slow.
    with pla.load_gguf(tiny_path, n_ctx=256, n_threads=1) as model:
        yield model


def test_200_attributions_keep_rss_flat(one_thread):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and is a {job}.",
        {"name": "Dave", "city": "Palm Coast", "job": "lawyer"},
        baselines={"name": "Sarah", "city": "Seattle", "job": "doctor"},
    )
    method = pla.FeatureAblation(one_thread)
    for _ in range(20):  # warm-up: allocator pools, caches, lazily created buffers
        method.attribute(inp, target=" golf")
    gc.collect()
    before = rss()
    for _ in range(200):
        result = method.attribute(inp, target=" golf")
    gc.collect()
    growth = rss() - before
    assert np.isfinite(result.seq_attr).all()
    # A leak of one llama.cpp batch or logits row per attribution would exceed this.
    assert growth < 8 * MB, f"RSS grew by {growth / MB:.1f} MB over 200 attributions"


def load_score_free(path, how: str) -> None:
    model = pla.load_gguf(path, n_ctx=512, n_threads=1)
    model.score([model.tokenize("Dave lives in Palm Coast")], " golf")
    if how == "close":
        model.close()
    elif how == "twice":
        model.close()
        model.close()
    elif how == "with":
        with model:
            pass
    del model  # "del": freed by the garbage collector alone


def test_loading_and_freeing_models_returns_their_memory(tiny_path):
    ways = ["close", "twice", "with", "del"]
    for how in ways:  # warm-up
        load_score_free(tiny_path, how)
    gc.collect()
    before = rss()
    for _ in range(5):
        for how in ways:
            load_score_free(tiny_path, how)
    gc.collect()
    growth = rss() - before
    # One leaked model is about 40 MB here (25 MB of weights, a 12.6 MB logits buffer).
    assert growth < 16 * MB, f"RSS grew by {growth / MB:.1f} MB over 20 load/free cycles"


def test_closing_twice_and_closed_state(tiny_path):
    model = pla.load_gguf(tiny_path, n_ctx=64)
    assert not model.closed
    model.close()
    model.close()
    assert model.closed
    assert "closed" in repr(model)
