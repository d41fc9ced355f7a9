"""``pyllmattr doctor [--model REF] [--json]``: what to paste into a bug report.

Like ``torch.utils.collect_env`` and ``llama-bench``: pyllmattr's and llama.cpp's versions,
llama.cpp's system info (the CPU features its build uses, the back ends compiled in, the
devices it finds), Python and the OS; with a model, what its GGUF header says, how the
exact layout settled on this machine (block, self-check or cache, or the fallback and
what it costs) and the throughput of the exact and the fast layout on a short job.

It never fails on what it reports: a model that cannot be found or loaded, or a part that
cannot be read, becomes an ``error`` entry with the reason, and the exit status stays 0
(2 only for usage errors, from argparse). ``--json`` prints the same report as JSON
whose keys (``FORMAT`` below) stay stable.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when a key of the JSON report changes meaning or goes away
# The short job: leave-one-out over a prompt of this many tokens, with a target of
# TARGET_TOKENS, branches sized so that each layout takes about BUDGET_S.
PROMPT_TOKENS = 32
TARGET_TOKENS = 4
BUDGET_S = 1.5
JOB_TEXT = (
    " The committee met on a cold morning in early March to review the annual budget, the new "
    "library and the plans for the river park. After a long debate about costs, schools, roads "
    "and taxes, the members agreed to meet again in April with better numbers."
)
# CPU feature sets on which the exact layout's rules were measured (docs/numerics.md).
VERIFIED_CPUS = {"AVX512": "x86-64 AVX-512 (16-cell blocks)", "AVX2": "x86-64 AVX2 (8-cell blocks)"}


def doctor(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print the report (text or ``--json``); always exit 0."""
    report = collect(args.model, n_threads=args.threads, n_gpu_layers=args.gpu_layers)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def collect(model: str | None, n_threads: int | None = None, n_gpu_layers: int = 0) -> dict:
    """The whole report as a dict (the ``--json`` output)."""
    llama = _section(llama_cpp_report)
    return {
        "format": FORMAT,
        "pyllmattr": _version("pyllmattr"),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": _section(platform_report),
        "llama_cpp": llama,
        "exact_layout": _section(lambda: cpu_expectation(llama)),
        "cache": _section(cache_report),
        "model": None if model is None else model_report(model, n_threads, n_gpu_layers),
    }


