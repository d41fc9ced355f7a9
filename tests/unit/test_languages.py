"""Words, sentences and characters in every script, rendered back byte for byte.

Real sentences in Japanese, Chinese (simplified, traditional, mixed with English and
numbers), Korean, Thai, Hindi, German and English; property tests over arbitrary
Unicode; the table and the HTML view with wide characters.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import textwrap
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyllmattr as pla
from pyllmattr._text import display_width, fit_width, pad_width
from pyllmattr.cli.table import format_result
from pyllmattr.inputs import scripts
from pyllmattr.inputs.split import UNITS, split_units, units_with_leading_space

JA = "東京は日本の首都です。大阪は第二の都市です。"
ZH = "北京是中国的首都，上海是最大的城市。"


def units(text: str, by: str) -> list[str]:
    """The units of ``text`` (stripped), after checking that they join back to it."""
    lead, features, trail = units_with_leading_space(text, by)
    assert lead + "".join(features) + trail == text
    return [f.strip() for f in features]


def assert_intact(text: str, by: str, words: list[str]) -> None:
    """No unit boundary falls inside any occurrence of these words."""
    cuts = {edge for span in split_units(text, by) for edge in span}
    for word in words:
        assert word in text, word
        for match in re.finditer(re.escape(word), text):
            inside = set(range(match.start() + 1, match.end()))
            assert not inside & cuts, f"{word!r} is cut: {units(text, by)}"


# ---------------------------------------------------------------- real sentences


def test_japanese_gives_two_sentences_and_a_phrase_per_word_with_its_particles():
    assert units(JA, "sentence") == ["東京は日本の首都です。", "大阪は第二の都市です。"]
    words = units(JA, "word")
    assert 4 < len(words) < len(JA)
    assert_intact(JA, "word", ["東京", "日本", "首都", "大阪", "第二", "都市"])
    # Bunsetsu, the unit Korean writes between spaces: a word with its particle.
    assert words[0] == "東京は" and words[2] == "首都です。"
    inp = pla.TextTemplateInput.from_text(JA, by="word")
    assert inp.n_features == len(words) and inp.labels == words
    assert pla.TextTemplateInput.from_text(JA, by="sentence").n_features == 2


def test_chinese_gives_words_and_a_comma_does_not_end_a_sentence():
    words = units(ZH, "word")
    assert len(words) > 4
    assert_intact(ZH, "word", ["北京", "中国", "首都", "上海", "城市"])
    assert "首都，" in words  # punctuation stays with the word before, as "Coast," does
    # One full stop, one sentence (UAX #29 and ICU agree); a second full stop, two.
    assert units(ZH, "sentence") == [ZH]
    second = "我们明天下午三点在图书馆见面。"
    assert units(ZH + second, "sentence") == [ZH, second]
    assert pla.TextTemplateInput.from_text(ZH + second, by="word").n_features > 8


def test_traditional_chinese_is_read_with_the_traditional_model():
    text = "台北是臺灣最大的城市。我們明天在圖書館見面。"
    assert scripts.han_language(text) == "zh-hant"
    assert scripts.han_language(ZH) == "zh-hans" and scripts.han_language(JA) == "ja"
    assert len(units(text, "sentence")) == 2
    assert_intact(text, "word", ["台北", "臺灣", "城市", "我們", "圖書館"])


def test_chinese_with_english_names_and_numbers_keeps_them_whole():
    text = "苹果公司的CEO Tim Cook在2023年访问了北京，并发布了iPhone 15。"
    words = units(text, "word")
    for latin in ("CEO", "Tim", "Cook", "iPhone"):
        assert latin in words, words
    assert_intact(text, "word", ["2023", "苹果", "公司", "访问", "北京", "发布"])
    latin_and_han = [w for w in words if re.search("[A-Za-z]", w) and scripts.needs_segmenter(w)]
    assert not latin_and_han, words


def test_japanese_with_latin_and_numbers_and_a_quotation():
    text = "AppleのiPhone 15は2023年9月に発売されました。「東京です。」と彼は言った。"
    assert_intact(text, "word", ["Apple", "iPhone", "2023", "発売"])
    # 「…。」と goes on: the quotation's full stop does not end the sentence.
    assert units(text, "sentence") == [
        "AppleのiPhone 15は2023年9月に発売されました。",
        "「東京です。」と彼は言った。",
    ]
    assert units("「はい。」彼は去った。", "sentence") == ["「はい。」", "彼は去った。"]
    assert units("本当？！」彼は去った。", "sentence") == ["本当？！」", "彼は去った。"]


def test_korean_words_are_the_units_between_spaces():
    text = "서울은 한국의 수도입니다. 부산은 두 번째로 큰 도시입니다."
    assert units(text, "word") == text.split()
    assert units(text, "sentence") == [
        "서울은 한국의 수도입니다.",
        "부산은 두 번째로 큰 도시입니다.",
    ]


def test_thai_sentences_end_at_a_space_and_words_are_cut_inside_them():
    text = "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย ฉันชอบกินข้าวผัดกับไก่"
    assert units(text, "sentence") == text.split(" ")
    words = units(text, "word")
    assert len(words) > 8 and len(words) < len(text) // 2
    assert_intact(text, "word", ["ฉัน", "ชอบ", "กิน", "ข้าว", "เมือง", "หลวง", "ของ"])
    # ๆ (repeat the word) is followed by a space inside a sentence.
    assert units("เด็กๆ เล่นกันที่บ้าน", "sentence") == ["เด็กๆ เล่นกันที่บ้าน"]
    # A cut never parts a consonant from its vowel and tone marks.
    for word in words:
        assert unicodedata.category(word[0]) != "Mn", words


def test_hindi_sentences_end_at_the_danda():
    text = "नई दिल्ली भारत की राजधानी है। मुंबई सबसे बड़ा शहर है।"
    assert units(text, "sentence") == ["नई दिल्ली भारत की राजधानी है।", "मुंबई सबसे बड़ा शहर है।"]
    assert units("नमस्ते।आप कैसे हैं?", "sentence") == ["नमस्ते।", "आप कैसे हैं?"]
    assert units(text, "word") == text.split()  # the danda stays with its word, like "."
    # A character is a user-perceived one: a consonant cluster with its virama and vowel.
    assert units("दिल्ली", "character") == ["दि", "ल्ली"]


def test_clauses_end_at_commas_semicolons_and_colons_of_every_width():
    assert units(ZH, "clause") == ["北京是中国的首都，", "上海是最大的城市。"]
    assert pla.TextTemplateInput.from_text(ZH, by="clause").n_features == 2
    english = "Dave lives in Palm Coast, FL; the rent is 1,000 dollars at 3:30 pm. Go!"
    assert units(english, "clause") == [
        "Dave lives in Palm Coast,", "FL;", "the rent is 1,000 dollars at 3:30 pm.", "Go!"
    ]  # fmt: skip
    # The enumeration comma parts list items, not clauses.
    shopping = "りんご、バナナ、みかんを買った。"
    assert units(shopping, "clause") == [shopping]


def test_german_and_english_keep_the_latin_rules():
    german = "Berlin ist die Hauptstadt Deutschlands. Dr. Müller wohnt in München, nicht in Köln."
    assert units(german, "word") == german.split()
    assert units(german, "sentence") == [
        "Berlin ist die Hauptstadt Deutschlands.",
        "Dr.",  # as before: an abbreviation's full stop before a space ends a sentence
        "Müller wohnt in München, nicht in Köln.",
    ]
    english = "Dave lives in Palm Coast, FL. He is a lawyer (mostly)! Is he?"
    assert units(english, "sentence") == [
        "Dave lives in Palm Coast, FL.",
        "He is a lawyer (mostly)!",
        "Is he?",
    ]
    # Typographic closing quotes close a sentence as ASCII ones do.
    assert units("He said “Hi.” Then he left.", "sentence") == ["He said “Hi.”", "Then he left."]


def test_a_format_character_stays_with_the_character_before_it():
    # a soft hyphen and a word joiner are invisible: neither is a character of its own
    assert units("0\xad1\u2060", "character") == ["0\xad", "1\u2060"]


def test_characters_are_user_perceived_characters():
    assert units("東京 e\u0301!", "character") == ["東", "京", "e\u0301", "!"]
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    flags = "\U0001f1ef\U0001f1f5\U0001f1eb\U0001f1f7"
    assert units(family + flags, "character") == [family, flags[:2], flags[2:]]
    assert pla.TextTemplateInput.from_text(ZH, by="character").n_features == len(ZH)


def test_contexts_in_chinese_and_japanese_nest_and_render_back():
    docs = [JA + "\n\n私は昨日、友達と寿司を食べました。", ZH + "我们明天见面。"]
    inp = pla.ContextInput(docs, "首都はどこですか？")
    assert inp.n_features == 5  # sentences: 2 + 1 in the first document, 2 in the second
    words = inp.at("word")
    assert words.n_features > 20
    sentence_of = words.parent_index("word", "sentence")
    for unit, s in zip(words.units(), sentence_of, strict=True):
        sentence = inp.units("sentence")[s]
        assert sentence.start <= unit.start < unit.end <= sentence.end
    for level in ("document", "paragraph", "sentence", "word"):
        at = inp.at(level)
        assert at.render(np.ones(at.n_features, bool)) == inp.prompt


def test_a_kanji_only_sentence_of_a_japanese_document_is_read_as_japanese():
    kanji = "首相官邸前広場集会開催。"
    inp = pla.ContextInput(
        ["日本国民は正当に選挙された国会における代表者を通じて行動する。" + kanji], "?"
    )
    last = [u.text for u in inp.at("word").units() if u.parents["sentence"] == 1]
    assert last == [kanji[a:b] for a, b in split_units(kanji, "word", "ja")]
    assert last != units(kanji, "word")  # alone, it reads as Chinese


# ---------------------------------------------------------------- without the extra

BLOCK_BUDOUX = """
import importlib.abc, sys

