"""pyllmattr: explain what local GGUF language models' outputs depend on.

Example:
    >>> import pyllmattr as pla
    >>> model = pla.load_gguf(pla.default_model_path())  # doctest: +SKIP
    >>> inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL and is a")
    >>> pla.FeatureAblation(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
"""

from importlib.metadata import version as _version

from .cancel import Cancelled, CancelToken
from .chat import builtin_chat_templates
from .dataset import attribute_dataset
from .evaluation import Faithfulness, evaluate
from .inputs import (
    ContextInput,
    InterpretableInput,
    ProductBaselines,
    TextTemplateInput,
    TextTokenInput,
)
from .interaction_result import InteractionResult
from .methods import (
    GRADIENT_METHODS,
    METHODS,
    AttributionMethod,
    ContextCite,
    FeatureAblation,
    GradientMethod,
    GradientShap,
    HierarchicalAblation,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    PerturbationMethod,
    Saliency,
    ShapleyInteractions,
    ShapleyValues,
    ShapleyValueSampling,
)
from .models import (
    GGUFInfo,
    GradientModel,
    LlamaModel,
    LocalModel,
    ScoreStats,
    ScoringModel,
    TorchModel,
    default_model_path,
    find_models,
    load_gguf,
    load_torch,
    load_torch_gguf,
    read_gguf_info,
    requantized_copy,
    resolve_model,
)
from .objectives import Contrast, LogProb, Objective, Prob
from .results import AttributionResult
from .summary import DatasetSummary, summarize

# pyproject.toml's version is the only place the version is written.
__version__ = _version("pyllmattr")

__all__ = [
    "GRADIENT_METHODS",
    "METHODS",
    "AttributionMethod",
    "AttributionResult",
    "CancelToken",
    "ContextCite",
    "ContextInput",
    "Cancelled",
    "Contrast",
    "DatasetSummary",
    "Faithfulness",
    "FeatureAblation",
    "GGUFInfo",
    "GradientMethod",
    "GradientModel",
    "GradientShap",
    "HierarchicalAblation",
    "InputXGradient",
    "IntegratedGradients",
    "InteractionResult",
    "InterpretableInput",
    "KernelShap",
    "Lime",
    "LlamaModel",
    "LocalModel",
    "LogProb",
    "Objective",
    "PerturbationMethod",
    "Prob",
    "ProductBaselines",
    "Saliency",
    "ScoreStats",
    "ScoringModel",
    "ShapleyInteractions",
    "ShapleyValueSampling",
    "ShapleyValues",
    "TextTemplateInput",
    "TextTokenInput",
    "TorchModel",
    "attribute_dataset",
    "builtin_chat_templates",
    "default_model_path",
    "evaluate",
    "find_models",
    "load_gguf",
    "load_torch",
    "load_torch_gguf",
    "read_gguf_info",
    "requantized_copy",
    "summarize",
    "resolve_model",
]
