"""`pyllmattr serve` in a real browser: headless chromium clicks through the page."""

from __future__ import annotations

import re

import numpy as np
import pytest
from browser import Chromium
from serve_client import LONG_RUN, Client

from pyllmattr.serve import Server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"
PARAGRAPHS = "Dave lives in Palm Coast. He is a lawyer.\n\nHe plays golf. He reads history."


@pytest.fixture(scope="module")
def server():
    with Server(model="default", port=0, n_threads=2, n_ctx=2048) as running:
        yield running


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    with Chromium(tmp_path_factory.mktemp("browser"), 1400, 1000) as browser:
        browser.goto(server.url)
        browser.wait_for("document.body.dataset.ready === 'true'")
        yield browser


def history_length(page) -> int:
    return page.js("document.querySelectorAll('#history li').length")


def explain(page, prompt: str, target: str = "", features: str = "word", contrast: str = "") -> int:
    """Fill the form as a person would, press Explain and wait for the run to show."""
    page.type("#prompt", prompt)
    page.type("#target", target)
    page.type("#contrast", contrast)
    page.choose("#features", features)
    before = history_length(page)
    page.click("#run")
    page.wait_for(
        f"document.querySelectorAll('#history li').length > {before} "
        "|| !document.getElementById('error').hidden"
    )
    assert page.js("document.getElementById('error').hidden"), page.js(
        "document.getElementById('error').textContent"
    )
    assert "undefined" not in page.js("document.getElementById('summary').textContent")
    return int(page.js("document.getElementById('result').dataset.run"))


def api_result(server, run_id: int) -> dict:
    status, run = Client(server).json(f"/api/runs/{run_id}")
    assert status == 200 and run["state"] == "done", run
    return run


def expected_alpha(value: float, values: list[float]) -> float:
    limit = max(abs(v) for v in values)
    return round(0.85 * min(abs(value) / limit, 1.0), 3)


def test_the_highlighted_prompt_matches_the_json_result(page, server):
    run = api_result(server, explain(page, PROMPT, " golf"))
    result = run["result"]
    spans = page.js(
        "[...document.querySelectorAll('#highlight .pla-feature')].map(e => "
        "[Number(e.dataset.feature), e.textContent, e.title, getComputedStyle(e).backgroundColor])"
    )
    assert [s[0] for s in spans] == list(range(len(result["input_features"])))
    for feature, text, title, background in spans:
        value = result["seq_attr"][feature]
        assert text == result["input_features"][feature]  # words: the highlight is the word
        assert title.startswith(f"{text}: {value:+.4f}")
        alpha = float(re.findall(r"[\d.]+", background)[3]) if "rgba" in background else 1.0
        assert abs(alpha - expected_alpha(value, result["seq_attr"])) < 0.003, background
    shown = page.js("document.querySelector('#highlight .pla-result > div').textContent")
    assert shown == PROMPT + " golf"


def test_the_ranked_table_and_heatmap_match_the_json_result(page, server):
    run_id = int(page.js("document.getElementById('result').dataset.run"))
    run = api_result(server, run_id)
    values = np.array(run["result"]["seq_attr"])
    rows = page.js(
        "[...document.querySelectorAll('#ranking tbody tr')].map(r => "
        "[Number(r.dataset.feature), r.querySelector('.value').textContent])"
    )
    assert [f for f, _ in rows] == list(np.argsort(-np.abs(values), kind="stable"))
    for feature, shown in rows:
        quiet = "~" if run["below_noise"][feature] else ""
        assert shown == f"{values[feature]:+.4f}{quiet}"
    cells = page.js(
        "[...document.querySelectorAll('#heatmap td')].map(c => "
        "[Number(c.dataset.row), Number(c.dataset.col), Number(c.dataset.value)])"
    )
    token_attr = np.array(run["result"]["token_attr"])
    assert len(cells) == token_attr.size
    for row, col, value in cells:
        assert value == token_attr[row, col]


def test_past_runs_compare_side_by_side(page, server):
    first = int(page.js("document.getElementById('result').dataset.run"))
    second = explain(page, PARAGRAPHS, " He", features="sentence")
    for run_id in (first, second):
        page.click(f"#history li[data-run='{run_id}'] input")
    page.click("#compare")
    columns = page.wait_for("document.querySelectorAll('#comparison .column').length === 2")
    assert columns
    for run_id in (first, second):
        top = np.argmax(np.abs(api_result(server, run_id)["result"]["seq_attr"]))
        shown = page.js(
            f"document.querySelector(\"#comparison .column[data-run='{run_id}'] tbody tr\")"
            ".dataset.feature"
        )
        assert int(shown) == top


