"""Cancelling a long call: from another thread, and with Ctrl-C.

Latencies are behavioural bounds (the issue asks for control back "within a
second"), measured on a single 500-token decode that takes seconds: both ways
must stop it from inside llama.cpp's compute graph (before the engine polled
for Ctrl-C there, it was seen only after the decode). The model runs on one thread here:
under CPU oversubscription, OpenMP barriers can stretch one graph node to
seconds, which would measure the machine's scheduler rather than pyllmattr.
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
from conftest import PALM_COAST

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


@pytest.fixture(scope="module")
def decode_seconds(one_thread, long_prompt):
    """How long the long decode takes when nothing stops it."""
    started = time.monotonic()
    one_thread.score([long_prompt], [5])
    return time.monotonic() - started


def cancel_later(token: pla.CancelToken, delay: float, when: list[float]) -> threading.Thread:
    def fire() -> None:
        time.sleep(delay)
        when.append(time.monotonic())
        token.cancel()

    thread = threading.Thread(target=fire)
    thread.start()
    return thread


def test_cancel_token_stops_a_single_long_decode_within_a_second(
    one_thread, long_prompt, decode_seconds
):
    target = one_thread.tokenize(" golf", add_special=False)
    before = one_thread.score([long_prompt[:40]], target)
    token, when, decodes = pla.CancelToken(), [], []
    started = time.monotonic()
    thread = cancel_later(token, 0.3, when)
    with pytest.raises(pla.Cancelled):
        one_thread.score(
            [long_prompt], target, cancel=token, progress=lambda d, t: decodes.append(d)
        )
    returned = time.monotonic()
    thread.join()
    assert decodes == []
    assert returned - when[0] < 1.0
    # It returned before the decode could have finished: stopped inside it.
    assert returned - started < decode_seconds, (returned - started, decode_seconds)
    np.testing.assert_array_equal(one_thread.score([long_prompt[:40]], target), before)


def test_cancel_token_stops_an_attribution_within_a_second(one_thread):
    inp = pla.TextTemplateInput.from_text(" ".join([PALM_COAST] * 3))
    token, when = pla.CancelToken(), []
    thread = cancel_later(token, 0.5, when)
    with pytest.raises(pla.Cancelled):
        pla.FeatureAblation(one_thread).attribute(inp, target=" golf", cancel=token)
    latency = time.monotonic() - when[0]
    thread.join()
    assert latency < 1.0
    token.reset()  # a reset token can be used again
    short = pla.TextTemplateInput.from_text("Dave lives in Palm Coast")
    result = pla.FeatureAblation(one_thread).attribute(short, target=" golf", cancel=token)
    assert np.isfinite(result.seq_attr).all()


CTRL_C_CHILD = f"""
import json, sys, time
import pyllmattr as pla
model = pla.load_gguf(pla.default_model_path(), n_ctx=1024, n_threads=1, n_batch=512)
ids = model.tokenize(" ".join([{PALM_COAST!r}] * 30))[:{N_LONG}]
target = model.tokenize(" golf", add_special=False)
before = model.score([ids[:40]], target)
started = time.monotonic()
model.score([ids], target)
decode_seconds = time.monotonic() - started
decodes = []
print("ready", flush=True)
started = time.monotonic()
try:
    model.score([ids], target, progress=lambda d, t: decodes.append(d))
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
print(outcome, flush=True)
returned_before_decode_end = time.monotonic() - started < decode_seconds
after = model.score([ids[:40]], target)
print(json.dumps({{
    "decodes": len(decodes),
    "usable": bool((after == before).all()),
    "stopped_inside_the_decode": returned_before_decode_end,
}}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_ctrl_c_interrupts_a_long_decode_within_a_second_and_the_model_stays_usable():
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(0.3)  # inside the 500-token decode
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        outcome = child.stdout.readline().strip()
        latency = time.monotonic() - sent
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert outcome == "KeyboardInterrupt"
    assert latency < 1.0
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"decodes": 0, "usable": True, "stopped_inside_the_decode": True}
