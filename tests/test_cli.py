"""The command line, run as users run it."""

from __future__ import annotations

import shutil
import subprocess


def run(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("pyllmattr")
    assert exe, "the pyllmattr console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


def test_demo_prints_the_ranking_and_writes_a_heatmap(tmp_path):
    png = tmp_path / "demo.png"
    done = run("demo", "--plot", str(png))
    assert done.returncode == 0, done.stderr
    assert "Dave lives in Palm Coast, FL and is a lawyer." in done.stdout
    assert "FeatureAblation" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_command_is_a_usage_error():
    done = run()
    assert done.returncode == 2
    assert "usage: pyllmattr" in done.stderr
