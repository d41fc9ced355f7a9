"""pla.attribute_dataset in this process: results, order, inputs, errors, chunks and shards,
and the few-shot example (examples/few_shot.py)."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys

import numpy as np
import pytest
from repo_paths import EXAMPLES

import pyllmattr as pla
from pyllmattr.dataset import make_tasks, parse_record, run_tasks
from pyllmattr.dataset.shard import make_chunks, make_shards

PROMPTS = [
    "Paris is the capital of",
    "Rome is the capital of",
    "Berlin is the capital of",
    "Madrid is the capital of",
    "Lisbon is the capital of",
]
TARGETS = [" France", " Italy", " Germany", " Spain", " Portugal"]
EXAMPLE = EXAMPLES / "few_shot.py"


@pytest.fixture(scope="module")
def model(tiny_path):
    """Deterministic scoring: a batch gives each input exactly what it gets alone."""
    with pla.load_gguf(tiny_path, n_ctx=512, n_threads=2, deterministic=True) as m:
        yield m


def alone(model, prompt: str, target) -> pla.AttributionResult:
    inp = pla.TextTemplateInput.from_text(prompt)
    return pla.FeatureAblation(model).attribute(inp, target=target, progress=False)


def test_each_result_equals_attributing_its_input_alone_in_input_order(model):
    results = pla.attribute_dataset(model, PROMPTS, targets=TARGETS, chunk_size=2)
    assert [r.target for r in results] == TARGETS
    for result, prompt, target in zip(results, PROMPTS, TARGETS, strict=True):
        assert result.input_features == prompt.split()
        np.testing.assert_array_equal(result.seq_attr, alone(model, prompt, target).seq_attr)


def test_stream_yields_the_same_results_one_by_one(model):
    stream = pla.attribute_dataset(model, PROMPTS, targets=TARGETS, chunk_size=2, stream=True)
    assert not isinstance(stream, list)
    streamed = list(stream)
    listed = pla.attribute_dataset(model, PROMPTS, targets=TARGETS, chunk_size=5)
    assert [r.target for r in streamed] == TARGETS
    for a, b in zip(streamed, listed, strict=True):
        np.testing.assert_array_equal(a.seq_attr, b.seq_attr)


def test_inputs_may_be_objects_prompts_or_records(model):
    template = pla.TextTemplateInput("{} is the capital of", ["Paris"], baselines=["Rome"])
    tokens = pla.TextTokenInput("Rome is the capital of", model)
    record = {"prompt": "Berlin is the capital. Of what?", "features": "sentence"}
    results = pla.attribute_dataset(
        model, [template, tokens, record], targets=[" France", " Italy", " Germany"]
    )
    assert results[0].input_features == ["Paris"]
    assert results[1].input_features == [model.token_to_str(t) for t in model.tokenize(
        "Rome is the capital of", add_special=False
    )]  # fmt: skip
    assert results[2].input_features == ["Berlin is the capital.", "Of what?"]


def test_a_record_target_is_used_unless_targets_overrides_it(model):
    records = [{"prompt": "Paris is the capital of", "target": " France"}]
    assert pla.attribute_dataset(model, records)[0].target == " France"
    assert pla.attribute_dataset(model, records, targets=[" Italy"])[0].target == " Italy"


def test_per_input_contrasts_equal_attributing_each_input_alone_with_its_contrast(model):
    contrasts = [" Italy", None, " Spain", None, " France"]
    results = pla.attribute_dataset(
        model, PROMPTS, targets=TARGETS, contrasts=contrasts, chunk_size=2
    )
    for result, prompt, target, contrast in zip(results, PROMPTS, TARGETS, contrasts, strict=True):
        inp = pla.TextTemplateInput.from_text(prompt)
        own = {} if contrast is None else {"contrast": contrast}
        expected = pla.FeatureAblation(model).attribute(inp, target=target, **own)
        assert result.contrast == contrast
        np.testing.assert_array_equal(result.seq_attr, expected.seq_attr)


def test_a_record_contrast_is_used_unless_contrasts_overrides_it(model):
    records = [{"prompt": "Paris is the capital of", "target": " France", "contrast": " Italy"}]
    assert pla.attribute_dataset(model, records)[0].contrast == " Italy"
    assert pla.attribute_dataset(model, records, contrasts=[" Spain"])[0].contrast == " Spain"


def test_no_target_generates_one_with_the_method_args(model):
    (result,) = pla.attribute_dataset(
        model, PROMPTS[:1], method_args={"gen_args": {"max_new_tokens": 3}}
    )
    inp = pla.TextTemplateInput.from_text(PROMPTS[0])
    expected = pla.FeatureAblation(model).attribute(inp, gen_args={"max_new_tokens": 3})
    assert result.target_ids == expected.target_ids and len(result.target_ids) == 3


def test_method_args_reach_the_method(model):
    args = {"n_samples": 3, "seed": 7}
    results = pla.attribute_dataset(
        model, PROMPTS[:2], "shapley-sampling", TARGETS[:2], method_args=args
    )
    inp = pla.TextTemplateInput.from_text(PROMPTS[1])
    expected = pla.ShapleyValueSampling(model).attribute(inp, target=TARGETS[1], **args)
    assert results[1].method == "ShapleyValueSampling"
    np.testing.assert_array_equal(results[1].seq_attr, expected.seq_attr)


def test_the_model_may_be_given_as_a_path(tiny_path, model):
    results = pla.attribute_dataset(
        tiny_path, PROMPTS[:2], targets=TARGETS[:2], load_args={"deterministic": True}
    )
    np.testing.assert_array_equal(
        results[0].seq_attr, alone(model, PROMPTS[0], TARGETS[0]).seq_attr
    )


def test_progress_counts_inputs_and_returning_false_cancels(model):
    calls = []
    pla.attribute_dataset(
        model, PROMPTS, targets=TARGETS, chunk_size=2, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(2, 5), (4, 5), (5, 5)]
    with pytest.raises(pla.Cancelled):
        pla.attribute_dataset(
            model, PROMPTS, targets=TARGETS, chunk_size=2, progress=lambda d, t: False
        )


def test_bad_arguments_are_value_errors_before_any_work(model):
    wrong_types = [
        (dict(inputs="Paris is"), "not a single one"),
        (dict(contrasts=" Italy"), "contrasts must be a list with one entry per input"),
        (dict(contrasts=[3, None, None, None, None]), 'input 0: "contrast" must be a string'),
    ]
    for overrides, message in wrong_types:  # TypeErrors, and ValueErrors as ever
        kwargs = {"inputs": PROMPTS, "targets": None, **overrides}
        with pytest.raises(TypeError, match=message):
            pla.attribute_dataset(model, **kwargs)
    cases = [
        *wrong_types,
        (dict(inputs=[]), "inputs is empty"),
        (dict(targets=[" France"]), "1 targets for 5 inputs"),
        (dict(contrasts=[" Italy"]), "1 contrasts for 5 inputs"),
        (dict(method_args={"contrast": " x"}), "give targets= and contrasts="),
        (dict(method_args={"n_samples": 3}), r"FeatureAblation does not take \['n_samples'\]"),
        (dict(method_args={"target": " x"}), "give targets="),
        (dict(ray=True), "pass the model's .gguf path"),
        (dict(ray=3), "ray must be False, True, 'auto' or a cluster address"),
        (dict(chunk_size=0), "chunk_size must be a positive integer"),
        (dict(inputs=[{"prompt": "x", "features": "letters"}]), "input 0: features must be"),
    ]
    for overrides, message in cases:
        kwargs = {"inputs": PROMPTS, "targets": None, **overrides}
        with pytest.raises(ValueError, match=message):
            pla.attribute_dataset(model, **kwargs)
    with pytest.raises(ValueError, match="model file not found"):
        pla.attribute_dataset("/nonexistent/model.gguf", PROMPTS)


def test_ray_true_without_ray_installed_names_the_extra(monkeypatch, tiny_path):
    hide_ray(monkeypatch)
    with pytest.raises(ImportError, match=r"pip install 'pyllmattr\[ray\]'"):
        pla.attribute_dataset(tiny_path, PROMPTS, ray=True)


def test_ray_auto_without_ray_runs_in_this_process(monkeypatch, model):
    hide_ray(monkeypatch)
    results = pla.attribute_dataset(model, PROMPTS[:2], targets=TARGETS[:2], ray="auto")
    np.testing.assert_array_equal(
        results[0].seq_attr, alone(model, PROMPTS[0], TARGETS[0]).seq_attr
    )


def hide_ray(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)


def test_a_bad_input_fails_alone_when_errors_are_skipped(model):
    bad = {"template": "{a} is", "values": {"a": "x"}, "baselines": {"a": "x"}}
    tasks = make_tasks([PROMPTS[0], bad, PROMPTS[1]], [TARGETS[0], " y", TARGETS[1]])
    items = list(run_tasks(model, tasks, chunk_size=3, skip_errors=True))
    assert [item.index for item in items] == [0, 1, 2]
    assert items[1].result is None and "tokenizes the same with its baseline" in items[1].error
    np.testing.assert_array_equal(
        items[2].result.seq_attr, alone(model, PROMPTS[1], TARGETS[1]).seq_attr
    )
    with pytest.raises(ValueError, match=r"input 1 \(id 1\): feature 0 \('x'\) tokenizes the same"):
        list(run_tasks(model, tasks, chunk_size=3))


def test_records_are_checked_without_a_model():
    cases = [
        ({"prompt": ""}, '"prompt" must be a non-empty string'),
        ({"prompt": "hi", "target": ""}, '"target" is empty'),
        ({"prompt": "hi", "target": 3}, '"target" must be a string or a list of token ids'),
        ({"prompt": "hi", "baseline": 3}, "the baseline must be a string"),
        ({"prompt": "hi", "features": "token", "baseline": 1.5}, "a token id or a string"),
        ({"prompt": "hi", "contrast": ""}, '"contrast" is empty; give the alternative'),
        ({"template": "{a}", "values": {"a": "x"}, "fixed": {"b": "y"}}, r"\['b'\] are not in"),
        ({"values": {"a": "x"}}, 'needs "template"'),
        ([1, 2], "expected a JSON object, got list"),
    ]
    for record, message in cases:
        with pytest.raises(ValueError, match=message):
            parse_record(record)
    for record in ([1, 2], {"prompt": "hi", "target": 3}, {"template": 3, "values": ["x"]}):
        with pytest.raises(TypeError):  # the record, or a field, is of the wrong type
            parse_record(record)


def test_fixed_slots_are_text_not_features():
    inp, target = parse_record(
        {"template": "{a}{q}:", "values": {"a": "France: Paris\n"}, "fixed": {"q": "{Italy}"}}
    )
    assert inp.labels == ["France: Paris"]
    assert inp.render(np.array([True]), inp.baselines)[0] == "France: Paris\n{Italy}:"
    assert target is None


def test_inputs_that_start_alike_share_chunks_and_shards():
    prompts = ["B second", "A first", "B first", "A second"]
    long_b = [("B" * 70) + p for p in prompts if p.startswith("B")]
    long_a = [("A" * 70) + p for p in prompts if p.startswith("A")]
    tasks = make_tasks([long_b[0], long_a[0], long_b[1], long_a[1]])
    chunks = make_chunks(tasks, 1)
    # a stable sort on the first 64 characters: A's before B's, each kept in input order
    assert [c[0].index for c in chunks] == [1, 3, 0, 2]
    assert make_shards(chunks, 2) == [[0, 1], [2, 3]]
    assert make_shards(chunks, 9) == [[0], [1], [2], [3]]
    assert make_shards(chunks, 1) == [[0, 1, 2, 3]]


def test_shards_are_cut_where_neighbouring_prompts_share_least():
    prompts = ["x" * 30 + f" {i}" for i in range(7)] + ["y" * 30 + f" {i}" for i in range(9)]
    chunks = [[task] for task in make_tasks(prompts)]
    # the even cut is after 8 chunks; a quarter of a shard (2 chunks) away, after 7, the
    # prompts on either side share nothing
    assert make_shards(chunks, 2) == [list(range(7)), list(range(7, 16))]


def test_the_few_shot_example_runs_and_summarizes_its_examples(tmp_path, tiny_path):
    summary_json = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--model", str(tiny_path),
         "--plot", str(tmp_path / "few_shot.png"), "--json", str(summary_json)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(summary_json.read_text())
    assert summary["n_inputs"] == 6
    names = [f["feature"] for f in summary["features"]]
    assert names[:2] == ["France: Paris", "Japan: Tokyo"] and len(names) == 8
    assert "8-shot prompt, 6 queries" in done.stdout
    assert "helps (mean > 2 s.e.):" in done.stdout
    assert (tmp_path / "few_shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_few_shot_example_exports_records_for_the_command_line(tmp_path):
    out = tmp_path / "records.jsonl"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--shots", "3", "--export", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    inp, target = parse_record(records[0])
    assert inp.labels == ["France: Paris", "Japan: Tokyo", "Egypt: Cairo"]
    assert target == " Berlin"


def test_a_gradient_method_loads_the_gguf_into_pytorch(tiny_path):
    results = pla.attribute_dataset(tiny_path, PROMPTS[:2], "saliency", targets=TARGETS[:2])
    model = pla.load_torch_gguf(tiny_path)
    inp = pla.TextTemplateInput.from_text(PROMPTS[1])
    expected = pla.Saliency(model).attribute(inp, target=TARGETS[1], progress=False)
    assert results[1].method == "Saliency"
    np.testing.assert_allclose(results[1].seq_attr, expected.seq_attr, rtol=1e-5)
