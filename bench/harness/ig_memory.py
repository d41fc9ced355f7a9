"""Integrated gradients on PyTorch: wall time and peak memory, and torch vs llama.cpp scores.

Runs IG (n_steps=50, Gauss-Legendre) on SmolLM2-135M-Instruct loaded from the shipped
GGUF with ``pla.load_torch_gguf`` (dequantized to float32), over a 256-token prompt
(one feature per token, token 0 as baseline) and a 10-token greedy target, in a fresh
process, and reports wall time and peak RSS (``ru_maxrss``). A second fresh process
scores the same prompt and target with PyTorch and llama.cpp and reports how far their
per-token log-probs differ. The markdown goes between ``<!-- torch-ig -->`` and
``<!-- /torch-ig -->`` in BENCHMARKS.md when it has them, else to
bench/results/torch-ig.md.

``--layer L`` attributes at an inner layer instead (a decoder layer index or module
name, Captum's ``LayerIntegratedGradients``): it skips the back-end comparison and
writes between ``<!-- torch-ig-layer -->`` markers (bench/results/torch-ig-layer.md).

    python bench ig_memory                 # about 10 minutes on 2 cores
    python bench ig_memory --n-steps 4     # smoke test
    python bench ig_memory --layer 15      # at decoder layer 15's output
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import REPO, RESULTS, bench_command, command_line

BEGIN, END = "<!-- torch-ig -->", "<!-- /torch-ig -->"
LAYER_BEGIN, LAYER_END = "<!-- torch-ig-layer -->", "<!-- /torch-ig-layer -->"


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (ru_maxrss is in KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def workload(model: Any, n_prompt: int, n_target: int) -> tuple[str, list[int]]:
    """A prompt of exactly n_prompt tokens from the benchmark corpus and its greedy target."""
    from harness.texts import CORPUS

    ids = model.tokenize(CORPUS)[:n_prompt]
    text = model.detokenize(ids)
    if model.tokenize(text) != ids:
        raise RuntimeError("the cut prompt does not tokenize back to the same ids")
    return text, model.generate(ids, max_new_tokens=n_target, stop_at_eos=False)


def child_ig(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    import pyllmattr as pla

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = pla.load_torch_gguf(pla.default_model_path())
    load_seconds = time.perf_counter() - started
    text, target = workload(model, args.prompt_tokens, args.target_tokens)
    after_load = {"peak": peak_rss_mb(), "current": current_rss_mb()}
    inp = pla.TextTokenInput(text, model, baselines=0)
    started = time.perf_counter()
    result = pla.IntegratedGradients(model).attribute(
        inp,
        target=target,
        n_steps=args.n_steps,
        internal_batch_size=args.internal_batch_size,
        layer=layer_value(args.layer),
    )
    seconds = time.perf_counter() - started
    gap = np.abs(result.completeness_gap)
    return {
        "load_seconds": load_seconds,
        "attribute_seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_after_load_mb": after_load["peak"],
        "rss_after_load_mb": after_load["current"],
        "n_prompt": len(inp.encode(model).reference_ids),
        "n_target": len(target),
        "n_steps": args.n_steps,
        "layer": result.settings["layer"],
        "stats": result.stats,
        "max_abs_gap": float(gap.max()),
        "median_abs_gap": float(np.median(gap)),
        "seq_gap": result.seq_completeness_gap,
        "change": result.target_logprob - result.baseline_logprob,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def child_agreement(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    import pyllmattr as pla

    torch.set_num_threads(args.threads)
    path = pla.default_model_path()
    torch_model = pla.load_torch_gguf(path)
    text, target = workload(torch_model, args.prompt_tokens, args.target_tokens)
    with pla.load_gguf(path, n_ctx=1024, n_threads=args.threads) as llama:
        ids = llama.tokenize(text)
        same_tokens = ids == torch_model.tokenize(text)
        rows = [ids[:k] for k in (16, 64, 128, len(ids))]
        ours = torch_model.score(rows, target)
        theirs = llama.score(rows, target, share_prefix=False)
    delta = np.abs(ours - theirs)
    return {
        "same_tokens": same_tokens,
        "prompt_lengths": [len(r) for r in rows],
        "max_abs_delta_per_row": delta.max(axis=1).tolist(),
        "mean_abs_delta": float(delta.mean()),
        "max_abs_delta": float(delta.max()),
        "max_abs_delta_total": float(np.abs(ours.sum(1) - theirs.sum(1)).max()),
    }


def layer_value(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def run_child(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter, so its peak RSS is its own."""
    command = bench_command("ig_memory", "--child", kind, *forwarded(args))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def forwarded(args: argparse.Namespace) -> list[str]:
    out = [
        f"--n-steps={args.n_steps}",
        f"--prompt-tokens={args.prompt_tokens}",
        f"--target-tokens={args.target_tokens}",
        f"--threads={args.threads}",
        f"--layer={args.layer}",
    ]
    if args.internal_batch_size:
        out.append(f"--internal-batch-size={args.internal_batch_size}")
    return out


