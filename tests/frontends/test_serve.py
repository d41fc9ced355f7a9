"""`pyllmattr serve`'s server: its token, its JSON API, one run at a time per model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from serve_client import LONG_RUN, Client

import pyllmattr as pla
from pyllmattr.cli import main
from pyllmattr.serve import Server, require_server_libraries

PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"


@pytest.fixture(scope="module")
def server():
    with Server(model="default", port=0, n_threads=2, n_ctx=2048) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server)


# ---------------------------------------------------------------- the token


def test_a_request_without_the_token_is_refused(client):
    for path in ("/", "/static/app.js", "/api/models", "/runs/1.json"):
        status, _, body = client.request(path, token=False)
        assert status == 403, path
    assert b"open the URL with ?token=" in client.request("/", token=False)[2]


def test_a_wrong_token_is_refused(client):
    status, _, _ = client.request("/?token=not-the-token", token=False)
    assert status == 403
    status, _ = client.json("/api/models", token=False, headers={"x-pyllmattr-token": "nope"})
    assert status == 403


def test_the_first_visit_trades_the_token_for_a_strict_cookie(client, server):
    status, headers, _ = client.request(f"/?token={server.token}", token=False)
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"pyllmattr-{server.port}={server.token};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    jar = {"cookie": f"pyllmattr-{server.port}={server.token}"}
    status, headers, page = client.request("/", token=False, headers=jar)
    assert status == 200 and b'name="pyllmattr-token"' in page
    assert "script-src 'self'" in headers["content-security-policy"]


def test_the_api_does_not_take_the_cookie_alone(client, server):
    """Another page in the same browser would send the cookie; only this page has the token."""
    jar = {"cookie": f"pyllmattr-{server.port}={server.token}"}
    status, answer = client.json("/api/models", token=False, headers=jar)
    assert status == 403 and "x-pyllmattr-token" in answer["error"]


def test_a_foreign_host_or_origin_is_refused(client, server):
    status, _ = client.json("/api/models", headers={"host": f"attacker.example:{server.port}"})
    assert status == 403
    status, answer = client.json(
        "/api/runs", {"prompt": PROMPT}, headers={"origin": "http://attacker.example"}
    )
    assert status == 403 and "other sites" in answer["error"]


# ---------------------------------------------------------------- the API


def test_models_lists_the_default_model_with_its_header(client):
    status, answer = client.json("/api/models")
    assert status == 200 and answer["default"] == "default"
    row = next(m for m in answer["models"] if m["reference"] == "default")
    info = pla.read_gguf_info(pla.default_model_path())
    assert (row["architecture"], row["n_params"], row["context"]) == (
        info.architecture,
        info.n_params,
        info.context_length,
    )


def test_config_offers_the_perturbation_methods_and_their_options(client):
    status, config = client.json("/api/config")
    assert status == 200
    methods = {m["name"]: m["options"] for m in config["methods"]}
    assert methods["shapley-sampling"] == {"n_samples": 25, "screen": False}
    assert methods["interactions"] == {"index": "k-SII", "order": 2, "approximator": "auto"}
    assert methods["hierarchical"] == {"keep": 3, "keep_alone": 0, "unrefined": "split"}
    assert "integrated-gradients" not in methods  # PyTorch models only
    modes = {m["name"]: m["modes"] for m in config["methods"]}
    assert modes["feature-ablation"] == ["prompt", "context"]
    assert modes["hierarchical"] == modes["context-cite"] == ["context"]
    assert "chatml" in config["chat_templates"]
    # the feature kinds the page offers, from the library's own lists
    assert config["features"] == [
        "token", "character", "word", "sentence", "paragraph", "template"
    ]  # fmt: skip
    assert config["context_features"] == ["word", "sentence", "paragraph"]


def test_a_run_gives_the_result_the_library_gives(client, smollm2):
    run_id = client.start({"prompt": PROMPT, "target": " golf", "features": "word"})
    run = client.wait(run_id)
    assert run["state"] == "done", run
    got = pla.AttributionResult.from_dict(run["result"])
    inp = pla.TextTemplateInput.from_text(PROMPT, by="word")
    expected = pla.FeatureAblation(smollm2).attribute(inp, target=" golf", progress=False)
    assert got.input_features == expected.input_features
    assert got.target_ids == expected.target_ids
    np.testing.assert_array_equal(got.seq_attr, expected.seq_attr)
    assert run["html"] == got._repr_html_()
    assert run["result"]["stats"]["n_decoded"] > 0


def test_the_downloads_are_the_results_json_and_page(client, server):
    run = client.wait(client.start({"prompt": PROMPT, "target": " golf"}))
    jar = {"cookie": f"pyllmattr-{server.port}={server.token}"}
    status, headers, raw = client.request(f"/runs/{run['id']}.json", token=False, headers=jar)
    assert status == 200 and "attachment" in headers["content-disposition"]
    result = pla.AttributionResult.from_json(raw.decode())
    assert result.input_features == run["result"]["input_features"]
    status, _, page = client.request(f"/runs/{run['id']}.html", token=False, headers=jar)
    assert status == 200 and page.decode() == result.to_html()


def test_a_generated_target_is_the_models_continuation(client, smollm2):
    run = client.wait(client.start({"prompt": PROMPT, "max_new_tokens": 4}))
    assert run["state"] == "done", run
    expected = smollm2.generate(smollm2.tokenize(PROMPT), 4)
    assert run["result"]["target_ids"] == expected


def test_a_second_run_on_a_busy_model_gets_409_and_cancel_frees_it(client):
    first = client.start(LONG_RUN)
    client.wait(first, until=("scoring",))
    status, answer = client.json("/api/runs", {"prompt": PROMPT, "target": " golf"})
    assert status == 409 and answer["error"].startswith(f"busy: run {first} is working on")
    status, _ = client.json(f"/api/runs/{first}/cancel", {})
    assert status == 200
    assert client.wait(first)["state"] == "cancelled"
    assert client.wait(client.start({"prompt": PROMPT, "target": " golf"}))["state"] == "done"


def test_bad_input_is_a_400_that_says_what_to_do(client):
    cases = {
        "prompt is empty": {"prompt": ""},
        "method must be one of": {"prompt": PROMPT, "method": "magic"},
        "has no option 'n_steps'": {"prompt": PROMPT, "options": {"n_steps": 3}},
        "unknown model": {"prompt": PROMPT, "model": "/etc/passwd"},
        "values: give a value": {"features": "template", "template": "{a} b"},
        "choose the context mode": {"prompt": PROMPT, "method": "hierarchical"},
        "leave the baseline empty": {
            "mode": "context",
            "context": "A. B.",
            "question": "Q?",
            "method": "context-cite",
            "baseline": "_",
        },
    }
    for message, body in cases.items():
        status, answer = client.json("/api/runs", body)
        assert status == 400 and message in answer["error"], (message, answer)


def test_a_failing_run_reports_its_error_and_the_server_goes_on(client):
    too_long = {"prompt": "word " * 2100, "features": "paragraph", "target": " b"}
    run = client.wait(client.start(too_long))
    assert run["state"] == "error" and "context" in run["error"]
    assert client.json("/api/models")[0] == 200


def test_prompt_html_is_escaped_in_the_rendered_view(client):
    prompt = "<script>alert(1)</script> and <b>bold</b> text"
    run = client.wait(client.start({"prompt": prompt, "target": " ok"}))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run["html"]
    assert "<script" not in run["html"] and "<b>" not in run["html"]


# ---------------------------------------------------------------- starting it


def test_a_non_loopback_host_needs_allow_remote(capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "--allow-remote" in capsys.readouterr().err


def test_a_port_in_use_says_to_pick_another(server):
    with pytest.raises(OSError, match="pass another --port"):
        Server(port=server.port)


def test_without_the_serve_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r"pip install 'pyllmattr\[serve\]'"):
        require_server_libraries()


def test_template_slots_are_the_features(client):
    body = {
        "features": "template",
        "template": "{name} lives in {city} and is a {job}.",
        "values": {"name": "Dave", "city": "Palm Coast", "job": "lawyer"},
        "baselines": {"name": "Sarah", "city": "Seattle", "job": "doctor"},
        "target": " He",
    }
    run = client.wait(client.start(body))
    assert run["state"] == "done", run
    assert run["result"]["input_features"] == ["Dave", "Palm Coast", "lawyer"]


def test_a_context_and_question_attribute_the_context_only(client):
    body = {
        "mode": "context",
        "context": "Dave lives in Palm Coast. He is a lawyer. He plays golf.",
        "question": "What does Dave play?",
        "features": "sentence",
        "target": " golf",
    }
    run = client.wait(client.start(body))
    assert run["state"] == "done", run
    result = pla.AttributionResult.from_dict(run["result"])
    assert result.input_features == [
        "Dave lives in Palm Coast.",
        "He is a lawyer.",
        "He plays golf.",
    ]
    assert result.prompt == body["context"] + "\n\n" + body["question"]


def test_a_context_method_runs_on_the_context_as_the_library_runs_it(client, smollm2):
    context = "Dave lives in Palm Coast. He is a lawyer.\n\nHe plays golf. He reads history."
    body = {
        "mode": "context", "context": context, "question": "What does Dave play?",
        "features": "sentence", "target": " golf", "method": "hierarchical",
        "options": {"keep": 1},
    }  # fmt: skip
    run = client.wait(client.start(body))
    assert run["state"] == "done", run
    inp = pla.ContextInput(context, body["question"], template="{context}\n\n{query}")
    expected = pla.HierarchicalAblation(smollm2).attribute(inp, target=" golf", keep=1)
    got = run["result"]
    assert got["input_features"] == expected.input_features
    np.testing.assert_array_equal(got["seq_attr"], expected.seq_attr)
    assert got["refined"] == expected.refined and False in got["refined"]
    assert 'class="pla-top-units"' in run["html"]
