"""What ``pyllmattr attribute`` and ``pyllmattr demo`` do."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from .table import format_context, format_faithfulness, format_result

PROXY_ARGS = ("n_ctx", "n_threads")  # what the proxy model takes of the model's flags

# The example of Captum's LLM attribution paper (arXiv 2312.05491).
DEMO_TEMPLATE = (
    "{name} lives in {city}, {state} and is a {job}. {pronoun} personal interests include"
)
DEMO_VALUES = {
    "name": "Dave",
    "city": "Palm Coast",
    "state": "FL",
    "job": "lawyer",
    "pronoun": "His",
}
DEMO_BASELINES = {
    "name": "Sarah",
    "city": "Seattle",
    "state": "WA",
    "job": "doctor",
    "pronoun": "Her",
}


# ---------------------------------------------------------------- attribute


def attribute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .. import frontend

    method_cls = frontend.method_class(args.method)
    options = _method_options(args, method_cls, parser)
    _check_outputs(args, parser)
    prompt = _read_context(args, parser) if args.context else _read_prompt(args, parser)
    chat = _chat_settings(args, parser)
    with (
        frontend.open_model(args.model, method_cls, load_args(args)) as model,
        _open_proxy(args) as proxy,
    ):
        if proxy is not None:
            options["proxy"] = proxy
        inp = _make_input(prompt, args, model)
        result = method_cls(model).attribute(
            inp,
            target=args.target,
            contrast=args.contrast,
            gen_args=None if args.target is not None else {"max_new_tokens": args.max_new_tokens},
            seed=args.seed,
            progress=args.progress,
            chat=chat,
            **options,
        )
        faith = None
        if args.evaluate:  # on the model that computed it, before it is closed
            from ..evaluation import evaluate

            faith = evaluate(result, model, seed=args.seed, progress=args.progress)
    print(format_result(result, top=args.top))
    if args.context:
        print("\n" + format_context(result, top=min(args.top, 5)))
    if faith is not None:
        print("\n" + format_faithfulness(faith))
    _write_outputs(result, args)
    return 0


def _chat_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """``chat=`` of the attribution: False, True or {"system": ..., "template": ...}."""
    from ..chat import builtin_chat_templates

    settings = {}
    if args.system is not None:
        settings["system"] = args.system
    if args.chat_template is not None:
        file = Path(args.chat_template).expanduser()
        if file.is_file():
            settings["template"] = file.read_text(encoding="utf-8")
        elif args.chat_template in builtin_chat_templates():
            settings["template"] = args.chat_template
        else:
            parser.error(
                f"--chat-template {args.chat_template}: no such file, and not one of llama.cpp's "
                f"built-in templates: {', '.join(builtin_chat_templates())}"
            )
    return settings or args.chat


def _method_options(
    args: argparse.Namespace, method_cls: Any, parser: argparse.ArgumentParser
) -> dict[str, Any]:
    """The method's options from the flags, each checked against what the method takes."""
    from ..frontend import (
        layer_option,
        levels_option,
        methods_taking,
        methods_taking_auto,
        takes_option,
    )

    def takes(option: str) -> bool:
        return takes_option(method_cls, option, proxy=args.proxy is not None)

    options: dict[str, Any] = {}
    for option, given, why in (
        ("n_samples", args.n_samples, "it does not sample"),
        ("n_steps", args.n_steps, "it does not integrate along a path"),
    ):
        if given is None:
            continue
        flag = "--" + option.replace("_", "-")
        if not takes(option):
            parser.error(f"{flag} does not apply to --method {args.method} ({why})")
        if given == "auto" and option not in method_cls.auto_options:
            methods = " / ".join(methods_taking_auto(option))
            parser.error(f"{flag} auto applies to --method {methods}; give a number")
        options[option] = given
    if args.layer is not None:
        if not takes("layer"):
            parser.error(
                f"--layer applies to the gradient methods only, not --method {args.method}"
            )
        options["layer"] = layer_option(args.layer)
    if args.proxy is not None and not takes("proxy"):
        parser.error(f"--proxy does not apply to --method {args.method}")
    levels = None if args.levels is None else levels_option(args.levels)
    for option, given, alternative in (
        ("keep", args.keep, ", or with --proxy"),
        ("keep_alone", args.keep_alone, ""),
        ("levels", levels, ""),
        ("order", args.order, ""),
        ("index", args.index, ""),
        ("budget", args.budget, ""),
        ("approximator", args.approximator, ""),
    ):
        if given is not None:
            if not takes(option):
                methods = " / ".join(methods_taking(option))
                flag = "--" + option.replace("_", "-")
                parser.error(f"{flag} applies to --method {methods}{alternative}")
            options[option] = given
    if method_cls.needs_context_input and not args.context:
        parser.error(f"--method {args.method} needs --context FILE --query TEXT")
    return options


