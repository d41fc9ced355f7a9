"""Captum 0.9's default LLM mode against its single-pass mode on one 8-shot query.

Captum's default mode (``forward_in_tokens=True``) scores the target one token at a
time, by default through the model's KV cache (``use_cached_outputs=True``). This
prints the feature-ablation attributions of the first query of ``dataset_job.py``
three ways on the same float32 weights; where the cached path disagrees with the other
two, the dataset benchmark's *Captum default* row times a mode that is broken with the
installed transformers.

    python bench captum_cache
"""

from __future__ import annotations

import argparse

import torch
from captum.attr import FeatureAblation, LLMAttribution, TextTemplateInput
from harness import dataset_job
from harness.torch_gguf import TorchGGUF

import pyllmattr as pla


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    side = TorchGGUF(pla.default_model_path(), threads=2)
    tokenizer, model = side.tokenizer, side.model
    ((a, b),) = dataset_job.queries(1)
    inp = TextTemplateInput(
        dataset_job.template(a, b), dataset_job.slot_values(), baselines=[""] * 8
    )
    ids = tokenizer(dataset_job.target(a, b), add_special_tokens=False)["input_ids"]
    target = torch.tensor(ids)
    attr = LLMAttribution(FeatureAblation(model), tokenizer)
    ways = {
        "single pass": {"forward_in_tokens": False},
        "default (cached)": {},
        "default, use_cached_outputs=False": {"use_cached_outputs": False},
    }
    for name, options in ways.items():
        values = attr.attribute(inp, target=target, **options).seq_attr.detach().numpy()
        print(f"{name:34s}", values.round(3))


if __name__ == "__main__":
    main()
