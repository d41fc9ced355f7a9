"""Which retrieved sentence did the answer come from: fast methods against exact leave-one-out.

For every case of examples/data/context_qa.jsonl (8-10 invented articles, a question, a
fixed answer), on SmolLM2-135M-Instruct as shipped (Q4_1), the prompt in its chat
template (as the context-cite package builds it):

* reference: exact sentence-level leave-one-out on the target model, every prompt
  scored on its own (``share_prefix=False``);
* pyllmattr: FeatureAblation (prefix-shared LOO), HierarchicalAblation, ContextCite
  (32/64/128 masks) and their proxy variants (a Q4_0 copy of the same weights), and
  ContextCite on an F16 copy (the weights dequantized, as the PyTorch peers run them);
* peers on the same weights (the GGUF dequantized to float32 by transformers): Captum
  0.9 FeatureAblation single-pass over the same sentence prompts, and the
  ``context-cite`` package (its own masks and Lasso, scoring our exact prompt ids; its
  nltk splitter is never used, as it needs a download).

Per method: time, decoded tokens, top-1 / top-3 agreement with the reference, Spearman
with it, and the log-prob drop of the answer when the method's top-3 sentences are
removed (scored on the target model, each prompt alone). One JSON line per (case,
method) goes to --out as soon as it is measured, so an interrupted run keeps its rows.

    python bench context_attribution --cases 2 --out bench/results/context-subset.jsonl
    python bench context_attribution --render bench/results/context.jsonl \
        --markdown bench/results/context-attribution.md
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import pyllmattr as pla
from harness import REPO, RESULTS
from harness.torch_gguf import TorchGGUF
from pyllmattr.methods.lasso import spearman

DATA = REPO / "examples" / "data" / "context_qa.jsonl"
TEMPLATE = "Context: {context}\n\nQuery: {query}"  # ContextCite's default
ORDER = [
    "exact-loo",
    "hierarchical-k2",
    "hierarchical-k2-alone2",
    "hierarchical-k2-copy",
    "context-cite-64",
    "cc-package-64",
    "captum-1pass",
    "pla-loo",
    "hierarchical-k2-3lv",
    "context-cite-32",
    "context-cite-128",
    "hierarchical-k2-proxy",
    "context-cite-64-proxy",
    "loo-proxy-k5",
    "cc-package-32",
    "context-cite-64-f16",
    "hierarchical-k2-f16",
]


def load_cases(n: int | None, ids: list[str] | None) -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    if ids:
        cases = [c for c in cases if c["id"] in ids]
    return cases[:n] if n else cases


def truncated(spec: dict[str, Any], n_documents: int | None) -> dict[str, Any]:
    """The case with only the first documents and the answer's (a quick smoke run)."""
    if not n_documents or len(spec["documents"]) <= n_documents:
        return spec
    keep = sorted({*range(n_documents - 1), spec["support_document"]})
    return {**spec, "documents": [spec["documents"][i] for i in keep]}


class Case:
    """One case bound to the target model: its input, target ids and reference prompt."""

    def __init__(self, spec: dict[str, Any], model: Any) -> None:
        self.spec = spec
        self.inp = pla.ContextInput(spec["documents"], spec["question"], template=TEMPLATE)
        self.model = model
        self.target_ids = model.tokenize(spec["answer"], add_special=False)
        from pyllmattr import chat

        self.encoding = chat.encode(self.inp, model, chat.chat_options(True))
        self.n = self.encoding.n_features

    def prompt_ids(self, present: np.ndarray) -> list[int]:
        return self.encoding.render(np.asarray(present, dtype=bool), None)

    def support(self) -> list[int]:
        return [i for i, s in enumerate(self.inp.labels) if s in self.spec["support"]]


# ------------------------------------------------------------------ pyllmattr methods


