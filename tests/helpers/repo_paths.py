"""Where the repository's parts are, for tests that read them (examples, bench, pyproject)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # tests/helpers/ -> the repository
EXAMPLES = ROOT / "examples"
BENCH = ROOT / "bench"
PYPROJECT = ROOT / "pyproject.toml"
