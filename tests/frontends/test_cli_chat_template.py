"""--chat-template: a model whose GGUF has no chat template, explained from the command line."""

from __future__ import annotations

import pytest
from cli_run import run
from tiny_gguf import write_tiny_llama

import pyllmattr as pla

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def no_template(tmp_path_factory, smollm2_path):
    path = tmp_path_factory.mktemp("gguf") / "no-template.gguf"
    return write_tiny_llama(path, smollm2_path, chat_template=False)


def attribute(model, *extra: str, tmp_path):
    out = tmp_path / "out.json"
    done = run(
        "attribute", "--model", str(model), "--prompt", QUESTION, "--target", " Paris",
        "--n-ctx", "256", "--threads", "2", "--no-progress", "--json", str(out), *extra,
    )  # fmt: skip
    return done, out


def test_builtin_templates_are_llama_cpps_names():
    names = pla.builtin_chat_templates()
    assert {"chatml", "llama3", "gemma", "mistral-v7"} <= set(names)
    assert list(names) == sorted(names)


def test_without_a_template_the_error_names_the_option_and_the_builtin_names(no_template, tmp_path):
    done, _ = attribute(no_template, "--chat", tmp_path=tmp_path)
    assert done.returncode == 1
    assert "no chat template" in done.stderr
    assert "--chat-template NAME|FILE" in done.stderr
    assert "chatglm3, chatglm4, chatml, command-r" in done.stderr


def test_a_builtin_name_renders_the_prompt_in_that_template(no_template, tmp_path):
    done, out = attribute(no_template, "--chat-template", "chatml", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    result = pla.AttributionResult.from_json(out.read_text())
    assert result.prompt == f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    assert result.settings["chat"] == {"template": "chatml"}


def test_a_template_file_is_read_and_applied(no_template, smollm2, tmp_path):
    """SmolLM2's own template text, saved to a file, formats as SmolLM2's file does."""
    template = tmp_path / "smollm2.jinja"
    template.write_text(smollm2.chat_template, encoding="utf-8")
    done, out = attribute(no_template, "--chat-template", str(template), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    result = pla.AttributionResult.from_json(out.read_text())
    messages = [{"role": "user", "content": QUESTION}]
    assert result.prompt == smollm2.apply_chat_template(messages)


def test_an_unknown_template_name_is_a_usage_error_listing_the_names(no_template, tmp_path):
    done, _ = attribute(no_template, "--chat-template", "chatmlx", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "--chat-template chatmlx: no such file" in done.stderr
    assert "llama3" in done.stderr
