"""Turn the workers' measurements into BENCHMARKS.md and the scaling plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.jobs import (
    CAPTUM_CONFIGS,
    CAPTUM_DEFAULT,
    CAPTUM_SINGLE,
    CONFIG_LABELS,
    LCPP_LOOP,
    LCPP_REUSE,
    NOISE_FLOOR_CONFIGS,
    PLA_F16,
    PLA_INDEPENDENT,
    PLA_Q8,
    PLA_SHARED,
    Workload,
)
from harness.runners import OTHER_WEIGHTS

Results = dict[str, dict[str, dict[str, Any]]]  # workload name -> config -> worker result

COLUMNS = [
    "configuration",
    "runs",
    "median s",
    "× pla shared",
    "setup s",
    "decoded",
    "trie",
    "naive",
    "padding",
    "decoded tok/s",
    "decoded ÷ best tok/s",
    "peak RSS MiB",
    "r vs Captum 1-pass",
    "r vs pla share_prefix=False",
]

METHODOLOGY = """\
- Every configuration runs in its own fresh Python process: it loads its model
  (*setup s*, not included in the timings), scores the unperturbed prompt twice
  (warm-up, and the unit of the time estimate), then times `runs` attributions.
  *median s* is the median wall time of one `attribute(...)` call, including
  building and tokenizing the perturbed prompts. *peak RSS* is that process's
  `ru_maxrss` at its end (Python, imports, model, all runs).
- All configurations use the same prompt token ids and target token ids; the
  target is pyllmattr's greedy continuation of the unperturbed prompt (job 3: a
  fixed answer).
- The pyllmattr and llama-cpp-python configurations run pyllmattr's attribution
  methods, so they score exactly the same perturbed prompts (sampling methods with
  the same seed); they differ only in the scorer. `share_prefix=False` is a proxy
  model whose `score` forces `share_prefix=False`. The llama-cpp-python loops score
  the prompts one at a time with `llama_cpp.Llama(..., n_threads=threads,
  n_threads_batch=threads, n_batch=512, logits_all=True)` (`n_threads_batch` defaults
  to every core, and prompts are evaluated as batches) and a numpy log-softmax at the
  target positions (`n_ctx` = prompt + target + 64,
  rounded up to a multiple of 64; llama-cpp-python's other defaults, e.g.
  `flash_attn=False`, while pyllmattr uses `flash_attn="auto"`). Tokenization and
  perturbations come from a pyllmattr model with a 64-cell context on the same
  weights (`pla.load_gguf(llm)`), which counts in their peak RSS. Both loops start
  every attribution from an empty cache.
- `Llama.eval` does not reuse prefixes (it appends after the `n_tokens` already in the
  cache, so the loop calls `reset()` first). llama-cpp-python's own prefix reuse lives
  in `Llama.generate` (longest common prefix with the previous prompt's `_input_ids`,
  then only the rest is evaluated); the *generate prefix reuse* configuration calls
  `next(Llama.generate(prompt + target, temp=0))` and reads `Llama.scores`, with the
  prompts in the order the method builds them.
- Captum 0.9 runs `LLMAttribution` on the GGUF dequantized to float32 by transformers
  (`torch.set_num_threads(threads)`); its inputs mirror pyllmattr's: the same
  features, baselines and target ids, and an empty perturbed prompt is scored from
  the same start token as in pyllmattr (Captum would pass an empty `input_ids`). Its decoded
  tokens are counted with a hook on the embedding layer. Captum's sampling methods
  draw their own permutations/samples (`torch.manual_seed(0)`), so their correlation
  with pyllmattr includes sampling noise.
- Captum configurations have a time budget per run: one evaluation of the unperturbed
  prompt times the number of evaluations estimates a run; a configuration whose
  estimate exceeds the budget is not run (*over budget*), and the number of runs is
  reduced so that the runs fit in the budget.
