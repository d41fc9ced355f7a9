"""Configurations under test: how one workload's attribution is computed.

The pyllmattr and llama-cpp-python configurations all run pyllmattr's attribution
methods, so they build exactly the same perturbed prompts; they differ only in the
model object the method scores with:

* ``pla-shared``: the pyllmattr model (``share_prefix=True``, the default);
* ``pla-independent``: :class:`IndependentScoring`, which forces ``share_prefix=False``;
* ``pla-deterministic`` / ``pla-fast`` / ``pla-flash64``: a model loaded in the exact /
  fast / flash64 layout (``deterministic=True`` / ``False``; flash64 through the
  benchmark-only ``pyllmattr._bench.load_gguf_layout``; the default, ``None``, is exact
  on the CPU back end);
* ``llama-cpp-loop`` / ``llama-cpp-reuse``: :class:`LlamaCppLoop`, which scores the
  prompts one at a time with ``llama_cpp.Llama``.

The Captum configurations live in ``captum_side.py`` (imported only when used,
so that the other workers never import torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from time import perf_counter
from typing import Any, ClassVar

import numpy as np

import pyllmattr as pla
from harness.jobs import (
    CAPTUM_CONFIGS,
    CONVERSIONS,
    LAYOUTS,
    LCPP_LOOP,
    LCPP_REUSE,
    PLA_INDEPENDENT,
    PLA_SHARED,
)
from pyllmattr._bench import load_gguf_layout


def pla_input(spec: dict[str, Any], model: Any) -> pla.InterpretableInput:
    """The pyllmattr input described by a workload's ``inp``."""
    kind = spec["kind"]
    if kind == "token":
        return pla.TextTokenInput(spec["text"], model)
    if kind == "text":
        return pla.TextTemplateInput.from_text(spec["text"], by=spec["by"])
    if kind == "template":
        return pla.TextTemplateInput(spec["template"], list(spec["values"]))
    raise ValueError(f"unknown input kind {kind!r}")


def expected_evaluations(method: str, n_features: int, options: dict[str, Any]) -> int:
    """How many prompts one attribution scores (pyllmattr's count; Captum's is close)."""
    if method == "FeatureAblation":
        return n_features + 1
    if method == "ShapleyValueSampling":
        return options["n_samples"] * (n_features + 1) + 1
    return options["n_samples"] + 3


def trie_size(sequences: Sequence[Sequence[int]], target: Sequence[int]) -> int:
    """Distinct prefixes of ``sequence + target`` over all sequences (the trie's nodes)."""
    total, previous = 0, ()
    for seq in sorted({tuple(s) + tuple(target) for s in sequences}):
        common = 0
        for a, b in zip(previous, seq, strict=False):
            if a != b:
                break
            common += 1
        total += len(seq) - common
        previous = seq
    return total


def target_logprobs(logits: np.ndarray, target: Sequence[int]) -> np.ndarray:
    """log p(target[t]) from logits rows (one per target token), log-softmax in float64."""
    x = logits.astype(np.float64)
    top = x.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(x - top).sum(axis=1))
    return x[np.arange(len(target)), np.asarray(target)] - log_norm


# ---------------------------------------------------------------- model proxies