def run_pla(name: str, case: Case, models: dict[str, Any]) -> dict[str, Any]:
    model, inp, target = models["target"], case.inp, case.spec["answer"]
    if name.endswith("f16"):  # the same weights as the PyTorch peers, in half precision
        model = models["f16"]
    common = {"target": target, "chat": True, "noise_floor": False}
    started = time.perf_counter()
    if name == "exact-loo":
        masks = ~np.eye(case.n, dtype=bool)
        seqs = [case.encoding.reference_ids] + [case.prompt_ids(m) for m in masks]
        scores, stats = model.score(seqs, case.target_ids, share_prefix=False, return_stats=True)
        total = scores.sum(axis=1)
        values, decoded = total[0] - total[1:], stats.n_decoded
        return _row(values, started, decoded, 1 + case.n)
    if name == "pla-loo":
        result = pla.FeatureAblation(model).attribute(inp, **common)
    elif name == "loo-proxy-k5":
        result = pla.FeatureAblation(model).attribute(inp, proxy=models["proxy"], keep=5, **common)
    elif name.startswith("hierarchical"):
        levels = (
            ("document", "paragraph", "sentence") if "3lv" in name else ("document", "sentence")
        )
        proxy = models["proxy"] if name.endswith("proxy") else None
        keep_alone = 2 if "alone2" in name else 0
        result = pla.HierarchicalAblation(model).attribute(
            inp, levels=levels, keep=2, keep_alone=keep_alone, proxy=proxy, **common
        )
    elif name.startswith("context-cite"):
        n_samples = int(name.split("-")[2])
        proxy = models["proxy"] if name.endswith("proxy") else None
        result = pla.ContextCite(model).attribute(
            inp, n_samples=n_samples, seed=0, proxy=proxy, keep=5, **common
        )
    else:
        raise ValueError(name)
    stats = result.stats
    decoded = stats["n_decoded"] + stats.get("proxy", {}).get("n_decoded", 0)
    row = _row(result.seq_attr, started, decoded, stats["n_evaluations"])
    if "proxy" in stats:
        row["proxy_decoded"] = stats["proxy"]["n_decoded"]
    if getattr(result, "fit", None):
        row["fit"] = {k: result.fit[k] for k in ("r2", "lds")}
    if name.startswith("hierarchical"):
        row["refined"] = list(result.refined)
        if len(result.levels) == 2:
            row["values_copy"] = copied(result, inp)
    return row


def copied(result: Any, inp: Any) -> list[float]:
    """The values of unrefined="copy" from the same run: an unrefined sentence's share of
    its coarse unit (unrefined="split") times the number of sentences sharing it."""
    values = np.array(result.seq_attr)
    parents = inp.parent_index(inp.by, result.levels[0]["level"])
    sizes = np.bincount(parents)
    unrefined = ~np.array(result.refined)
    values[unrefined] *= sizes[parents[unrefined]]
    return [float(v) for v in values]


def _row(values: Any, started: float, decoded: int, evaluations: int) -> dict[str, Any]:
    return {
        "seconds": time.perf_counter() - started,
        "decoded": int(decoded),
        "evaluations": int(evaluations),
        "values": [float(v) for v in values],
    }


# ------------------------------------------------------------------ peers (PyTorch)


def warmed_up(side: TorchGGUF) -> TorchGGUF:
    """One untimed forward pass, so the first timed peer pays no one-off start-up."""
    import torch

    with torch.no_grad():
        side.model(side.tokenizer("Warm-up.", return_tensors="pt")["input_ids"])
    return side


