"""Perturbation attribution methods, one per module, with Captum's names."""

from .base import PerturbationMethod
from .feature_ablation import FeatureAblation
from .lime import KernelShap, Lime
from .shapley import ShapleyValues, ShapleyValueSampling

METHODS = {
    cls.name: cls
    for cls in (FeatureAblation, ShapleyValueSampling, ShapleyValues, Lime, KernelShap)
}

__all__ = [
    "METHODS",
    "FeatureAblation",
    "KernelShap",
    "Lime",
    "PerturbationMethod",
    "ShapleyValueSampling",
    "ShapleyValues",
]
