"""Captum 0.9 ``LLMAttribution`` on the GGUF dequantized into PyTorch (float32).

The inputs mirror pyllmattr's: the same template or token features, the same
baselines (removal, or token 0), the same target token ids, and an empty
perturbed prompt is scored from the same start token pyllmattr uses (Captum
would pass an empty ``input_ids`` to the model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from captum._utils.models.linear_model import LinearModel
from captum.attr import (
    FeatureAblation,
    KernelShap,
    LLMAttribution,
    ShapleyValueSampling,
    TextTemplateInput,
    TextTokenInput,
)

from harness.jobs import CAPTUM_DEFAULT
from harness.runners import Runner
from harness.torch_gguf import TorchGGUF
from pyllmattr.inputs.split import units_with_leading_space


class WeightedLeastSquares(LinearModel):
    """Weighted linear regression with an intercept, solved with numpy.

    Captum's KernelShap fits ``sklearn.linear_model.LinearRegression`` with the
    Shapley-kernel sample weights; scikit-learn is not installed here, so this
    solves the same weighted least-squares problem directly.
    """

    def __init__(self) -> None:
        super().__init__(train_fn=None)

    def fit(self, train_data: Any, **kwargs: Any) -> dict[str, float]:
        xs, ys, ws = [], [], []
        for x, y, w in train_data:
            xs.append(x.double().numpy())
            ys.append(y.double().numpy())
            ws.append(w.double().numpy())
        x, w = np.concatenate(xs), np.concatenate(ws).reshape(-1)
        y = np.concatenate(ys).reshape(len(x), -1)
        design = np.column_stack([x, np.ones(len(x))]) * np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(design, y * np.sqrt(w)[:, None], rcond=None)
        self._construct_model_params(
            norm_type=None,
            weight_values=torch.tensor(coef[:-1].T, dtype=torch.float32),
            bias_value=torch.tensor(coef[-1], dtype=torch.float32),
        )
        return {}


class LstsqKernelShap(KernelShap):
    """Captum's KernelShap with :class:`WeightedLeastSquares` as its linear model."""

    def __init__(self, forward_func: Any) -> None:
        super().__init__(forward_func)
        self.interpretable_model = WeightedLeastSquares()


class MirroredLLMAttribution(LLMAttribution):
    """LLMAttribution that scores an empty perturbed prompt from ``empty_ids`` (as pyllmattr
    does) and counts the evaluations."""

    def __init__(self, method: Any, tokenizer: Any, empty_ids: list[int]) -> None:
        super().__init__(method, tokenizer)
        self.empty_ids = empty_ids
        self.n_evaluations = 0
        self.n_empty = 0

    def _format_model_input(self, model_input: Any) -> dict[str, Any]:
        out = super()._format_model_input(model_input)
        self.n_evaluations += 1
        if out["input_ids"].shape[1] == 0:
            self.n_empty += 1
            out = {**out, "input_ids": torch.tensor([self.empty_ids], device=self.device)}
        return out


METHODS = {
    "FeatureAblation": FeatureAblation,
    "ShapleyValueSampling": ShapleyValueSampling,
    "KernelShap": LstsqKernelShap,
}


def captum_input(spec: dict[str, Any], tokenizer: Any) -> Any:
    """Captum's counterpart of the pyllmattr input described by ``spec``."""
    kind = spec["kind"]
    if kind == "token":
        return TextTokenInput(spec["text"], tokenizer, baselines=0)
    if kind == "text":  # what pyllmattr's TextTemplateInput.from_text builds
        lead, units, trail = units_with_leading_space(spec["text"], spec["by"])
        template = _escape(lead) + "{}" * len(units) + _escape(trail)
        return TextTemplateInput(template, values=units, baselines=[""] * len(units))
    if kind == "template":
        values = list(spec["values"])
        return TextTemplateInput(spec["template"], values=values, baselines=[""] * len(values))
    raise ValueError(f"unknown input kind {kind!r}")


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class CaptumRunner(Runner):
    """Captum's LLMAttribution, single-pass (``forward_in_tokens=False``) or by tokens."""

    budgeted = True

    def setup(self) -> None:
        self.side = TorchGGUF(self.model_path, self.threads)
        self.tokenizer, self.model = self.side.tokenizer, self.side.model
        w = self.workload
        method = METHODS[w["method"]](self.model)
        self.attr = MirroredLLMAttribution(method, self.tokenizer, w["empty_ids"])
        self.inp = captum_input(w["inp"], self.tokenizer)
        self.target = torch.tensor(w["target_ids"])
        self.in_tokens = self.config == CAPTUM_DEFAULT
        self._check_mirror()
        self._check_cached_path()

    def _check_mirror(self) -> None:
        w = self.workload
        ids = self.attr._format_model_input(self.inp.to_model_input())["input_ids"][0].tolist()
        if ids != w["prompt_ids"]:
            self._notes.append(
                f"the Hugging Face tokenizer gives a different prompt ({len(ids)} tokens) than "
                f"llama.cpp ({w['prompt_tokens']}); attributions are not strictly comparable"
            )
        if self.inp.n_itp_features != w["n_features"]:
            self._notes.append(
                f"{self.inp.n_itp_features} Captum features vs {w['n_features']} in pyllmattr"
            )
        if w["method"] == "KernelShap":
            self._notes.append(
                "KernelShap fits its weighted linear model with numpy least squares "
                "(scikit-learn, Captum's default backend, is not installed)"
            )

    def evaluate_reference(self, use_cache: bool = True) -> np.ndarray:
        """Captum's forward function on the unperturbed prompt (as ``attribute`` calls it)."""
        with torch.no_grad():
            out = self.attr._forward_func(
                self.inp.to_tensor(), self.inp, self.target, use_cache, None, self.in_tokens
            )
        return out.detach().numpy().reshape(-1)

    def _check_cached_path(self) -> None:
        """Token by token, Captum's default KV-cache path must match its uncached path."""
        if not self.in_tokens:
            return
        self.side.decoded = 0
        cached = self.evaluate_reference(True)
        fed, self.side.decoded = self.side.decoded, 0
        diff = np.abs(cached - self.evaluate_reference(False)).max()
        if diff > 1e-3:
            n_prompt, n_target = self.workload["prompt_tokens"], len(self.workload["target_ids"])
            self._notes.append(
                "on the unperturbed prompt, Captum's default cached token-by-token path "
                f"(use_cached_outputs=True) differs from its uncached path by up to {diff:.3g} "
                f"in log-probability, and it fed the model {fed} tokens (a KV cache needs "
                f"{n_prompt + n_target - 1}): its attributions are not comparable"
            )

    def run(self) -> dict[str, Any]:
        w = self.workload
        torch.manual_seed(w["seed"])
        self.side.decoded = self.attr.n_evaluations = self.attr.n_empty = 0
        result = self.attr.attribute(
            self.inp, target=self.target, forward_in_tokens=self.in_tokens, **w["options"]
        )
        token_attr = result.token_attr
        return {
            "seq_attr": result.seq_attr.detach().cpu().numpy().astype(float).tolist(),
            "token_attr": None if token_attr is None else token_attr.detach().numpy().tolist(),
            "stats": {
                "n_decoded": self.side.decoded,
                "n_evaluations": self.attr.n_evaluations,
                "n_empty_prompts": self.attr.n_empty,
            },
        }

    def notes(self) -> list[str]:
        notes = super().notes()
        if getattr(self, "attr", None) is not None and self.attr.n_empty:
            notes.append(
                f"{self.attr.n_empty} empty perturbed prompts scored from token "
                f"{self.workload['empty_ids']} as in pyllmattr"
            )
        return notes
