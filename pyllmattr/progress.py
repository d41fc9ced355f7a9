"""Progress reporting for attributions: a tqdm bar for people, a callback for apps.

``progress`` arguments of the attribution methods accept:

- ``None`` (default, "auto"): a tqdm bar on stderr when tqdm is installed and stderr
  is a terminal, or in a Jupyter notebook (the widget bar when ipywidgets is
  installed, otherwise the text bar). The bar appears only once an attribution has
  run for :data:`AUTO_DELAY_SECONDS`, so quick ones stay silent.
- ``False``: no bar.
- ``True``: a bar from the start, wherever stderr goes; ``ValueError`` when tqdm is
  missing.
- a callable ``progress(done, total)``: called after every llama.cpp decode with the
  number of tokens decoded so far and the number to decode; return ``False`` to cancel.
  The counts are of the whole job: an ``attribute_batch`` scored in several engine
  calls reports one rising count (see :class:`JobProgress`).

tqdm is optional (``pip install 'pyllmattr[cli]'`` or ``'pyllmattr[demo]'``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ProgressCallback = Callable[[int, int], "bool | None"]

# Attributions shorter than this never show the automatic bar (tqdm's `delay`): a bar
# that flashes for a second is noise, and on SmolLM2 (2 threads) 2 s is ~500 tokens.
AUTO_DELAY_SECONDS = 2.0


@contextmanager
def progress_callback(progress: Any, desc: str) -> Iterator[ProgressCallback | None]:
    """The ``progress(done, total)`` callable to hand to ``model.score`` (or None).

    Closes the bar on exit, also when scoring fails or is cancelled.

    Example:
        >>> with progress_callback(False, "FeatureAblation") as report:
        ...     report is None
        True
    """
    check_progress(progress)
    if progress is False:
        yield None
        return
    if callable(progress):
        yield progress
        return
    bar_class = _forced_bar_class() if progress is True else _auto_bar_class()
    if bar_class is None:
        yield None
        return
    delay = 0.0 if progress is True else AUTO_DELAY_SECONDS
    bar = _Bar(bar_class, desc, delay)
    try:
        yield bar.update
    finally:
        bar.close()


def check_progress(progress: Any) -> None:
    """Raise ValueError for a ``progress`` value that is not accepted (before any work)."""
    if progress is True:
        _forced_bar_class()
    elif not (progress is None or progress is False or callable(progress)):
        raise ValueError(
            "progress must be None (auto), True, False or a callable(done, total), "
            f"got {progress!r}"
        )


class JobProgress:
    """One ``(done, total)`` count over the scoring calls (chunks) of one job.

    Each call reports its own decoded-token counts; this adds the finished calls'
    tokens to ``done`` and estimates the calls still to come from their naive token
    counts, scaled by the sharing seen so far, so ``done`` only rises and ends equal to
    ``total``. With one call the counts are the engine's own.

    Example:
        >>> seen = []
        >>> job = JobProgress(lambda d, t: seen.append((d, t)), naive_tokens=[100, 100])
        >>> job.callback()(50, 50); job.call_done(50); job.callback()(20, 40)
        >>> seen
        [(50, 100), (70, 90)]
    """

    def __init__(self, report: ProgressCallback | None, naive_tokens: list[int]) -> None:
        self.report = report
        self.naive = naive_tokens
        self.calls_done = 0
        self.decoded = 0  # tokens the finished calls decoded

    def callback(self) -> ProgressCallback | None:
        """The ``progress`` to hand to the next call (None when nobody listens)."""
        if self.report is None:
            return None
        report, index, decoded = self.report, self.calls_done, self.decoded
        naive_so_far = sum(self.naive[: index + 1])
        naive_later = sum(self.naive[index + 1 :])

        def update(done: int, total: int) -> bool | None:
            expected_later = round(naive_later * (decoded + total) / max(naive_so_far, 1))
            return report(decoded + done, decoded + total + expected_later)

        return update

    def call_done(self, n_decoded: int) -> None:
        """A call finished after decoding ``n_decoded`` tokens."""
        self.calls_done += 1
        self.decoded += int(n_decoded)


class _Bar:
    """A tqdm bar over tokens decoded; the engine tells the total with its first report."""

    def __init__(self, bar_class: Any, desc: str, delay: float) -> None:
        # Created before scoring starts, so the elapsed time, rate and ETA count the first decode.
        self.bar = bar_class(
            total=None,
            desc=desc,
            unit=" tok",
            delay=delay,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=True,
        )

    def update(self, done: int, total: int) -> bool:
        if total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)
        return True

    def close(self) -> None:
        self.bar.close()


def _forced_bar_class() -> Any:
    bar_class = _tqdm_class()
    if bar_class is None:
        raise ValueError(
            "progress=True needs tqdm: pip install 'pyllmattr[cli]' (or pip install tqdm); "
            "pass progress=None to show a bar only when tqdm is installed"
        )
    return bar_class


def _auto_bar_class() -> Any:
    if not (in_notebook() or _is_terminal(sys.stderr)):
        return None
    return _tqdm_class()


def _tqdm_class() -> Any:
    """tqdm's notebook bar in a notebook with ipywidgets, else its text bar; None without tqdm.

    (tqdm.auto makes the same choice but warns when ipywidgets is missing.)
    """
    try:
        from tqdm.std import tqdm
    except ImportError:
        return None
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as notebook_tqdm
        except ImportError:
            return tqdm
        return notebook_tqdm
    return tqdm


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain IPython terminal)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old or half-imported: not a notebook we know
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