class NoBudoux(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "budoux":
            raise ImportError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoBudoux())
"""


def test_without_budoux_only_words_of_unspaced_scripts_need_the_extra():
    code = f"""
        import pyllmattr as pla
        ja, zh = {JA!r}, {ZH!r}
        assert pla.TextTemplateInput.from_text(ja, by="sentence").n_features == 2
        assert pla.TextTemplateInput.from_text(ja, by="character").n_features == len(ja)
        assert pla.TextTemplateInput.from_text("서울은 한국의 수도입니다.").n_features == 3
        assert pla.ContextInput([ja, zh], "?").n_features == 3  # words not split until asked
        for make in (lambda: pla.TextTemplateInput.from_text(zh),
                     lambda: pla.ContextInput([ja], "?", by="word")):
            try:
                make()
            except ImportError as exc:
                print(exc)
    """
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_BUDOUX + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        assert "pip install 'pyllmattr[languages]'" in line and "BudouX" in line


# ---------------------------------------------------------------- any text

PIECES = [
    "東京は",
    "日本の首都です。",
    "北京是中国的首都，",
    "我們",
    "「",
    "」",
    "ภาษาไทย",
    "เด็กๆ ",
    "서울은 ",
    "है।",
    "दिल्ली",
    "Tim Cook",
    "2023年",
    "iPhone 15",
    "？！",
    "．",
    "e\u0301",
    "\u0301",
    "\u200d",
    "\U0001f1ef\U0001f1f5",
    "\u3000",
    " ",
    "\n\n",
    ". ",
    "{}",
]
any_unicode = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(st.characters(codec="utf-8"), max_size=5)),
    max_size=20,
).map("".join)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(text=any_unicode, by=st.sampled_from(UNITS))
def test_units_are_ordered_stripped_spans_that_render_back_exactly(text, by):
    spans = split_units(text, by)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end
        assert text[start:end] == text[start:end].strip()
        previous_end = end
    assert not text[previous_end:].strip()
    for start, _ in spans:  # a mark or joiner starts no unit, unless nothing comes before it
        assert start == 0 or not scripts.attaches(text[start]) or text[start - 1].isspace()
    if by in ("word", "character"):  # every visible character is in a unit
        covered = "".join(text[a:b] for a, b in spans)
        assert covered == "".join(text.split())
    if not text.strip():
        return
    inp = pla.TextTemplateInput.from_text(text, by=by)
    present = np.ones(inp.n_features, bool)
    rendered, segments = inp.render(present, inp.baselines)
    assert rendered == text and "".join(s for s, _ in segments) == text
    for f in range(min(inp.n_features, 5)):
        present[:] = True
        present[f] = False
        expected = "".join(s for s, feat in segments if feat != f)
        assert inp.render(present, inp.baselines)[0] == expected


@FUZZ
@given(text=any_unicode.filter(str.strip), seed=st.integers(0, 2**16))
def test_the_html_view_renders_any_text_byte_for_byte(text, seed):
    inp = pla.TextTemplateInput.from_text(text, by="word")
    _, segments = inp.render(np.ones(inp.n_features, bool), inp.baselines)
    result = fake_result(segments, np.random.default_rng(seed).normal(size=inp.n_features))
    body = result._repr_html_().split('<div style="font-size:smaller')[0]
    assert html.unescape(re.sub(r"<[^>]+>", "", body)) == text + result.target


def fake_result(segments, values, labels=None) -> pla.AttributionResult:
    return pla.AttributionResult(
        seq_attr=np.asarray(values, dtype=float),
        token_attr=None,
        input_features=labels or [t.strip() for t, f in segments if f is not None],
        output_tokens=["ok"],
        target_logprob=-1.0,
        target_token_logprobs=np.array([-1.0]),
        method="FeatureAblation",
        prompt_segments=list(segments),
    )


# ---------------------------------------------------------------- tables and the page


def test_display_width_counts_wide_characters_twice_and_marks_not_at_all():
    assert display_width("東京は") == 6 and display_width("Tokyo") == 5
    assert display_width("e\u0301") == 1 and display_width("\u200d") == 0
    assert fit_width("東京は日本の首都", 7) == "東京は…" and display_width("東京は…") == 7
    assert fit_width("Palm Coast", 32) == "Palm Coast"
    assert pad_width("東京", 6) == "東京  "


def test_the_table_aligns_columns_whatever_the_script():
    inp = pla.TextTemplateInput.from_text(JA + " Tokyo and Ōsaka", by="word")
    _, segments = inp.render(np.ones(inp.n_features, bool), inp.baselines)
    values = np.linspace(-1.0, 1.0, inp.n_features)
    rows = format_result(fake_result(segments, values), top=50).splitlines()
    table = [row for row in rows if re.search(r"[+-]\d\.\d{4}", row)]
    assert len(table) == inp.n_features
    value_columns = {
        display_width(row[: re.search(r"[+-]\d\.\d{4}", row).start()]) for row in table
    }
    assert len(value_columns) == 1, table


def test_cjk_features_are_highlighted_and_parted_where_they_touch():
    inp = pla.TextTemplateInput.from_text(JA, by="word")
    _, segments = inp.render(np.ones(inp.n_features, bool), inp.baselines)
    page = fake_result(segments, np.arange(1.0, inp.n_features + 1))._repr_html_()
    highlighted = re.findall(r'data-feature="(\d+)"[^>]*style="([^"]*)">([^<]*)<', page)
    assert [html.unescape(text) for _, _, text in highlighted] == inp.labels
    assert all("background:rgba(33,102,172," in style for _, style, _ in highlighted)
    touching = [int(f) for f, style, _ in highlighted if "box-shadow" in style]
    assert touching == list(range(1, inp.n_features))  # every feature after the first
    # Latin words have a space between them: nothing to part.
    latin = pla.TextTemplateInput.from_text("Dave lives in Palm Coast.")
    _, segments = latin.render(np.ones(latin.n_features, bool), latin.baselines)
    assert "box-shadow" not in fake_result(segments, np.ones(latin.n_features))._repr_html_()


@pytest.mark.browser
def test_in_a_browser_touching_cjk_features_are_drawn_side_by_side(tmp_path):
    from browser import Chromium

    inp = pla.TextTemplateInput.from_text(JA, by="word")
    _, segments = inp.render(np.ones(inp.n_features, bool), inp.baselines)
    view = tmp_path / "view.html"
    fake_result(segments, np.full(inp.n_features, 2.0)).to_html(view)
    with Chromium(tmp_path, 900, 400) as page:
        page.goto(view.as_uri())
        boxes = page.js(
            "[...document.querySelectorAll('.pla-feature')].map(e => {"
            "const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom,"
            " getComputedStyle(e).backgroundColor, getComputedStyle(e).boxShadow]; })"
        )
    assert len(boxes) == inp.n_features
    for (left, top, right, bottom, background, _), (next_left, next_top, *_, shadow) in zip(
        boxes, boxes[1:], strict=False
    ):
        assert right > left and bottom > top  # drawn, with a width
        assert background.startswith("rgba(33, 102, 172")
        if abs(next_top - top) < 1:  # the same line: the next one starts where this ends
            assert abs(next_left - right) < 1
        assert "inset" in shadow


# ---------------------------------------------------------------- on a model


def test_japanese_and_thai_words_attribute_on_a_real_tokenizer(tiny):
    for text, target in ((JA, "名古屋"), ("ฉันชอบกินข้าวผัดกับไก่ ", "มาก")):
        inp = pla.TextTemplateInput.from_text(text, by="word")
        result = pla.FeatureAblation(tiny).attribute(inp, target=target, noise_floor=False)
        assert result.input_features == inp.labels
        assert result.prompt == text
        assert all(result.feature_tokens), "a feature covers no token"
        assert np.all(np.isfinite(result.seq_attr))
