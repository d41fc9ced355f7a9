"""Where Ollama, LM Studio and the Hugging Face hub cache keep GGUF models on disk.

Each store answers two questions: which models it holds (``list_*``: reference and
file) and which file a reference names (``resolve_*``). Nothing here downloads or
writes anything; the folders are the tools' own defaults unless their environment
variables say otherwise.

- Ollama: ``$OLLAMA_MODELS``, else ``~/.ollama/models`` (``%USERPROFILE%\\.ollama\\models``
  on Windows) and, on Linux, the system service's ``/usr/share/ollama/.ollama/models``.
  A model is a manifest ``manifests/HOST/NAMESPACE/NAME/TAG`` (JSON) whose layer of
  media type ``application/vnd.ollama.image.model`` is the GGUF, stored as
  ``blobs/sha256-<hex>``.
- LM Studio: ``PUBLISHER/MODEL/FILE.gguf`` under its models folder: the
  ``downloadsFolder`` of its ``settings.json`` when set, else ``~/.lmstudio/models``
  (the LM Studio home moves when ``~/.lmstudio-home-pointer`` names another folder),
  and the older ``~/.cache/lm-studio/models``. LM Studio has no environment variable
  for it.
- Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
  ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``; a repository
  is ``models--ORG--REPO/snapshots/<revision>/...`` (files are symlinks into
  ``blobs/``), the revision ``refs/main`` names first.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_REGISTRY = "registry.ollama.ai"
OLLAMA_LIBRARY = "library"
# Only the first file of a split GGUF (name-00001-of-00003.gguf) is a model to load.
_LATER_SPLIT = re.compile(r"-(\d{5})-of-\d{5}\.gguf$", re.IGNORECASE)

# Where Ollama's Linux install script runs `ollama serve` as the ollama user.
OLLAMA_SYSTEM_DIRS = [Path("/usr/share/ollama/.ollama/models")] if sys.platform == "linux" else []

Found = list[tuple[str, Path]]  # (reference without its scheme, GGUF file)


# ---------------------------------------------------------------- folders


def ollama_dirs() -> list[Path]:
    if os.environ.get("OLLAMA_MODELS"):
        return [Path(os.environ["OLLAMA_MODELS"]).expanduser()]
    return [Path.home() / ".ollama" / "models", *OLLAMA_SYSTEM_DIRS]


def lmstudio_dirs() -> list[Path]:
    home = Path.home() / ".lmstudio"
    pointer = Path.home() / ".lmstudio-home-pointer"
    if pointer.is_file():
        named = pointer.read_text(encoding="utf-8", errors="replace").strip()
        home = Path(named).expanduser() if named else home
    models = home / "models"
    try:
        settings = json.loads((home / "settings.json").read_text(encoding="utf-8"))
        if isinstance(settings, dict) and isinstance(settings.get("downloadsFolder"), str):
            models = Path(settings["downloadsFolder"]).expanduser()
    except (OSError, ValueError):
        pass  # no settings, or unreadable ones: LM Studio's default folder
    return _unique([models, Path.home() / ".cache" / "lm-studio" / "models"])


def hf_cache_dir() -> Path:
    env = os.environ
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return Path(env[name]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache / "huggingface" / "hub"


def _unique(paths: list[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def is_model_file(path: Path) -> bool:
    """A loadable GGUF: not a later split part, not a vision projector (mmproj)."""
    name = path.name.lower()
    if not name.endswith(".gguf") or name.startswith("mmproj"):
        return False
    match = _LATER_SPLIT.search(name)
    return (match is None or match.group(1) == "00001") and path.is_file()


# ---------------------------------------------------------------- Ollama


def list_ollama() -> Found:
    found: Found = []
    for root in ollama_dirs():
        manifests = root / "manifests"
        for manifest in sorted(manifests.glob("*/*/*/*")):
            host, namespace, name, tag = manifest.relative_to(manifests).parts
            blob = _ollama_blob(root, manifest)
            if blob is not None and blob.is_file():
                found.append((_ollama_name(host, namespace, name, tag), blob))
    return found


def resolve_ollama(rest: str) -> Path:
    name, tag = rest.rsplit(":", 1) if ":" in rest.rsplit("/", 1)[-1] else (rest, "latest")
    parts = [p for p in name.split("/") if p]
    if not parts or len(parts) > 3 or not tag or any(p in (".", "..") for p in parts):
        raise ValueError(
            f"ollama:{rest} is not an Ollama model name; write ollama:NAME[:TAG] "
            "(e.g. ollama:llama3.2:1b), as `ollama list` shows it"
        )
    host, namespace = OLLAMA_REGISTRY, OLLAMA_LIBRARY
    if len(parts) == 3:
        host, namespace = parts[0], parts[1]
    elif len(parts) == 2:
        namespace = parts[0]
    for root in ollama_dirs():
        manifest = _find_case_insensitive(root / "manifests", [host, namespace, parts[-1], tag])
        if manifest is None:
            continue
        blob = _ollama_blob(root, manifest)
        wanted = _ollama_name(host, namespace, parts[-1], tag)
        if blob is None:
            raise ValueError(f"Ollama's manifest {manifest} of {wanted} lists no model layer")
        if not blob.is_file():
            raise ValueError(
                f"the model file of ollama:{wanted} is missing ({blob}); the download is "
                f"incomplete: run `ollama pull {wanted}`"
            )
        return blob
    raise LookupError(f"no Ollama model {_ollama_name(host, namespace, parts[-1], tag)}")


def _ollama_name(host: str, namespace: str, name: str, tag: str) -> str:
    """The name `ollama list` prints: the default registry and library are left out."""
    if host == OLLAMA_REGISTRY:
        prefix = "" if namespace == OLLAMA_LIBRARY else f"{namespace}/"
    else:
        prefix = f"{host}/{namespace}/"
    return f"{prefix}{name}:{tag}"


def _ollama_blob(root: Path, manifest: Path) -> Path | None:
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
    except (OSError, ValueError, AttributeError):
        return None  # not a manifest (a stray file in the folder)
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER:
            digest = str(layer.get("digest", ""))
            blob = root / "blobs" / digest.replace(":", "-", 1)
            legacy = root / "blobs" / digest  # Ollama before 0.1.x named blobs sha256:<hex>
            return legacy if not blob.exists() and legacy.is_file() else blob
    return None


def _find_case_insensitive(base: Path, parts: list[str]) -> Path | None:
    """base/parts..., matching each part exactly or else ignoring case."""
    path = base
    for part in parts:
        exact = path / part
        if exact.exists():
            path = exact
            continue
        if not path.is_dir():
            return None
        matches = [p for p in path.iterdir() if p.name.lower() == part.lower()]
        if len(matches) != 1:
            return None
        path = matches[0]
    return path if path.is_file() else None


# ---------------------------------------------------------------- LM Studio


def list_lmstudio() -> Found:
    found: Found = []
    for root in lmstudio_dirs():
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
            for file in _gguf_files(folder):
                pub, model = folder.relative_to(root).parts
                found.append((f"{pub}/{model}/{file.relative_to(folder).as_posix()}", file))
    return found


def resolve_lmstudio(rest: str) -> Path:
    pub, model, file = split_reference(
        rest,
        f"lmstudio:{rest} is not an LM Studio model; write lmstudio:PUBLISHER/MODEL[/FILE] "
        "(e.g. lmstudio:lmstudio-community/Qwen3-1.7B-GGUF)",
    )
    for root in lmstudio_dirs():
        folder = root / pub / model
        if folder.is_dir():
            return pick_file(f"lmstudio:{pub}/{model}", folder, file)
    raise LookupError(f"no LM Studio model {pub}/{model}")


# ---------------------------------------------------------------- Hugging Face hub cache


def list_hf() -> Found:
    found: Found = []
    cache = hf_cache_dir()
    for repo_dir in sorted(cache.glob("models--*--*")):
        repo = repo_dir.name[len("models--") :].replace("--", "/", 1)
        snapshot = _hf_snapshot(repo_dir)
        if snapshot is None:
            continue
        for file in _gguf_files(snapshot):
            found.append((f"{repo}/{file.relative_to(snapshot).as_posix()}", file))
    return found


def resolve_hf(rest: str) -> Path:
    org, repo, file = split_reference(
        rest,
        f"hf:{rest} is not a Hugging Face repository; write hf:ORG/REPO[/FILE] "
        "(a GGUF already in the hub cache: pyllmattr never downloads)",
    )
    cache = hf_cache_dir()
    repo_dir = cache / f"models--{org}--{repo}"
    if not repo_dir.is_dir() and cache.is_dir():
        wanted = repo_dir.name.lower()
        repo_dir = next((p for p in cache.iterdir() if p.name.lower() == wanted), repo_dir)
    snapshot = _hf_snapshot(repo_dir) if repo_dir.is_dir() else None
    if snapshot is None:
        raise LookupError(f"no Hugging Face repository {org}/{repo} in the hub cache")
    return pick_file(f"hf:{org}/{repo}", snapshot, file)


def split_reference(rest: str, malformed: str) -> tuple[str, str, str]:
    """``OWNER/NAME[/FILE]`` of an ``lmstudio:`` or ``hf:`` reference as (owner, name,
    file or ""), or ValueError(``malformed``): fewer than two parts, or a ``.``/``..``
    part that would leave the store's folder.

    Example:
        >>> split_reference("org/repo/sub/model.gguf", "bad")
        ('org', 'repo', 'sub/model.gguf')
    """
    parts = [p for p in rest.split("/") if p]
    if len(parts) < 2 or any(p in (".", "..") for p in parts):
        raise ValueError(malformed)
    return parts[0], parts[1], "/".join(parts[2:])


def _hf_snapshot(repo_dir: Path) -> Path | None:
    """The snapshot refs/main names, else the most recently written one."""
    try:
        revision = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        revision = ""
    named = repo_dir / "snapshots" / revision
    if revision and named.is_dir():
        return named
    snapshots = [p for p in (repo_dir / "snapshots").glob("*") if p.is_dir()]
    return max(snapshots, key=lambda p: p.stat().st_mtime) if snapshots else None


# ---------------------------------------------------------------- shared


def _gguf_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if is_model_file(p))


def pick_file(ref: str, folder: Path, wanted: str) -> Path:
    """The GGUF of a model folder: the one there is, the one named, or the one whose name
    contains ``wanted`` (a quantization such as Q4_K_M); ValueError when that is ambiguous."""
    files = _gguf_files(folder)
    names = [f.relative_to(folder).as_posix() for f in files]
    if not files:
        raise ValueError(f"{ref} ({folder}) holds no GGUF model file")
    if not wanted:
        if len(files) == 1:
            return files[0]
        raise ValueError(f"{ref} holds {len(files)} GGUF files; name one: " + _choices(ref, names))
    exact = [f for f, n in zip(files, names, strict=True) if n in (wanted, f"{wanted}.gguf")]
    if exact:
        return exact[0]
    if (folder / wanted).is_file():  # a file that is_model_file passes over, asked for by name
        return folder / wanted
    close = [f for f, n in zip(files, names, strict=True) if wanted.lower() in n.lower()]
    if len(close) == 1:
        return close[0]
    what = "several files match" if close else "no file matches"
    raise ValueError(f"{ref}/{wanted}: {what}; it holds: " + _choices(ref, names))


def _choices(ref: str, names: list[str]) -> str:
    return ", ".join(f"{ref}/{n}" for n in names)
