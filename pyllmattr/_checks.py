"""Argument checks every layer shares: integers in a range, and the error for a wrong type.

Example:
    >>> check_int("keep", 3, least=1)
    3
    >>> int_wording(0, 65535)
    'an integer from 0 to 65535'
"""

from __future__ import annotations

from typing import Any

import numpy as np


class WrongTypeError(TypeError, ValueError):
    """An argument of the wrong type.

    A TypeError, as Python's own checks raise, and a ValueError too: pyllmattr has always
    answered bad input with ValueError, and code that catches that (the command line's
    one-line errors, the explorer's 400 answers, a dataset's skipped lines, users' own
    ``except ValueError``) keeps working.
    """


def int_wording(least: int | None = None, most: int | None = None) -> str:
    """How an error names the integers from ``least`` to ``most`` (None: unbounded)."""
    if least is not None and most is not None:
        return f"an integer from {least} to {most}"
    if least == 1:
        return "a positive integer"
    if least is not None:
        return f"an integer >= {least}"
    if most is not None:
        return f"an integer <= {most}"
    return "an integer"


def check_int(
    name: str,
    value: Any,
    least: int | None = None,
    most: int | None = None,
    *,
    none_ok: bool = False,
) -> Any:
    """``value`` as an int (None stays None with ``none_ok``).

    WrongTypeError unless it is an integer (a bool is not), ValueError outside
    ``least``..``most``; both say ``name must be <wording>, got <value>``.
    """
    if value is None and none_ok:
        return None
    wording = int_wording(least, most) + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise WrongTypeError(f"{name} must be {wording}, got {value!r}")
    if (least is not None and value < least) or (most is not None and value > most):
        raise ValueError(f"{name} must be {wording}, got {value!r}")
    return int(value)


def check_positive_int(name: str, value: Any) -> int:
    """``check_int(name, value, least=1)``: counts of samples, steps, units kept."""
    return check_int(name, value, least=1)


def naming(prefix: str, exc: ValueError) -> ValueError:
    """``exc`` again, its message after ``prefix`` (which input it was about); a
    WrongTypeError stays one."""
    kind = WrongTypeError if isinstance(exc, TypeError) else ValueError
    return kind(f"{prefix}{exc}")
