"""The faithfulness and interactions sections of BENCHMARKS.md come from the raw results in
bench/results/ (no model runs here): rendering them again gives the committed sections,
and the grouping summary computes what its columns say on a made-up game."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
from repo_paths import BENCH, ROOT

RESULTS = BENCH / "results"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def section(text: str, name: str) -> str:
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    return text[text.index(start) : text.index(end) + len(end)]


def without_figure(text: str) -> str:
    # The figure's link depends on where --plot wrote it.
    return "\n".join(line for line in text.splitlines() if not line.startswith("!["))


def test_the_faithfulness_section_is_what_its_results_render(tmp_path):
    out = tmp_path / "faithfulness.md"
    done = bench(
        "faithfulness", "--render", str(RESULTS / "faithfulness.jsonl"),
        "--markdown", str(out), "--plot", str(tmp_path / "faithfulness.png"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    committed = (RESULTS / "faithfulness.md").read_text(encoding="utf-8")
    assert without_figure(out.read_text(encoding="utf-8")) == without_figure(committed)
    benchmarks = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert section(benchmarks, "faithfulness") == section(committed, "faithfulness")


def test_the_interactions_section_is_what_its_results_render(tmp_path):
    out = tmp_path / "interactions.md"
    done = bench(
        "interactions", "--render", str(RESULTS / "interactions.json"), "--markdown", str(out)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    committed = (RESULTS / "interactions.md").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed
    benchmarks = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert section(benchmarks, "interactions") == section(committed, "interactions")


@pytest.fixture(scope="module")
def report():
    path = BENCH / "harness" / "interactions_report.py"
    spec = importlib.util.spec_from_file_location("interactions_report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def template(name, pronoun, pair, city, state, city_state, grouped):
    """A made-up template's exact SII (keys in people_templates.jsonl's order)."""
    values = {"0": name, "4": pronoun, "0,4": pair, "1": city, "2": state, "1,2": city_state}
    values.update({"3": 0.0, "0,1": 0.0})
    return {"keys": ["name", "city", "state", "job", "pronoun"], "interactions": values,
            "grouped": grouped}  # fmt: skip


def test_grouping_stats_on_a_made_up_game(report):
    records = [
        # name + pronoun redundant (SII against their positive sum), city + state not
        template(1.0, 0.5, -0.6, 0.2, 0.1, 0.05, grouped=[1.4, 0.35, 0.0]),
        template(2.0, 1.0, -2.0, -0.4, 0.2, 0.1, grouped=[3.3, -0.5, 0.0]),
    ]
    stats = report.grouping_stats(json.loads(json.dumps(records)))
    names = stats["name + pronoun"]
    assert names["mean"] == pytest.approx(-1.3)
    assert names["median_abs"] == pytest.approx(1.3)
    assert names["median_mains"] == pytest.approx((1.5 + 3.0) / 2)
    assert names["median_ratio"] == pytest.approx((0.6 / 1.5 + 2.0 / 3.0) / 2)
    assert names["share_over_half"] == 0.5  # 2.0 > 1.5, 0.6 < 0.75
    assert names["share_redundant"] == 1.0
    assert names["median_gap"] == pytest.approx((0.1 + 0.3) / 2)  # |1.4 - 1.5|, |3.3 - 3|
    cities = stats["city + state"]
    assert cities["share_redundant"] == 0.5  # +0.05 against a sum of +0.3: no; +0.1, -0.2: yes
    assert cities["max_gap"] == pytest.approx(max(abs(0.35 - 0.3), abs(-0.5 + 0.2)))
    # The top slot group: members' Shapley values summed (name 1.5 > 0.3) vs grouped.
    assert stats["top"]["same_top"] == 1.0
