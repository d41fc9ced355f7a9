"""Loads the compiled engine (``pyllmattr._core``) with an actionable error."""

from __future__ import annotations

import contextlib
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


def _share_llama_cpp_library() -> None:
    # llama-cpp-python's wheel ships libllama.so and libllama.so.0 as two files.
    # Loading its library first (ctypes, RTLD_GLOBAL) lets the dynamic loader
    # resolve _core's libllama.so.0 to that same object by soname, so the process
    # holds one libllama: one backend registry, and models can be shared.
    # Without llama_cpp importable, _core loads its own copy through its RPATH.
    with contextlib.suppress(Exception):
        import llama_cpp.llama_cpp  # noqa: F401


_add_windows_dll_directory()
_share_llama_cpp_library()

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
