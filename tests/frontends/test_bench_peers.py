"""The main benchmark's configurations score what their names say: the llama-cpp-python
loops score every prompt themselves, one at a time, and the share_prefix=False proxy
decodes every prompt whole (once, both were routed to pyllmattr's prefix-shared engine
because attributions call ``score_pairs``, which the proxies did not wrap)."""

from __future__ import annotations

import json
import subprocess
import sys

from repo_paths import BENCH, ROOT

CONFIGS = ["pla-shared", "pla-independent", "llama-cpp-loop", "llama-cpp-reuse"]


def test_every_configuration_decodes_what_its_scorer_decodes(tmp_path):
    raw = tmp_path / "run.json"
    done = subprocess.run(
        [
            sys.executable, str(BENCH), "run", "--quick", "--jobs", "1", "--repeats", "1",
            "--configs", ",".join(CONFIGS), "--out", str(tmp_path / "run.md"), "--json", str(raw),
        ],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(raw.read_text())["results"]["job1-token-fa"]
    stats = {config: results[config]["stats"] for config in CONFIGS}
    shared = stats["pla-shared"]
    assert shared["strategy"] == "trie" and shared["n_decoded"] == shared["n_trie"]
    assert shared["n_trie"] < shared["n_naive"]  # the prompts share prefixes
    assert stats["pla-independent"]["n_decoded"] == shared["n_naive"]
    loop, reuse = stats["llama-cpp-loop"], stats["llama-cpp-reuse"]
    assert loop["strategy"] == "llama-cpp-python eval"
    assert loop["n_decoded"] == shared["n_naive"] and loop["n_padding"] == 0
    assert reuse["strategy"] == "llama-cpp-python generate reuse"
    assert shared["n_trie"] <= reuse["n_decoded"] < shared["n_naive"]
