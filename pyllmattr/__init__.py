"""pyllmattr: explain what local GGUF language models' outputs depend on.

Example:
    >>> import pyllmattr as pla
    >>> model = pla.load_gguf(pla.default_model_path())  # doctest: +SKIP
    >>> inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL and is a")
    >>> pla.FeatureAblation(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
"""

from .cancel import Cancelled, CancelToken
from .inputs import (
    ContextInput,
    InterpretableInput,
    ProductBaselines,
    TextTemplateInput,
    TextTokenInput,
)
from .methods import (
    GRADIENT_METHODS,
    METHODS,
    ContextCite,
    FeatureAblation,
    GradientMethod,
    HierarchicalAblation,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    PerturbationMethod,
    Saliency,
    ShapleyValues,
    ShapleyValueSampling,
)
from .models import (
    GradientModel,
    LlamaModel,
    ScoreStats,
    ScoringModel,
    TorchModel,
    default_model_path,
    load_gguf,
    load_torch,
    load_torch_gguf,
    requantized_copy,
)
from .results import AttributionResult

__version__ = "0.1.0"

__all__ = [
    "GRADIENT_METHODS",
    "METHODS",
    "AttributionResult",
    "CancelToken",
    "ContextCite",
    "ContextInput",
    "Cancelled",
    "FeatureAblation",
    "GradientMethod",
    "GradientModel",
    "HierarchicalAblation",
    "InputXGradient",
    "IntegratedGradients",
    "InterpretableInput",
    "KernelShap",
    "Lime",
    "LlamaModel",
    "PerturbationMethod",
    "ProductBaselines",
    "Saliency",
    "ScoreStats",
    "ScoringModel",
    "ShapleyValueSampling",
    "ShapleyValues",
    "TextTemplateInput",
    "TextTokenInput",
    "TorchModel",
    "default_model_path",
    "load_gguf",
    "load_torch",
    "load_torch_gguf",
    "requantized_copy",
]
