"""Chat prompts on SmolLM2-135M-Instruct: its ChatML template around the user's text only."""

from __future__ import annotations

import pytest
from tiny_gguf import write_tiny_llama

import pyllmattr as pla
from pyllmattr.chat import chat_frame

QUESTION = "What is the capital of France?"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"


class Recorder:
    """Delegates to a model and keeps the sequences of every engine call."""

    def __init__(self, model):
        self.model, self.scored = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def score(self, sequences, *args, **kwargs):
        self.scored.append([list(s) for s in sequences])
        return self.model.score(sequences, *args, **kwargs)

    def score_pairs(self, sequences, *args, **kwargs):
        self.scored.append([list(s) for s in sequences])
        return self.model.score_pairs(sequences, *args, **kwargs)


def special_ids(model):
    return [model.tokenize(t, add_special=False, parse_special=True)[0] for t in (IM_START, IM_END)]


def test_the_template_renders_as_chatml(smollm2):
    text = smollm2.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_the_chat_prompt_tokenizes_like_the_rendered_template(smollm2):
    rendered = smollm2.apply_chat_template([{"role": "user", "content": QUESTION}])
    inp = pla.TextTokenInput(QUESTION, smollm2)
    result = pla.FeatureAblation(smollm2).attribute(
        inp, target=" Paris", chat=True, noise_floor=False
    )
    assert result.prompt == rendered
    whole = smollm2.tokenize(rendered, add_special=True, parse_special=True)
    frame = chat_frame(smollm2)
    # The template's markers are single special tokens, not text pieces.
    assert frame.prefix_ids[0] == special_ids(smollm2)[0]
    assert (
        frame.prefix_ids + smollm2.tokenize(QUESTION, add_special=False) + frame.suffix_ids == whole
    )


def test_features_cover_only_the_users_text(smollm2):
    recorder = Recorder(smollm2)
    inp = pla.TextTokenInput(QUESTION, smollm2)
    result = pla.FeatureAblation(recorder).attribute(
        inp, target=" Paris", chat=True, noise_floor=False
    )
    user_ids = smollm2.tokenize(QUESTION, add_special=False)
    assert [t for ts in result.feature_tokens for t in ts] == [
        smollm2.token_to_str(t) for t in user_ids
    ]
    assert result.input_features == [smollm2.token_to_str(t) for t in user_ids]
    frame = chat_frame(smollm2)
    (sequences,) = recorder.scored
    assert len(sequences) == result.stats["n_evaluations"] > len(user_ids)
    start, end = special_ids(smollm2)
    for seq in sequences:
        # The template's tokens exactly once each: the frame around a perturbed question.
        assert seq[: len(frame.prefix_ids)] == frame.prefix_ids
        assert seq[len(seq) - len(frame.suffix_ids) :] == frame.suffix_ids
        assert seq.count(start) == 2 and seq.count(end) == 1  # user and assistant turns


def test_special_token_text_typed_by_the_user_stays_text(smollm2):
    recorder = Recorder(smollm2)
    inp = pla.TextTemplateInput.from_text(f"Say {IM_END} please")
    result = pla.FeatureAblation(recorder).attribute(
        inp, target=" Sure", chat=True, noise_floor=False
    )
    _, end = special_ids(smollm2)
    reference = recorder.scored[0][0]
    assert reference.count(end) == 1  # the template's end of the user turn, not the user's
    assert result.input_features == ["Say", IM_END, "please"]
    assert len(result.feature_tokens[1]) > 1  # spelled out in ordinary tokens


def test_the_generated_target_is_the_reply_up_to_the_end_of_turn(smollm2):
    inp = pla.TextTemplateInput.from_text(QUESTION)
    result = pla.FeatureAblation(smollm2).attribute(
        inp, chat=True, gen_args={"max_new_tokens": 40}, noise_floor=False
    )
    assert "Paris" in result.target
    assert len(result.target_ids) < 40  # stopped at <|im_end|>, which is not part of the target
    assert IM_END not in result.target


def test_a_system_message_goes_before_the_user_turn(smollm2):
    inp = pla.TextTemplateInput.from_text(QUESTION)
    result = pla.FeatureAblation(smollm2).attribute(
        inp, target=" Paris", chat={"system": "Answer in one word."}, noise_floor=False
    )
    assert result.prompt.startswith("<|im_start|>system\nAnswer in one word.<|im_end|>\n")
    assert result.prompt_segments[1] == ("What", 0)
    assert result.settings["chat"] == {"system": "Answer in one word."}


def test_a_model_without_a_chat_template_is_refused(tmp_path, smollm2_path):
    path = write_tiny_llama(tmp_path / "no-template.gguf", smollm2_path, chat_template=False)
    inp = pla.TextTemplateInput.from_text(QUESTION)
    with pla.load_gguf(path, n_ctx=256, n_threads=2) as model:
        assert model.chat_template is None
        with pytest.raises(ValueError, match="no chat template"):
            pla.FeatureAblation(model).attribute(inp, target=" Paris", chat=True)


def test_an_unknown_chat_option_is_refused(smollm2):
    inp = pla.TextTemplateInput.from_text(QUESTION)
    with pytest.raises(ValueError, match="unknown key"):
        pla.FeatureAblation(smollm2).attribute(inp, target=" Paris", chat={"sys": "x"})
