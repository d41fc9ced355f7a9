"""Perturbation attribution methods, one per module, with Captum's names."""

from __future__ import annotations

from .base import PerturbationMethod
from .feature_ablation import FeatureAblation
from .lime import KernelShap, Lime
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

    def __missing__(self, name: object) -> type[PerturbationMethod]:
        raise UnknownMethodError(f"unknown attribution method {name!r}; use one of {sorted(self)}")


METHODS: dict[str, type[PerturbationMethod]] = _Methods(
    {
        cls.name: cls
        for cls in (FeatureAblation, ShapleyValueSampling, ShapleyValues, Lime, KernelShap)
    }
)

__all__ = [
    "METHODS",
    "FeatureAblation",
    "KernelShap",
    "Lime",
    "PerturbationMethod",
    "ShapleyValueSampling",
    "ShapleyValues",
    "UnknownMethodError",
]
