"""``pyllmattr attribute-dataset``, run as users run it: the installed console script on
the tiny GGUF (deterministic scoring, so every way of running gives the same numbers)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cli_run import run

import pyllmattr as pla

PROMPTS = [
    ("paris", "Paris is the capital of", " France"),
    ("rome", "Rome is the capital of", " Italy"),
    ("berlin", "Berlin is the capital of", " Germany"),
    ("madrid", "Madrid is the capital of", " Spain"),
    ("lisbon", "Lisbon is the capital of", " Portugal"),
    ("vienna", "Vienna is the capital of", " Austria"),
]
EXAMPLES = {"a": "France: Paris\n", "b": "Japan: Tokyo\n", "c": "Peru: Lima\n"}
ENGINE = ("--n-ctx", "512", "--threads", "2", "--deterministic")


def write_lines(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def prompt_rows() -> list[dict]:
    return [{"id": i, "prompt": p, "target": t} for i, p, t in PROMPTS]


def results(path) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row.pop("id"): pla.AttributionResult.from_dict(row) for row in rows}


def attribute_dataset(tiny_path, *args):
    return run("attribute-dataset", *args, "--model", str(tiny_path), *ENGINE)


@pytest.fixture(scope="module")
def deterministic_tiny(tiny_path):
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=2, deterministic=True) as model:
        yield model


def test_every_line_gets_one_result_line_equal_to_attributing_it_alone(
    tmp_path, tiny_path, deterministic_tiny
):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, prompt_rows())
    done = attribute_dataset(tiny_path, str(source), "--out", str(out), "--chunk", "4")
    assert done.returncode == 0, done.stderr
    got = results(out)
    assert sorted(got) == sorted(i for i, _, _ in PROMPTS)
    method = pla.FeatureAblation(deterministic_tiny)
    for job_id, prompt, target in PROMPTS:
        alone = method.attribute(pla.TextTemplateInput.from_text(prompt), target=target)
        assert got[job_id].input_features == prompt.split()
        np.testing.assert_array_equal(got[job_id].seq_attr, alone.seq_attr)
    assert "6 results written" in done.stdout


def test_a_line_with_a_contrast_gets_the_contrastive_attribution(
    tmp_path, tiny_path, deterministic_tiny
):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = prompt_rows()[:2]
    rows[0]["contrast"] = " Italy"
    write_lines(source, rows)
    done = attribute_dataset(tiny_path, str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    got = results(out)
    assert got["paris"].contrast == " Italy" and got["rome"].contrast is None
    inp = pla.TextTemplateInput.from_text(PROMPTS[0][1])
    alone = pla.FeatureAblation(deterministic_tiny).attribute(
        inp, target=" France", contrast=" Italy"
    )
    np.testing.assert_array_equal(got["paris"].seq_attr, alone.seq_attr)


# The command, killed (SIGKILL: no cleanup, no flush) right after it wrote its second
# result line: a real kill at a known point, so the test cannot race the writes.
KILLED_AFTER_TWO = """
import os, signal, sys
from pyllmattr.cli import main
from pyllmattr.dataset import jsonl

write, written = jsonl.write_result, []

def write_then_die_at_two(*args):
    write(*args)
    written.append(args[1])
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)

