"""Attribution methods, one per module, with Captum's names.

Perturbation methods run on any model (llama.cpp or PyTorch); gradient methods
need a PyTorch model (``pla.load_torch`` / ``pla.load_torch_gguf``).
"""

from .base import PerturbationMethod
from .feature_ablation import FeatureAblation
from .gradient import GradientMethod
from .integrated_gradients import IntegratedGradients
from .lime import KernelShap, Lime
from .saliency import InputXGradient, Saliency
from .shapley import ShapleyValues, ShapleyValueSampling

METHODS = {
    cls.name: cls
    for cls in (FeatureAblation, ShapleyValueSampling, ShapleyValues, Lime, KernelShap)
}
# Gradient methods: a separate table too, since they need a PyTorch model.
GRADIENT_METHODS = {cls.name: cls for cls in (IntegratedGradients, Saliency, InputXGradient)}
METHODS.update(GRADIENT_METHODS)

__all__ = [
    "GRADIENT_METHODS",
    "METHODS",
    "FeatureAblation",
    "GradientMethod",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "PerturbationMethod",
    "Saliency",
    "ShapleyValueSampling",
    "ShapleyValues",
]