- *decoded tok/s* is tokens decoded per second of wall time; *decoded ÷ best tok/s* is
  the time the decoded tokens would take at the best batched llama.cpp throughput
  measured above (llama.cpp configurations only), plus, with the noise floor on, the
  prompt + target tokens of its extra evaluation (also paid by the llama-cpp-python
  loops, which run the same method code; not by Captum or deterministic models). The
  headline's *wall ÷ (decoded ÷ best tok/s)* divides by the same time.
- *r* is the Pearson correlation of the sequence attributions (`seq_attr`).
"""


def render(
    meta: dict[str, Any],
    throughput: dict[str, Any],
    workloads: list[Workload],
    results: Results,
    plot_link: str | None,
) -> str:
    """The whole BENCHMARKS.md text of one run."""
    parts = ["# Benchmarks", ""]
    if meta.get("progress"):
        parts += [f"**Incomplete: {meta['progress']} configurations measured so far.**", ""]
    parts += run_sections(meta, throughput, workloads, results, plot_link, level=2)
    parts += ["## How it was measured", "", METHODOLOGY]
    return "\n".join(parts)


def render_runs(
    runs: list[dict[str, Any]], plot_link: str | None, extra: Sequence[str] = ()
) -> str:
    """BENCHMARKS.md from several runs' raw measurements (``--json`` files), each with its
    own machine section, after a headline table over all of them; ``extra`` are reports
    of other benchmark scripts, added as they are."""
    parts = ["# Benchmarks", "", *headline_section(runs)]
    for i, run in enumerate(runs, 1):
        workloads = [Workload(**w) for w in run["workloads"]]
        jobs = sorted({w.job for w in workloads})
        heading = f"## Run {i}: job{'s' if len(jobs) > 1 else ''} {', '.join(map(str, jobs))}"
        parts += [heading + run_note(run["meta"]), ""]
        parts += run_sections(
            run["meta"], run["throughput"], workloads, run["results"], plot_link, level=3
        )
    if extra:
        parts += ["## Other benchmarks", "", *(text.strip() + "\n" for text in extra)]
    parts += ["## How it was measured", "", METHODOLOGY]
    return "\n".join(parts)


def run_sections(
    meta: dict[str, Any],
    throughput: dict[str, Any],
    workloads: list[Workload],
    results: Results,
    plot_link: str | None,
    level: int,
) -> list[str]:
    """Machine, throughput and job sections of one run; ``level`` is their heading depth."""
    best = best_throughput(throughput)
    h = "#" * level
    parts = [*machine_section(meta), *throughput_section(throughput, h)]
    for job in sorted({w.job for w in workloads}):
        parts += [f"{h} Job {job}", ""]
        for w in (w for w in workloads if w.job == job):
            parts += workload_section(
                w, results.get(w.name, {}), best, h + "#", meta["noise_floor"]
            )
        if job == 4:
            scaling = [w for w in workloads if w.job == 4]
            parts += scaling_section(scaling, results, plot_link, h + "#")
    return parts


HEADLINE = [
    "workload",
    "pyllmattr s",
    "Captum 1-pass ÷ pla",
    "Captum default ÷ pla",
    "llama-cpp loop ÷ pla",
    "llama-cpp prefix reuse ÷ pla",
    "pla ÷ pla q8_0",
    "pla ÷ pla f16",
    "decoded ÷ trie",
    "wall ÷ (decoded ÷ best tok/s)",
    "r vs Captum 1-pass",
    "r vs share_prefix=False",
]


def headline_section(runs: list[dict[str, Any]]) -> list[str]:
    """One row per workload: pyllmattr's time and how the peers compare (ratios > 1: pyllmattr
    is faster), from the run that measured it."""
    lines = [
        "Ratios are the peer's median time over pyllmattr's (`share_prefix=True`, the shipped "
        "weights) in the same run; *pla ÷ pla q8_0* and *pla ÷ pla f16* are the speed-ups of "
        "`requantize='q8_0'` and `requantize='f16'`.",
        "",
        _row(HEADLINE),
        _row(["---"] + ["---:"] * (len(HEADLINE) - 1)),
    ]
    for i, run in enumerate(runs, 1):
        best = best_throughput(run["throughput"])
        for w in run["workloads"]:
            res = run["results"].get(w["name"], {})
            extra = noise_floor_tokens(PLA_SHARED, w, run["meta"]["noise_floor"])
            title = f"{w['title']} (run {i}{run_note(run['meta'])})"
            lines.append(_row(_headline_row(title, res, best, extra)))
    return [*lines, ""]


def run_note(meta: dict[str, Any]) -> str:
    """A run's ``note`` (set by hand in its JSON, e.g. what changed since) for headings."""
    return f": {meta['note']}" if meta.get("note") else ""


