"""Benchmark pyllmattr against Captum and llama-cpp-python on the same GGUF weights.

    python bench run                      # full run, writes BENCHMARKS.md
    python bench run --quick --out /tmp/BENCHMARKS-quick.md   # smoke test

Every (workload, configuration) pair runs in a fresh worker process
(``python bench worker``); this module prepares the workloads, starts the workers one
after another, and writes the report (``report.py``) and the scaling plot.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any

from harness import REPO, bench_command, command_line, jobs, report

DEFAULT_OUT = REPO / "BENCHMARKS.md"
DEFAULT_PLOT = REPO / "docs" / "bench-scaling.png"
QUICK_OUT = Path(tempfile.gettempdir()) / "BENCHMARKS-quick.md"
PACKAGES = ["pyllmattr", "llama-cpp-python", "torch", "transformers", "captum", "numpy"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 run: smoke test")
    parser.add_argument("--repeats", type=int, help="runs per configuration (default 3; quick 1)")
    parser.add_argument("--jobs", default="1,2,3,4", help="comma-separated jobs (default 1,2,3,4)")
    parser.add_argument(
        "--out", type=Path, help=f"report (default {DEFAULT_OUT}; with --quick {QUICK_OUT})"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help="scaling plot PNG (default docs/bench-scaling.png for the default --out, "
        "else next to the report)",
    )
    parser.add_argument(
        "--budget", type=float, default=600.0, help="Captum time budget per run, s (default 600)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads everywhere (default 2)")
    parser.add_argument("--configs", help=f"comma-separated subset of {','.join(jobs.ALL_CONFIGS)}")
    parser.add_argument("--lengths", help="job 4 prompt lengths in tokens (default 64,256,1024)")
    parser.add_argument(
        "--workloads", help="comma-separated workload names (e.g. job2-word-fa): only these"
    )
    parser.add_argument("--model", type=Path, help="GGUF file (default pla.default_model_path())")
    parser.add_argument("--json", type=Path, help="also write the raw measurements as JSON")
    parser.add_argument(
        "--render-from",
        type=Path,
        nargs="+",
        metavar="RAW.json",
        help="run nothing: write the report from earlier runs' --json files (one section each)",
    )
    parser.add_argument(
        "--append",
        type=Path,
        nargs="+",
        default=[],
        metavar="SECTION.md",
        help="with --render-from: add these reports of other benchmark scripts "
        "(e.g. bench/results/torch-ig.md from python bench ig_memory)",
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="run the configurations of a workload in turn, one run each, --repeats times "
        "(on a shared machine their ratios then see the same load)",
    )
    parser.add_argument(
        "--no-noise-floor",
        action="store_true",
        help="pass noise_floor=False to pyllmattr (default: its default, noise_floor=True)",
    )
    args = parser.parse_args(argv)
    args.jobs = [int(j) for j in args.jobs.split(",")]
    if not set(args.jobs) <= {1, 2, 3, 4}:
        parser.error("--jobs takes numbers from 1 to 4")
    args.configs = args.configs.split(",") if args.configs else None
    if args.configs and not set(args.configs) <= set(jobs.ALL_CONFIGS):
        parser.error(f"--configs takes names from {', '.join(jobs.ALL_CONFIGS)}")
    args.lengths = tuple(int(n) for n in args.lengths.split(",")) if args.lengths else None
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    return args


def plot_path(args: argparse.Namespace) -> Path:
    """docs/bench-scaling.png for the repository's BENCHMARKS.md, else next to ``--out``."""
    if args.plot:
        return args.plot.resolve()
    out = args.out.resolve()
    return DEFAULT_PLOT if out == DEFAULT_OUT else out.with_name(out.stem + "-scaling.png")


# ---------------------------------------------------------------- preparation