jsonl.write_result = write_then_die_at_two
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_run_resumes_where_it_stopped_and_drops_a_truncated_last_line(tmp_path, tiny_path):
    source, out, whole = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "whole.jsonl"
    write_lines(source, prompt_rows())
    args = ["attribute-dataset", str(source), "--out", str(out), "--chunk", "2"]
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_AFTER_TWO), *args,
         "--model", str(tiny_path), *ENGINE],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(out.read_text().splitlines()) == 2
    line = out.read_text().splitlines()[0]
    with open(out, "a") as f:  # what a kill in the middle of a write leaves
        f.write(line[: len(line) // 2])
    resumed = attribute_dataset(tiny_path, str(source), "--out", str(out), "--chunk", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "2 already in" in resumed.stderr
    assert "4 results written" in resumed.stdout
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(i for i, _, _ in PROMPTS)
    attribute_dataset(tiny_path, str(source), "--out", str(whole), "--chunk", "2")
    expected = results(whole)
    for job_id, result in results(out).items():
        np.testing.assert_array_equal(result.seq_attr, expected[job_id].seq_attr)


def test_a_second_run_with_everything_done_attributes_nothing(tmp_path, tiny_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, prompt_rows()[:2])
    assert attribute_dataset(tiny_path, str(source), "--out", str(out)).returncode == 0
    before = out.read_bytes()
    again = attribute_dataset(tiny_path, str(source), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "2 already in" in again.stderr and "0 results written" in again.stdout
    assert out.read_bytes() == before


def test_malformed_lines_are_skipped_with_their_line_number_and_exit_status_3(tmp_path, tiny_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(
        source,
        [
            {"id": "ok1", "prompt": "Paris is the capital of", "target": " France"},
            "{not json",
            {"id": "bad-prompt", "prompt": 5},
            {"id": "typo", "promt": "Rome is"},
            "",  # blank lines are not inputs
            {"id": "ok2", "prompt": "Rome is the capital of", "target": " Italy"},
            # valid JSON, but the method rejects it: the feature equals its baseline
            {"id": "same", "template": "{a} is", "values": {"a": "x"}, "baselines": {"a": "x"}},
        ],
    )
    done = attribute_dataset(tiny_path, str(source), "--out", str(out))
    assert done.returncode == 3, done.stderr
    for number in (2, 3, 4, 7):
        assert f"skipped {source}:{number}: " in done.stderr
    assert "this one has ['id', 'promt']" in done.stderr
    assert "tokenizes the same with its baseline" in done.stderr
    assert sorted(results(out)) == ["ok1", "ok2"]
    assert "2 results written" in done.stdout and "4 lines skipped" in done.stdout
    assert "Traceback" not in done.stderr


def test_duplicate_ids_fail_before_any_work(tmp_path, tiny_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [*prompt_rows()[:2], {"id": "paris", "prompt": "Paris is"}])
    done = attribute_dataset(tiny_path, str(source), "--out", str(out))
    assert done.returncode == 1
    assert "duplicate ids (id 'paris' on lines 1 and 3)" in done.stderr
    assert not out.exists()


def test_a_corrupt_line_before_the_last_is_an_error_naming_it(tmp_path, tiny_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, prompt_rows()[:1])
    write_lines(out, ["garbage", '{"id": "x", "seq_attr": [1]}'])
    done = attribute_dataset(tiny_path, str(source), "--out", str(out))
    assert done.returncode == 1
    assert f"{out}:1 is not a result line" in done.stderr


def test_few_shot_lines_with_a_shared_template_print_and_plot_the_summary(tmp_path, tiny_path):
    source, out, png = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "summary.png"
    queries = [("Italy", " Rome"), ("Chile", " Santiago"), ("Egypt", " Cairo")]
    write_lines(
        source,
        [{"values": EXAMPLES, "fixed": {"q": q}, "target": t} for q, t in queries],
    )
    done = attribute_dataset(
        tiny_path, str(source), "--out", str(out), "--template", "{a}{b}{c}{q}:",
        "--summary", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = results(out)
    assert sorted(got) == [1, 2, 3]  # no "id": the line number
    summary = pla.summarize(list(got.values()))
    assert summary.features == [v.strip() for v in EXAMPLES.values()]
    assert summary.to_markdown() in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_over_different_features_have_no_summary_plot(tmp_path, tiny_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, prompt_rows()[:1] + [{"id": "x", "prompt": "Hello there", "target": "!"}])
    done = attribute_dataset(
        tiny_path, str(source), "--out", str(out), "--summary", str(tmp_path / "s.png")
    )
    assert done.returncode == 1
    assert "--summary: summarize: result 1 has other features than result 0" in done.stderr
    assert len(results(out)) == 2  # the results are kept


def test_a_missing_input_file_is_a_usage_error(tmp_path, tiny_path):
    done = attribute_dataset(tiny_path, str(tmp_path / "none.jsonl"), "--out", "o.jsonl")
    assert done.returncode == 2
    assert "none.jsonl: no such file" in done.stderr
