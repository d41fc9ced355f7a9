"""The exact layout's self-check runs once per machine, model and options: its outcome is
cached on disk, and anything wrong with the cache falls back to running the check, with
bit-identical scores either way (models/selfcheck_cache.py, docs/numerics.md)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import gguf
import numpy as np
import pytest
from isolated import run_isolated
from tiny_gguf import write_tiny_llama

import pyllmattr as pla
from pyllmattr.models.cache_dir import user_cache_dir
from pyllmattr.models.gguf_header import read_gguf_info
from pyllmattr.models.selfcheck_cache import (
    SUBFOLDER,
    SelfCheckCache,
    SelfCheckOutcome,
    model_fingerprint,
)

PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"
TARGET = " golf and"

# A child process: load, score leave-one-out (the first exact call), report.
CHILD = """
import json, pyllmattr as pla
with pla.load_gguf({path!r}, n_ctx=512, n_threads=2) as m:
    prompt = m.tokenize({prompt!r})
    seqs = [prompt] + [prompt[:i] + prompt[i + 1:] for i in range(1, len(prompt), 3)]
    scores = m.score(seqs, {target!r})
    print(json.dumps({{"by": m.exact_verified_by, "block": m.exact_block,
                      "scores": scores.ravel().tolist()}}))
"""


def child(path: Path) -> dict:
    return run_isolated(CHILD.format(path=str(path), prompt=PROMPT, target=TARGET))


def leave_one_out(path: Path, **options) -> tuple[str | None, np.ndarray, np.ndarray]:
    """(exact_verified_by, prefix-shared scores, one-by-one scores) of a fresh load."""
    options = {"n_ctx": 512, "n_threads": 2, **options}
    with pla.load_gguf(path, **options) as m:
        prompt = m.tokenize(PROMPT)
        seqs = [prompt] + [prompt[:i] + prompt[i + 1 :] for i in range(1, len(prompt), 3)]
        shared = m.score(seqs, TARGET)
        alone = m.score(seqs, TARGET, share_prefix=False)
        return m.exact_verified_by, shared, alone


def entries(folder: Path) -> list[Path]:
    return sorted((folder / SUBFOLDER).glob("*.json"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PYLLMATTR_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def model_copy(tiny_path: Path, tmp_path: Path) -> Path:
    """The tiny model under a path of this test's own (tests below rewrite it)."""
    return Path(shutil.copy(tiny_path, tmp_path / "model.gguf"))


# ---------------------------------------------------------------- across processes


def test_a_second_process_takes_the_outcome_from_the_cache(model_copy, cache):
    first = child(model_copy)
    second = child(model_copy)
    assert (first["by"], second["by"]) == ("self-check", "cache")
    assert second["block"] == first["block"]
    assert second["scores"] == first["scores"]  # JSON floats round-trip exactly
    assert len(entries(cache)) == 1


def test_the_entry_follows_the_content_not_the_path(model_copy, cache, tmp_path):
    assert child(model_copy)["by"] == "self-check"
    moved = Path(shutil.copy(model_copy, tmp_path / "elsewhere.gguf"))
    os.utime(moved, ns=(1, 1))  # another path, another mtime, the same bytes
    assert child(moved)["by"] == "cache"


# ---------------------------------------------------------------- fallbacks