def _section(build: Callable[[], dict]) -> dict:
    """``build()``, or ``{"error": why}``: one unreadable part must not hide the others."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 (a report of what failed is the point here)
        return {"error": _one_line(exc)}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- the machine


def platform_report() -> dict:
    from ..models.selfcheck_cache import cpu_identity

    cpu = cpu_identity()
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu.get("model") or None,
        "cpu_count": os.cpu_count(),
    }


def llama_cpp_report() -> dict:
    from .._native import _core

    info = _core.system_info()
    features = parse_system_info(info["system_info"])
    return {
        "llama_cpp_python": _version("llama-cpp-python"),
        "ggml_version": info["ggml_version"],
        "ggml_commit": info["ggml_commit"],
        "system_info": info["system_info"],
        "cpu_features": sorted(k for k, v in features.get("CPU", {}).items() if v == "1"),
        "backends": info["backends"],
        "gpu_offload": info["gpu_offload"],
        "devices": info["devices"],
    }


def parse_system_info(line: str) -> dict[str, dict[str, str]]:
    """llama_print_system_info's ``CPU : AVX = 1 | ... | CUDA : ARCHS = 890 | ...`` as
    ``{"CPU": {"AVX": "1", ...}, "CUDA": {"ARCHS": "890"}}``.

    Example:
        >>> parse_system_info("CPU : SSE3 = 1 | AVX2 = 1 | ")
        {'CPU': {'SSE3': '1', 'AVX2': '1'}}
    """
    parsed: dict[str, dict[str, str]] = {}
    section = "CPU"
    for part in line.split("|"):
        if ":" in part:  # "CPU : SSE3 = 1" opens a section
            name, _, part = part.partition(":")
            section = name.strip()
        key, eq, value = part.partition("=")
        if eq:
            parsed.setdefault(section, {})[key.strip()] = value.strip()
    return parsed


def cpu_expectation(llama: dict) -> dict:
    """The block the exact layout will try first on this CPU, and whether its rules were
    measured on this kind of CPU (the self-check decides either way)."""
    features = set(llama.get("cpu_features", []))
    known: str | None
    if "AVX512" in features:
        block, known = 16, VERIFIED_CPUS["AVX512"]
    elif "AVX2" in features or "AVX" in features:
        block, known = 8, VERIFIED_CPUS["AVX2"] if "AVX2" in features else None
    elif "NEON" in features:
        block, known = 8, None
    else:
        block, known = 64, None
    note = (
        f"measured on {known}"
        if known
        else "unverified on this kind of CPU: the self-check decides at the first exact call; "
        "if no rules pass, exact scoring scores every sequence alone (still exact, without "
        "prefix sharing: as slow as scoring one by one)"
    )
    return {"first_block": block, "verified_kind": known is not None, "note": note}


def cache_report() -> dict:
    from ..models.cache_dir import user_cache_dir
    from ..models.selfcheck_cache import SUBFOLDER

    folder = user_cache_dir()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    writable = existing.is_dir() and os.access(existing, os.W_OK)
    entries = len(list((folder / SUBFOLDER).glob("*.json"))) if folder.is_dir() else 0
    return {"folder": str(folder), "writable": writable, "selfcheck_entries": entries}


# ---------------------------------------------------------------- the model


def model_report(ref: str, n_threads: int | None, n_gpu_layers: int) -> dict:
    """What the GGUF header says, the exact layout's outcome and the throughput; an
    ``error`` or ``load_error`` entry instead of what could not be had."""
    from ..frontend import model_file
    from ..models.gguf_header import format_params, format_size, read_gguf_info

    report: dict[str, Any] = {"reference": ref, "path": None}
    try:
        path = model_file(ref)  # the reference resolved, checked to be a GGUF file
        report["path"] = str(path)
        info = read_gguf_info(path)
    except (ValueError, OSError) as exc:
        report["error"] = _one_line(exc)
        return report
    report.update(
        architecture=info.architecture,
        name=info.name,
        quantization=info.quantization,
        n_params=info.n_params,
        parameters=format_params(info.n_params),
        size_bytes=info.size_bytes,
        size=format_size(info.size_bytes),
        context_length=info.context_length,
    )
    report.update(_measure(path, n_threads, n_gpu_layers))
    return report


def _measure(path: Path, n_threads: int | None, n_gpu_layers: int) -> dict:
    """The exact layout's outcome and the short job in both layouts."""
    import pyllmattr as pla

    options: dict[str, Any] = {"n_threads": n_threads, "n_gpu_layers": n_gpu_layers}
    try:
        model = pla.load_gguf(path, deterministic=True, **options)
    except (ValueError, RuntimeError) as exc:
        return {"load_error": _one_line(exc)}
    result: dict[str, Any] = {"n_threads": model._engine.options.n_threads}
    with model:
        result["exact"] = _section(lambda: exact_outcome(model))
        try:
            job = short_job(model)
            exact = run_job(model, job)
        except (ValueError, RuntimeError) as exc:
            result["throughput"] = {"error": _one_line(exc)}
            return result
    try:
        with pla.load_gguf(path, deterministic=False, **options) as fast_model:
            fast = run_job(fast_model, job)
    except (ValueError, RuntimeError) as exc:
        fast = {"error": _one_line(exc)}
    result["throughput"] = _throughput(job, exact, fast)
    if result["exact"].get("verified") is False:
        result["exact"]["fallback"] = _fallback_cost(exact)
    return result


