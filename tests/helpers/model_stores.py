"""Real folder layouts of Ollama, LM Studio and the Hugging Face hub cache, built around
real GGUF files in a temporary home, as those tools leave them on disk."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

OLLAMA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OLLAMA_CONFIG = "application/vnd.docker.container.image.v1+json"
OLLAMA_TEMPLATE = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"


@functools.cache
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def link(source: Path, dest: Path) -> Path:
    """dest as a symlink to source (how the tests avoid copying the 98 MB model)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, dest)
    return dest


def ollama_blob(root: Path, content: bytes) -> dict:
    digest = hashlib.sha256(content).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / f"sha256-{digest}").write_bytes(content)
    return {"digest": f"sha256:{digest}", "size": len(content)}


def add_ollama_model(root: Path, gguf: Path, host: str, namespace: str, name: str, tag: str):
    """manifests/HOST/NAMESPACE/NAME/TAG and blobs/sha256-<hex>, as `ollama pull` writes them."""
    digest = sha256(gguf)
    blob = root / "blobs" / f"sha256-{digest}"
    if not blob.exists():  # Ollama keeps one blob per content, whatever names it has
        link(gguf, blob)
    config_json = {"model_format": "gguf", "model_family": "llama"}
    config = ollama_blob(root, json.dumps(config_json).encode())
    template = ollama_blob(root, OLLAMA_TEMPLATE.encode())
    params = ollama_blob(root, json.dumps({"stop": ["<|im_end|>"]}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OLLAMA_MANIFEST,
        "config": {"mediaType": OLLAMA_CONFIG, **config},
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": f"sha256:{digest}",
                "size": gguf.stat().st_size,
            },
            {"mediaType": "application/vnd.ollama.image.template", **template},
            {"mediaType": "application/vnd.ollama.image.params", **params},
        ],
    }
    path = root / "manifests" / host / namespace / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return blob


def add_hf_repo(cache: Path, repo: str, files: dict[str, Path], revision: str) -> Path:
    """models--ORG--REPO with blobs/, snapshots/<revision>/ symlinks and refs/main."""
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    for name, source in files.items():
        blob = repo_dir / "blobs" / sha256(source)
        if not blob.exists():
            link(source, blob)
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, target.parent), target)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot


def clean_environment(monkeypatch, home: Path) -> None:
    """HOME is ``home`` and no tool's folder variable points elsewhere."""
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for name in ("OLLAMA_MODELS", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