class IndependentScoring:
    """A pyllmattr model whose ``score`` always decodes every sequence on its own."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def score(self, sequences: Any, target: Any, share_prefix: bool = True, **kwargs: Any) -> Any:
        return self._model.score(sequences, target, share_prefix=False, **kwargs)

    def score_pairs(
        self, sequences: Any, targets: Any, share_prefix: bool = True, **kwargs: Any
    ) -> Any:
        """The call every attribution makes (``score`` alone would leave it prefix-shared)."""
        return self._model.score_pairs(sequences, targets, share_prefix=False, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class LlamaCppLoop:
    """Scores prompts one at a time with ``llama_cpp.Llama`` (logits_all=True).

    ``reuse=False`` resets the Llama and evaluates ``prompt + target`` for every
    prompt (``Llama.eval`` itself never reuses a prefix: it appends at ``n_tokens``).
    ``reuse=True`` goes through ``Llama.generate``, whose prefix matching keeps the
    KV cells of the longest common prefix with the previous prompt and evaluates
    only the rest; prompts are taken in the order the method builds them.
    Tokenization and everything else are forwarded to ``helper`` (a pyllmattr
    model sharing the Llama's weights).
    """

    def __init__(self, llm: Any, helper: Any, reuse: bool) -> None:
        self.llm = llm
        self._helper = helper
        self.reuse = reuse
        self.last_sequences: list[list[int]] = []
        self._decoded = 0
        self._calls = 0
        self._eval = llm.eval
        llm.eval = self._counting_eval  # generate() calls self.eval: count what it decodes

    def _counting_eval(self, tokens: Sequence[int]) -> None:
        self._decoded += len(tokens)
        self._calls += math.ceil(len(tokens) / self.llm.n_batch)
        self._eval(tokens)

    # llama.cpp's batches are not batch-invariant here: the methods measure a noise floor.
    scores_are_exact = False

    @property
    def n_ctx(self) -> int:
        """The Llama's context (the helper's is a small one of its own)."""
        return self.llm.n_ctx()

    def score(
        self,
        sequences: Sequence[Sequence[int]],
        target: Sequence[int],
        share_prefix: bool = True,
        *,
        return_stats: bool = False,
        **ignored: Any,
    ) -> Any:
        """Same contract as ``LlamaModel.score`` (target given as ids)."""
        out = self.score_pairs(sequences, [target] * len(sequences), return_stats=return_stats)
        return (np.array(out[0]), out[1]) if return_stats else np.array(out)

    def score_pairs(
        self,
        sequences: Sequence[Sequence[int]],
        targets: Sequence[Sequence[int]],
        share_prefix: bool = True,
        *,
        return_stats: bool = False,
        **ignored: Any,
    ) -> Any:
        """Same contract as ``LlamaModel.score_pairs`` (targets given as ids): the call every
        attribution makes, so that no prompt reaches the pyllmattr helper's engine."""
        targets = [[int(t) for t in target] for target in targets]
        seqs = [[int(t) for t in s] for s in sequences]
        self._decoded = self._calls = 0
        start = perf_counter()
        self.llm.reset()  # start from an empty cache, as pyllmattr's engine does
        scores = [self._score_one(seq, target) for seq, target in zip(seqs, targets, strict=True)]
        if return_stats:  # the method's own calls, not a noise-floor re-score
            self.last_sequences += seqs
        stats = pla.ScoreStats(
            n_decoded=self._decoded,
            n_trie=-1,  # filled in after the timed run (see LlamaCppRunner.run)
            n_naive=sum(len(s) + len(t) for s, t in zip(seqs, targets, strict=True)),
            n_decode_calls=self._calls,
            n_waves=0,
            n_padding=0,
            n_unique=len({tuple(s) for s in seqs}),
            seconds=perf_counter() - start,
            strategy="llama-cpp-python " + ("generate reuse" if self.reuse else "eval"),
        )
        return (scores, stats) if return_stats else scores

    def _score_one(self, seq: list[int], target: list[int]) -> np.ndarray:
        full = seq + target
        if self.reuse:
            tokens = self.llm.generate(full, temp=0.0, top_k=1, top_p=1.0, min_p=0.0)
            next(tokens)  # evaluates what is not cached, then samples one token
            tokens.close()
        else:
            self.llm.reset()
            self.llm.eval(full)
        logits = self.llm.scores[len(seq) - 1 : len(full) - 1]
        return target_logprobs(logits, target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._helper, name)


def open_llama(model_path: str, n_ctx: int, threads: int) -> Any:
    """``llama_cpp.Llama`` for the loops. ``n_threads_batch`` is set too: it defaults to
    every core, and prompts are evaluated as batches."""
    import llama_cpp

    return llama_cpp.Llama(
        model_path,
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        logits_all=True,
        verbose=False,
    )


# ---------------------------------------------------------------- runners


class Runner:
    """One configuration of one workload: set up once, then time ``run()``.

    ``budgeted`` runners are skipped when one run is estimated to exceed the
    time budget (estimate = one evaluation of the unperturbed prompt times the
    number of evaluations).
    """

    budgeted: ClassVar[bool] = False

    def __init__(self, config: str, workload: dict[str, Any], threads: int, model_path: str):
        self.config = config
        self.workload = workload
        self.threads = threads
        self.model_path = model_path
        self._notes: list[str] = []

    def setup(self) -> None:
        """Load the model and build the input and the attribution method."""
        raise NotImplementedError

    def evaluate_reference(self) -> None:
        """Score the unperturbed prompt once (a warm-up, and the unit of the time estimate)."""
        raise NotImplementedError

    def run(self) -> dict[str, Any]:
        """One attribution: ``seq_attr``, ``token_attr`` (or None) and ``stats``."""
        raise NotImplementedError

    def n_evaluations(self) -> int:
        w = self.workload
        return expected_evaluations(w["method"], w["n_features"], w["options"])

    def notes(self) -> list[str]:
        return list(self._notes)


class PlaRunner(Runner):
    """pyllmattr's methods on a pyllmattr model (or a proxy of one)."""

    def setup(self) -> None:
        self.model = self.load_model()
        self.inp = pla_input(self.workload["inp"], self.model)
        self.method = getattr(pla, self.workload["method"])(self.model)

    def load_model(self) -> Any:
        path = self.model_path
        if self.config in LAYOUTS:
            return load_gguf_layout(path, LAYOUTS[self.config], n_threads=self.threads)
        if self.config in CONVERSIONS:  # the conversion (first use only) counts in setup
            return pla.load_gguf(path, n_threads=self.threads, requantize=CONVERSIONS[self.config])
        model = pla.load_gguf(path, n_threads=self.threads)
        return IndependentScoring(model) if self.config == PLA_INDEPENDENT else model

    def evaluate_reference(self) -> None:
        self.model.score([self.workload["prompt_ids"]], self.workload["target_ids"])

    def run(self) -> dict[str, Any]:
        w = self.workload
        result = self.method.attribute(
            self.inp, target=w["target_ids"], seed=w["seed"], **w["pla_options"], **w["options"]
        )
        return {
            "seq_attr": result.seq_attr.tolist(),
            "token_attr": result.token_attr.tolist(),
            "stats": dict(result.stats),
        }


