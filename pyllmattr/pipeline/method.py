"""What every attribution method is to the pipeline: ``attribute`` and
``attribute_batch`` on top of the method's own evaluate step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .. import chat as chat_prompts
from .._checks import WrongTypeError
from ..inputs.base import InterpretableInput
from ..models.interface import GradientModel, ScoringModel
from ..results import AttributionResult
from .build import Evaluation
from .jobs import Job, Settings, per_input
from .run import run

Target = str | Sequence[int] | None


class AttributionMethod:
    """The base of every method: it runs the shared pipeline; a subclass defines
    ``name``, ``defaults`` (its options) and ``evaluate(jobs, settings)``, and
    declares what it needs (``needs_gradients``, ``needs_context_input``) and is for
    (``context_method``, ``proxy_options``).

    ``attribute(inp, ...)`` is ``attribute_batch([inp], ...)[0]``.

    Example:
        >>> method = pla.FeatureAblation(model)  # doctest: +SKIP
        >>> isinstance(method, AttributionMethod)  # doctest: +SKIP
        True
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}  # its options: front ends offer exactly these
    # What the method needs and is for, declared here and read by the front ends (the
    # command line, the explorer, the dataset runner), which never test a method's name.
    needs_gradients: ClassVar[bool] = False  # a GradientModel: PyTorch, not llama.cpp
    needs_context_input: ClassVar[bool] = False  # a pla.ContextInput and nothing else
    context_method: ClassVar[bool] = False  # made to attribute a retrieved context's units
    proxy_options: ClassVar[frozenset[str]] = frozenset()  # options that apply with proxy= only
    # Point counts that also take "auto" (the method doubles them until its values settle).
    auto_options: ClassVar[frozenset[str]] = frozenset()
    requirement: ClassVar[str] = "a model from pla.load_gguf or pla.load_torch"
    model: ScoringModel  # a subclass that requires more declares it (GradientMethod)

    def __init__(self, model: Any) -> None:
        if not self.accepts(model):
            raise WrongTypeError(f"{type(self).__name__} needs {self.requirement}")
        self.model = model

    @classmethod
    def accepts(cls, model: Any) -> bool:
        """Whether ``model`` provides what the method needs: a ``GradientModel`` when it
        ``needs_gradients``, else a ``ScoringModel``."""
        return isinstance(model, GradientModel if cls.needs_gradients else ScoringModel)

    # ------------------------------------------------------------ subclass API
    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        """Evaluate and solve every job (one Evaluation each, in order)."""
        raise NotImplementedError

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The method's options with its defaults filled in; ValueError for bad ones."""
        return options

    # ------------------------------------------------------------ public API
    def attribute(
        self,
        inp: InterpretableInput,
        target: Target = None,
        contrast: Target = None,
        attr_target: Any = "log_prob",
        gen_args: Mapping[str, Any] | None = None,
        num_trials: int = 1,
        seed: int | None = None,
        progress: Any = None,
        cancel: Any = None,
        noise_floor: bool = True,
        chat: bool | Mapping[str, str] = False,
        **options: Any,
    ) -> AttributionResult:
        """Attribute the target's log-probability (or ``attr_target``) to the input's features.

        ``target=None`` generates it greedily from the unperturbed prompt (``gen_args``,
        default ``max_new_tokens=25``). ``contrast`` (a text or token ids) attributes
        log p(target) - log p(contrast) instead, both scored in the same engine call.
        ``attr_target`` is ``"log_prob"``, ``"prob"`` or an objective from
        :mod:`pyllmattr.objectives`. ``num_trials > 1`` repeats the sampling
        (perturbations and sampled baselines) and reports the mean and the spread.
        ``noise_floor`` re-scores the unperturbed prompt alone to measure how much
        batch layout moves the numbers (``result.noise_floor``; 0 without measuring where
        the model's scores are exact: llama.cpp's default layout on the CPU).

        ``progress``: None shows a tqdm bar in terminals and notebooks for
        attributions longer than 2 s (when tqdm is installed), False none, True
        always; a callable ``progress(done, total)`` gets counts of the whole job
        (see :mod:`pyllmattr.progress`); returning False cancels, as does
        ``cancel.cancel()`` (both raise :class:`pyllmattr.Cancelled`). ``chat=True``
        puts the prompt inside the model's chat template as the user's message
        (``chat={"system": "..."}`` adds a system message); features cover only the
        user's text and the target is the assistant's reply (see :mod:`pyllmattr.chat`).

        Attributions on one model from several threads run one after the other.

        Example:
            >>> pla.FeatureAblation(model).attribute(inp, target=" Paris")  # doctest: +SKIP
        """
        settings = self._settings(
            False, attr_target=attr_target, gen_args=gen_args, num_trials=num_trials,
            seed=seed, progress=progress, cancel=cancel, noise_floor=noise_floor, chat=chat,
            options=options,
        )  # fmt: skip
        return run(self, [inp], [target], [contrast], settings)[0]

    def attribute_batch(
        self,
        inputs: Sequence[InterpretableInput],
        targets: Sequence[Target] | None = None,
        contrasts: Sequence[Target] | None = None,
        attr_target: Any = "log_prob",
        gen_args: Mapping[str, Any] | None = None,
        num_trials: int = 1,
        seed: int | None = None,
        progress: Any = None,
        cancel: Any = None,
        noise_floor: bool = True,
        chat: bool | Mapping[str, str] = False,
        **options: Any,
    ) -> list[AttributionResult]:
        """:meth:`attribute` for many inputs at once: one result per input, in order.

        ``targets`` and ``contrasts`` give one entry per input (None: generate each
        target / no contrast). Perturbation methods score all perturbed prompts of all
        inputs together (in chunks, never one input at a time), so prompts that share a
        prefix across inputs are decoded once; each result equals ``attribute`` on its
        input alone (exactly on a deterministic model, within the noise floor
        otherwise; ``seed`` seeds every input's sampling as it would alone). Engine stats
        (``result.stats``) are of the whole batch; ``n_inputs`` says how many it had.
        Progress counts the whole batch; an error about one input names its index.

        Example:
            >>> results = pla.FeatureAblation(model).attribute_batch(
            ...     inputs, targets=[" Paris", " Rome"])  # doctest: +SKIP
        """
        inputs = list(inputs) if isinstance(inputs, Sequence) else inputs
        if not isinstance(inputs, list) or not inputs:
            raise ValueError("attribute_batch: inputs must be a non-empty list of inputs")
        n = len(inputs)
        settings = self._settings(
            True, attr_target=attr_target, gen_args=gen_args, num_trials=num_trials,
            seed=seed, progress=progress, cancel=cancel, noise_floor=noise_floor, chat=chat,
            options=options,
        )  # fmt: skip
        return run(
            self, inputs, per_input("targets", targets, n), per_input("contrasts", contrasts, n),
            settings,
        )  # fmt: skip

    # ------------------------------------------------------------ helpers
    def _settings(
        self,
        batch: bool,
        *,
        chat: Any,
        options: Mapping[str, Any],
        noise_floor: bool,
        **common: Any,
    ) -> Settings:
        """Step 1: the shared options, normalized, and the method's own with defaults."""
        return Settings(
            batch=batch,
            chat=chat_prompts.chat_options(chat),
            options=self._known_options(options),
            noise_floor=bool(noise_floor),
            **common,
        )

    def _known_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise ValueError(
                f"{type(self).__name__}.attribute got unknown option(s) {unknown}; "
                f"its options are: {known}"
            )
        return self.check_options({**self.defaults, **options})