def _headline_row(
    title: str, res: dict[str, Any], best: float | None, noise_tokens: int
) -> list[str]:
    shared = _median(res.get(PLA_SHARED))
    if shared is None:
        return [title, _status_cell(res.get(PLA_SHARED, {})), *["—"] * (len(HEADLINE) - 2)]

    def ratio(config: str, inverse: bool = False) -> str:
        other = _median(res.get(config))
        if other is None:
            return _status_cell(res.get(config, {})) if config in res else "—"
        return f"{(shared / other if inverse else other / shared):.2f}"

    stats = res[PLA_SHARED]["stats"]
    decoded, trie = stats.get("n_decoded"), stats.get("n_trie")
    ideal = ideal_seconds(decoded, noise_tokens, best)
    return [
        title,
        f"{shared:.2f}",
        ratio(CAPTUM_SINGLE),
        ratio(CAPTUM_DEFAULT),
        ratio(LCPP_LOOP),
        ratio(LCPP_REUSE),
        ratio(PLA_Q8, inverse=True),
        ratio(PLA_F16, inverse=True),
        f"{decoded / trie:.3f}" if decoded and trie and trie > 0 else "—",
        f"{shared / ideal:.2f}" if ideal else "—",
        _r(pearson(_attr(res.get(PLA_SHARED)), _attr(res.get(CAPTUM_SINGLE)))),
        _r(pearson(_attr(res.get(PLA_SHARED)), _attr(res.get(PLA_INDEPENDENT)))),
    ]


# ---------------------------------------------------------------- sections


def machine_section(meta: dict[str, Any]) -> list[str]:
    rows = [
        ("date", meta["date"]),
        ("command", f"`{meta['command']}`"),
        ("CPU", meta["cpu"]),
        ("cores", meta["cores"]),
        ("RAM", meta["ram"]),
        ("load average at start", meta["load"]),
        ("model", meta["model"]),
        ("threads", meta["threads"]),
        ("runs per configuration", meta["repeats"]),
        ("Captum time budget per run", f"{meta['budget']:.0f} s"),
        ("pyllmattr noise floor", _noise_floor(meta["noise_floor"])),
        ("software", meta["versions"]),
        ("repository", meta["commit"]),
        ("total benchmark time", meta["elapsed"]),
    ]
    lines = [_row(["", ""]), _row(["---", "---"])]
    lines += [_row([f"**{k}**", str(v)]) for k, v in rows]
    if meta.get("quick"):
        lines = ["**Smoke test (`--quick`): tiny sizes, not a benchmark.**", "", *lines]
    return [*lines, ""]


def _noise_floor(on: bool) -> str:
    if on:
        return (
            "on (the default: every attribution also scores the unperturbed prompt alone, "
            "except on deterministic models; included in the times and the ideal times, "
            "not in *decoded*)"
        )
    return "off (`--no-noise-floor`)"


