"""Warnings that point at the user's line, however deep inside pyllmattr they are raised."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from types import FrameType

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_collectors = threading.local()  # per thread: the list collecting warnings, or None


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside the pyllmattr package.

    A fixed ``stacklevel`` breaks whenever the call chain changes (a new wrapper, a
    batch entry point); walking the frames does not. (Python 3.12's
    ``skip_file_prefixes`` does the same; this also runs on 3.10.)

    Example:
        >>> warn("n_samples is small")  # doctest: +SKIP
    """
    messages = getattr(_collectors, "messages", None)
    if messages is not None and message not in messages:
        messages.append(message)
    frame: FrameType | None = sys._getframe(1)
    level = 2  # stacklevel 2: the caller of warn()
    while frame is not None and _inside_package(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _inside_package(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR)


@contextlib.contextmanager
def collected() -> Iterator[list[str]]:
    """Also collect, in a list, what pyllmattr warns of in this thread (each message
    once), for a front end that shows them beside a result; they are still warned.
    Per thread, unlike ``warnings.catch_warnings``: the explorer runs attributions in
    several threads at once.

    Example:
        >>> with collected() as messages:
        ...     warn("n_samples is small")  # doctest: +SKIP
        >>> messages  # doctest: +SKIP
        ['n_samples is small']
    """
    previous = getattr(_collectors, "messages", None)
    messages: list[str] = []
    _collectors.messages = messages
    try:
        yield messages
    finally:
        _collectors.messages = previous
