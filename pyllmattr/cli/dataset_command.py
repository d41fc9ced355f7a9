"""What ``pyllmattr attribute-dataset`` does: a JSON-lines file of inputs, one result
line per input, resumable.

Exit status: 0 when every line was attributed (now or by an earlier run), 3 when
some lines were skipped (malformed, or inputs the method rejected; each gets a
message with its line number), 1 when the run fails, 2 for usage errors, 130 when
interrupted (the lines written so far stay; run again to resume).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..dataset import jsonl
from .commands import load_args

EXIT_SKIPPED = 3


def attribute_dataset(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..dataset import run_tasks

    source, out = Path(args.input).expanduser(), Path(args.out).expanduser()
    _check_paths(args, parser, source, out)
    dataset = jsonl.read_inputs(source, features=args.features, template=_template(args, parser))
    for message in dataset.malformed:
        print(f"pyllmattr: skipped {message}", file=sys.stderr)
    done = jsonl.read_done(out)
    todo = [task for task in dataset.tasks if jsonl.id_key(task.id) not in done]
    print(
        f"{len(dataset.tasks) + len(dataset.malformed)} input lines: "
        f"{len(dataset.tasks) - len(todo)} already in {out}, {len(todo)} to attribute, "
        f"{len(dataset.malformed)} malformed",
        file=sys.stderr,
    )
    written = failed = 0
    if todo:
        items = run_tasks(
            args.model,
            todo,
            args.method,
            ray=args.ray,
            chunk_size=args.chunk,
            load_args=load_args(args),
            method_args=_method_args(args),
            progress=args.progress,
            ordered=False,
            skip_errors=True,
            actors=args.actors,
        )
        with jsonl.open_results(out) as results:
            for item in items:
                if item.error is not None:
                    failed += 1
                    print(
                        f"pyllmattr: skipped {source}:{item.index}: {item.error}", file=sys.stderr
                    )
                    continue
                assert item.result is not None  # an item without an error has its result
                jsonl.write_result(results, item.id, item.result)
                written += 1
    skipped = failed + len(dataset.malformed)
    print(f"{_count(written, 'result')} written to {out}; {_count(skipped, 'line')} skipped")
    _summarize(out, args)
    return EXIT_SKIPPED if skipped else 0


def _check_paths(
    args: argparse.Namespace, parser: argparse.ArgumentParser, source: Path, out: Path
) -> None:
    if not source.is_file():
        parser.error(f"{args.input}: no such file")
    if not out.resolve().parent.is_dir():
        parser.error(f"--out {args.out}: the folder does not exist")
    if out.resolve() == source.resolve():
        parser.error("--out must be another file than the input")
    if args.summary:
        if not Path(args.summary).expanduser().resolve().parent.is_dir():
            parser.error(f"--summary {args.summary}: the folder does not exist")
        if importlib.util.find_spec("matplotlib") is None:
            raise ImportError("--summary needs matplotlib: pip install 'pyllmattr[plot]'")


def _template(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str | None:
    if args.template is None or not args.template.startswith("@"):
        return args.template
    path = Path(args.template[1:]).expanduser()
    if not path.is_file():
        parser.error(f"--template {args.template}: no such file")
    return path.read_text(encoding="utf-8").rstrip("\n")


def _method_args(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"gen_args": {"max_new_tokens": args.max_new_tokens}}
    if args.seed is not None:
        out["seed"] = args.seed
    for option in ("n_samples", "n_steps"):
        if getattr(args, option) is not None:
            out[option] = getattr(args, option)
    return out


def _summarize(out: Path, args: argparse.Namespace) -> None:
    """The summary table of every result in ``out`` (this run's and earlier ones'), and
    its plot with ``--summary``; results over different features have no summary."""
    import pyllmattr as pla

    rows = list(jsonl.iter_results(out))
    if not rows:
        return
    try:
        summary = pla.summarize(rows)
    except ValueError as exc:
        if args.summary:
            raise ValueError(f"--summary: {exc}") from exc
        print(f"(no summary table: {exc})", file=sys.stderr)
        return
    print()
    print(summary)
    if args.summary:
        import matplotlib

        matplotlib.use("Agg")  # files only
        import matplotlib.pyplot as plt

        fig, _ = summary.plot()
        fig.savefig(args.summary, dpi=120)
        plt.close(fig)
        print(f"summary plot of {summary.n_inputs} results written to {args.summary}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
