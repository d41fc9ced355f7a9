"""Without torch installed, pyllmattr and the llama.cpp path work, and the PyTorch path
says which extra to install. Runs in a fresh interpreter that cannot import torch."""

from __future__ import annotations

from no_torch import run_without_torch


def test_the_llama_cpp_path_works_without_torch(tiny_path):
    done = run_without_torch(
        f"""
        import pyllmattr as pla
        assert "torch" not in sys.modules
        with pla.load_gguf({str(tiny_path)!r}, n_ctx=128, n_threads=2) as model:
            ids = model.tokenize("Dave lives in Palm Coast")
            inp = pla.TextTokenInput("Dave lives in Palm Coast", model)
            result = pla.FeatureAblation(model).attribute(inp, target=[5, 6])
        assert result.seq_attr.shape == (len(ids),)
        assert "torch" not in sys.modules and "transformers" not in sys.modules
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_torch_path_names_the_extra_to_install(tiny_path):
    done = run_without_torch(
        f"""
        import pyllmattr as pla
        for load in (lambda: pla.load_torch_gguf({str(tiny_path)!r}),
                     lambda: pla.load_torch(object(), object())):
            try:
                load()
            except ImportError as exc:
                print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert 'pip install "pyllmattr[torch]"' in line
        assert "torch is missing" in line


def test_gradient_methods_on_a_llama_cpp_model_explain_without_torch(tiny_path):
    done = run_without_torch(
        f"""
        import pyllmattr as pla
        with pla.load_gguf({str(tiny_path)!r}, n_ctx=128, n_threads=2) as model:
            try:
                pla.IntegratedGradients(model)
            except ValueError as exc:
                print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "pla.load_torch_gguf(path)" in done.stdout