def test_cancel_stops_a_long_run_and_the_page_recovers(page):
    page.choose("#method", LONG_RUN["method"])
    page.type("#options input[name='n_samples']", str(LONG_RUN["options"]["n_samples"]))
    page.type("#prompt", LONG_RUN["prompt"])
    page.type("#target", LONG_RUN["target"])
    page.click("#run")
    page.wait_for("document.getElementById('progress-text').textContent.startsWith('scoring')")
    assert page.js("document.getElementById('run').disabled")
    page.click("#cancel")
    page.wait_for("document.getElementById('error').textContent === 'cancelled'")
    page.wait_for("!document.getElementById('run').disabled")
    page.choose("#method", "feature-ablation")
    assert explain(page, PROMPT, " golf")  # the model answers again


def test_html_in_the_prompt_stays_text(page, server):
    prompt = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> <b>hi</b>'
    run_id = explain(page, prompt, " ok", features="word")
    assert page.js("window.pwned === undefined")
    assert page.js("document.querySelectorAll('#highlight script, #highlight img, #highlight b')"
                   ".length") == 0  # fmt: skip
    shown = page.js("document.querySelector('#highlight .pla-result > div').textContent")
    assert shown == prompt + api_result(server, run_id)["result"]["output_tokens"][0]
    excerpt = page.js(f"document.querySelector(\"#history li[data-run='{run_id}'] .excerpt\")"
                      ".textContent")  # fmt: skip
    assert excerpt.startswith("<script>")


def test_a_busy_model_is_reported_on_the_page(page, server):
    client = Client(server)
    first = client.start(LONG_RUN)
    client.wait(first, until=("scoring",))
    page.type("#prompt", PROMPT)
    page.click("#run")
    message = page.wait_for(
        "!document.getElementById('error').hidden && document.getElementById('error').textContent"
    )
    assert message.startswith(f"busy: run {first} is working on default")
    client.json(f"/api/runs/{first}/cancel", {})
    assert client.wait(first)["state"] == "cancelled"
    assert not page.js("document.getElementById('run').disabled")


def test_the_context_methods_are_offered_for_a_context_and_show_the_top_units(page, server):
    offered = "[...document.querySelectorAll('#method option')].map(o => o.value)"
    assert "hierarchical" not in page.js(offered)  # the prompt mode
    page.click('input[name="mode"][value="context"]')
    assert {"hierarchical", "context-cite"} <= set(page.js(offered))
    page.type("#context", PARAGRAPHS)
    page.type("#question", "What does Dave play?")
    page.type("#target", " golf")
    page.choose("#method", "hierarchical")
    before = history_length(page)
    page.click("#run")
    page.wait_for(
        f"document.querySelectorAll('#history li').length > {before} "
        "|| !document.getElementById('error').hidden"
    )
    assert page.js("document.getElementById('error').hidden")
    run_id = int(page.js("document.getElementById('result').dataset.run"))
    result = api_result(server, run_id)["result"]
    assert result["method"] == "HierarchicalAblation"
    units = page.js("document.querySelectorAll('#highlight .pla-top-units tr').length")
    assert units == 1 + min(5, len(result["input_features"]))  # a header, then the top units
    levels = page.js(
        "[...document.querySelectorAll('#highlight .pla-levels table.pla-level')].map(t => "
        "[t.dataset.level, t.querySelectorAll('tr').length])"
    )
    assert levels == [[lv["level"], len(lv["units"])] for lv in result["levels"]]
    page.click('input[name="mode"][value="prompt"]')
    assert "hierarchical" not in page.js(offered)
    assert page.js("document.getElementById('method').value") == "feature-ablation"


