"""Benchmark jobs: what is attributed, with which method, by which configurations.

A :class:`Workload` is one attribution (input, method, target) that every
configuration of its job runs. Workloads are plain data so that they can be sent
to the worker subprocesses as JSON; :func:`resolve` fills in what needs the
model's tokenizer (the prompt cut to length, the target token ids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness import texts

PLA_SHARED = "pla-shared"
PLA_INDEPENDENT = "pla-independent"
PLA_DETERMINISTIC = "pla-deterministic"
PLA_FAST = "pla-fast"
PLA_FLASH64 = "pla-flash64"
PLA_Q8 = "pla-q8_0"
PLA_F16 = "pla-f16"
LCPP_LOOP = "llama-cpp-loop"
LCPP_REUSE = "llama-cpp-reuse"
CAPTUM_SINGLE = "captum-single-pass"
CAPTUM_DEFAULT = "captum-default"

CONFIG_LABELS = {
    PLA_SHARED: "pyllmattr, share_prefix=True",
    PLA_INDEPENDENT: "pyllmattr, share_prefix=False",
    PLA_DETERMINISTIC: "pyllmattr, deterministic=True",
    PLA_FAST: "pyllmattr, deterministic=False (the fast layout, the default before 0.2)",
    PLA_FLASH64: "pyllmattr, the flash64 layout (the 64-cell layout before 0.2; benchmarks only)",
    PLA_Q8: "pyllmattr, requantize='q8_0' (converted weights)",
    PLA_F16: "pyllmattr, requantize='f16' (converted weights)",
    LCPP_LOOP: "llama-cpp-python loop (eval)",
    LCPP_REUSE: "llama-cpp-python loop (generate prefix reuse)",
    CAPTUM_SINGLE: "Captum, forward_in_tokens=False",
    CAPTUM_DEFAULT: "Captum, default (token by token)",
}
ALL_CONFIGS = list(CONFIG_LABELS)
SCALING_CONFIGS = [PLA_SHARED, PLA_INDEPENDENT, PLA_Q8, PLA_F16, LCPP_LOOP, CAPTUM_SINGLE]
CAPTUM_CONFIGS = {CAPTUM_SINGLE, CAPTUM_DEFAULT}
# pyllmattr configurations whose models are not batch-invariant, so that every attribution
# also scores the unperturbed prompt alone for its noise floor (the default, deterministic=None,
# is exact on the CPU back end).
NOISE_FLOOR_CONFIGS = {PLA_FAST, LCPP_LOOP, LCPP_REUSE}
# Configurations that load the model in these layouts (pyllmattr._bench.load_gguf_layout;
# deterministic=True is "exact", False "fast"; flash64 has no deterministic= value).
LAYOUTS = {PLA_DETERMINISTIC: "exact", PLA_FAST: "fast", PLA_FLASH64: "flash64"}
# Configurations on weights converted with load_gguf(requantize=...), and the conversion.
CONVERSIONS = {PLA_Q8: "q8_0", PLA_F16: "f16"}


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one benchmark run (full or ``--quick``)."""

    job1_text: str
    target_tokens: int
    job2_tokens: int
    svs_samples: int
    kernel_shap_samples: int
    passages: int
    lengths: tuple[int, ...]
    throughput_seqs: int
    throughput_len: int


FULL = Sizes(
    job1_text=texts.PALM_COAST,
    target_tokens=8,
    job2_tokens=250,
    svs_samples=10,
    kernel_shap_samples=200,
    passages=8,
    lengths=(64, 256, 1024),
    throughput_seqs=16,
    throughput_len=256,
)
QUICK = Sizes(
    job1_text=texts.PALM_COAST_QUICK,
    target_tokens=3,
    job2_tokens=40,
    svs_samples=2,
    kernel_shap_samples=16,
    passages=3,
    lengths=(16, 32, 64),
    throughput_seqs=4,
    throughput_len=32,
)


@dataclass
class Workload:
    """One attribution run by every configuration of a job.

    ``inp`` describes the input: ``{"kind": "token", "text": ...}`` (TextTokenInput),
    ``{"kind": "text", "text": ..., "by": "word"}`` (TextTemplateInput.from_text) or
    ``{"kind": "template", "template": ..., "values": [...]}``; a ``"tokens"`` entry
    asks :func:`resolve` to cut the text to that many tokens. ``target`` is
    ``{"generate": n}`` (greedy continuation) or ``{"text": ...}``.
    """

    job: int
    name: str
    title: str
    method: str
    options: dict[str, Any]
    inp: dict[str, Any]
    target: dict[str, Any]
    configs: list[str]
    seed: int = 0
    target_ids: list[int] = field(default_factory=list)
    target_text: str = ""
    prompt_tokens: int = 0
    prompt_ids: list[int] = field(default_factory=list)
    n_features: int = 0
    empty_ids: list[int] = field(default_factory=list)
    pla_options: dict[str, Any] = field(default_factory=dict)  # extra attribute() arguments


