"""Loads the compiled engine (``pyllmattr._core``) with an actionable error."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _add_windows_dll_directory() -> None:
    # Windows has no RPATH: make llama-cpp-python's DLLs findable for _core.
    if sys.platform != "win32":
        return
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec and spec.origin:
        lib = Path(spec.origin).parent / "lib"
        if lib.is_dir():
            os.add_dll_directory(str(lib))


_add_windows_dll_directory()

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise ImportError(
        "pyllmattr's compiled engine (pyllmattr._core) could not be imported. Install the "
        "package with pip (`pip install .`) rather than running it from the source folder, and "
        "keep llama-cpp-python at the pinned version it was built against "
        f"(original error: {exc})"
    ) from exc

__all__ = ["_core"]
