"""Cancelling a long call: from another thread, and with Ctrl-C.

A cancelled call must stop inside llama.cpp's compute graph, not after the decode
(before the engine polled for Ctrl-C there, it was seen only after the decode). The
bounds are relative to the same decode uncancelled, measured in the same test, so a
busy machine slows both sides alike: the cancel comes a tenth of the way in, and the
call must return before half of the uncancelled time. The model runs on one thread:
under CPU oversubscription OpenMP's barriers can stretch one graph node to seconds,
which would measure the machine's scheduler rather than pyllmattr.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
from prompts import PALM_COAST

import pyllmattr as pla

N_LONG = 500  # tokens in one decode (n_batch is 512)


@pytest.fixture(scope="module")
def one_thread(smollm2_path):
    with pla.load_gguf(smollm2_path, n_ctx=1024, n_threads=1, n_batch=512) as model:
        yield model


@pytest.fixture(scope="module")
def long_prompt(one_thread):
    ids = one_thread.tokenize(" ".join([PALM_COAST] * 30))[:N_LONG]
    assert len(ids) == N_LONG
    return ids


def uncancelled_seconds(model, sequence: list[int], target: list[int]) -> float:
    """How long scoring ``sequence`` takes when nothing stops it."""
    started = time.monotonic()
    model.score([sequence], target)
    return time.monotonic() - started


def test_cancel_token_stops_a_single_long_decode_from_inside(one_thread, long_prompt):
    target = one_thread.tokenize(" golf", add_special=False)
    short = long_prompt[:40]
    before = one_thread.score([short], target)
    uncancelled = uncancelled_seconds(one_thread, long_prompt, target)
    token, when, decodes = pla.CancelToken(), [], []
    short_done = threading.Event()

    def progress(done: int, total: int) -> None:
        decodes.append(done)
        short_done.set()

    def cancel_during_the_long_decode() -> None:
        short_done.wait()
        time.sleep(min(0.05, uncancelled / 20))  # let the long decode start
        when.append(time.monotonic())
        token.cancel()

    thread = threading.Thread(target=cancel_during_the_long_decode)
    thread.start()
    with pytest.raises(pla.Cancelled):
        # Scored one at a time, in order: the short sequence, then the long one.
        one_thread.score(
            [short, long_prompt], target, share_prefix=False, cancel=token, progress=progress
        )
    returned = time.monotonic()
    thread.join()
    assert decodes == [len(short) + len(target)]  # the long decode never finished
    # Stopped inside it: well before it could have finished.
    assert returned - when[0] < uncancelled / 2, (returned - when[0], uncancelled)
    np.testing.assert_array_equal(one_thread.score([short], target), before)


def test_cancel_token_stops_an_attribution_within_the_decode_in_progress(one_thread):
    inp = pla.TextTemplateInput.from_text(" ".join([PALM_COAST] * 3))
    token, decodes, at_cancel = pla.CancelToken(), [], []
    second_decode = threading.Event()

    def progress(done: int, total: int) -> None:
        decodes.append(done)
        if len(decodes) == 2:
            second_decode.set()

    def cancel_after_the_second_decode() -> None:
        second_decode.wait()
        token.cancel()
        at_cancel.append(len(decodes))

    thread = threading.Thread(target=cancel_after_the_second_decode)
    thread.start()
    with pytest.raises(pla.Cancelled):
        pla.FeatureAblation(one_thread).attribute(
            inp, target=" golf", cancel=token, progress=progress
        )
    thread.join()
    # At most the decode that finished as the token was cancelled reports; the
    # attribution has about 20 more, none of which ran.
    assert len(decodes) - at_cancel[0] <= 1, (decodes, at_cancel)
    token.reset()  # a reset token can be used again
    short = pla.TextTemplateInput.from_text("Dave lives in Palm Coast")
    result = pla.FeatureAblation(one_thread).attribute(short, target=" golf", cancel=token)
    assert np.isfinite(result.seq_attr).all()


CTRL_C_CHILD = f"""
import json, signal, sys, time
import pyllmattr as pla
# Python's Ctrl-C handler, also when this process inherited SIGINT ignored (as
# commands run in the background of a non-interactive shell do).
signal.signal(signal.SIGINT, signal.default_int_handler)
model = pla.load_gguf(pla.default_model_path(), n_ctx=1024, n_threads=1, n_batch=512)
ids = model.tokenize(" ".join([{PALM_COAST!r}] * 30))[:{N_LONG}]
short = ids[:40]
target = model.tokenize(" golf", add_special=False)
before = model.score([short], target)
started = time.monotonic()
model.score([ids], target)
uncancelled = time.monotonic() - started
decodes = []

def progress(done, total):
    decodes.append(done)
    if len(decodes) == 1:
        print("ready", flush=True)  # the short decode is done; the long one starts

try:
    model.score([short, ids], target, share_prefix=False, progress=progress)
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
returned = time.monotonic()
print(outcome, flush=True)
after = model.score([short], target)
print(json.dumps({{
    "decodes": decodes,
    "short_decode": len(short) + len(target),
    "usable": bool((after == before).all()),
    "returned": returned,
    "uncancelled": uncancelled,
}}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_ctrl_c_interrupts_a_long_decode_from_inside_and_the_model_stays_usable():
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(0.05)  # let the long decode start
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        outcome = child.stdout.readline().strip()
        out, err = child.communicate(timeout=600)
    finally:
        child.kill()
    assert child.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert outcome == "KeyboardInterrupt", report
    assert report["decodes"] == [report["short_decode"]]  # the long one never finished
    assert report["usable"]
    # Stopped inside the long decode: well before it could have finished
    # (time.monotonic is one clock for both processes).
    assert report["returned"] - sent < report["uncancelled"] / 2, report
