"""The studies in examples/ run end to end in --quick mode on the default model and write
a report with the expected sections, finite numbers and the figures it shows."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from repo_paths import EXAMPLES

pytestmark = pytest.mark.slow

SECTIONS = {
    "study1_palm_coast.py": [
        "Setup",
        "Fixed baselines (the paper's Figure 1)",
        "Sampled baselines (ProductBaselines)",
        "Findings",
    ],
    "study2_baselines.py": [
        "Setup",
        "Rank agreement between baseline choices",
        "Spread across sampled baselines",
        "Example",
        "Findings",
    ],
    "study3_gradients.py": [
        "Setup",
        "Agreement between methods",
        "Back-end controls",
        "Integrated gradients' completeness",
        "Findings",
    ],
    "study4_grouping.py": [
        "Setup",
        "Interaction: grouped minus the sum of the parts",
        "Example",
        "Findings",
    ],
    "study5_few_shot.py": [
        "Setup",
        "Which examples help",
        "By the query's label (margin)",
        "Findings",
    ],
    "study6_retrieval.py": [
        "Setup",
        "Which document answered?",
        "By the gold document's position",
        "Per question",
        "Findings",
    ],
}


def numbers(value):
    """Every number in a parsed JSON document."""
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def test_every_study_script_has_a_smoke_test():
    assert sorted(p.name for p in EXAMPLES.glob("study[0-9]_*.py")) == sorted(SECTIONS)


@pytest.fixture(scope="module", params=sorted(SECTIONS))
def quick_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(Path(request.param).stem)
    # The script's folder, not the repository root, goes first on sys.path: the
    # installed pyllmattr (with its compiled engine) is imported, not the source folder.
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / request.param), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return request.param, out


def test_report_has_the_expected_sections_in_order(quick_run):
    script, out = quick_run
    report = (out / "report.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", report, flags=re.M)
    assert headings == SECTIONS[script]


def test_report_and_summary_numbers_are_finite(quick_run):
    _, out = quick_run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    values = list(numbers(summary))
    assert values, "the summary holds no numbers"
    assert all(math.isfinite(v) for v in values)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert not re.search(r"\b(nan|inf)\b", report, flags=re.I)


def test_report_figures_exist_as_png(quick_run):
    _, out = quick_run
    report = (out / "report.md").read_text(encoding="utf-8")
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report)
    assert figures, "the report shows no figure"
    for name in figures:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_report_records_the_command_and_the_model(quick_run):
    script, out = quick_run
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"examples/{script} --quick --out" in report or f"{script} --quick --out" in report
    assert "SmolLM2-135M-Instruct" in report


def test_study_rank_statistics_match_hand_computed_values():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import studykit
    finally:
        sys.path.remove(str(EXAMPLES))
    assert list(studykit.ranks([3.0, 1.0, 1.0])) == [3.0, 1.5, 1.5]
    assert studykit.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert studykit.kendall([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # tau-b with a tie: concordant pairs 2, the tied pair counts for neither
    assert studykit.kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(2 * 3))
    assert studykit.top1([0.5, -2.0, 1.0]) == 1


def test_the_context_qa_set_is_what_its_generator_writes(tmp_path):
    # examples/data/make_context_qa.py lives next to the data it writes (seed 15 by default).
    out = tmp_path / "context_qa.jsonl"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "data" / "make_context_qa.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.read_bytes() == (EXAMPLES / "data" / "context_qa.jsonl").read_bytes()
