"""Model references (ollama:, lmstudio:, hf:) resolved in real folder layouts of those tools,
built in a temporary home around real GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_run import run
from model_stores import add_hf_repo, add_ollama_model, clean_environment, link
from tiny_gguf import write_tiny_llama

import pyllmattr as pla
from pyllmattr.cli import main
from pyllmattr.models import stores

SMOLLM2_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
MAIN, OLD = "a" * 40, "b" * 40


@pytest.fixture(scope="session")
def tiny_1k_path(tmp_path_factory, smollm2_path: Path) -> Path:
    """A second tiny model, told apart by its training context (1024)."""
    path = tmp_path_factory.mktemp("gguf") / "tiny-1k.gguf"
    return write_tiny_llama(path, smollm2_path, n_ctx_train=1024, seed=1)


@pytest.fixture
def home(tmp_path, monkeypatch, tiny_path, tiny_1k_path, smollm2_path) -> Path:
    home = tmp_path / "home"
    clean_environment(monkeypatch, home)
    monkeypatch.setattr(stores, "OLLAMA_SYSTEM_DIRS", [])
    ollama = home / ".ollama" / "models"
    add_ollama_model(ollama, smollm2_path, "registry.ollama.ai", "library", "smollm2", "135m")
    add_ollama_model(ollama, tiny_path, "registry.ollama.ai", "library", "tiny", "latest")
    add_ollama_model(ollama, tiny_1k_path, "registry.ollama.ai", "someuser", "tiny-chat", "v1")
    add_ollama_model(ollama, smollm2_path, "hf.co", *SMOLLM2_REPO.split("/"), "Q4_1")
    lms = home / ".lmstudio" / "models"
    community = lms / "lmstudio-community" / "SmolLM2-135M-Instruct-GGUF"
    link(smollm2_path, community / "SmolLM2-135M-Instruct-Q4_1.gguf")
    link(tiny_path, lms / "pyllmattr" / "tiny-GGUF" / "tiny-F32.gguf")
    link(tiny_1k_path, lms / "pyllmattr" / "tiny-GGUF" / "tiny-1k-F32.gguf")
    link(tiny_path, lms / "pyllmattr" / "tiny-GGUF" / "mmproj-tiny-F32.gguf")
    link(tiny_path, home / ".cache" / "lm-studio" / "models" / "old-pub" / "old-model" / "old.gguf")
    hub = home / ".cache" / "huggingface" / "hub"
    add_hf_repo(hub, SMOLLM2_REPO, {"superseded.gguf": tiny_path}, OLD)
    add_hf_repo(hub, SMOLLM2_REPO, {"smollm2-135m-instruct-q4_1.gguf": smollm2_path}, MAIN)
    files = {"tiny-f32.gguf": tiny_path, "sub/tiny-1k-f32.gguf": tiny_1k_path}
    add_hf_repo(hub, "pyllmattr/tiny-GGUF", files, MAIN)
    return home


def same_file(a: Path, b: Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


# ---------------------------------------------------------------- Ollama


def test_an_ollama_name_resolves_to_its_model_blob(home, tiny_path):
    path = pla.resolve_model("ollama:tiny")
    assert path.parent == home / ".ollama" / "models" / "blobs"
    assert path.name.startswith("sha256-") and same_file(path, tiny_path)


def test_an_ollama_tag_namespace_and_host_select_the_manifest(home, smollm2_path, tiny_1k_path):
    assert same_file(pla.resolve_model("ollama:smollm2:135m"), smollm2_path)
    assert same_file(pla.resolve_model("ollama:someuser/tiny-chat:v1"), tiny_1k_path)
    assert same_file(pla.resolve_model(f"ollama:hf.co/{SMOLLM2_REPO}:Q4_1"), smollm2_path)


def test_ollama_models_env_var_replaces_the_default_folder(home, monkeypatch, tmp_path, tiny_path):
    elsewhere = tmp_path / "elsewhere"
    add_ollama_model(elsewhere, tiny_path, "registry.ollama.ai", "library", "moved", "latest")
    monkeypatch.setenv("OLLAMA_MODELS", str(elsewhere))
    assert same_file(pla.resolve_model("ollama:moved"), tiny_path)
    with pytest.raises(ValueError, match="no Ollama model tiny:latest.*found: ollama:moved:latest"):
        pla.resolve_model("ollama:tiny")


def test_an_unknown_ollama_model_lists_the_ones_found(home):
    with pytest.raises(ValueError) as error:
        pla.resolve_model("ollama:llama3.2:1b")
    message = str(error.value)
    assert "no Ollama model llama3.2:1b" in message
    for name in ("smollm2:135m", "tiny:latest", "someuser/tiny-chat:v1"):
        assert name in message


def test_a_manifest_whose_blob_is_missing_says_to_pull_again(home):
    blob = pla.resolve_model("ollama:tiny")
    blob.unlink()
    with pytest.raises(ValueError, match="incomplete: run `ollama pull tiny:latest`"):
        pla.resolve_model("ollama:tiny")


def test_a_malformed_ollama_name_says_how_to_write_one():
    with pytest.raises(ValueError, match=r"write ollama:NAME\[:TAG\]"):
        pla.resolve_model("ollama:a/b/c/d")
    with pytest.raises(ValueError, match=r"write ollama:NAME\[:TAG\]"):
        pla.resolve_model("ollama:tiny:")


# ---------------------------------------------------------------- LM Studio


def test_an_lmstudio_model_with_one_file_resolves_to_it(home, smollm2_path):
    path = pla.resolve_model("lmstudio:lmstudio-community/SmolLM2-135M-Instruct-GGUF")
    assert path.name == "SmolLM2-135M-Instruct-Q4_1.gguf" and same_file(path, smollm2_path)


def test_an_lmstudio_folder_with_several_files_needs_one_named(home, tiny_1k_path):
    with pytest.raises(ValueError) as error:
        pla.resolve_model("lmstudio:pyllmattr/tiny-GGUF")
    message = str(error.value)
    assert "holds 2 GGUF files" in message  # the vision projector (mmproj) is not a model
    assert "lmstudio:pyllmattr/tiny-GGUF/tiny-F32.gguf" in message
    assert "lmstudio:pyllmattr/tiny-GGUF/tiny-1k-F32.gguf" in message
    named = pla.resolve_model("lmstudio:pyllmattr/tiny-GGUF/tiny-1k-F32.gguf")
    assert same_file(named, tiny_1k_path)
    assert pla.resolve_model("lmstudio:pyllmattr/tiny-GGUF/1k") == named  # part of a name


def test_lmstudio_older_folder_and_settings_folder_are_searched(home, tmp_path, tiny_path):
    assert same_file(pla.resolve_model("lmstudio:old-pub/old-model"), tiny_path)
    custom = tmp_path / "custom-models"
    link(tiny_path, custom / "me" / "mine" / "mine.gguf")
    settings = home / ".lmstudio" / "settings.json"
    settings.write_text(json.dumps({"downloadsFolder": str(custom)}), encoding="utf-8")
    assert same_file(pla.resolve_model("lmstudio:me/mine"), tiny_path)


def test_an_unknown_lmstudio_model_lists_the_ones_found(home):
    with pytest.raises(ValueError, match="no LM Studio model x/y.*found: lmstudio:"):
        pla.resolve_model("lmstudio:x/y")


# ---------------------------------------------------------------- Hugging Face hub cache


def test_an_hf_repository_resolves_to_the_snapshot_refs_main_names(home, smollm2_path):
    path = pla.resolve_model(f"hf:{SMOLLM2_REPO}")
    assert path.parent.name == MAIN and path.is_symlink()  # the hub's snapshot symlink
    assert same_file(path, smollm2_path)


def test_an_hf_file_in_a_subfolder_is_named_by_its_path(home, tiny_1k_path):
    path = pla.resolve_model("hf:pyllmattr/tiny-GGUF/sub/tiny-1k-f32.gguf")
    assert same_file(path, tiny_1k_path)


def test_hf_hub_cache_env_var_is_where_the_cache_is(home, monkeypatch, tmp_path, tiny_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub2"))
    add_hf_repo(tmp_path / "hub2", "org/repo", {"m.gguf": tiny_path}, MAIN)
    assert same_file(pla.resolve_model("hf:org/repo"), tiny_path)


def test_an_hf_repository_not_in_the_cache_is_never_downloaded(home):
    with pytest.raises(ValueError, match="no Hugging Face repository org/absent in the hub cache"):
        pla.resolve_model("hf:org/absent")


# ---------------------------------------------------------------- listing and loading


def test_find_models_lists_every_model_of_every_store(home):
    refs = [m.ref for m in pla.find_models()]
    assert refs[0] == "default"
    assert sorted(refs[1:]) == sorted(
        [
            f"ollama:hf.co/{SMOLLM2_REPO}:Q4_1",
            "ollama:smollm2:135m",
            "ollama:tiny:latest",
            "ollama:someuser/tiny-chat:v1",
            "lmstudio:lmstudio-community/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf",
            "lmstudio:pyllmattr/tiny-GGUF/tiny-1k-F32.gguf",
            "lmstudio:pyllmattr/tiny-GGUF/tiny-F32.gguf",
            "lmstudio:old-pub/old-model/old.gguf",
            f"hf:{SMOLLM2_REPO}/smollm2-135m-instruct-q4_1.gguf",
            "hf:pyllmattr/tiny-GGUF/sub/tiny-1k-f32.gguf",
            "hf:pyllmattr/tiny-GGUF/tiny-f32.gguf",
        ]
    )


def test_every_listed_reference_resolves_to_its_file(home):
    for model in pla.find_models(include_default=False):
        assert same_file(pla.resolve_model(model.ref), model.path), model.ref


def test_load_gguf_takes_a_reference_and_scores_as_the_path_does(home, tiny):
    with pla.load_gguf("ollama:tiny", n_ctx=512, n_threads=2) as model:
        prompt = model.tokenize("Dave lives in Palm Coast")
        target = model.tokenize(" and is a lawyer", add_special=False)
        by_ref = model.score([prompt], target, share_prefix=False)
    np.testing.assert_array_equal(by_ref, tiny.score([prompt], target, share_prefix=False))


def test_load_gguf_of_an_unknown_reference_is_a_value_error(home):
    with pytest.raises(ValueError, match="no Ollama model absent:latest"):
        pla.load_gguf("ollama:absent")


def test_a_path_object_is_never_taken_for_a_reference(tmp_path):
    assert pla.resolve_model(Path("hf:x")) == Path("hf:x")


def test_models_command_prints_each_reference_with_its_header(home, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["reference", "architecture", "parameters", "quantization", "size", "context"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert rows["ollama:smollm2:135m"][1:4] == ["llama", "135M", "Q4_1"]
    assert rows["ollama:smollm2:135m"][-1] == "8192"
    assert rows["ollama:someuser/tiny-chat:v1"][-1] == "1024"
    assert "looked in:" in out and str(home / ".ollama" / "models") in out


def test_models_command_json_matches_the_gguf_headers(home, capsys):
    assert main(["models", "--json", "--source", "hf"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["source"] for row in rows} == {"hf"}
    for row in rows:
        info = pla.read_gguf_info(row["path"])
        assert (row["architecture"], row["n_params"], row["quantization"], row["context"]) == (
            info.architecture,
            info.n_params,
            info.quantization,
            info.context_length,
        )


def test_attribute_command_runs_on_an_ollama_reference(home, tmp_path, smollm2_path):
    """End to end, as a user runs it: the console script in the home built above."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    outputs = {}
    for model in ("ollama:smollm2:135m", str(smollm2_path)):
        out = tmp_path / f"{len(outputs)}.json"
        done = run(
            "attribute", "--model", model, "--prompt", "Dave lives in Palm Coast, FL and is a",
            "--target", " lawyer", "--threads", "2", "--json", str(out), "--no-progress", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs[model] = pla.AttributionResult.from_json(out.read_text())
    by_ref, by_path = outputs.values()
    assert by_ref.input_features == by_path.input_features
    assert by_ref.target_ids == by_path.target_ids
    # Same file, same settings, same batches: the same numbers.
    np.testing.assert_array_equal(by_ref.seq_attr, by_path.seq_attr)


def test_load_torch_gguf_takes_a_reference(home, tiny):
    pytest.importorskip("torch")
    tm = pla.load_torch_gguf("ollama:tiny")
    assert tm.path == pla.resolve_model("ollama:tiny")
    assert tm.tokenize("Dave lives in Palm Coast") == tiny.tokenize("Dave lives in Palm Coast")
