"""The command line, run as users run it: a subprocess of the installed console script."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cli_run import run

import pyllmattr as pla
from pyllmattr.cli.parser import build_parser
from pyllmattr.cli.table import format_result

PROMPT = "Dave lives in Palm Coast, FL and is a"


def ranked_features(stdout: str) -> list[str]:
    """The feature column of the printed table, in printed order."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "feature"])
    rows = []
    for line in lines[start + 1 :]:
        parts = line.split()
        if len(parts) < 3 or not parts[0].isdigit():
            break
        rows.append(parts[1])
    return rows


def test_attribute_prints_a_ranked_table_and_writes_json_plot_and_html(tmp_path):
    out = tmp_path / "out.json"
    png, page = tmp_path / "out.png", tmp_path / "out.html"
    done = run(
        "attribute", "--model", "default", "--prompt", PROMPT, "--target", " lawyer",
        "--json", str(out), "--plot", str(png), "--html", str(page),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = pla.AttributionResult.from_json(out.read_text())
    assert result.input_features == PROMPT.split()
    assert result.target == " lawyer"
    order = np.argsort(-np.abs(result.seq_attr), kind="stable")
    assert ranked_features(done.stdout) == [result.input_features[i] for i in order]
    assert f"log p = {result.target_logprob:.3f}" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.read_text().count('class="pla-feature') == len(PROMPT.split())


def test_attribute_reads_the_prompt_from_stdin_and_wraps_it_in_the_chat_template(tmp_path):
    out = tmp_path / "chat.json"
    done = run(
        "attribute", "--prompt-file", "-", "--chat", "--target", "Paris",
        "--method", "shapley-sampling", "--n-samples", "2", "--seed", "0", "--json", str(out),
        stdin="What is the capital of France?\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = pla.AttributionResult.from_json(out.read_text())
    assert result.method == "ShapleyValueSampling"
    assert result.input_features == ["What", "is", "the", "capital", "of", "France?"]
    assert result.prompt.startswith("<|im_start|>user\nWhat is")
    assert result.prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_demo_writes_its_heatmap_in_the_current_folder(tmp_path):
    done = run("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Dave lives in Palm Coast, FL and is a lawyer." in done.stdout
    assert "FeatureAblation" in done.stdout
    assert ranked_features(done.stdout)[0] == "His"
    assert (tmp_path / "pyllmattr-demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_usage_errors_exit_with_2():
    assert run().returncode == 2
    missing_prompt = run("attribute", "--model", "default")
    assert missing_prompt.returncode == 2
    assert "one of the arguments --prompt --prompt-file --context is required" in (
        missing_prompt.stderr
    )
    no_sampling = run("attribute", "--prompt", "hi", "--n-samples", "5")
    assert no_sampling.returncode == 2
    assert "--n-samples does not apply to --method feature-ablation" in no_sampling.stderr


def test_a_failure_exits_with_1_and_one_line_without_traceback(tmp_path):
    missing = tmp_path / "missing.gguf"
    done = run("attribute", "--model", str(missing), "--prompt", PROMPT)
    assert done.returncode == 1
    assert done.stderr.startswith(f"pyllmattr: error: model file not found: {missing}")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_requantize_attributes_with_a_cached_q8_0_copy(tmp_path):
    out = tmp_path / "out.json"
    env = {**os.environ, "PYLLMATTR_CACHE_DIR": str(tmp_path / "cache")}
    done = run(
        "attribute", "--prompt", PROMPT, "--target", " lawyer", "--requantize", "q8_0",
        "--json", str(out), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [p.name.endswith(".Q8_0.gguf") for p in (tmp_path / "cache").glob("*.gguf")] == [True]
    assert pla.AttributionResult.from_json(out.read_text()).input_features == PROMPT.split()


def test_integrated_gradients_runs_on_the_gguf_loaded_into_pytorch(tmp_path):
    out = tmp_path / "ig.json"
    done = run(
        "attribute", "--prompt", PROMPT, "--target", " lawyer", "--features", "token",
        "--method", "integrated-gradients", "--json", str(out), "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = pla.AttributionResult.from_json(out.read_text())
    assert result.method == "IntegratedGradients"
    assert len(result.seq_attr) == len(result.input_features) > 5
    assert result.completeness_gap is not None


@pytest.mark.slow  # over a minute on a 2-core machine (durations of the full run)
def test_auto_steps_print_how_the_values_settled_and_the_completeness_gap(tmp_path):
    done = run(
        "attribute", "--prompt", PROMPT, "--target", " lawyer", "--features", "token",
        "--method", "integrated-gradients", "--n-steps", "auto", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "n_steps=" in line)
    assert "converged" in line and "completeness gap" in line


def test_auto_applies_only_to_the_methods_that_declare_it():
    steps = run("attribute", "--prompt", "hi", "--n-steps", "8")
    assert steps.returncode == 2
    assert "--n-steps does not apply to --method feature-ablation" in steps.stderr
    samples = run("attribute", "--prompt", "hi", "--method", "lime", "--n-samples", "auto")
    assert samples.returncode == 2
    assert "--n-samples auto applies to --method gradient-shap; give a number" in samples.stderr


def test_number_options_name_the_range_they_expect(capsys):
    parser = build_parser()
    for option, value, expected in (
        ("--threads", "0", "--threads: expected a positive integer, got 0"),
        ("--n-samples", "many", "--n-samples: expected a positive integer or 'auto', got 'many'"),
        ("--n-steps", "0", "--n-steps: expected a positive integer or 'auto', got '0'"),
        ("--seed", "-1", "--seed: expected an integer >= 0, got -1"),
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(["attribute", "--prompt", "hi", option, value])
        assert expected in capsys.readouterr().err
    args = parser.parse_args(["attribute", "--prompt", "hi", "--seed", "0", "--threads", "3"])
    assert (args.seed, args.threads) == (0, 3)


@pytest.mark.parametrize(
    ("flags", "deterministic"),
    [([], None), (["--deterministic"], True), (["--fast"], False)],
)
def test_the_layout_flags_map_to_load_ggufs_deterministic(flags, deterministic):
    args = build_parser().parse_args(["attribute", "--prompt", "hi", *flags])
    assert args.deterministic is deterministic


def test_a_repeated_word_is_marked_by_its_own_value_against_the_noise_floor():
    # by="word" over "the cat saw the dog": two features labelled "the", one far above
    # the noise floor and one within it; each row's mark must be its own feature's.
    result = pla.AttributionResult(
        seq_attr=np.array([2.0, 0.5, -0.3, 0.05, 0.2]),
        token_attr=None,
        input_features=["the", "cat", "saw", "the", "dog"],
        output_tokens=[" fled"],
        target_logprob=-1.0,
        target_token_logprobs=np.array([-1.0]),
        method="FeatureAblation",
        noise_floor=0.1,
    )
    lines = format_result(result).splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "feature"])
    rows = [line.split()[:3] for line in lines[header + 1 : header + 6]]
    assert rows == [
        ["1", "the", "+2.0000"],
        ["2", "cat", "+0.5000"],
        ["3", "saw", "-0.3000"],
        ["4", "dog", "+0.2000"],
        ["5", "the", "+0.0500~"],
    ]


def test_evaluate_prints_faithfulness_and_sampling_methods_their_standard_errors(tmp_path):
    out, page = tmp_path / "out.json", tmp_path / "out.html"
    done = run(
        "attribute", "--model", "default", "--prompt", PROMPT, "--target", " lawyer",
        "--method", "shapley-sampling", "--n-samples", "4", "--seed", "0", "--evaluate",
        "--json", str(out), "--html", str(page),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = pla.AttributionResult.from_json(out.read_text())
    faith = result.faithfulness
    assert isinstance(faith, pla.Faithfulness) and faith.seed == 0
    assert f"LDS {faith.lds:+.3f}" in done.stdout
    assert f"AOPC deletion  {faith.aopc_deletion:+.3f}" in done.stdout
    assert f"0: {faith.deletion[0]:.3f}" in done.stdout
    assert "± std.err" in done.stdout and "top-1" in done.stdout
    assert "pla-faithfulness" in page.read_text()
