"""Chat prompts: the user's text inside the model's own chat template.

With ``attribute(inp, chat=True)`` every perturbed prompt is the template's fixed
text around the rendered user message, ending with the opening of the assistant's
turn; the target is the assistant's reply. The template's text is never a feature:
it is tokenized once, with its special tokens parsed as special, while the user's
text is tokenized with special-token parsing off (text like ``<|im_end|>`` typed
by a user stays plain text, as in a chat application).

Any model object with ``apply_chat_template(messages, add_assistant=True) -> str``
and ``tokenize(text, add_special, parse_special)`` works. llama.cpp models render
with llama.cpp's built-in template rules (no Jinja: a template's default system
prompt is not added); PyTorch models (``pla.load_torch``, ``pla.load_torch_gguf``)
render with their Hugging Face tokenizer's template, which runs the Jinja code and
may add such a default. Gradient methods see the same frame: its tokens are outside
every feature, so integrated gradients' baselines keep them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from .inputs.base import Encoding, InterpretableInput

# Stands for the user's message while the template is rendered once; plain ASCII
# letters, so no template trims or escapes it.
_USER_MARK = "PYLLMATTRUSERMESSAGE"


@dataclasses.dataclass(frozen=True)
class ChatFrame:
    """The template text before and after the user's message, and its tokens.

    Example:
        >>> frame = chat_frame(model, system="Answer briefly.")  # doctest: +SKIP
        >>> frame.prefix_text  # doctest: +SKIP
        '<|im_start|>system\\nAnswer briefly.<|im_end|>\\n<|im_start|>user\\n'
    """

    prefix_text: str
    suffix_text: str
    prefix_ids: list[int]
    suffix_ids: list[int]

    def wrap_ids(self, user_ids: list[int]) -> list[int]:
        """The chat prompt around the user's message tokens."""
        return self.prefix_ids + list(user_ids) + self.suffix_ids

    def wrap(self, encoding: Encoding) -> Encoding:
        """An encoding of the user's text (without BOS) turned into one of the chat prompt."""
        inner = encoding.render
        shift = len(self.prefix_ids)

        def render(mask: Any, rng: Any) -> list[int]:
            return self.wrap_ids(inner(mask, rng))

        positions = encoding.feature_positions
        return Encoding(
            labels=encoding.labels,
            reference_ids=self.wrap_ids(encoding.reference_ids),
            segments=[(self.prefix_text, None), *encoding.segments, (self.suffix_text, None)],
            feature_tokens=encoding.feature_tokens,
            render=render,
            # Gradient methods sum token attributions into features by position.
            feature_positions=None
            if positions is None
            else [[p + shift for p in tokens] for tokens in positions],
        )


def chat_options(chat: Any) -> dict[str, Any] | None:
    """Normalize ``chat=``: False/None (off), True, or ``{"system": str, "template": str}``."""
    if chat is None or chat is False:
        return None
    if chat is True:
        return {}
    if isinstance(chat, Mapping):
        unknown = sorted(set(chat) - {"system", "template"})
        if unknown:
            raise ValueError(f"chat got unknown key(s) {unknown}; use 'system' and 'template'")
        for key, value in chat.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"chat[{key!r}] must be a string")
        return {k: v for k, v in chat.items() if v is not None}
    raise ValueError(
        f'chat must be True, False or a dict like {{"system": "You are ..."}}, got {chat!r}'
    )


def chat_frame(model: Any, system: str | None = None, template: str | None = None) -> ChatFrame:
    """Render the model's chat template around a placeholder and split it there."""
    messages = [{"role": "user", "content": _USER_MARK}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    try:
        text = _render(model, messages, template)
    except ValueError as exc:
        if "template" not in str(exc) or not builtin_chat_templates():
            raise
        raise ValueError(
            f"{exc} (chat={{'template': NAME}} in Python, --chat-template NAME|FILE on the "
            f"command line); llama.cpp's built-in templates: {', '.join(builtin_chat_templates())}"
        ) from None
    if text.count(_USER_MARK) != 1:
        raise ValueError(
            "the chat template does not place the user's message verbatim in the prompt; "
            "attribute without chat and write the prompt yourself"
        )
    before, after = text.split(_USER_MARK)
    prefix_ids = model.tokenize(before, add_special=True, parse_special=True)
    bos = model.bos_token_id
    if bos is not None and prefix_ids[:2] == [bos, bos]:
        prefix_ids = prefix_ids[1:]  # the template wrote BOS and the tokenizer added another
    suffix_ids = model.tokenize(after, add_special=False, parse_special=True)
    return ChatFrame(before, after, prefix_ids, suffix_ids)


@functools.cache
def builtin_chat_templates() -> tuple[str, ...]:
    """The names of llama.cpp's built-in chat templates (``chat={"template": name}``).

    Example:
        >>> "chatml" in pla.builtin_chat_templates()
        True
    """
    import ctypes

    try:
        from llama_cpp import llama_cpp as lib

        count = lib.llama_chat_builtin_templates(None, 0)
        names = (ctypes.c_char_p * count)()
        lib.llama_chat_builtin_templates(names, count)
    except (ImportError, AttributeError, OSError):  # a llama-cpp-python without the call
        return ()
    return tuple(sorted(name.decode() for name in names))


def encode(inp: InterpretableInput, model: Any, chat: dict[str, Any] | None) -> Encoding:
    """``inp.encode(model)``, inside the chat template when ``chat`` is given."""
    if chat is None:
        return inp.encode(model)
    return encode_in_frame(inp, model, chat_frame(model, chat.get("system"), chat.get("template")))


def encode_in_frame(inp: InterpretableInput, model: Any, frame: ChatFrame | None) -> Encoding:
    """``inp.encode(model)`` inside ``frame`` (rendered once for a whole batch), if any."""
    if frame is None:
        return inp.encode(model)
    return frame.wrap(inp.encode(model, add_special=False))


def _render(model: Any, messages: list[dict[str, str]], template: str | None) -> str:
    """The conversation rendered by the model's chat template, ending with the
    assistant's turn opening."""
    if callable(getattr(model, "apply_chat_template", None)):
        kwargs = {"template": template} if template is not None else {}
        return model.apply_chat_template(messages, add_assistant=True, **kwargs)
    # A PyTorch model without its own apply_chat_template: its Hugging Face tokenizer's.
    # (Stopgap until TorchModel renders chats itself; it has the same signature then.)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        kwargs = {"chat_template": template} if template is not None else {}
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **kwargs
        )
    raise ValueError(f"chat=True needs a model with a chat template; {model!r} has none")