class LlamaCppRunner(PlaRunner):
    """pyllmattr's perturbations, scored one prompt at a time by llama-cpp-python."""

    def load_model(self) -> Any:
        w = self.workload
        n_ctx = 64 * math.ceil((w["prompt_tokens"] + len(w["target_ids"]) + 64) / 64)
        llm = open_llama(self.model_path, n_ctx, self.threads)
        helper = pla.load_gguf(llm, n_ctx=64, n_batch=64, n_threads=self.threads)
        return LlamaCppLoop(llm, helper, reuse=self.config == LCPP_REUSE)

    def run(self) -> dict[str, Any]:
        self.model.last_sequences = []  # what this attribution's calls score
        outcome = super().run()
        outcome["stats"]["n_trie"] = trie_size(
            self.model.last_sequences, self.workload["target_ids"]
        )
        return outcome


def make_runner(config: str, workload: dict[str, Any], threads: int, model_path: str) -> Runner:
    """The runner of ``config`` (Captum runners import torch, so they are imported here)."""
    if config in (PLA_SHARED, PLA_INDEPENDENT, *LAYOUTS, *CONVERSIONS):
        return PlaRunner(config, workload, threads, model_path)
    if config in (LCPP_LOOP, LCPP_REUSE):
        return LlamaCppRunner(config, workload, threads, model_path)
    if config in CAPTUM_CONFIGS:
        from harness.captum_side import CaptumRunner

        return CaptumRunner(config, workload, threads, model_path)
    raise ValueError(f"unknown configuration {config!r}")


# ---------------------------------------------------------------- throughput

# Marks throughput rows measured on converted weights: not the shipped model's best.
OTHER_WEIGHTS = "(converted weights)"


def measure_throughput(
    model_path: str, threads: int, n_seqs: int, seq_len: int, repeats: int
) -> list[dict[str, Any]]:
    """Decode throughput on ``n_seqs`` random-token sequences of ``seq_len`` tokens.

    The sequences share no prefix, so ``share_prefix=True`` only batches them
    (many sequences per decode) while ``share_prefix=False`` decodes one at a time.
    """
    rng = np.random.default_rng(0)
    rows = []
    with pla.load_gguf(model_path, n_threads=threads) as model:
        seqs = rng.integers(1000, model.n_vocab, size=(n_seqs, seq_len)).tolist()
        target = rng.integers(1000, model.n_vocab, size=8).tolist()
        for share in (True, False):
            label = f"pyllmattr score, share_prefix={share}"
            rows.append(_time_scores(label, model, seqs, target, repeats, share_prefix=share))
    for layout in ("fast", "flash64"):
        with load_gguf_layout(model_path, layout, n_threads=threads) as model:
            label = f"pyllmattr score, {layout} layout"
            rows.append(_time_scores(label, model, seqs, target, repeats))
    rows.append(_time_llama_cpp(model_path, threads, seqs, target, repeats))
    for kind in CONVERSIONS.values():
        with pla.load_gguf(model_path, n_threads=threads, requantize=kind) as model:
            label = f"pyllmattr score, requantize='{kind}' {OTHER_WEIGHTS}"
            rows.append(_time_scores(label, model, seqs, target, repeats))
    return rows


def _time_scores(
    label: str, model: Any, seqs: list, target: list, repeats: int, **kwargs: Any
) -> dict[str, Any]:
    model.score(seqs[:1], target, **kwargs)  # warm-up
    times, stats = [], None
    for _ in range(repeats):
        start = perf_counter()
        _, stats = model.score(seqs, target, return_stats=True, **kwargs)
        times.append(perf_counter() - start)
    return _throughput_row(label, stats.n_decoded, stats.n_decode_calls, times)


def _time_llama_cpp(
    model_path: str, threads: int, seqs: list, target: list, repeats: int
) -> dict[str, Any]:
    n_ctx = 64 * math.ceil((len(seqs[0]) + len(target) + 64) / 64)
    llm = open_llama(model_path, n_ctx, threads)
    loop = LlamaCppLoop(llm, helper=None, reuse=False)
    loop.score(seqs[:1], target)  # warm-up
    times, stats = [], None
    for _ in range(repeats):
        start = perf_counter()
        _, stats = loop.score(seqs, target, return_stats=True)
        times.append(perf_counter() - start)
    return _throughput_row(
        "llama-cpp-python eval loop, logits_all=True", stats.n_decoded, stats.n_decode_calls, times
    )


def _throughput_row(label: str, decoded: int, calls: int, times: list[float]) -> dict[str, Any]:
    median = float(np.median(times))
    return {
        "label": label,
        "n_decoded": decoded,
        "n_decode_calls": calls,
        "times": times,
        "median_seconds": median,
        "tokens_per_second": decoded / median,
    }