def throughput_section(throughput: dict[str, Any], h: str = "##") -> list[str]:
    lines = [f"{h} Decode throughput", ""]
    if throughput.get("status") != "ok":
        return [*lines, f"Not measured: {_failure(throughput)}", ""]
    spec = throughput["spec"]
    lines += [
        f"{spec['n_seqs']} distinct random-token sequences of {spec['seq_len']} tokens and an "
        "8-token target, scored in one call (median of the runs). They share no prefix, so "
        "this measures batching alone.",
        "",
        _row(["scorer", "decoded", "decode calls", "median s", "tok/s"]),
        _row(["---"] + ["---:"] * 4),
    ]
    for r in throughput["rows"]:
        lines.append(
            _row(
                [
                    r["label"],
                    r["n_decoded"],
                    r["n_decode_calls"],
                    f"{r['median_seconds']:.3f}",
                    f"{r['tokens_per_second']:.0f}",
                ]
            )
        )
    best = best_throughput(throughput)
    return [*lines, "", f"Best batched throughput: **{best:.0f} tokens/s**.", ""]


def workload_section(
    w: Workload,
    res: dict[str, dict[str, Any]],
    best_tps: float | None,
    h: str = "###",
    noise_floor: bool = True,
) -> list[str]:
    evaluations = res.get(PLA_SHARED, {}).get("stats", {}).get("n_evaluations", "?")
    lines = [
        f"{h} {w.title}",
        "",
        f"Prompt {w.prompt_tokens} tokens, {w.n_features} features, {evaluations} evaluations; "
        f"target {len(w.target_ids)} tokens `{w.target_text.strip()}`.",
        "",
        _row(COLUMNS),
        _row(["---"] + ["---:"] * (len(COLUMNS) - 1)),
    ]
    shared = _median(res.get(PLA_SHARED))
    captum = _attr(res.get(CAPTUM_SINGLE))
    independent = _attr(res.get(PLA_INDEPENDENT))
    for config in w.configs:
        r = res.get(config, {"status": "error", "error": "not run"})
        extra = noise_floor_tokens(config, vars(w), noise_floor)
        lines.append(_row(_config_row(config, r, shared, best_tps, captum, independent, extra)))
    return [*lines, *_notes(w.configs, res), ""]


def _notes(configs: list[str], res: dict[str, dict[str, Any]]) -> list[str]:
    """The configurations' notes, each note once with every configuration that made it."""
    grouped: dict[str, list[str]] = {}
    for config in configs:
        r = res.get(config, {})
        notes = list(r.get("notes", []))
        if r.get("status") == "error" and "traceback" in r:
            notes.append(f"failed: `{_failure(r)}`")
        for note in notes:
            grouped.setdefault(note, []).append(f"*{CONFIG_LABELS[config]}*")
    if not grouped:
        return []
    return ["", *(f"- {', '.join(who)}: {note}" for note, who in grouped.items())]


def scaling_section(
    workloads: list[Workload], results: Results, plot_link: str | None, h: str = "###"
) -> list[str]:
    lines = [f"{h} Scaling summary", ""]
    header = ["configuration"] + [f"{w.prompt_tokens} tokens" for w in workloads]
    lines += [_row(header), _row(["---"] + ["---:"] * len(workloads))]
    for config in workloads[0].configs:
        cells = [CONFIG_LABELS[config]]
        for w in workloads:
            r = results.get(w.name, {}).get(config, {})
            if r.get("status") == "ok":
                cells.append(f"{r['median_seconds']:.2f} s, {r['stats']['n_decoded']} tok")
            else:
                cells.append(_status_cell(r))
        lines.append(_row(cells))
    if plot_link:
        lines += ["", f"![scaling of word-level feature ablation]({plot_link})"]
    return [*lines, ""]


# ---------------------------------------------------------------- rows and cells


def _config_row(
    config: str,
    r: dict[str, Any],
    shared: float | None,
    best_tps: float | None,
    captum: np.ndarray | None,
    independent: np.ndarray | None,
    noise_tokens: int = 0,
) -> list[Any]:
    label = CONFIG_LABELS[config]
    rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "—"
    if r.get("status") != "ok":
        setup = f"{r['load_seconds']:.1f}" if "load_seconds" in r else "—"
        return [label, 0, _status_cell(r), "—", setup, *["—"] * 6, rss, "—", "—"]
    stats = r["stats"]
    median = r["median_seconds"]
    decoded = stats.get("n_decoded")
    ideal = None if config in CAPTUM_CONFIGS else ideal_seconds(decoded, noise_tokens, best_tps)
    bound = f"{ideal:.2f}" if ideal else "—"
    return [
        label,
        len(r["times"]),
        f"{median:.3f}",
        f"{median / shared:.2f}" if shared else "—",
        f"{r['load_seconds']:.1f}",
        _int(decoded),
        _int(stats.get("n_trie")),
        _int(stats.get("n_naive")),
        _int(stats.get("n_padding")),
        f"{decoded / median:.0f}" if decoded else "—",
        bound,
        rss,
        _r(pearson(_attr(r), captum)),
        _r(pearson(_attr(r), independent)),
    ]


