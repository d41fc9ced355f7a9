"""Threads: the GIL is free while llama.cpp computes, and one model used from two
threads gives exactly what using it from one thread gives."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from prompts import PALM_COAST
from thread_watch import PythonThreadWatch

import pyllmattr as pla

TEMPLATE = "{name} lives in {city}, {state} and is a {job}. His interests include"
VALUES = {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer"}
BASELINES = {"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor"}


def jobs():
    """Two different attributions: (method, input, options)."""
    return [
        (pla.FeatureAblation, pla.TextTemplateInput(TEMPLATE, VALUES, BASELINES), {}),
        (
            pla.ShapleyValueSampling,
            pla.TextTemplateInput.from_text(PALM_COAST),
            {"seed": 3, "n_samples": 2},
        ),
    ]


def run(model, job):
    method, inp, options = job
    return method(model).attribute(inp, target=" golf and books", **options)


def test_two_threads_attributing_on_one_model_get_their_one_thread_results(exact):
    expected = [run(exact, job) for job in jobs()]
    start = threading.Barrier(2)

    def worker(index: int):
        start.wait()  # both attributions start together
        return [run(exact, jobs()[index]) for _ in range(3)]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(worker, [0, 1]))
    for want, got in zip(expected, results, strict=True):
        for result in got:
            np.testing.assert_array_equal(result.seq_attr, want.seq_attr)
            np.testing.assert_array_equal(result.token_attr, want.token_attr)
            assert result.target_logprob == want.target_logprob


def test_score_calls_from_two_threads_never_mix_their_kv_cache(exact):
    a = [exact.tokenize(PALM_COAST)[: n + 5] for n in range(20)]
    fox = exact.tokenize("The quick brown fox jumps over the lazy dog " * 3)
    b = [fox[: n + 3] for n in range(25)]
    target = exact.tokenize(" golf", add_special=False)
    expected = [exact.score(a, target), exact.score(b, target)]
    start = threading.Barrier(2)

    def worker(sequences):
        start.wait()
        return [exact.score(sequences, target) for _ in range(5)]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(worker, [a, b]))
    for want, got in zip(expected, results, strict=True):
        for scores in got:
            np.testing.assert_array_equal(scores, want)


@pytest.fixture(scope="module")
def one_thread(tiny_path):
    # One compute thread: on a busy machine OpenMP's barriers stretch multi-threaded
    # decodes many times over, which would measure the machine, not pyllmattr.
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=1) as model:
        yield model


def test_a_python_thread_runs_while_a_long_attribution_decodes(one_thread):
    inp = pla.TextTemplateInput.from_text(" ".join([PALM_COAST] * 3))
    target = " golf and reading history books on weekends"

    def attribute() -> pla.AttributionResult:
        return pla.FeatureAblation(one_thread).attribute(inp, target=target, progress=False)

    started = time.monotonic()
    attribute()
    alone = time.monotonic() - started
    with PythonThreadWatch() as watch:
        start = time.monotonic()
        result = attribute()
        end = time.monotonic()
    assert np.isfinite(result.seq_attr).all()
    # Most of the attribution is one engine call (about 90 % on this input): had it
    # held the GIL, the thread would have been kept out for most of the call. It got
    # in at least once in every half of it.
    assert watch.longest_pause(start, end) < (end - start) / 2
    # Sharing the GIL with a busy thread does not stall the call (a bound for hangs
    # and starvation, not a speed measurement).
    assert end - start < 10 * alone + 5


def test_close_waits_for_a_call_running_on_another_thread(tiny_path, tiny):
    model = pla.load_gguf(tiny_path, n_ctx=512, n_threads=2)
    ids = model.tokenize(PALM_COAST)
    sequences = [ids[:-i] for i in range(1, 30)]
    expected = tiny.score(sequences, " golf", share_prefix=False)
    running = threading.Event()
    results = []

    def slow_progress(done: int, total: int) -> None:
        running.set()
        threading.Event().wait(0.01)  # keep the call going while close() is called

    def work() -> None:
        results.append(model.score(sequences, " golf", share_prefix=False, progress=slow_progress))

    worker = threading.Thread(target=work)
    worker.start()
    running.wait()
    model.close()  # blocks until the score call has finished
    worker.join()
    assert model.closed
    np.testing.assert_array_equal(results[0], expected)


# Reads the engine's self-check state from one thread while another thread's score call
# waits in its progress callback (holding the engine, wanting the GIL back). A read that
# kept the GIL while waiting for the engine deadlocked both threads; in a subprocess, a
# deadlock fails the test instead of hanging the suite.
READ_WHILE_SCORING = """
import sys, threading
import pyllmattr as pla

model = pla.load_gguf(sys.argv[1], n_ctx=512, n_threads=1)
ids = model.tokenize("The quick brown fox jumps over the lazy dog")
in_callback, reading, release = threading.Event(), threading.Event(), threading.Event()

def progress(done, total):
    in_callback.set()
    release.wait()  # the score call holds the engine until the reader has started

scorer = threading.Thread(target=lambda: model.score([ids], " fox", progress=progress))
scorer.start()
in_callback.wait()

def read():
    reading.set()
    model._engine.exact_outcome  # waits for the engine: must not hold the GIL meanwhile

reader = threading.Thread(target=read)
reader.start()
reading.wait()
release.set()
scorer.join()
reader.join()
print("done")
"""


def test_reading_the_self_check_state_while_another_thread_scores_does_not_deadlock(
    tiny_path, tmp_path
):
    run = subprocess.run(
        [sys.executable, "-c", READ_WHILE_SCORING, str(tiny_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