def test_a_flag_option_is_a_checkbox_and_interactions_show_their_top_pairs(page, server):
    page.choose("#method", "shapley-sampling")
    screen = "document.querySelector(\"#options input[name='screen']\")"
    assert page.js(f"{screen}.type") == "checkbox" and not page.js(f"{screen}.checked")
    page.click("#options input[name='screen']")
    page.type("#options input[name='n_samples']", "2")
    result = api_result(server, explain(page, "Dave lives in Palm Coast", " FL"))["result"]
    assert result["settings"]["screen"] is True
    assert len(result["screened"]) == len(result["input_features"]) == 5
    page.choose("#method", "interactions")
    result = api_result(server, explain(page, "Dave lives in Palm Coast", " FL"))["result"]
    assert result["result_type"] == "InteractionResult" and result["budget_used"] == 2**5
    rows = page.js("document.querySelectorAll('#highlight .pla-top-pairs tr').length")
    assert rows == 1 + 5  # a header, then the five strongest interactions
    cells = page.js(
        "[...document.querySelectorAll('#highlight .pla-interaction-matrix td')].map(c => "
        "[Number(c.dataset.row), Number(c.dataset.col), c.textContent])"
    )
    matrix = result["interaction_matrix"]
    assert len(cells) == 5 * 5
    assert all(text == f"{matrix[row][col]:+.2f}" for row, col, text in cells)
    page.choose("#method", "feature-ablation")


# ---------------------------------------------------------------- contrast, faithfulness


def test_a_contrast_run_shows_the_contrastive_view(page, server):
    run_id = explain(page, "Dave lives in Palm Coast", " FL", contrast=" CA")
    result = api_result(server, run_id)["result"]
    assert "".join(result["contrast_tokens"]) == " CA"
    assert page.js("document.querySelector('#highlight .pla-contrast').textContent") == (
        " rather than ' CA'"
    )
    summary = page.js("document.getElementById('summary').textContent")
    assert f'rather than " CA": log p = {result["contrast_logprob"]:.3f}' in summary
    legend = page.js("document.querySelector('#highlight .pla-result').textContent")
    assert "blue favours the target over ' CA'" in legend
    excerpt = page.js(f"document.querySelector(\"#history li[data-run='{run_id}']\").textContent")
    assert 'rather than " CA"' in excerpt
    page.type("#contrast", "")


def test_faithfulness_curves_show_under_a_run(page, server):
    page.click("#evaluate")
    run_id = explain(page, "Dave plays golf", " well")
    faith = api_result(server, run_id)["result"]["faithfulness"]
    curves = page.js(
        "[...document.querySelectorAll('#highlight .pla-faithfulness svg polyline.pla-curve')]"
        ".map(c => c.getAttribute('points').trim().split(/\\s+/).length)"
    )
    assert curves == [len(faith["deletion"]), len(faith["insertion"])]
    summary = page.js("document.getElementById('summary').textContent")
    assert f"LDS {faith['lds']:.2f}" in summary
    page.click("#evaluate")
    assert not page.js("document.getElementById('evaluate').checked")


# ---------------------------------------------------------------- gradient methods


@pytest.mark.torch
def test_a_gradient_run_reports_its_convergence(page, server):
    page.choose("#method", "integrated-gradients")
    assert page.js("document.getElementById('fast').disabled")  # llama.cpp's layout only
    assert "PyTorch" in page.js("document.getElementById('method-note').textContent")
    steps = "document.querySelector(\"#options input[name='n_steps']\")"
    assert page.js(f"{steps}.type") == "text" and page.js(f"{steps}.value") == "50"
    page.type("#options input[name='n_steps']", "auto")
    page.type("#options input[name='max_steps']", "32")
    run = api_result(server, explain(page, "Dave lives in Palm Coast", " FL", features="token"))
    result = run["result"]
    assert result["method"] == "IntegratedGradients" and result["settings"]["n_steps"] == "auto"
    assert result["convergence"]["check"] == "doubling" and run["convergence"]
    summary = page.js("document.getElementById('summary').textContent")
    assert run["convergence"] in summary
    assert f"{result['stats']['n_evaluations']} points in " in summary  # not prompts: a path
    shown = page.js("document.querySelector('#highlight .pla-convergence').textContent")
    assert shown == run["convergence"]
    notes = page.js("document.getElementById('notes').hidden ? '' : "
                    "document.getElementById('notes').textContent")  # fmt: skip
    assert notes == "; ".join(run["notes"])  # the library's warnings, as they were
    assert result["convergence"]["converged"] or "before the values settled" in notes
    page.choose("#method", "feature-ablation")
    assert not page.js("document.getElementById('fast').disabled")