def ideal_seconds(decoded: int | None, noise_tokens: int, best_tps: float | None) -> float | None:
    """What decoding the attribution's tokens and its noise floor's takes at the best
    batched throughput of the run (None when either is unknown)."""
    if not decoded or not best_tps:
        return None
    return (decoded + noise_tokens) / best_tps


def noise_floor_tokens(config: str, w: dict[str, Any], noise_floor: bool) -> int:
    """Tokens of the noise floor's extra evaluation (the unperturbed prompt and the target,
    scored alone) that ``config`` decodes besides its *decoded*."""
    if not noise_floor or config not in NOISE_FLOOR_CONFIGS:
        return 0
    return int(w["prompt_tokens"]) + len(w["target_ids"])


def _status_cell(r: dict[str, Any]) -> str:
    status = r.get("status", "not run")
    if status == "over budget":
        return f"over budget (est. {r['estimate_seconds']:.0f} s)"
    if status == "error":
        return f"failed: {_failure(r)}"
    return status


def _failure(r: dict[str, Any]) -> str:
    return str(r.get("error", "unknown error")).replace("|", "/").splitlines()[0][:120]


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _int(value: Any) -> str:
    return "—" if value is None or value < 0 else str(value)


def _r(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _median(r: dict[str, Any] | None) -> float | None:
    return r["median_seconds"] if r and r.get("status") == "ok" else None


def _attr(r: dict[str, Any] | None) -> np.ndarray | None:
    return np.asarray(r["seq_attr"], dtype=float) if r and r.get("status") == "ok" else None


def pearson(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Pearson correlation, or None when either side is missing or constant."""
    if a is None or b is None or a.shape != b.shape or a.size < 2:
        return None
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def best_throughput(throughput: dict[str, Any]) -> float | None:
    """The best tokens/s of pyllmattr's batched scoring, or None when not measured."""
    if throughput.get("status") != "ok":
        return None
    rates = [
        r["tokens_per_second"]
        for r in throughput["rows"]
        if "pyllmattr" in r["label"] and OTHER_WEIGHTS not in r["label"]
    ]
    return max(rates) if rates else None


# ---------------------------------------------------------------- plot


def plot_scaling(workloads: list[Workload], results: Results, path: Path, model: str) -> bool:
    """Median time and decoded tokens against prompt length; False when nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not workloads:
        return False
    fig, (ax_time, ax_tokens) = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = False
    for config in (c for c in CONFIG_LABELS if any(c in w.configs for w in workloads)):
        points = [
            (w.prompt_tokens, r["median_seconds"], r["stats"]["n_decoded"])
            for w in workloads
            if (r := results.get(w.name, {}).get(config, {})).get("status") == "ok"
        ]
        if not points:
            continue
        x, seconds, decoded = zip(*points, strict=True)
        ax_time.plot(x, seconds, marker="o", label=CONFIG_LABELS[config])
        ax_tokens.plot(x, decoded, marker="o", label=CONFIG_LABELS[config])
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    lengths = sorted({w.prompt_tokens for w in workloads})
    for ax, ylabel in ((ax_time, "median wall time (s)"), (ax_tokens, "tokens decoded")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(lengths, [str(n) for n in lengths])
        ax.minorticks_off()
        ax.set_xlabel("prompt tokens")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_time.legend(fontsize=8)
    fig.suptitle(f"Word-level feature ablation, {model}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