def _check_outputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fail before the work, not after it, when an output cannot be written."""
    for option in ("json", "plot", "html"):
        path = getattr(args, option, None)
        if path and not Path(path).expanduser().resolve().parent.is_dir():
            parser.error(f"--{option} {path}: the folder does not exist")
    if getattr(args, "plot", None) and importlib.util.find_spec("matplotlib") is None:
        raise ImportError("--plot needs matplotlib: pip install 'pyllmattr[plot]'")


def _read_prompt(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.prompt is not None:
        text = args.prompt
    elif args.prompt_file == "-":
        text = sys.stdin.read().rstrip("\n")
    else:
        path = Path(args.prompt_file).expanduser()
        if not path.is_file():
            parser.error(f"--prompt-file {args.prompt_file}: no such file")
        text = path.read_text(encoding="utf-8").rstrip("\n")
    if not text.strip():
        parser.error("the prompt is empty")
    return text


def load_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model-loading flags given, as ``load_gguf``'s options (a flag not given keeps
    its default; a method on PyTorch refuses the llama.cpp options it does not take)."""
    flags = {
        "n_ctx": "n_ctx",
        "threads": "n_threads",
        "gpu_layers": "n_gpu_layers",
        "deterministic": "deterministic",
        "requantize": "requantize",
    }
    given = {option: getattr(args, flag, None) for flag, option in flags.items()}
    return {option: value for option, value in given.items() if value is not None}


def _read_context(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """--context FILE: one document (text) or a JSON list of documents."""
    if args.query is None:
        parser.error("--context needs --query TEXT (the question asked about it)")
    path = Path(args.context).expanduser()
    if not path.is_file():
        parser.error(f"--context {args.context}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() != ".json":
        return text.strip("\n")
    try:
        documents = json.loads(text)
    except json.JSONDecodeError as exc:
        parser.error(f"--context {args.context}: not valid JSON ({exc})")
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        parser.error(f"--context {args.context}: the JSON must be a list of document strings")
    return documents


def _open_proxy(args: argparse.Namespace) -> Any:
    from ..frontend import open_model

    if args.proxy is None:
        return contextlib.nullcontext(None)
    given = load_args(args)
    return open_model(args.proxy, load_args={k: v for k, v in given.items() if k in PROXY_ARGS})


def _make_input(prompt: Any, args: argparse.Namespace, model: Any) -> Any:
    from .. import frontend
    from ..inputs import ContextInput

    if args.context:
        finest = args.levels.split(",")[-1].strip() if args.levels else "sentence"
        return ContextInput(prompt, args.query, by=args.features or finest)
    if args.query is not None:
        raise ValueError("--query goes with --context FILE; for a plain prompt use --prompt")
    spec = frontend.PromptSpec(prompt, args.features or "word", args.baseline)
    return spec.build(model)


def _write_outputs(result: Any, args: argparse.Namespace) -> None:
    if getattr(args, "json", None):
        Path(args.json).write_text(result.to_json(indent=2), encoding="utf-8")
        print(f"result written to {args.json}")
    if args.plot:
        _save_heatmap(result, args.plot)
        print(f"heatmap written to {args.plot}")
    if args.html:
        result.to_html(args.html)
        print(f"HTML view written to {args.html}")


def _save_heatmap(result: Any, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window or need a display
    import matplotlib.pyplot as plt

    if getattr(result, "interaction_matrix", None) is not None:
        fig, _ = result.plot_interactions()  # interactions: pairs, main effects on the diagonal
    else:
        fig, _ = result.plot_token_attr()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- serve


def serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..serve import serve as run_server

    run_server(
        args.model,
        args.host,
        args.port,
        allow_remote=args.allow_remote,
        open_browser=args.open,
        n_threads=args.threads,
        n_ctx=args.n_ctx,
        history=args.history,
    )
    return 0


# ---------------------------------------------------------------- demo


def demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import pyllmattr as pla

    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("(no heatmap: matplotlib is not installed; pip install 'pyllmattr[demo]')")
        args.plot = None
    _check_outputs(args, parser)
    with pla.load_gguf(pla.default_model_path(), n_ctx=2048) as model:
        inp = pla.TextTemplateInput(DEMO_TEMPLATE, DEMO_VALUES, baselines=DEMO_BASELINES)
        result = pla.FeatureAblation(model).attribute(
            inp, gen_args={"max_new_tokens": args.max_new_tokens}, progress=args.progress
        )
    print(format_result(result))
    _write_outputs(result, args)
    return 0