def test_a_changed_model_file_runs_the_check(model_copy, smollm2_path, cache):
    by, before, _ = leave_one_out(model_copy)
    assert by == "self-check"
    write_tiny_llama(model_copy, smollm2_path, seed=1)  # same header, other weights
    by, after, alone = leave_one_out(model_copy)
    assert by == "self-check"
    np.testing.assert_array_equal(after, alone)
    assert not np.array_equal(after, before)  # the file really changed
    assert len(entries(cache)) == 2


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "another key", "a block the engine never chooses", "empty"],
)
def test_a_corrupt_cache_file_runs_the_check_and_is_rewritten(model_copy, cache, damage):
    _, reference, _ = leave_one_out(model_copy)
    (entry,) = entries(cache)
    text = entry.read_text(encoding="utf-8")
    data = json.loads(text)
    if damage == "garbage":
        entry.write_bytes(b"\xff\x00 not json")
    elif damage == "truncated":
        entry.write_text(text[: len(text) // 2], encoding="utf-8")
    elif damage == "another key":
        data["key"]["options"]["n_ctx"] += 1
        entry.write_text(json.dumps(data), encoding="utf-8")
    elif damage == "a block the engine never chooses":
        data["outcome"]["block"] = 3
        entry.write_text(json.dumps(data), encoding="utf-8")
    else:
        entry.write_text("", encoding="utf-8")
    by, scores, _ = leave_one_out(model_copy)
    assert by == "self-check"
    np.testing.assert_array_equal(scores, reference)
    assert json.loads(entry.read_text(encoding="utf-8")) != {}
    assert leave_one_out(model_copy)[0] == "cache"  # the check's outcome was written again


def unwritable(tmp_path: Path, how: str) -> Path:
    if how == "read-only":
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    blocker = tmp_path / "a-file"  # a path under a file: not even root can create it
    blocker.write_text("not a folder", encoding="utf-8")
    return blocker / "cache"


@pytest.mark.parametrize("how", ["read-only", "under a file"])
def test_an_unwritable_cache_folder_runs_the_check_every_time(
    model_copy, tmp_path, monkeypatch, how
):
    if how == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; 'under a file' covers it")
    folder = unwritable(tmp_path, how)
    monkeypatch.setenv("PYLLMATTR_CACHE_DIR", str(folder))
    by1, first, alone = leave_one_out(model_copy)
    by2, second, _ = leave_one_out(model_copy)
    assert by1 == by2 == "self-check"
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, alone)


# ---------------------------------------------------------------- what is cached


def test_a_failed_self_check_is_cached_too_and_scores_one_by_one(model_copy, cache):
    # (The fallback's 64-cell padding needs more than 512 cells.)
    with pla.load_gguf(model_copy, n_ctx=1024, n_threads=2) as m:
        # The key of this model and options; the check has not run (nothing scored yet).
        store = SelfCheckCache.for_engine(model_copy, m._engine)
        assert m._engine.exact_outcome is None
    # What the engine keeps when no rules pass: 64-cell blocks, unverified.
    assert store.store(SelfCheckOutcome(False, 64, 16, 64, 1.0))
    with pla.load_gguf(model_copy, n_ctx=1024, n_threads=2) as m:
        assert (m.exact_verified_by, m.exact_verified) == ("cache", False)
        prompt = m.tokenize(PROMPT)
        seqs = [prompt, prompt[:-1], prompt[1:]]
        shared, stats = m.score(seqs, TARGET, return_stats=True)
        assert stats.strategy == "independent"  # the fallback: nothing shared
        np.testing.assert_array_equal(shared, m.score(seqs, TARGET, share_prefix=False))


def test_the_key_changes_with_the_load_options(model_copy, cache):
    keys = set()
    for options in ({}, {"n_threads": 1}, {"kv_precision": "f32"}, {"n_ctx": 1024}):
        with pla.load_gguf(model_copy, **{"n_ctx": 512, "n_threads": 2, **options}) as m:
            keys.add(SelfCheckCache.for_engine(model_copy, m._engine).path.name)
    assert len(keys) == 4


def test_the_fast_layout_has_no_self_check(model_copy, cache):
    by, _, _ = leave_one_out(model_copy, deterministic=False)
    assert by is None
    assert entries(cache) == []


def test_smollm2_from_the_cache_keeps_its_block_and_scores_exactly(smollm2_path, cache):
    with pla.load_gguf(smollm2_path, n_ctx=512, n_threads=2) as m:
        checked_block = m.exact_block
        assert m.exact_verified_by == "self-check" and m.exact_verified
    by, shared, alone = leave_one_out(smollm2_path)
    assert by == "cache"
    np.testing.assert_array_equal(shared, alone)  # the cached rules are exact
    with pla.load_gguf(smollm2_path, n_ctx=512, n_threads=2) as m:
        assert m.exact_block == checked_block


# ---------------------------------------------------------------- the parts


def test_concurrent_writers_never_leave_a_partial_entry(tmp_path):
    store = SelfCheckCache({"model": "m"}, tmp_path)
    outcome = SelfCheckOutcome(True, 16, 4, 16, 2.5)
    seen, errors = [], []

    def write() -> None:
        for _ in range(50):
            store.store(outcome)

    def read() -> None:
        try:
            for _ in range(200):
                seen.append(store.load())
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (write, write, write, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(seen) <= {None, outcome} and store.load() == outcome
    assert [p.name for p in tmp_path.iterdir()] == [store.path.name]  # no temporary files


def test_the_model_fingerprint_is_by_content(tiny_path, smollm2_path, tmp_path):
    copy = Path(shutil.copy(tiny_path, tmp_path / "copy.gguf"))
    os.utime(copy, ns=(5, 5))
    assert model_fingerprint(copy) == model_fingerprint(tiny_path)
    other = write_tiny_llama(tmp_path / "other.gguf", smollm2_path, seed=7)
    a, b = model_fingerprint(tiny_path), model_fingerprint(other)
    # Same architecture and shapes, so the same header: the weight samples tell them apart.
    assert a["header"] == b["header"] and a["size"] == b["size"]
    assert a["sample"] != b["sample"]


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_the_header_end_matches_the_gguf_package(tiny_path, smollm2_path, which):
    path = tiny_path if which == "tiny" else smollm2_path
    assert read_gguf_info(path).data_offset == gguf.GGUFReader(str(path)).data_offset


def test_malformed_outcomes_are_refused():
    good = {"verified": True, "block": 16, "row_mult": 4, "row_min": 16, "seconds": 2.0}
    assert SelfCheckOutcome.from_dict(good) == SelfCheckOutcome(True, 16, 4, 16, 2.0)
    for bad in (
        {**good, "block": 0},
        {**good, "block": True},
        {**good, "verified": 1},
        {**good, "seconds": -1},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "row_min"},
        [good],
    ):
        assert SelfCheckOutcome.from_dict(bad) is None


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({"PYLLMATTR_CACHE_DIR": "/x/pla"}, "linux", "/x/pla"),
        ({"PYLLMATTR_CACHE": "/x/old"}, "linux", "/x/old"),
        ({"PYLLMATTR_CACHE_DIR": "/x/new", "PYLLMATTR_CACHE": "/x/old"}, "darwin", "/x/new"),
        ({"XDG_CACHE_HOME": "/x/xdg"}, "linux", "/x/xdg/pyllmattr"),
        ({}, "linux", "/home/me/.cache/pyllmattr"),
        ({"XDG_CACHE_HOME": "/x/xdg"}, "darwin", "/home/me/Library/Caches/pyllmattr"),
        ({"LOCALAPPDATA": "/x/local"}, "win32", "/x/local/pyllmattr/Cache"),
        ({}, "win32", "/home/me/AppData/Local/pyllmattr/Cache"),
    ],
)
def test_the_cache_folder_is_the_platforms(env, platform, expected):
    assert user_cache_dir(env, platform, Path("/home/me")) == Path(expected)


def test_the_test_suite_uses_a_private_cache_folder(private_cache_dir):
    assert user_cache_dir() == private_cache_dir
