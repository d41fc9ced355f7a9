"""pyllmattr attribute --context FILE --query TEXT: which document or sentence an answer used."""

from __future__ import annotations

import json

import pytest

from pyllmattr.cli import main

DOCS = [
    "Harrowgate is a mill town. It was founded in 1742.\n\nIts mill closed. The town makes glass.",
    "The Ostrel is a river. Barges carry coal on it.",
]
QUERY = "When was Harrowgate founded?"


@pytest.fixture()
def context_file(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text(json.dumps(DOCS), encoding="utf-8")
    return path


def run(tiny_path, context_file, *extra):
    base = ["attribute", "--model", str(tiny_path), "--context", str(context_file)]
    return main([*base, "--query", QUERY, "--target", " 1742", "--no-progress", *extra])


def test_hierarchical_ranks_the_units_and_marks_them_in_the_context(
    tiny_path, context_file, tmp_path, capsys
):
    page = tmp_path / "view.html"
    args = ["--method", "hierarchical", "--levels", "document,sentence", "--keep", "1"]
    assert run(tiny_path, context_file, *args, "--html", str(page)) == 0
    out = capsys.readouterr().out
    assert "HierarchicalAblation" in out
    table, context = out.split("the prompt, top ")
    assert "[#1 " in context and "Query: When was Harrowgate founded?" in context
    assert "(coarse)" in table  # the document that was not refined
    html = page.read_text(encoding="utf-8")
    assert 'class="pla-top-units"' in html and "not refined" in html


def test_keep_alone_refines_the_documents_that_score_best_on_their_own(
    tiny_path, context_file, tmp_path
):
    out = tmp_path / "result.json"
    args = ["--method", "hierarchical", "--levels", "document,sentence", "--keep", "1"]
    assert run(tiny_path, context_file, *args, "--keep-alone", "1", "--json", str(out)) == 0
    documents = json.loads(out.read_text(encoding="utf-8"))["levels"][0]
    assert len(documents["alone"]) == len(DOCS)


def test_context_cite_runs_from_the_command_line(tiny_path, context_file, capsys):
    args = ["--method", "context-cite", "--n-samples", "16", "--seed", "0"]
    assert run(tiny_path, context_file, *args) == 0
    assert "ContextCite" in capsys.readouterr().out


def test_a_plain_text_context_is_one_document(tiny_path, tmp_path, capsys):
    path = tmp_path / "context.txt"
    path.write_text(DOCS[0] + "\n", encoding="utf-8")
    out = tmp_path / "result.json"
    assert run(tiny_path, path, "--features", "paragraph", "--json", str(out)) == 0
    features = json.loads(out.read_text(encoding="utf-8"))["input_features"]
    assert features == [
        "Harrowgate is a mill town. It was founded in 1742.",
        DOCS[0].split("\n\n")[1],
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--context", "docs.json"], "--context needs --query"),
        (["--prompt", "Hi", "--levels", "document,sentence"], "--levels applies to"),
        (["--prompt", "Hi", "--method", "hierarchical"], "needs --context"),
        (["--prompt", "Hi", "--method", "lime", "--proxy", "x.gguf"], "--proxy does not apply"),
        (["--prompt", "Hi", "--keep-alone", "1"], "--keep-alone applies to"),
    ],
)
def test_context_usage_errors_exit_with_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs.json").write_text(json.dumps(DOCS), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["attribute", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
