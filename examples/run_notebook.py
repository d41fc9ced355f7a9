"""Execute a notebook with a real Jupyter kernel and save it with its outputs.

The tutorial (``examples/tutorial.ipynb``) is committed executed, so a code host shows
its tables, HTML views and figures without running anything. After changing it (or the
library), regenerate the outputs in place:

    python examples/run_notebook.py                       # examples/tutorial.ipynb, in place
    python examples/run_notebook.py NB.ipynb --out X.ipynb

The test suite runs the same function on a copy (``tests/frontends/test_notebook.py``). The kernel
is this interpreter (``sys.executable``, through a kernelspec written for the run, not
whatever ``python`` a system kernelspec names), started in a temporary folder, so a
source checkout's ``pyllmattr/`` folder cannot shadow the installed package. A cell
that raises stops the run with :class:`CellError`, naming the cell's index and first
line. The saved copy carries no timing metadata, and progress bars (stderr lines that
tqdm rewrites) are dropped from it; warnings and other stderr text stay.

Needs ``nbclient``, ``nbformat`` and ``ipykernel`` (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TUTORIAL = HERE / "tutorial.ipynb"
KERNEL_NAME = "pyllmattr-run-notebook"
# Generous: a shared CI machine can be many times slower than a quiet one.
CELL_TIMEOUT_S = 1800
# A tqdm bar: "desc:  42%|████      | 21/50 [00:01<00:02, 9.8it/s]" (one per \r).
PROGRESS_BAR = re.compile(r"^.*\d+%\|.*\|\s*\S+/\S+\s*\[.*\]\s*$")
# tqdm.auto's warning where ipywidgets is missing: about how bars look, nothing else.
WIDGET_WARNING = "TqdmWarning: IProgress not found"
# Where ipykernel says a cell's code lives (a warning's location): a new folder per kernel.
CELL_FILE = re.compile(r"\S*ipykernel_\d+[/\\]\d+\.py")


class CellError(RuntimeError):
    """A notebook cell raised (or the kernel died or timed out while running it).

    Example:
        >>> str(CellError(3, "x = 1 / 0", "ZeroDivisionError: division by zero"))
        "cell 3 ('x = 1 / 0') failed: ZeroDivisionError: division by zero"
    """

    def __init__(self, index: int, first_line: str, detail: str) -> None:
        self.index, self.first_line, self.detail = index, first_line, detail
        super().__init__(f"cell {index} ({first_line!r}) failed: {detail}")


def first_line(source: str) -> str:
    """The first non-blank line of a cell's source, stripped."""
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


def execute(notebook: Any, timeout: int = CELL_TIMEOUT_S, workdir: Path | None = None) -> Any:
    """Run every code cell of ``notebook`` (a path or an ``nbformat`` node) in a fresh
    kernel of this interpreter, with ``workdir`` (default: a temporary folder) as its
    working directory; return the notebook with its outputs. Raises :class:`CellError`
    at the first cell that fails.

    Example:
        >>> nb = execute(TUTORIAL)  # doctest: +SKIP
    """
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellTimeoutError, DeadKernelError

    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, (str, Path)) else notebook
    with tempfile.TemporaryDirectory(prefix="pyllmattr-nb-") as tmp:
        specs = Path(tmp) / "kernels"
        write_kernelspec(specs / KERNEL_NAME)
        km = AsyncKernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
        )
        cwd = Path(workdir) if workdir is not None else Path(tmp) / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        # cleanup_kc: shut the kernel down at the end although we made its manager.
        with client.setup_kernel(cleanup_kc=True):
            for index, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, index)
                except (CellControlSignal, CellTimeoutError, DeadKernelError) as exc:
                    raise CellError(index, first_line(cell.source), describe(exc)) from exc
    return nb


def write_kernelspec(folder: Path) -> None:
    """A kernelspec that starts ipykernel on this very interpreter."""
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (pyllmattr run_notebook)",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


def describe(exc: Exception) -> str:
    """'Name: value' of the exception a cell raised, or the runner's own message."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"


def clean(nb: Any) -> Any:
    """Drop what changes from run to run without meaning anything: timing metadata,
    progress bars on stderr, the kernel's temporary cell file names, the run's own
    kernelspec name."""
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                output.text = CELL_FILE.sub("<cell>", without_progress_bars(output.text))
                if not output.text.strip():
                    continue
            kept.append(output)
        cell.outputs = kept
    return nb


def without_progress_bars(text: str) -> str:
    """``text`` without the lines (and carriage-return rewrites) of tqdm bars, and
    without tqdm's warning that it has no notebook widget to draw them with."""
    kept: list[str] = []
    after_widget_warning = False
    for line in text.split("\n"):
        if WIDGET_WARNING in line:
            after_widget_warning = True
            continue
        # The warning is followed by the indented source line that raised it.
        if after_widget_warning and line.startswith(" "):
            continue
        after_widget_warning = False
        pieces = [p for p in line.split("\r") if p.strip() and not PROGRESS_BAR.match(p)]
        if pieces:
            kept.append(pieces[-1])
    return "\n".join(kept) + ("\n" if kept else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=TUTORIAL)
    parser.add_argument("--out", type=Path, help="where to save it (default: in place)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds per cell")
    args = parser.parse_args(argv)
    import nbformat

    start = time.perf_counter()
    try:
        nb = execute(args.notebook, timeout=args.timeout)
    except CellError as exc:
        print(f"{args.notebook}: {exc}", file=sys.stderr)
        return 1
    out = args.out or args.notebook
    nbformat.write(clean(nb), out)
    print(f"{args.notebook} executed in {time.perf_counter() - start:.0f} s; saved to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
