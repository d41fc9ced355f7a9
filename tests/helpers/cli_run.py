"""The command line run as users run it: the installed console script in a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def console_script() -> str:
    """The pyllmattr script installed with this interpreter (its venv may not be on PATH)."""
    beside = Path(sys.executable).parent / "pyllmattr"
    exe = str(beside) if beside.is_file() else shutil.which("pyllmattr")
    assert exe, "the pyllmattr console script is not installed"
    return exe


def run(
    *args: str, cwd=None, stdin: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    exe = console_script()
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=600, cwd=cwd, input=stdin, env=env
    )
