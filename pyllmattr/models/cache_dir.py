"""Where pyllmattr keeps what it can rebuild: converted models and self-check outcomes.

``$PYLLMATTR_CACHE_DIR`` moves the folder (``$PYLLMATTR_CACHE``, the older name, still
works when the new one is not set); otherwise it is the platform's user cache folder:

- Linux and other Unixes: ``$XDG_CACHE_HOME/pyllmattr``, else ``~/.cache/pyllmattr``;
- macOS: ``~/Library/Caches/pyllmattr``;
- Windows: ``%LOCALAPPDATA%\\pyllmattr\\Cache``.

Deleting the folder is always safe: everything in it is made again when needed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "PYLLMATTR_CACHE_DIR"
OLD_ENV_VAR = "PYLLMATTR_CACHE"


def user_cache_dir(
    env: Mapping[str, str] | None = None, platform: str | None = None, home: Path | None = None
) -> Path:
    """pyllmattr's cache folder (see the module docstring); it may not exist yet.

    ``env``, ``platform`` and ``home`` default to this process's (they are there for tests).

    Example:
        >>> user_cache_dir({"PYLLMATTR_CACHE_DIR": "/tmp/pla"})
        PosixPath('/tmp/pla')
        >>> user_cache_dir({}, "linux", Path("/home/me"))
        PosixPath('/home/me/.cache/pyllmattr')
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    for name in (ENV_VAR, OLD_ENV_VAR):
        if env.get(name):
            return Path(env[name]).expanduser()
    if platform == "darwin":
        return home / "Library" / "Caches" / "pyllmattr"
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "pyllmattr" / "Cache"
    base = env.get("XDG_CACHE_HOME") or str(home / ".cache")
    return Path(base) / "pyllmattr"