def build_workloads(
    sizes: Sizes,
    jobs: list[int],
    lengths: tuple[int, ...] | None = None,
    configs: list[str] | None = None,
) -> list[Workload]:
    """The workloads of the selected jobs with their configurations (only ``configs`` if given)."""
    builders = {1: _job1, 2: _job2, 3: _job3, 4: lambda s: _job4(s, lengths or s.lengths)}
    workloads = [w for job in jobs for w in builders[job](sizes)]
    if configs:
        for w in workloads:
            w.configs = [c for c in w.configs if c in configs]
    return [w for w in workloads if w.configs]


def _job1(sizes: Sizes) -> list[Workload]:
    return [
        Workload(
            job=1,
            name="job1-token-fa",
            title="Token-level feature ablation",
            method="FeatureAblation",
            options={},
            inp={"kind": "token", "text": sizes.job1_text},
            target={"generate": sizes.target_tokens},
            configs=list(ALL_CONFIGS),
        )
    ]


def _job2(sizes: Sizes) -> list[Workload]:
    methods = [
        ("fa", "Word-level feature ablation", "FeatureAblation", {}),
        (
            "svs",
            f"Word-level Shapley value sampling (n_samples={sizes.svs_samples})",
            "ShapleyValueSampling",
            {"n_samples": sizes.svs_samples},
        ),
        (
            "kshap",
            f"Word-level KernelSHAP (n_samples={sizes.kernel_shap_samples})",
            "KernelShap",
            {"n_samples": sizes.kernel_shap_samples},
        ),
    ]
    return [
        Workload(
            job=2,
            name=f"job2-word-{key}",
            title=title,
            method=method,
            options=options,
            inp={"kind": "text", "text": texts.CORPUS, "by": "word", "tokens": sizes.job2_tokens},
            target={"generate": sizes.target_tokens},
            configs=list(ALL_CONFIGS),
        )
        for key, title, method, options in methods
    ]


def _job3(sizes: Sizes) -> list[Workload]:
    n = sizes.passages
    return [
        Workload(
            job=3,
            name="job3-passage-fa",
            title=f"Passage-level feature ablation ({n} passages and a question)",
            method="FeatureAblation",
            options={},
            inp={
                "kind": "template",
                "template": texts.retrieval_template(n),
                "values": texts.PASSAGES[:n],
            },
            target={"text": texts.ANSWER},
            configs=list(ALL_CONFIGS),
        )
    ]


def _job4(sizes: Sizes, lengths: tuple[int, ...]) -> list[Workload]:
    return [
        Workload(
            job=4,
            name=f"job4-scaling-{n}",
            title=f"Scaling: word-level feature ablation, {n}-token prompt",
            method="FeatureAblation",
            options={},
            inp={"kind": "text", "text": texts.CORPUS, "by": "word", "tokens": n},
            target={"generate": sizes.target_tokens},
            configs=list(SCALING_CONFIGS),
        )
        for n in lengths
    ]


# ---------------------------------------------------------------- resolution


def resolve(workload: Workload, model: Any) -> Workload:
    """Cut the prompt to length and fix the target ids with ``model`` (a pyllmattr model)."""
    from harness.runners import pla_input
    from pyllmattr.pipeline.scoring import empty_context

    inp = dict(workload.inp)
    if "tokens" in inp:
        inp["text"] = cut_to_tokens(model, inp.pop("tokens"), inp["text"])
    workload.inp = inp
    encoding = pla_input(inp, model).encode(model)
    workload.prompt_ids = list(encoding.reference_ids)
    workload.prompt_tokens = len(encoding.reference_ids)
    workload.n_features = encoding.n_features
    if "generate" in workload.target:
        n = workload.target["generate"]
        workload.target_ids = model.generate(encoding.reference_ids, n, stop_at_eos=False)
    else:
        workload.target_ids = model.tokenize(workload.target["text"], add_special=False)
    workload.target_text = model.detokenize(workload.target_ids)
    workload.empty_ids = empty_context(model)
    return workload


def cut_to_tokens(model: Any, n_tokens: int, text: str) -> str:
    """The longest word-boundary prefix of ``text`` with at most ``n_tokens`` tokens."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    if len(model.tokenize(text)) <= n_tokens:
        return text.strip()
    low, high = 1, len(ends)  # invariant: ends[low - 1] fits, ends[high - 1] may not
    while low < high:
        mid = (low + high + 1) // 2
        if len(model.tokenize(text[: ends[mid - 1]])) <= n_tokens:
            low = mid
        else:
            high = mid - 1
    return text[: ends[low - 1]]