def exact_outcome(model: Any) -> dict:
    """Block, rows, verified, by self-check or cache, and the check's time in this run."""
    started = time.perf_counter()
    block = model.exact_block  # settles the rules: from the cache, or the self-check runs
    seconds = time.perf_counter() - started
    outcome = model._exact_source.outcome
    by = model.exact_verified_by
    return {
        "block": block,
        "row_mult": outcome.row_mult,
        "row_min": outcome.row_min,
        "verified": outcome.verified,
        "verified_by": by,
        "check_seconds": round(seconds, 3) if by == "self-check" else None,
        "scores_are_exact": model.scores_are_exact,
    }


def short_job(model: Any) -> dict:
    """Leave-one-out over a 32-token prompt, with as many branches as fit about
    ``BUDGET_S`` at the rate one unshared prompt scores at."""
    tokens = model.tokenize(JOB_TEXT)  # with BOS where the model wants it
    prompt = tokens[:PROMPT_TOKENS]
    target = tokens[PROMPT_TOKENS : PROMPT_TOKENS + TARGET_TOKENS]
    started = time.perf_counter()
    model.score([prompt], target)
    rate = (len(prompt) + len(target)) / max(time.perf_counter() - started, 1e-6)
    per_branch = len(prompt) / 2 + len(target)
    branches = int((rate * BUDGET_S - len(prompt)) / per_branch)
    branches = max(2, min(branches, len(prompt) - 1))
    step = (len(prompt) - 1) / branches
    cuts = sorted({1 + int(i * step) for i in range(branches)})
    sequences = [prompt] + [prompt[:c] + prompt[c + 1 :] for c in cuts]
    return {"sequences": sequences, "target": target, "branches": len(cuts)}


def run_job(model: Any, job: dict) -> dict:
    """The job's time and decoded tokens, after a warm-up call (a context's first decodes
    allocate its buffers and start its threads)."""
    model.score(job["sequences"][:1], job["target"])
    _, stats = model.score(job["sequences"], job["target"], return_stats=True)
    return {
        "seconds": stats.seconds,
        "decoded": stats.n_decoded,
        "trie": stats.n_trie,
        "naive": stats.n_naive,
        "tokens_per_s": stats.n_decoded / stats.seconds if stats.seconds > 0 else None,
    }


def _throughput(job: dict, exact: dict, fast: dict) -> dict:
    ratio = None
    if "error" not in fast and fast["seconds"] > 0:
        ratio = round(exact["seconds"] / fast["seconds"], 3)
    return {
        "job": f"leave-one-out, {len(job['sequences'][0])}-token prompt, {job['branches']} "
        f"branches, {len(job['target'])}-token target",
        "exact": exact,
        "fast": fast,
        "exact_over_fast_time": ratio,
    }


def _fallback_cost(exact: dict) -> str:
    factor = exact["naive"] / exact["trie"] if exact["trie"] else float("nan")
    return (
        "no rules passed the self-check: exact calls score every sequence alone (still "
        f"exact, no prefix sharing); on the job above that decodes {exact['naive']} tokens "
        f"where sharing would decode {exact['trie']} ({factor:.2f}x)"
    )


# ---------------------------------------------------------------- text


def format_report(report: dict) -> str:
    """The report as aligned text lines."""
    lines = ["pyllmattr doctor (paste this into a bug report; --json for the same as JSON)", ""]
    add = _adder(lines)
    py = report["python"]
    add("pyllmattr", report["pyllmattr"])
    add("python", f"{py['version']} ({py['implementation']}) {py['executable']}")
    plat = report["platform"]
    if "error" in plat:
        add("platform", f"unknown ({plat['error']})")
    else:
        add("platform", f"{plat['system']} {plat['release']} {plat['machine']}")
        add("CPU", f"{plat['cpu'] or '?'} ({plat['cpu_count']} logical cores)")
    _format_llama(add, report["llama_cpp"])
    layout = report["exact_layout"]
    if "error" not in layout:
        add("exact layout", f"first block {layout['first_block']}: {layout['note']}")
    cache = report["cache"]
    if "error" in cache:
        add("cache", cache["error"])
    else:
        state = "writable" if cache["writable"] else "NOT writable: self-checks run every time"
        add(
            "cache", f"{cache['folder']} ({cache['selfcheck_entries']} self-check entries, {state})"
        )
    if report["model"] is not None:
        lines.append("")
        _format_model(add, report["model"])
    return "\n".join(lines)


