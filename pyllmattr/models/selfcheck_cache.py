"""The exact layout's self-check once per machine and model, not once per process.

The first exact scoring call on a model runs a self-check (csrc/scorer_exact.cpp): it
scores leave-one-out sequences prefix-shared and one by one and keeps the first rules
(block, row multiple, minimum rows) under which the two agree bit for bit. That costs
3 s on SmolLM2-135M and 10 s on a 1.5B model, on every process's first call. Its outcome
depends only on the computation, so it is cached on disk (``<cache>/selfcheck/``, the
folder of models/cache_dir.py) under a key made of everything that can change it:

- **the model file's content**: its size, a hash of the GGUF header (metadata and tensor
  descriptions: architecture, shapes, quantization types) and a hash of 16 evenly spaced
  64 KiB samples of the tensor data. A content key and not size + mtime + inode: a copy,
  a move, a hard link or an Ollama blob of the same file keeps its entry, and ``touch``
  or a copy that drops the mtime does not throw it away, while a file rewritten in place
  (another fine-tune with the same architecture changes every tensor, so every sample)
  gets a new one. It reads the header and 1 MiB of data: a few milliseconds on SmolLM2,
  against a load that reads the whole file;
- **llama.cpp as loaded**: llama-cpp-python's version, ggml's version and commit, the
  system info line (the CPU features the build uses), and a fingerprint (size, first
  and last MiB) of each of its shared libraries, so a rebuild with other ``CMAKE_ARGS``
  is a new key;
- **the engine**: pyllmattr's version, the exact layout's rules version
  (``kExactRulesVersion`` in csrc/layout.h) and a hash of the compiled extension;
- **the machine**: the CPU model and its feature flags, and the back-end devices
  llama.cpp finds (name, description, type): with a GPU back end llama.cpp may run
  large matrix products there even with ``n_gpu_layers=0``;
- **the load options the engine ends up with** (after llama.cpp's limits):
  ``n_gpu_layers``; the KV cache type (f16 or f32: another attention kernel); ``n_ctx``,
  ``n_batch``, ``n_outputs`` and ``max_branches`` (a small context makes the self-check
  score fewer sequences per wave, a small batch splits its decodes; they set the
  context's sequence count and cell count); ``n_threads`` (ggml splits matrix products
  by thread and the repacked K-quant kernels work on row groups of a thread's chunk; we
  have not shown that the split cannot change a sum, so a different count checks again).
  Flash attention is always off in the exact layout; its setting is kept anyway.

A process that finds an entry with the same key takes its outcome
(``model.exact_verified_by == "cache"``); anything else (no entry, another key, an
unreadable or corrupt file, an outcome the engine would not reach itself, a read-only or
missing folder) runs the check as before (``"self-check"``) and writes the entry if it
can. The cache never makes loading or scoring fail. Writes go to a temporary file in
the same folder, renamed over the entry (``os.replace``), so concurrent processes see
either the old entry or the new one, never a partial file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._native import _core
from .cache_dir import user_cache_dir
from .gguf_header import read_gguf_info

logger = logging.getLogger(__name__)

FORMAT = 1  # of the entry files; another value is a miss
SUBFOLDER = "selfcheck"
SAMPLES = 16  # tensor-data samples hashed into the model's identity
SAMPLE_BYTES = 64 * 1024
LIBRARY_EDGE = 1 << 20  # a shared library is fingerprinted by its size, first and last MiB
VERIFIED_BY = ("self-check", "cache")


@dataclass(frozen=True)
class SelfCheckOutcome:
    """What the self-check found: the rules in use and whether they passed.

    ``verified=False`` means no rules passed: exact calls then score every sequence
    alone (exact by definition, without sharing). ``seconds`` is how long the check took
    when it ran.

    Example:
        >>> SelfCheckOutcome(verified=True, block=16, row_mult=4, row_min=16, seconds=3.0).block
        16
    """

    verified: bool
    block: int
    row_mult: int
    row_min: int
    seconds: float

    @classmethod
    def from_dict(cls, data: Any) -> SelfCheckOutcome | None:
        """The outcome stored in an entry, or None when it is not a well-formed one."""
        if not isinstance(data, dict) or set(data) != {f for f in cls.__dataclass_fields__}:
            return None
        ints = [data[k] for k in ("block", "row_mult", "row_min")]
        if not all(type(v) is int and 0 < v <= 4096 for v in ints):
            return None
        seconds = data["seconds"]
        if type(data["verified"]) is not bool or type(seconds) not in (int, float) or seconds < 0:
            return None
        block, row_mult, row_min = ints
        return cls(data["verified"], block, row_mult, row_min, float(seconds))


class SelfCheckCache:
    """The cache entry of one model under one configuration (module docstring).

    Example:
        >>> cache = SelfCheckCache.for_engine(path, model._engine)  # doctest: +SKIP
        >>> cache.load()  # doctest: +SKIP
        SelfCheckOutcome(verified=True, block=16, row_mult=4, row_min=16, seconds=3.1)
    """

    def __init__(self, key: dict[str, Any], folder: Path, model_path: Path | None = None) -> None:
        # Through JSON once, so that the key compares equal to what an entry file holds.
        self.key = json.loads(json.dumps(key, sort_keys=True))
        self.folder = folder
        self.model_path = model_path
        digest = hashlib.blake2b(json.dumps(self.key, sort_keys=True).encode(), digest_size=16)
        self.path = folder / f"{digest.hexdigest()}.json"

    @classmethod
    def for_engine(
        cls, model_path: Path, engine: Any, folder: Path | None = None
    ) -> SelfCheckCache | None:
        """The entry for ``engine`` (loaded from ``model_path``), or None when its key
        cannot be made (an unreadable file: the self-check then runs as without a cache)."""
        try:
            key = {
                "format": FORMAT,
                "model": model_fingerprint(model_path),
                "runtime": runtime_fingerprint(),
                "options": load_options(engine),
            }
        except Exception as exc:  # noqa: BLE001 (the cache must never make loading fail)
            logger.debug("no self-check cache for %s: %s", model_path, exc)
            return None
        return cls(key, folder or user_cache_dir() / SUBFOLDER, model_path)

    def load(self) -> SelfCheckOutcome | None:
        """The cached outcome, or None: no entry, another key, or a file that is unreadable
        or not a well-formed entry."""
        try:
            entry = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            logger.debug("self-check cache entry %s unreadable: %s", self.path, exc)
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        if entry.get("key") != self.key:  # a hash collision or a hand-edited file
            return None
        return SelfCheckOutcome.from_dict(entry.get("outcome"))

    def store(self, outcome: SelfCheckOutcome) -> bool:
        """Write the entry atomically; False (and nothing raised) when the folder is not
        writable."""
        entry = {
            "format": FORMAT,
            "key": self.key,
            "outcome": asdict(outcome),
            "model_path": str(self.model_path) if self.model_path else None,  # for people
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        partial = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(
                prefix=self.path.stem + ".", suffix=".tmp", dir=self.folder
            )
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f, indent=1, sort_keys=True)
            os.replace(partial, self.path)
            return True
        except OSError as exc:
            logger.debug("self-check cache entry %s not written: %s", self.path, exc)
            if partial is not None:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
            return False


class ExactRulesSource:
    """Where one engine's exact-layout rules come from: a cache entry adopted at load, or
    the self-check the engine runs at its first exact call (whose outcome is then stored).

    ``LlamaModel`` calls :meth:`settled` after every scoring call; it costs a property read
    once the rules are known.

    Example:
        >>> cache = SelfCheckCache.for_engine(path, engine)  # doctest: +SKIP
        >>> source = ExactRulesSource(engine, cache)  # doctest: +SKIP
        >>> source.verified_by  # doctest: +SKIP
        'cache'
    """

    def __init__(self, engine: Any, cache: SelfCheckCache | None) -> None:
        self._engine = engine
        self._cache = cache
        self._lock = threading.Lock()
        self.verified_by: str | None = None
        self.outcome: SelfCheckOutcome | None = None
        if cache is not None:
            self._adopt(cache)

    def _adopt(self, cache: SelfCheckCache) -> None:
        outcome = cache.load()
        if outcome is None:
            return
        if self._engine.adopt_exact_rules(
            outcome.block, outcome.row_mult, outcome.row_min, outcome.verified
        ):
            self.verified_by, self.outcome = "cache", outcome
        else:
            logger.debug("the engine refused the cached self-check outcome %s", outcome)

    def settled(self) -> None:
        """Note (and cache) the self-check's outcome once the engine has run it."""
        if self.verified_by is not None:
            return
        native = self._engine.exact_outcome
        if native is None:
            return
        with self._lock:
            if self.verified_by is not None:
                return
            verified, block, row_mult, row_min, seconds = native
            self.outcome = SelfCheckOutcome(verified, block, row_mult, row_min, seconds)
            self.verified_by = "self-check"
            if self._cache is not None:
                self._cache.store(self.outcome)