def prepare_workloads(
    args: argparse.Namespace, sizes: jobs.Sizes, model_path: str
) -> list[jobs.Workload]:
    """Build the workloads and fix their prompts and targets with pyllmattr."""
    import pyllmattr as pla

    workloads = jobs.build_workloads(sizes, args.jobs, args.lengths, args.configs)
    if args.workloads:
        wanted = args.workloads.split(",")
        unknown = set(wanted) - {w.name for w in workloads}
        if unknown:
            raise SystemExit(f"--workloads: no such workload in these jobs: {sorted(unknown)}")
        workloads = [w for w in workloads if w.name in wanted]
    for w in workloads:
        w.pla_options = {"noise_floor": False} if args.no_noise_floor else {}
    with pla.load_gguf(model_path, n_threads=args.threads) as model:
        for w in workloads:
            jobs.resolve(w, model)
            log(f"{w.name}: {w.prompt_tokens}-token prompt, {w.n_features} features")
    return workloads


def machine_info(args: argparse.Namespace, model_path: str) -> dict[str, Any]:
    """What the report says about the machine, the software and the command."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    size_mb = Path(model_path).stat().st_size / 2**20
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command_line("run"),
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} logical ({len(os.sched_getaffinity(0))} usable)",
        "ram": _ram(),
        "load": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "model": f"{Path(model_path).name} ({size_mb:.0f} MiB)",
        "model_name": Path(model_path).name.split(".")[0],
        "threads": args.threads,
        "repeats": args.repeats,
        "budget": args.budget,
        "noise_floor": not args.no_noise_floor,
        "versions": f"Python {platform.python_version()}, " + ", ".join(versions),
        "commit": _commit(),
        "quick": args.quick,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _commit() -> str:
    """The repository's commit and whether the working tree differs (read-only git calls)."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


# ---------------------------------------------------------------- workers


class Workers:
    """Starts worker processes one at a time and collects their JSON results."""

    def __init__(self, folder: Path, threads: int) -> None:
        self.folder = folder
        self.count = 0
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TRANSFORMERS_VERBOSITY": "error",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
        }

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        spec_path = self.folder / f"spec-{self.count}.json"
        out_path = self.folder / f"out-{self.count}.json"
        spec_path.write_text(json.dumps(spec))
        # An empty cache folder per worker: its first scoring call runs the exact layout's
        # self-check as on a machine new to the model. Converted weights keep the user's
        # cache, where the conversion is made once.
        env = dict(self.env)
        if spec.get("config") not in jobs.CONVERSIONS:
            env["PYLLMATTR_CACHE_DIR"] = str(self.folder / f"cache-{self.count}")
        proc = subprocess.run(
            bench_command("worker", spec_path, out_path),
            capture_output=True,
            text=True,
            env=env,
            cwd=self.folder,
        )
        if out_path.exists():
            return json.loads(out_path.read_text())
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "error", "error": f"worker exited with code {proc.returncode}: {tail}"}