def markdown(ig: dict[str, Any], agree: dict[str, Any] | None, args: argparse.Namespace) -> str:
    stats = ig["stats"]
    command = command_line("ig_memory")
    at = "" if ig["layer"] == "embeddings" else f" at layer `{ig['layer']}`"
    lines = [
        f"### Integrated gradients on PyTorch{at} (`bench/harness/ig_memory.py`)",
        "",
        f"SmolLM2-135M-Instruct, `pla.load_torch_gguf` of the shipped Q4_1 GGUF (dequantized "
        f"to float32), {ig['n_prompt']}-token prompt (one feature per token, baseline token 0), "
        f"{ig['n_target']}-token greedy target, `IntegratedGradients(n_steps={ig['n_steps']}, "
        f"method='gausslegendre', layer={ig['layer']!r})`, "
        f"{stats['points_per_forward']} path points per forward, "
        f"torch {ig['torch']}, {ig['threads']} thread(s), "
        f"{platform.machine()}; a fresh process, on a machine shared with other jobs (times "
        f"are indicative). Command: `{command}`.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| peak RSS of the whole process (`ru_maxrss`) | {ig['peak_rss_mb']:.0f} MiB |",
        f"| peak RSS while loading the GGUF | {ig['peak_rss_after_load_mb']:.0f} MiB |",
        f"| RSS after loading (weights in float32) | {ig['rss_after_load_mb']:.0f} MiB |",
        f"| loading time | {ig['load_seconds']:.1f} s |",
        f"| attribution time (per-token and whole-target attributions) "
        f"| {ig['attribute_seconds']:.1f} s |",
        f"| forwards / backwards | {stats['n_forward_calls']} / {stats['n_backward_calls']} |",
        f"| completeness gap, max / median over target tokens "
        f"| {ig['max_abs_gap']:.3f} / {ig['median_abs_gap']:.3f} nats "
        f"(f(prompt) - f(baseline) = {ig['change']:.2f}) |",
    ]
    if agree is None:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "Per-token log-probs of the same prompt prefixes (16, 64, 128 and "
        f"{agree['prompt_lengths'][-1]} tokens) and target, PyTorch (dequantized float32) vs "
        "llama.cpp (Q4_1, each sequence scored alone): "
        f"max |Δ| per prefix {', '.join(f'{d:.3f}' for d in agree['max_abs_delta_per_row'])} "
        f"nats, mean |Δ| {agree['mean_abs_delta']:.3f}, whole-target |Δ| up to "
        f"{agree['max_abs_delta_total']:.3f}; tokenization identical: "
        f"{'yes' if agree['same_tokens'] else 'NO'}.",
    ]
    return "\n".join(lines) + "\n"


def write_report(
    section: str, benchmarks: Path, fallback: Path, markers: tuple[str, str] = (BEGIN, END)
) -> Path:
    begin, end = markers
    if benchmarks.exists():
        text = benchmarks.read_text()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            benchmarks.write_text(f"{head}{begin}\n{section}{end}{tail}")
            return benchmarks
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text(f"{begin}\n{section}{end}\n")
    return fallback


def default_out() -> Path:
    return RESULTS / "torch-ig.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--target-tokens", type=int, default=10)
    parser.add_argument("--internal-batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--layer", default="embeddings", help="'embeddings', a decoder layer index or a name"
    )
    parser.add_argument("--benchmarks", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--out", type=Path, default=default_out())
    parser.add_argument("--child", choices=["ig", "agreement"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        measure = child_ig if args.child == "ig" else child_agreement
        print(json.dumps(measure(args)))
        return 0
    ig = run_child("ig", args)
    print(json.dumps(ig, indent=1))
    if args.layer != "embeddings":
        # The back ends' scores do not depend on the layer: measured with the default.
        out = args.out.with_name("torch-ig-layer.md") if args.out == default_out() else args.out
        where = write_report(
            markdown(ig, None, args), args.benchmarks, out, (LAYER_BEGIN, LAYER_END)
        )
        print(f"written to {where}")
        return 0
    agree = run_child("agreement", args)
    print(json.dumps(agree, indent=1))
    where = write_report(markdown(ig, agree, args), args.benchmarks, args.out)
    print(f"written to {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
