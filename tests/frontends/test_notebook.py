"""The tutorial notebook runs end to end in a real Jupyter kernel on the installed package,
its committed copy is executed, and a failing cell is reported by index and first line."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from repo_paths import ROOT

pytestmark = pytest.mark.slow

TUTORIAL = ROOT / "examples" / "tutorial.ipynb"


def load_runner():
    """examples/run_notebook.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "run_notebook", ROOT / "examples" / "run_notebook.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = load_runner()


def outputs_of(nb, kind: str) -> list:
    """Every output of the notebook's code cells that carries MIME type ``kind``."""
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if kind in out.get("data", {})
    ]


def test_tutorial_runs_in_a_kernel_with_views_and_figures(tmp_path):
    nb = nbformat.read(TUTORIAL, as_version=4)
    before = TUTORIAL.read_bytes()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    executed = runner.execute(nb, workdir=tmp_path)
    # Executing works on a copy: the committed file is left as it is.
    assert TUTORIAL.read_bytes() == before
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    views = outputs_of(executed, "text/html")
    assert any("pla-feature" in out["data"]["text/html"] for out in views)
    assert outputs_of(executed, "image/png")
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_committed_tutorial_is_executed_with_its_outputs():
    nb = nbformat.read(TUTORIAL, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # Run top to bottom in one kernel: counts 1, 2, 3, ... (see examples/run_notebook.py).
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any("pla-feature" in o["data"]["text/html"] for o in outputs_of(nb, "text/html"))
    assert outputs_of(nb, "image/png")
    # No run-to-run noise: timing metadata or progress bars.
    assert not any("execution" in c.metadata for c in code)
    stderr = "".join(
        o.text for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"
    )
    assert not any(
        runner.PROGRESS_BAR.match(line) for line in stderr.replace("\r", "\n").split("\n")
    )


def test_readme_links_the_tutorial():
    assert "(examples/tutorial.ipynb)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_a_failing_cell_is_named_by_index_and_first_line(tmp_path):
    nb = new_notebook(
        cells=[
            new_markdown_cell("# a title"),
            new_code_cell("x = 1"),
            new_code_cell("\n# divide by zero on purpose\ny = x / 0\n"),
            new_code_cell("print('never reached')"),
        ]
    )
    with pytest.raises(runner.CellError) as info:
        runner.execute(nb, timeout=300, workdir=tmp_path)
    assert info.value.index == 2
    assert info.value.first_line == "# divide by zero on purpose"
    message = str(info.value)
    assert "cell 2" in message
    assert "# divide by zero on purpose" in message
    assert "ZeroDivisionError" in message
    assert nb.cells[3].outputs == []


def test_the_main_entry_reports_the_failing_cell(tmp_path, capsys):
    path = tmp_path / "broken.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("import no_such_module_here")]), path)
    assert runner.main([str(path), "--timeout", "300"]) == 1
    err = capsys.readouterr().err
    assert "cell 0 ('import no_such_module_here')" in err
    assert "ModuleNotFoundError" in err


def test_the_kernel_is_this_interpreter_outside_the_source_tree(tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell(
                "import os, sys\nimport pyllmattr\n"
                "print(sys.executable)\nprint(pyllmattr.__file__)\nprint(os.getcwd())"
            )
        ]
    )
    runner.execute(nb, timeout=300)
    executable, package, cwd = nb.cells[0].outputs[0]["text"].splitlines()
    assert Path(executable) == Path(sys.executable)
    # The installed package (with its compiled engine), not the checkout's source folder.
    assert not Path(package).is_relative_to(ROOT / "pyllmattr")
    assert Path(cwd).resolve() != ROOT


def test_progress_bars_are_dropped_and_warnings_kept():
    text = (
        "/x/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter.\n"
        "  from .autonotebook import tqdm as notebook_tqdm\n"
        "Loading:   0%|          | 0/272 [00:00<?, ?it/s]\r"
        "Loading: 100%|##########| 272/272 [00:03<00:00, 79.38it/s] \n"
        "/tmp/cell.py:2: UserWarning: integrated gradients: the attributions miss\n"
        "  result = method.attribute(inp)\n"
    )
    assert runner.without_progress_bars(text) == (
        "/tmp/cell.py:2: UserWarning: integrated gradients: the attributions miss\n"
        "  result = method.attribute(inp)\n"
    )
    assert runner.without_progress_bars("Loading: 100%|#| 1/1 [00:00<00:00, 9.1it/s]") == ""
