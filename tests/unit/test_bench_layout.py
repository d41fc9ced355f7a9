"""The benchmarks run through one entry (``python bench NAME``): every entry parses
--help, every module says on its first line what it is for, and no script in bench/,
examples/ or docs/ edits sys.path."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from repo_paths import ROOT

BENCH = ROOT / "bench"
MODULES = sorted(p for group in ("harness", "probes") for p in (BENCH / group).glob("*.py"))
ENTRIES = [p for p in MODULES if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")]


def bench(*args: str) -> subprocess.CompletedProcess:
    # From the repository root: the entry must import the installed pyllmattr, not the
    # source folder (which has no compiled engine).
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def purpose(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.splitlines()[0] if doc else ""


def test_every_module_starts_with_its_purpose_on_one_line():
    for path in MODULES:
        line = purpose(path)
        assert line.endswith(".") and len(line) <= 100, f"{path.relative_to(ROOT)}: {line!r}"


def test_python_bench_lists_every_entry_with_its_purpose():
    done = bench()
    assert done.returncode == 0, done.stderr
    for path in ENTRIES:
        assert re.search(rf"^  {path.stem} +{re.escape(purpose(path))}$", done.stdout, re.M)


def test_an_unknown_entry_is_refused_with_the_list():
    done = bench("no_such_entry")
    assert done.returncode == 2
    assert "no entry called 'no_such_entry'" in done.stderr and "  run " in done.stderr


@pytest.mark.parametrize("path", ENTRIES, ids=lambda p: p.stem)
def test_every_entry_imports_and_parses_help(path):
    done = bench(path.stem, "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage:")


def test_no_script_edits_sys_path():
    edits = re.compile(r"sys\.path\.(insert|append|extend|remove)\(|sys\.path\s*[+]?=")
    for folder in ("bench", "examples", "docs"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not edits.search(path.read_text(encoding="utf-8")), path.relative_to(ROOT)