# ---------------------------------------------------------------- the key's parts


def model_fingerprint(path: Path) -> dict[str, Any]:
    """The model file's identity by content: size, header hash, tensor-data sample hash."""
    size = path.stat().st_size
    try:
        data_offset = read_gguf_info(path).data_offset
    except ValueError:
        data_offset = 0  # not parseable here: hash the samples of the whole file
    header = hashlib.blake2b(digest_size=16)
    sample = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        _hash_range(f, 0, data_offset, header)
        span = max(size - data_offset, 0)
        step = max(span // SAMPLES, 1)
        for i in range(SAMPLES):
            start = data_offset + min(i * step, max(span - SAMPLE_BYTES, 0))
            _hash_range(f, start, min(SAMPLE_BYTES, size - start), sample)
    return {"size": size, "header": header.hexdigest(), "sample": sample.hexdigest()}


def _hash_range(f: Any, start: int, length: int, into: Any) -> None:
    f.seek(start)
    while length > 0:
        chunk = f.read(min(length, 1 << 20))
        if not chunk:
            break
        into.update(chunk)
        length -= len(chunk)


def load_options(engine: Any) -> dict[str, Any]:
    """The engine's options in effect that can change the self-check's outcome."""
    o = engine.options
    return {
        "n_gpu_layers": o.n_gpu_layers,
        "kv_f32": o.kv_f32,
        "flash_attn": int(o.flash_attn),
        "n_ctx": o.n_ctx,
        "n_batch": o.n_batch,
        "n_outputs": o.n_outputs,
        "max_branches": o.max_branches,
        "n_threads": o.n_threads,
    }


@functools.cache
def runtime_fingerprint() -> dict[str, Any]:
    """Everything about this process's llama.cpp, engine and machine that the key needs
    (computed once per process)."""
    info = _core.system_info()
    return {
        "rules_version": _core.EXACT_RULES_VERSION,
        "pyllmattr": _version("pyllmattr"),
        "engine": _file_hash(Path(_core.__file__)),
        "llama_cpp_python": _version("llama-cpp-python"),
        "ggml": [info["ggml_version"], info["ggml_commit"]],
        "system_info": info["system_info"],
        "libraries": _library_fingerprints(),
        "cpu": cpu_identity(),
        "devices": [
            [d["name"], d["description"], d["type"], d["backend"]] for d in info["devices"]
        ],
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _file_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        _hash_range(f, 0, path.stat().st_size, digest)
    return digest.hexdigest()


def _library_fingerprints() -> dict[str, str]:
    """llama-cpp-python's shared libraries (llama, ggml and its back ends), by name."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return {}
    package = Path(spec.origin).parent
    fingerprints = {}
    seen = set()
    for folder in (package / "lib", package):
        for file in sorted(folder.glob("*")):
            if not _is_native_library(file.name) or file.resolve() in seen:
                continue
            seen.add(file.resolve())
            fingerprints[file.name] = _edge_hash(file)
    return fingerprints


def _is_native_library(name: str) -> bool:
    # libllama.so, not its versioned copies (libllama.so.0, ...): the same bytes again.
    return any(part in name for part in ("llama", "ggml")) and name.endswith(
        (".so", ".dylib", ".dll")
    )


def _edge_hash(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        _hash_range(f, 0, min(size, LIBRARY_EDGE), digest)
        tail = max(size - LIBRARY_EDGE, LIBRARY_EDGE)
        _hash_range(f, tail, size - tail, digest)
    return digest.hexdigest()


@functools.cache
def cpu_identity() -> dict[str, str]:
    """The CPU's model and a hash of its feature flags (what this platform tells)."""
    identity = {"machine": platform.machine(), "model": platform.processor(), "flags": ""}
    if sys.platform.startswith("linux"):
        identity.update(_linux_cpu())
    elif sys.platform == "darwin":
        identity["model"] = _sysctl("machdep.cpu.brand_string") or identity["model"]
        identity["flags"] = _sysctl("machdep.cpu.features") or ""
    if len(identity["flags"]) > 64:
        identity["flags"] = hashlib.blake2b(identity["flags"].encode(), digest_size=16).hexdigest()
    return identity


def _linux_cpu() -> dict[str, str]:
    found = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                name = name.strip()
                if name in ("model name", "Model", "CPU part") and "model" not in found:
                    found["model"] = value.strip()
                elif name in ("flags", "Features") and "flags" not in found:
                    found["flags"] = " ".join(sorted(value.split()))
                if len(found) == 2:
                    break
    except OSError:
        pass
    return found


def _sysctl(name: str) -> str | None:
    try:
        done = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
