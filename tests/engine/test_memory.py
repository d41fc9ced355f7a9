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


def growth_per_round(rounds: int, work) -> list[int]:
    """RSS growth over each of ``rounds`` runs of ``work()``, after one warm-up run.

    The allocator grows its pools in steps now and then (a new arena, a trimmed
    heap), so one round can grow without any leak; a leak grows every round.
    """
    work()  # warm-up: allocator pools, caches, lazily created buffers
    out = []
    for _ in range(rounds):
        gc.collect()
        before = rss()
        work()
        gc.collect()
        out.append(rss() - before)
    return out


def test_300_attributions_keep_rss_flat(one_thread):
    inp = pla.TextTemplateInput(
        "{name} lives in {city} and is a {job}.",
        {"name": "Dave", "city": "Palm Coast", "job": "lawyer"},
        baselines={"name": "Sarah", "city": "Seattle", "job": "doctor"},
    )
    method = pla.FeatureAblation(one_thread)

    def hundred_attributions() -> None:
        for _ in range(100):
            assert np.isfinite(method.attribute(inp, target=" golf").seq_attr).all()

    growth = growth_per_round(3, hundred_attributions)
    # Leaking one llama.cpp logits row per attribution (200 KB on this model) grows
    # each round by 20 MB, one batch by more; the allocator's steps are once-off.
    assert min(growth) < 4 * MB, f"RSS grew by {[g / MB for g in growth]} MB per 100"


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
    def every_way_twice() -> None:
        for _ in range(2):
            for how in ["close", "twice", "with", "del"]:
                load_score_free(tiny_path, how)

    growth = growth_per_round(3, every_way_twice)
    # One leaked model is about 40 MB here (25 MB of weights, a 12.6 MB logits
    # buffer): a way of freeing that leaks grows every round by 80 MB.
    assert min(growth) < 16 * MB, f"RSS grew by {[g / MB for g in growth]} MB per 8 cycles"


def test_closing_twice_and_closed_state(tiny_path):
    model = pla.load_gguf(tiny_path, n_ctx=64)
    assert not model.closed
    model.close()
    model.close()
    assert model.closed
    assert "closed" in repr(model)
