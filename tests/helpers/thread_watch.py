"""Watching whether a Python thread gets to run while a native call works."""

from __future__ import annotations

import threading
import time


class PythonThreadWatch:
    """A Python thread that notes the time whenever it gets to run (at most once a
    millisecond), to tell whether a call let it run: a call that held the GIL would
    keep it from running for the call's whole duration.

    Example:
        >>> with PythonThreadWatch() as watch:  # doctest: +SKIP
        ...     start = time.monotonic(); model.score(sequences, target); end = time.monotonic()
        >>> watch.longest_pause(start, end) < (end - start) / 2  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = 0.0
        while not self._done.is_set():
            now = time.monotonic()
            if now - last >= 1e-3:
                self.times.append(now)
                last = now

    def __enter__(self) -> PythonThreadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def longest_pause(self, start: float, end: float) -> float:
        """The longest stretch of [start, end] in which the thread did not run."""
        marks = [start, *(t for t in self.times if start < t < end), end]
        return max(b - a for a, b in zip(marks, marks[1:], strict=False))
