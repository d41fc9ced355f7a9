"""Progress reporting: a tqdm bar for people, a callable for apps, nothing when asked."""

from __future__ import annotations

import io
import sys

import pytest

import pyllmattr as pla
import pyllmattr.progress

TEXT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"
TARGET = " golf and books"


def attribute(model, progress):
    inp = pla.TextTemplateInput.from_text(TEXT)
    return pla.FeatureAblation(model).attribute(inp, target=TARGET, progress=progress)


def test_a_callable_gets_token_counts_rising_to_the_total(exact):
    calls = []
    result = attribute(exact, lambda done, total: calls.append((done, total)))
    done = [d for d, _ in calls]
    totals = {t for _, t in calls}
    assert len(calls) >= 2  # 15 prompts in waves of 8: more than one decode
    assert done == sorted(done) and done[0] > 0
    assert totals == {result.stats["n_decoded"]}
    assert done[-1] == result.stats["n_decoded"]


def test_a_callable_returning_false_cancels(exact):
    with pytest.raises(pla.Cancelled):
        attribute(exact, lambda done, total: False)


def test_true_draws_a_bar_with_token_counts(exact, capsys):
    result = attribute(exact, True)
    err = capsys.readouterr().err
    total = result.stats["n_decoded"]
    assert f"{total}/{total}" in err and "100%" in err
    assert f"FeatureAblation: {result.stats['n_evaluations']} prompts" in err
    assert " tok/s" in err


def test_false_draws_nothing(exact, capsys):
    attribute(exact, False)
    assert capsys.readouterr() == ("", "")


def test_auto_draws_nothing_when_stderr_is_not_a_terminal(exact, capsys):
    attribute(exact, None)  # pytest's captured stderr is not a terminal
    assert capsys.readouterr() == ("", "")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_draws_on_a_terminal_once_the_delay_has_passed(exact, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(pyllmattr.progress, "AUTO_DELAY_SECONDS", 0.0)
    result = attribute(exact, None)
    total = result.stats["n_decoded"]
    assert f"{total}/{total}" in terminal.getvalue()


def test_true_without_tqdm_names_the_extra_to_install(exact, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm...` fail
    monkeypatch.setitem(sys.modules, "tqdm.std", None)
    with pytest.raises(ValueError, match=r"pyllmattr\[cli\]"):
        attribute(exact, True)


def test_an_unusable_progress_value_is_refused(exact):
    with pytest.raises(ValueError, match="progress must be"):
        attribute(exact, "yes")
