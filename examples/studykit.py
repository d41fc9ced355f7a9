"""Shared plumbing of the studies in this folder: command line, data, statistics, reports.

Every study script parses the same options (``--model``, ``--quick``, ``--out``,
``--threads``, ``--seed``), reads its prompts from ``examples/data/*.jsonl`` and
writes ``report.md`` (the findings as tables), ``summary.json`` (the same numbers,
machine-readable) and its figures (PNG) into ``--out``.

Example:
    >>> args = parse_args("a study", ["--quick", "--out", "/tmp/study"])
    >>> args.quick
    True
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


# ---------------------------------------------------------------- command line


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options every study takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--model",
        default=None,
        help="a .gguf file (default: pla.default_model_path(), SmolLM2-135M-Instruct)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few prompts and samples: a smoke run in seconds"
    )
    parser.add_argument("--out", default=None, help="folder for report.md, summary.json, *.png")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: all; 1 when overloaded)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every sampled choice")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_const",
        const=True,
        default=None,
        help="exact llama.cpp scoring also with GPU layers (the default on the CPU)",
    )
    layout.add_argument(
        "--fast",
        dest="deterministic",
        action="store_const",
        const=False,
        help="the fast layout: scores move with the batch, results report a noise floor",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        name = Path(sys.argv[0]).stem or "study"
        args.out = f"study-{name}{'-quick' if args.quick else ''}"
    return args


def layout_name(args: argparse.Namespace) -> str:
    """How the study's llama.cpp model scores, for its report."""
    return {None: "exact (the default)", True: "exact", False: "fast (noise floor measured)"}[
        args.deterministic
    ]


def model_path(args: argparse.Namespace) -> Path:
    import pyllmattr as pla

    return Path(args.model) if args.model else Path(pla.default_model_path())


def threads(args: argparse.Namespace) -> int | None:
    """``--threads``, or 1 when the machine is oversubscribed: llama.cpp's and torch's
    thread pools wait for each other's slowest thread, and with more runnable jobs than
    cores one thread ran feature ablation 6-8x faster than two here (None: all cores)."""
    if args.threads is None and os.getloadavg()[0] > (os.cpu_count() or 1):
        args.threads = 1  # decided once: every part of the study runs alike
    return args.threads


def load_model(args: argparse.Namespace, **options: Any) -> Any:
    """The llama.cpp model the study runs on (``options`` go to ``pla.load_gguf``)."""
    import pyllmattr as pla

    return pla.load_gguf(
        model_path(args), n_threads=threads(args), deterministic=args.deterministic, **options
    )


def read_jsonl(name: str) -> list[dict[str, Any]]:
    """The records of ``examples/data/<name>``, one JSON object per line."""
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------- statistics


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``; ties share their mean rank."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    out = np.empty(len(values))
    out[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        out[tied] = out[tied].mean()
    return out


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation; nan when either side is constant (no ranking to compare)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    return pearson(ranks(a), ranks(b))


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties handled); nan when either side is constant."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denominator = math.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    return float((da * db).sum() / denominator) if denominator else math.nan


def top1(values: Sequence[float]) -> int:
    """The feature with the largest absolute attribution."""
    return int(np.argmax(np.abs(np.asarray(values, dtype=float))))


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the finite values (nan, nan when there are none)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    return float(x.mean()), se


def each(items: Sequence[Any], what: str) -> Any:
    """Yields ``items``, printing "what i/n" to stderr: full runs take minutes."""
    for i, item in enumerate(items, start=1):
        print(f"{what} {i}/{len(items)}", file=sys.stderr, flush=True)
        yield item


# ---------------------------------------------------------------- reports


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"  # nan and inf show as such: the smoke test looks for them
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats to 3 decimals, pipes in cells escaped (``|x|``)."""

    def cells(values: Sequence[Any]) -> str:
        return "| " + " | ".join(fmt(v).replace("|", "\\|") for v in values) + " |"

    lines = [cells(headers), "|" + "---|" * len(headers)]
    lines += [cells(row) for row in rows]
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class Report:
    """A study's report: markdown sections, figures and a JSON summary, in one folder.

    Example:
        >>> report = Report("Palm Coast", args)  # doctest: +SKIP
        >>> report.section("Setup", "text"); report.write()  # doctest: +SKIP
    """

    def __init__(self, title: str, args: argparse.Namespace) -> None:
        self.title, self.args = title, args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.sections: list[tuple[str, str]] = []
        self.summary: dict[str, Any] = {}

    def section(self, heading: str, *paragraphs: str) -> None:
        self.sections.append((heading, "\n\n".join(p.strip("\n") for p in paragraphs)))

    def figure(self, name: str, fig: Any, caption: str) -> str:
        """Saves ``fig`` as ``name``.png; returns the markdown that shows it."""
        import matplotlib.pyplot as plt

        fig.savefig(self.out / f"{name}.png", dpi=110)
        plt.close(fig)
        return f"![{caption}]({name}.png)\n\n*{caption}*"

    def setup_text(self, model_description: str, extra: str = "") -> str:
        command = "python " + " ".join(
            shlex.quote(a) for a in [_relative(sys.argv[0]), *sys.argv[1:]]
        )
        return "\n".join(
            [
                f"- command: `{command}`",
                f"- model: {model_description}",
                f"- mode: {'quick (smoke run)' if self.args.quick else 'full'}",
                f"- machine: {platform.machine()}, {os.cpu_count()} cores, {_load_note()}",
                f"- threads: {threads(self.args) or 'all'}",
                *([extra] if extra else []),
            ]
        )

    def write(self) -> Path:
        seconds = time.perf_counter() - self.started
        self.summary["runtime_seconds"] = seconds
        # allow_nan=False: a summary number that is not finite is a bug of the study.
        summary = json.dumps(jsonable(self.summary), indent=1, allow_nan=False)
        body = [f"# {self.title}"]
        for heading, text in self.sections:
            body += [f"## {heading}", text]
        body.append(f"Runtime: {seconds:.0f} s.")
        path = self.out / "report.md"
        path.write_text("\n\n".join(body) + "\n", encoding="utf-8")
        (self.out / "summary.json").write_text(summary + "\n", encoding="utf-8")
        print(f"wrote {path} ({seconds:.0f} s)")
        return path


def _load_note() -> str:
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    note = f"1-minute load average {load:.1f} at the start"
    if load > cores:
        note += " (more runnable jobs than cores: times are slower than on an idle machine)"
    return note


def describe_model(model: Any, path: Path) -> str:
    kind = getattr(model, "description", "")
    return f"`{path.name}` ({kind})" if kind else f"`{path.name}`"


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
