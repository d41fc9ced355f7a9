"""The version is written once, in pyproject.toml; the package and the CLI read it."""

from __future__ import annotations

import pytest
from repo_paths import PYPROJECT

import pyllmattr as pla
from pyllmattr.cli import main

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_the_package_and_the_cli_report_pyprojects_version(capsys):
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    assert pla.__version__ == project["version"]
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"pyllmattr {project['version']}"