def run_all(
    args: argparse.Namespace,
    workloads: list[jobs.Workload],
    workers: Workers,
    model_path: str,
    checkpoint: Any,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every configuration of every workload, one worker each; ``checkpoint(results, done,
    total)`` after each, so that an interrupted run still leaves a (partial) report."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    rounds, repeats = (args.repeats, 1) if args.interleave else (1, args.repeats)
    total = sum(len(w.configs) for w in workloads) * rounds
    done = 0
    for w in workloads:
        results[w.name] = {}
        for _ in range(rounds):
            for config in w.configs:
                done += 1
                spec = {
                    "workload": asdict(w),
                    "config": config,
                    "repeats": repeats,
                    "budget": args.budget,
                    "threads": args.threads,
                    "model": model_path,
                }
                start = perf_counter()
                result = _merge_runs(results[w.name].get(config), workers.run(spec))
                results[w.name][config] = result
                message = f"[{done}/{total}] {w.name} · {config}: {_summary(result)}"
                log(message, perf_counter() - start)
                if done < total:
                    checkpoint(results, done, total)
    return results


def _merge_runs(earlier: dict[str, Any] | None, latest: dict[str, Any]) -> dict[str, Any]:
    """One configuration's result over interleaved rounds: all their times, the last outcome."""
    if earlier is None or earlier.get("status") != "ok":
        return latest if earlier is None else earlier
    if latest.get("status") != "ok":
        return earlier
    times = earlier["times"] + latest["times"]
    return {**latest, "times": times, "median_seconds": statistics.median(times)}


def run_throughput(
    args: argparse.Namespace, sizes: jobs.Sizes, workers: Workers, model_path: str
) -> dict[str, Any]:
    """The decode-throughput measurement, in its own worker."""
    spec = {"n_seqs": sizes.throughput_seqs, "seq_len": sizes.throughput_len}
    start = perf_counter()
    result = workers.run(
        {
            "throughput": {**spec, "repeats": args.repeats},
            "threads": args.threads,
            "model": model_path,
        }
    )
    result["spec"] = spec
    log(f"throughput: {result.get('status')} {result.get('error', '')}", perf_counter() - start)
    return result


def _summary(result: dict[str, Any]) -> str:
    status = result.get("status")
    if status == "ok":
        runs = ", ".join(f"{t:.2f}" for t in result["times"])
        return f"median {result['median_seconds']:.3f} s (runs {runs})"
    if status == "over budget":
        return f"over budget (estimated {result['estimate_seconds']:.0f} s per run)"
    return f"{status}: {result.get('error', '')}"


def log(message: str, seconds: float | None = None) -> None:
    suffix = f"  [{seconds:.0f} s]" if seconds is not None else ""
    print(message + suffix, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_from:
        return render_from(args)
    import pyllmattr as pla

    sizes = jobs.QUICK if args.quick else jobs.FULL
    model_path = str(args.model or pla.default_model_path())
    meta = machine_info(args, model_path)
    start = perf_counter()
    workloads = prepare_workloads(args, sizes, model_path)
    with tempfile.TemporaryDirectory(prefix="pla-bench-") as folder:
        workers = Workers(Path(folder), args.threads)
        throughput = run_throughput(args, sizes, workers, model_path)

        def checkpoint(results: dict, done: int, total: int) -> None:
            partial = {**meta, "progress": f"{done} of {total}", "elapsed": _minutes(start)}
            write_outputs(args, partial, throughput, workloads, results, quiet=True)

        results = run_all(args, workloads, workers, model_path, checkpoint)
    meta["elapsed"] = _minutes(start)
    write_outputs(args, meta, throughput, workloads, results)
    return 0


def render_from(args: argparse.Namespace) -> int:
    """The report of several earlier runs, and one scaling plot of their job 4 workloads
    (a prompt length measured in several runs is plotted from the last of them)."""
    runs = [json.loads(path.read_text()) for path in args.render_from]
    out = args.out.resolve()
    scaling: dict[str, jobs.Workload] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        for w in run["workloads"]:
            if w["job"] == 4:
                scaling[w["name"]] = jobs.Workload(**w)
                results[w["name"]] = run["results"].get(w["name"], {})
    link = None
    ordered = sorted(scaling.values(), key=lambda w: w.prompt_tokens)
    if ordered and report.plot_scaling(
        ordered, results, plot_path(args), runs[0]["meta"]["model_name"]
    ):
        link = os.path.relpath(plot_path(args), out.parent)
    extra = [path.read_text() for path in args.append]
    out.write_text(report.render_runs(runs, link, extra))
    log(f"wrote {out}")
    return 0


def _minutes(start: float) -> str:
    return f"{(perf_counter() - start) / 60:.1f} min"


def write_outputs(
    args: argparse.Namespace,
    meta: dict[str, Any],
    throughput: dict[str, Any],
    workloads: list[jobs.Workload],
    results: dict[str, dict[str, dict[str, Any]]],
    quiet: bool = False,
) -> None:
    """The report, the scaling plot (job 4) and optionally the raw JSON."""
    out = args.out.resolve()
    plot = plot_path(args)
    scaling = [w for w in workloads if w.job == 4]
    plotted = report.plot_scaling(scaling, results, plot, meta["model_name"])
    link = os.path.relpath(plot, out.parent) if plotted else None
    out.write_text(report.render(meta, throughput, workloads, results, link))
    if not quiet:
        log(f"wrote {out}" + (f" and {plot}" if plotted else ""))
    if args.json:
        raw = {
            "meta": meta,
            "throughput": throughput,
            "workloads": [asdict(w) for w in workloads],
            "results": results,
        }
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    sys.exit(main())
