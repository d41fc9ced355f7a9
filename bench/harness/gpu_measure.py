"""What the GPU check measures in one process, on one placement of the model.

Run by ``python bench gpu_check`` once per side (the CPU alone, all layers on the GPU,
the CPU with the GPU visible), each in a fresh process so that a crash or a hidden device
stays in it:

    python bench gpu_measure --side gpu --n-gpu-layers -1 --json OUT.json [--quick]

It writes one JSON object: llama.cpp's system info, the layout the default load chose
(block, verified by the self-check or not), every reference sequence's scores when scored
alone, the batch noise of that layout (the same sequence in other slots; prefix-shared
against alone), word-level feature ablation and a dataset job with their times, and, with
``--deterministic``, the same for ``deterministic=True``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import pyllmattr as pla
from harness import dataset_job
from harness.texts import PALM_COAST

TARGET = " wife and two kids."
FA_TEXT = PALM_COAST + " wife and two kids, who all love his lasagna on Sundays."
FA_TARGET = " He"
N_CTX = 2048


def leave_one_out(prompt: list[int], step: int) -> list[list[int]]:
    """The prompt, then copies without one token each (every ``step``-th, BOS kept)."""
    return [prompt] + [prompt[:i] + prompt[i + 1 :] for i in range(1, len(prompt), step)]


def timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


def layout_report(model: Any) -> dict[str, Any]:
    """The layout a load chose; exact_block runs the self-check when it has not run yet."""
    block, seconds = timed(lambda: model.exact_block)
    return {
        "layout": model.layout.name,
        "deterministic": model.deterministic,
        "scores_are_exact": model.scores_are_exact,
        "exact_block": block,
        "exact_verified": model.exact_verified,
        "exact_verified_by": model.exact_verified_by,
        "self_check_s": seconds if block is not None else None,
    }


def scores_alone(model: Any, sequences: list[list[int]], target: list[int]) -> np.ndarray:
    """Each sequence in a call of its own: what "alone" means everywhere in this report."""
    return np.stack([model.score([s], target, share_prefix=False)[0] for s in sequences])


def batch_noise(model: Any, prompt: list[int], target: list[int]) -> dict[str, Any]:
    """How far this layout's scores move with the batch: the prompt in other slots of a
    mixed batch, and prefix-shared leave-one-out, each against the sequence alone."""
    alone = model.score([prompt], target, share_prefix=False)[0]
    others = [prompt[:i] + prompt[i + 1 :] for i in range(0, len(prompt), 4)]
    slot = {}
    for k in (0, 3, len(others)):
        mixed = model.score(others[:k] + [prompt] + others[k:], target)[k]
        slot[str(k)] = {"per_token": max_abs(mixed, alone), "sum": abs(mixed.sum() - alone.sum())}
    sequences = leave_one_out(prompt, 3)
    shared, stats = model.score(sequences, target, return_stats=True)
    by_one = scores_alone(model, sequences, target)
    return {
        "slots": slot,
        "slot_max_per_token": max(v["per_token"] for v in slot.values()),
        "shared_vs_alone_per_token": max_abs(shared, by_one),
        "shared_vs_alone_sum": max_abs(shared.sum(axis=1), by_one.sum(axis=1)),
        "shared_bit_identical": bool(np.array_equal(shared, by_one)),
        "n_sequences": len(sequences),
        "n_decoded": int(stats.n_decoded),
        "n_trie": int(stats.n_trie),
    }


def loo_timing(model: Any, sequences: list[list[int]], target: list[int], repeats: int) -> dict:
    """Prefix-shared leave-one-out: the first call (self-check included where the layout
    has one) and the median of ``repeats`` more."""
    _, first = timed(lambda: model.score(sequences, target))
    warm = [timed(lambda: model.score(sequences, target))[1] for _ in range(repeats)]
    return {"first_s": first, "warm_s": statistics.median(warm), "repeats": repeats}


def feature_ablation(model: Any, text: str) -> dict[str, Any]:
    inp = pla.TextTemplateInput.from_text(text, by="word")
    method = pla.FeatureAblation(model)
    result, first = timed(lambda: method.attribute(inp, target=FA_TARGET))
    _, warm = timed(lambda: method.attribute(inp, target=FA_TARGET))
    return {
        "n_features": len(result.seq_attr),
        "seq_attr": [float(x) for x in result.seq_attr],
        "noise_floor": float(result.noise_floor or 0.0),
        "first_s": first,
        "warm_s": warm,
    }


def dataset(model: Any, n: int) -> dict[str, Any]:
    records = dataset_job.records(n)
    results, seconds = timed(lambda: pla.attribute_dataset(model, records, progress=False))
    return {
        "n_inputs": n,
        "seq_attr": [[float(x) for x in r.seq_attr] for r in results],
        "seconds": seconds,
    }


def measure(model: Any, sizes: dict[str, Any]) -> dict[str, Any]:
    """Everything this report asks of one loaded model."""
    prompt = model.tokenize(PALM_COAST)
    target = model.tokenize(TARGET, add_special=False)
    sequences = leave_one_out(prompt, sizes["loo_step"])
    out: dict[str, Any] = {"layout": layout_report(model)}
    out["loo_timing"] = loo_timing(model, sequences, target, sizes["repeats"])
    out["scores_alone"] = scores_alone(model, sequences, target).tolist()
    out["noise"] = batch_noise(model, prompt, target)
    out["feature_ablation"] = feature_ablation(model, sizes["fa_text"])
    if sizes["dataset"] > 0:
        out["dataset"] = dataset(model, sizes["dataset"])
    return out


def system_info() -> str:
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode(errors="replace").strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = (
        {"repeats": 1, "dataset": 2, "loo_step": 6, "fa_text": PALM_COAST}
        if args.quick
        else {"repeats": 3, "dataset": 48, "loo_step": 2, "fa_text": FA_TEXT}
    )
    model_path = args.model or pla.default_model_path()
    common = {"n_ctx": N_CTX, "n_threads": args.threads, "n_gpu_layers": args.n_gpu_layers}
    out: dict[str, Any] = {
        "side": args.side,
        "n_gpu_layers": args.n_gpu_layers,
        "n_threads": args.threads,
        "model": str(model_path),
        "system_info": system_info(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    # --fast-default: the layout a GPU load gets by default, for a dry run on the CPU.
    default = {"deterministic": False} if args.fast_default else {}
    model, out["load_s"] = timed(lambda: pla.load_gguf(model_path, **common, **default))
    with model:
        out["default"] = measure(model, sizes)
    if args.deterministic:
        with pla.load_gguf(model_path, deterministic=True, **common) as model:
            out["deterministic"] = measure(model, {**sizes, "dataset": 0})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", required=True)
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", help="a .gguf file (default: pla.default_model_path())")
    parser.add_argument("--deterministic", action="store_true", help="also deterministic=True")
    parser.add_argument(
        "--fast-default", action="store_true", help="default load with deterministic=False"
    )
    parser.add_argument("--quick", action="store_true", help="smaller jobs (a dry run)")
    parser.add_argument("--json", required=True, help="where to write the measurements")
    args = parser.parse_args(argv)
    Path(args.json).write_text(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
