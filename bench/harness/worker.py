"""Run one benchmark configuration in a fresh process and write its measurements as JSON.

Usage (``python bench run`` starts it): ``python bench worker SPEC.json OUT.json``.
Each configuration gets its own process so that its peak RSS
(``ru_maxrss`` at the end) covers only its own model and work.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import traceback
from pathlib import Path
from statistics import median
from time import perf_counter
from typing import Any

from harness.runners import make_runner, measure_throughput


def run_config(spec: dict[str, Any]) -> dict[str, Any]:
    """Set up the configuration, estimate one run, then time ``repeats`` runs."""
    runner = make_runner(spec["config"], spec["workload"], spec["threads"], spec["model"])
    start = perf_counter()
    runner.setup()
    measured = {"load_seconds": perf_counter() - start}
    start = perf_counter()
    runner.evaluate_reference()  # warm-up: the process's first scoring call
    measured["first_call_seconds"] = perf_counter() - start
    start = perf_counter()
    runner.evaluate_reference()
    measured["eval_seconds"] = perf_counter() - start
    measured["estimate_seconds"] = measured["eval_seconds"] * runner.n_evaluations()
    repeats = spec["repeats"]
    if runner.budgeted:
        if measured["estimate_seconds"] > spec["budget"]:
            return {"status": "over budget", "notes": runner.notes(), **measured}
        repeats = min(repeats, max(1, int(spec["budget"] // measured["estimate_seconds"])))
    times = []
    for _ in range(repeats):
        start = perf_counter()
        outcome = runner.run()
        times.append(perf_counter() - start)
    notes = [*runner.notes(), first_call_note(measured)]
    if repeats < spec["repeats"]:
        notes.append(f"{repeats} of {spec['repeats']} runs, to stay within the time budget")
    return {
        "status": "ok",
        "times": times,
        "median_seconds": median(times),
        **outcome,
        **measured,
        "notes": notes,
    }


def first_call_note(measured: dict[str, float]) -> str:
    """What the process's first scoring call cost beyond a later one: for pyllmattr the exact
    layout's self-check (every worker starts with an empty cache folder, as on a machine that
    has never run this model), for PyTorch its first-call set-up."""
    extra = measured["first_call_seconds"] - measured["eval_seconds"]
    return f"first scoring call of the process: {extra:.2f} s more than a later one"


def run_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    """Decode throughput rows (see runners.measure_throughput)."""
    t = spec["throughput"]
    rows = measure_throughput(
        spec["model"], spec["threads"], t["n_seqs"], t["seq_len"], t["repeats"]
    )
    return {"status": "ok", "rows": rows}


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (ru_maxrss is in KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="the configuration (JSON, written by run)")
    parser.add_argument("out", type=Path, help="where its measurements go (JSON)")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    try:
        result = run_throughput(spec) if "throughput" in spec else run_config(spec)
    except Exception as exc:  # reported as a failed configuration, the run goes on
        result = {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    result["peak_rss_mb"] = peak_rss_mb()
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