# ---------------------------------------------------------------- history


def history_ids(page) -> list[int]:
    return page.js(
        "[...document.querySelectorAll('#history li')].map(li => Number(li.dataset.run))"
    )


def reload(page, server) -> None:
    page.goto(f"http://127.0.0.1:{server.port}/")  # the cookie, as after the first visit
    page.wait_for("document.body.dataset.ready === 'true'")


def test_the_history_survives_a_reload(page, server):
    before = history_ids(page)
    assert len(before) >= 2
    reload(page, server)
    runs = Client(server).json("/api/runs")[1]["runs"]
    done = [run["id"] for run in runs if run["state"] == "done"]
    assert history_ids(page) == done[::-1]  # the server's finished runs, newest first
    assert set(before) <= set(done)  # every run the page showed before the reload
    assert int(page.js("document.getElementById('result').dataset.run")) == done[-1]
    older = before[-1]
    page.click(f"#history li[data-run='{older}'] button")
    page.wait_for(f"document.getElementById('result').dataset.run === '{older}'")
    result = api_result(server, older)["result"]
    shown = page.js("document.querySelector('#highlight .pla-result > div').textContent")
    prompt = "".join(text for text, _ in result["prompt_segments"])
    assert shown == prompt + "".join(result["output_tokens"])
    for run_id in before[:2]:
        page.click(f"#history li[data-run='{run_id}'] input")
    page.click("#compare")
    page.wait_for("document.querySelectorAll('#comparison .column').length === 2")


def test_a_reloaded_page_follows_the_run_still_working(page, server):
    client = Client(server)
    run_id = client.start(LONG_RUN)
    client.wait(run_id, until=("scoring",))
    reload(page, server)
    assert not page.js("document.getElementById('cancel').disabled")
    page.wait_for("document.getElementById('progress-text').textContent.startsWith('scoring')")
    page.click("#cancel")
    page.wait_for("document.getElementById('error').textContent === 'cancelled'")
    assert client.wait(run_id)["state"] == "cancelled"
    page.wait_for("!document.getElementById('run').disabled")


def test_a_restarted_server_shows_the_runs_of_its_history_folder(page, server, tmp_path):
    body = {"prompt": "Dave lives in Palm Coast", "target": " FL"}
    with Server(port=0, n_threads=2, n_ctx=512, history=tmp_path) as first:
        client = Client(first)
        run = client.wait(client.start(body))
    assert run["state"] == "done", run
    with Server(port=0, n_threads=2, n_ctx=512, history=tmp_path) as second:
        page.goto(second.url)
        page.wait_for("document.body.dataset.ready === 'true'")
        assert history_ids(page) == [run["id"]]
        assert int(page.js("document.getElementById('result').dataset.run")) == run["id"]
        values = page.js(
            "Object.fromEntries([...document.querySelectorAll('#ranking tbody tr')].map(r => "
            "[r.dataset.feature, Number(r.dataset.value)]))"
        )
        assert [values[str(i)] for i in range(len(values))] == run["result"]["seq_attr"]
    page.goto(server.url)  # back to the module's server for any test after this one
    page.wait_for("document.body.dataset.ready === 'true'")


def test_a_deleted_run_leaves_the_page_and_the_history_folder(page, server, tmp_path):
    with Server(port=0, n_threads=2, n_ctx=512, history=tmp_path) as saving:
        client = Client(saving)
        kept, gone = (
            client.wait(client.start({"prompt": "Dave lives in Palm Coast", "target": t}))["id"]
            for t in (" FL", " Florida")
        )
        page.goto(saving.url)
        page.wait_for("document.body.dataset.ready === 'true'")
        assert history_ids(page) == [gone, kept]
        page.click(f"#history li[data-run='{gone}'] button.delete")
        page.wait_for(f"!document.querySelector(\"#history li[data-run='{gone}']\")")
        assert history_ids(page) == [kept]
        assert page.js("document.getElementById('error').hidden")
        assert [file.name for file in tmp_path.glob("run-*.json")] == [f"run-{kept:06d}.json"]
        page.goto(saving.url)
        page.wait_for("document.body.dataset.ready === 'true'")
        assert history_ids(page) == [kept]
    page.goto(server.url)  # back to the module's server for any test after this one
    page.wait_for("document.body.dataset.ready === 'true'")
