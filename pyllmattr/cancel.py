"""Cancelling long computations from another thread or a UI."""

from __future__ import annotations

from typing import Any

from ._native import _core

Cancelled = _core.Cancelled
Cancelled.__doc__ = "Raised when an attribution or scoring call is cancelled."
Cancelled.__module__ = "pyllmattr"


class CancelToken:
    """A flag that stops a running ``score``/``generate``/``attribute`` call.

    Pass it to the call, then call :meth:`cancel` from any thread (a UI's stop
    button); the call raises :class:`pyllmattr.Cancelled` within one decode
    and the model stays usable.

    Example:
        >>> import pyllmattr as pla
        >>> token = pla.CancelToken()
        >>> token.cancel(); token.cancelled
        True
    """

    def __init__(self) -> None:
        self._flag = _core.CancelFlag()

    def cancel(self) -> None:
        """Ask the call holding this token to stop (from any thread)."""
        self._flag.set()

    def reset(self) -> None:
        """Clear the request, so that the token can be passed to another call."""
        self._flag.clear()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (and not reset since)."""
        return bool(self._flag.is_set())

    @property
    def flag(self) -> Any:
        """The engine's flag behind this token (``_core.CancelFlag``), which native calls
        poll while they run; change it through :meth:`cancel` and :meth:`reset`."""
        return self._flag