def run_captum(case: Case, torch_side: TorchGGUF) -> dict[str, Any]:
    """Captum 0.9 FeatureAblation, single pass, over the same sentence prompts."""
    import torch
    from captum.attr import FeatureAblation, LLMAttribution, TextTemplateInput

    segments = case.encoding.segments
    pieces, values = [], []
    for text, feature in segments:
        if feature is None:
            pieces.append(text.replace("{", "{{").replace("}", "}}"))
        else:
            pieces.append("{}")
            values.append(text)
    inp = TextTemplateInput("".join(pieces), values=values, baselines=[""] * len(values))
    attr = LLMAttribution(FeatureAblation(torch_side.model), torch_side.tokenizer)
    ids = attr._format_model_input(inp.to_model_input())["input_ids"][0].tolist()
    note = None if ids == case.encoding.reference_ids else "HF tokenization differs"
    torch_side.decoded = 0
    started = time.perf_counter()
    result = attr.attribute(inp, target=torch.tensor(case.target_ids), forward_in_tokens=False)
    row = _row(result.seq_attr.detach().numpy(), started, torch_side.decoded, case.n + 1)
    if note:
        row["note"] = note
    return row


def run_cc_package(case: Case, torch_side: TorchGGUF, n_samples: int) -> dict[str, Any]:
    """The context-cite package: its masks, scoring loop and Lasso, on our prompt ids."""
    from context_cite import ContextCiter
    from context_cite.context_partitioner import BaseContextPartitioner

    class Sentences(BaseContextPartitioner):
        """pyllmattr's sentences (no nltk download); get_context is unused here."""

        def __init__(self, context: str, labels: list[str]) -> None:
            super().__init__(context)
            self.labels = labels

        @property
        def num_sources(self) -> int:
            return len(self.labels)

        def split_context(self) -> None:
            pass

        def get_source(self, index: int) -> str:
            return self.labels[index]

        def get_context(self, mask: Any = None) -> str:
            raise NotImplementedError

    class PinnedCiter(ContextCiter):
        """Scores exactly pyllmattr's chat prompts and the fixed answer's token ids."""

        def _get_prompt_ids(self, mask: Any = None, return_prompt: bool = False) -> Any:
            present = np.ones(case.n, dtype=bool) if mask is None else mask
            return case.prompt_ids(present)

        @property
        def _response_ids(self) -> list[int]:
            return case.target_ids

    citer = PinnedCiter(
        torch_side.model,
        torch_side.tokenizer,
        case.inp.context,
        case.spec["question"],
        num_ablations=n_samples,
        partitioner=Sentences(case.inp.context, case.inp.labels),
    )
    torch_side.decoded = 0
    started = time.perf_counter()
    weights, _ = citer._get_attributions_for_ids_range(0, len(case.target_ids))
    return _row(weights, started, torch_side.decoded, n_samples)


# ------------------------------------------------------------------ metrics


def metrics(values: list[float], reference: np.ndarray) -> dict[str, float]:
    v = np.asarray(values)
    top3, ref3 = _top(v, 3), _top(reference, 3)
    return {
        "top1": float(_top(v, 1)[0] == _top(reference, 1)[0]),
        "top3": len(set(top3) & set(ref3)) / 3,
        "spearman": spearman(v, reference),
    }


def _top(values: np.ndarray, k: int) -> list[int]:
    return np.argsort(-np.asarray(values), kind="stable")[:k].tolist()


def top3_drops(case: Case, rows: dict[str, dict[str, Any]], model: Any) -> dict[str, float]:
    """log p(answer | full prompt) - log p(answer | prompt without the method's top 3)."""
    names = list(rows)
    prompts = [case.encoding.reference_ids]
    for name in names:
        present = np.ones(case.n, dtype=bool)
        present[_top(np.asarray(rows[name]["values"]), 3)] = False
        prompts.append(case.prompt_ids(present))
    totals = model.score(prompts, case.target_ids, share_prefix=False).sum(axis=1)
    return {name: float(totals[0] - totals[1 + i]) for i, name in enumerate(names)}


# ------------------------------------------------------------------ driver


