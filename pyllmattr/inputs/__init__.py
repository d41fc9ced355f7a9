"""Interpretable inputs: how a prompt is split into features and how features are removed."""

from .base import Encoding, InterpretableInput
from .baselines import ProductBaselines
from .context import ContextInput, ContextUnit
from .template import TextTemplateInput
from .token import TextTokenInput

__all__ = [
    "ContextInput",
    "ContextUnit",
    "Encoding",
    "InterpretableInput",
    "ProductBaselines",
    "TextTemplateInput",
    "TextTokenInput",
]