def _adder(lines: list[str]) -> Callable[[str, Any], None]:
    def add(label: str, value: Any) -> None:
        lines.append(f"{label:<16} {value}")

    return add


def _format_llama(add: Callable[[str, Any], None], llama: dict) -> None:
    if "error" in llama:
        add("llama.cpp", f"unknown ({llama['error']})")
        return
    add(
        "llama.cpp",
        f"llama-cpp-python {llama['llama_cpp_python']}, ggml {llama['ggml_version']} "
        f"({llama['ggml_commit']})",
    )
    add("  system info", llama["system_info"].strip(" |"))
    add("  CPU features", " ".join(llama["cpu_features"]) or "none reported")
    offload = "yes" if llama["gpu_offload"] else "no"
    add("  back ends", f"{', '.join(llama['backends'])} (GPU offload: {offload})")
    for i, dev in enumerate(llama["devices"]):
        memory = f", {dev['memory_total'] / 2**30:.1f} GiB" if dev["memory_total"] else ""
        label = "  devices" if i == 0 else ""
        add(label, f"{dev['name']}: {dev['description']} ({dev['type']}{memory})")


def _format_model(add: Callable[[str, Any], None], model: dict) -> None:
    path = model["path"] or "?"
    add("model", path if path == model["reference"] else f"{model['reference']} -> {path}")
    if "error" in model:
        add("  error", model["error"])
        return
    context = model["context_length"] or "?"
    add(
        "  header",
        f"{model['architecture']}, {model['parameters']} parameters, {model['quantization']}, "
        f"{model['size']}, trained context {context}",
    )
    if "load_error" in model:
        add("  load error", model["load_error"])
        return
    exact = model["exact"]
    if "error" in exact:
        add("  exact layout", f"unknown ({exact['error']})")
    else:
        add("  exact layout", _exact_line(exact))
        if "fallback" in exact:
            add("  fallback", exact["fallback"])
    throughput = model["throughput"]
    if "error" in throughput:
        add("  throughput", f"not measured ({throughput['error']})")
        return
    add("  job", f"{throughput['job']}, {model['n_threads']} threads")
    for name in ("exact", "fast"):
        part = throughput[name]
        if "error" in part:
            add(f"  {name}", f"failed ({part['error']})")
        else:
            rate = part["tokens_per_s"]
            add(
                f"  {name}",
                f"{rate:.0f} tokens/s ({part['decoded']} tokens in {part['seconds']:.2f} s)"
                if rate
                else f"{part['decoded']} tokens",
            )
    if throughput["exact_over_fast_time"] is not None:
        ratio = throughput["exact_over_fast_time"]
        add("  exact/fast", f"{ratio:.2f}x the time (one short run: a rough figure)")


def _exact_line(exact: dict) -> str:
    rows = f"rows: multiple of {exact['row_mult']}, at least {exact['row_min']}"
    rules = f"block {exact['block']} ({rows})"
    if exact["verified_by"] == "cache":
        source = "from the cache (an earlier self-check on this machine and model)"
    else:
        source = f"by the self-check, {exact['check_seconds']:.1f} s in this run"
    state = "verified" if exact["verified"] else "NOT verified (fallback below)"
    guarantee = "" if exact["scores_are_exact"] else "; not guaranteed with GPU layers"
    return f"{rules}, {state} {source}{guarantee}"
