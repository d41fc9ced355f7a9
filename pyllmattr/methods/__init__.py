"""Attribution methods, one per module, with Captum's names.

Perturbation methods run on any model (llama.cpp or PyTorch); gradient methods
need a PyTorch model (``pla.load_torch`` / ``pla.load_torch_gguf``).
"""

from __future__ import annotations

from ..pipeline import AttributionMethod
from .base import PerturbationMethod
from .context_cite import ContextCite
from .feature_ablation import FeatureAblation
from .gradient import GradientMethod
from .gradient_shap import GradientShap
from .hierarchical import HierarchicalAblation
from .integrated_gradients import IntegratedGradients
from .interactions import ShapleyInteractions
from .lime import KernelShap, Lime
from .saliency import InputXGradient, Saliency
from .shapley import ShapleyValues, ShapleyValueSampling


class UnknownMethodError(KeyError, ValueError):
    """An attribution method name that pyllmattr does not have.

    Both a KeyError (it is a failed lookup in :data:`METHODS`) and a ValueError
    (bad input, like every other bad argument).
    """

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


class _Methods(dict):
    """Method classes by CLI name; an unknown name raises with the valid ones."""

    def __missing__(self, name: object) -> type[AttributionMethod]:
        raise UnknownMethodError(f"unknown attribution method {name!r}; use one of {sorted(self)}")


# Gradient methods: a separate table too, since they need a PyTorch model.
GRADIENT_METHODS = {
    cls.name: cls for cls in (IntegratedGradients, Saliency, InputXGradient, GradientShap)
}
METHODS: dict[str, type[AttributionMethod]] = _Methods(
    {
        **{
            cls.name: cls
            for cls in (
                FeatureAblation,
                ShapleyValueSampling,
                ShapleyValues,
                Lime,
                KernelShap,
                HierarchicalAblation,
                ContextCite,
                ShapleyInteractions,
            )
        },
        **GRADIENT_METHODS,
    }
)

__all__ = [
    "GRADIENT_METHODS",
    "AttributionMethod",
    "METHODS",
    "ContextCite",
    "FeatureAblation",
    "GradientMethod",
    "GradientShap",
    "HierarchicalAblation",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "PerturbationMethod",
    "Saliency",
    "ShapleyInteractions",
    "ShapleyValueSampling",
    "ShapleyValues",
    "UnknownMethodError",
]
