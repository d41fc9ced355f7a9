"""Runs every compile command of a CMake build's compile_commands.json with -M instead of
producing an object file: a dependency listing that fails when an #include is missing.

Usage: python bench/gpu/preprocess_all.py BUILD/compile_commands.json
(used by bench/gpu/check_trimmed.sh with CHECK_INCLUDES=1)
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path


def dependency_command(command: str) -> list[str]:
    """The compile command with ``-o OUT`` and ``-c`` dropped and ``-M`` before the source."""
    args = shlex.split(command)
    kept: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg == "-o":
            skip_next = True
        elif arg != "-c":
            kept.append(arg)
    return [*kept[:-1], "-M", kept[-1]]


def main(path: str) -> int:
    entries = json.loads(Path(path).read_text())
    failed = []
    for entry in entries:
        run = subprocess.run(
            dependency_command(entry["command"]),
            cwd=entry["directory"],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            failed.append((entry["file"], run.stderr.strip().splitlines()[-3:]))
    print(f"preprocess_all: {len(entries)} source files, {len(failed)} with a missing include")
    for name, lines in failed:
        print(f"  {name}", *lines, sep="\n    ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
