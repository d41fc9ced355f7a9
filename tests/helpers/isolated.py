"""Runs a snippet in a fresh interpreter, so a native crash fails one test
instead of killing the whole pytest process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

TESTS = Path(__file__).parent


def run_isolated(code: str, *, timeout: float = 300) -> Any:
    """Runs ``code`` with ``python -c`` and returns the JSON it prints on its last line.

    The child runs outside the repository (so the installed package is imported)
    and can import the tests' helpers (``tiny_gguf``).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    assert proc.returncode == 0, (
        f"the child process died with code {proc.returncode} (negative: killed by that signal)"
        f"\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])
