"""Optional dependencies: imported when a feature needs them, or an ImportError that
names the extra installing them.

Example:
    >>> (numpy,) = require(("numpy",), "pyllmattr", "pip install numpy")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def require(names: Sequence[str], feature: str, hint: str) -> list[Any]:
    """The modules ``names``, imported; ImportError saying that ``feature`` needs them,
    which one is missing, and the install command ``hint``."""
    modules = []
    for name in names:
        try:
            # __import__, as an import statement does, so tests that hide a package
            # from builtins.__import__ hide it here too.
            modules.append(__import__(name))
        except ImportError as exc:
            them = "them" if len(names) > 1 else "it"
            raise ImportError(
                f"{feature} needs {' and '.join(names)} ({exc.name or name} is missing); "
                f"install {them} with: {hint}"
            ) from exc
    return modules