def measure(args: argparse.Namespace) -> None:
    path = pla.default_model_path()
    models = {"target": pla.load_gguf(path, n_ctx=4096, n_threads=args.threads)}
    methods = args.methods or ORDER  # in the order given
    if any("proxy" in m for m in methods):
        proxy_path = pla.requantized_copy(path, "q4_0")
        models["proxy"] = pla.load_gguf(proxy_path, n_ctx=4096, n_threads=args.threads)
    if any(m.endswith("f16") for m in methods):  # dequantized, as the PyTorch peers run
        models["f16"] = pla.load_gguf(path, n_ctx=4096, n_threads=args.threads, requantize="f16")
    for model in models.values():  # untimed: the first scoring call runs the layout's self-check
        model.score([model.tokenize("Warm-up.")], " ok")
    torch_side = None
    out = open(args.out, "a", encoding="utf-8")  # noqa: SIM115 (rows are flushed one by one)
    for spec in load_cases(args.cases, args.ids):
        spec = truncated(spec, args.truncate)
        case = Case(spec, models["target"])
        rows: dict[str, dict[str, Any]] = {}
        for name in methods:
            if name in ("captum-1pass",) or name.startswith("cc-package"):
                torch_side = torch_side or warmed_up(TorchGGUF(path, args.threads))
                row = (
                    run_captum(case, torch_side)
                    if name == "captum-1pass"
                    else run_cc_package(case, torch_side, int(name.split("-")[-1]))
                )
            elif name == "hierarchical-k2-copy":  # derived from the hierarchical-k2 run
                row = {**rows["hierarchical-k2"], "values": rows["hierarchical-k2"]["values_copy"]}
            else:
                row = run_pla(name, case, models)
            rows[name] = row
            record = {"case": spec["id"], "method": name, "n_sentences": case.n, **row}
            record["n_documents"] = len(spec["documents"])
            record["prompt_tokens"] = len(case.encoding.reference_ids)
            record["support"] = case.support()
            record["layout"] = models["target"].layout.name
            out.write(json.dumps(record) + "\n")
            out.flush()
            print(
                f"{spec['id']} {name}: {row['seconds']:.1f} s, {row['decoded']} tokens", flush=True
            )
        drops = top3_drops(case, rows, models["target"])
        out.write(json.dumps({"case": spec["id"], "top3_drop": drops}) + "\n")
        out.flush()
    out.close()


def missing_drops(path: Path, threads: int) -> None:
    """Top-3 drops for the cases of ``path`` whose run stopped before measuring them."""
    from harness.context_report import load

    rows, drops = load([path])
    model = pla.load_gguf(pla.default_model_path(), n_ctx=4096, n_threads=threads)
    specs = {c["id"]: c for c in load_cases(None, None)}
    with open(path, "a", encoding="utf-8") as out:
        for case_id, methods in rows.items():
            if case_id in drops:
                continue
            first = next(iter(methods.values()))
            spec = specs[case_id]
            if first["n_documents"] < len(spec["documents"]):
                spec = truncated(spec, first["n_documents"])
            case = Case(spec, model)
            found = top3_drops(case, methods, model)
            out.write(json.dumps({"case": case_id, "top3_drop": found}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, help="the first N cases (default: all)")
    parser.add_argument("--ids", nargs="*", help="case ids to run")
    parser.add_argument("--methods", nargs="*", help=f"subset of {ORDER}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--truncate", type=int, help="keep N documents per case (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS / "context.jsonl")
    parser.add_argument("--render", nargs="*", type=Path, help="JSONL files to summarize")
    parser.add_argument("--markdown", type=Path, help="write the summary table here")
    parser.add_argument(
        "--drops-for", type=Path, help="only measure the top-3 drops missing from this file"
    )
    args = parser.parse_args()
    if args.render:
        from harness.context_report import identity_lines, render

        text = render(args.render) + "".join(f"\n{line}\n" for line in identity_lines(args.render))
        if args.markdown:
            args.markdown.write_text(text, encoding="utf-8")
        print(text)
        return
    if args.drops_for:
        missing_drops(args.drops_for, args.threads)
        return
    measure(args)


if __name__ == "__main__":
    main()
