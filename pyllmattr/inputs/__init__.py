"""Interpretable inputs: how a prompt is split into features and how features are removed."""

from .base import Encoding, InterpretableInput
from .baselines import ProductBaselines
from .template import TextTemplateInput
from .token import TextTokenInput

__all__ = [
    "Encoding",
    "InterpretableInput",
    "ProductBaselines",
    "TextTemplateInput",
    "TextTokenInput",
]
