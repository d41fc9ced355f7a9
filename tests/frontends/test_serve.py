"""`pyllmattr serve`'s server: its token, its JSON API, one run at a time per model."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest
from serve_client import LONG_RUN, Client

import pyllmattr as pla
from pyllmattr.cli import main
from pyllmattr.frontend import missing_extra
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
    assert methods["interactions"] == {
        "index": "k-SII", "order": 2, "budget": "", "approximator": "auto"
    }  # fmt: skip
    assert methods["hierarchical"] == {
        "levels": "", "keep": 3, "keep_alone": 0, "unrefined": "split"
    }  # fmt: skip
    ig = next(m for m in config["methods"] if m["name"] == "integrated-gradients")
    assert ig["needs_gradients"] and ig["auto_options"] == ["n_steps"]
    assert ig["unavailable"] == missing_extra(pla.IntegratedGradients)  # None with torch
    assert ig["options"]["n_steps"] == 50 and ig["options"]["baselines"] == ""
    gradients = {m["class"] for m in config["methods"] if m["needs_gradients"]}
    assert gradients == {"IntegratedGradients", "Saliency", "InputXGradient", "GradientShap"}
    modes = {m["name"]: m["modes"] for m in config["methods"]}
    assert modes["feature-ablation"] == ["prompt", "context"]
    assert modes["hierarchical"] == modes["context-cite"] == ["context"]
    assert "chatml" in config["chat_templates"]
    # the feature kinds the page offers, from the library's own lists
    assert config["features"] == [
        "token", "character", "word", "clause", "sentence", "paragraph", "template"
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


# ---------------------------------------------------------------- contrast, faithfulness


def test_a_contrast_run_gives_the_librarys_contrastive_result(client, smollm2):
    body = {"prompt": "Dave lives in Palm Coast", "target": " FL", "contrast": " CA"}
    run = client.wait(client.start(body))
    assert run["state"] == "done", run
    inp = pla.TextTemplateInput.from_text(body["prompt"], by="word")
    expected = pla.FeatureAblation(smollm2).attribute(
        inp, target=" FL", contrast=" CA", progress=False
    )
    got = pla.AttributionResult.from_dict(run["result"])
    assert got.contrast == " CA" and got.contrast_logprob == expected.contrast_logprob
    np.testing.assert_array_equal(got.seq_attr, expected.seq_attr)
    assert "rather than" in run["html"] and "favours the target over" in run["html"]
    assert run["form"]["contrast"] == " CA"


def test_evaluate_measures_the_faithfulness_the_library_measures(client, smollm2):
    body = {"prompt": "Dave plays golf", "target": " well", "evaluate": True, "seed": 3}
    run = client.wait(client.start(body))
    assert run["state"] == "done" and not run["notes"], run
    got = pla.AttributionResult.from_dict(run["result"])
    inp = pla.TextTemplateInput.from_text(body["prompt"], by="word")
    result = pla.FeatureAblation(smollm2).attribute(inp, target=" well", progress=False)
    expected = pla.evaluate(result, smollm2, seed=3, progress=False)
    np.testing.assert_array_equal(got.faithfulness.deletion, expected.deletion)
    np.testing.assert_array_equal(got.faithfulness.insertion, expected.insertion)
    assert got.faithfulness.lds == expected.lds
    assert 'class="pla-faithfulness"' in run["html"] and "<svg" in run["html"]


# ---------------------------------------------------------------- gradient methods


def test_a_gradient_run_loads_the_same_gguf_into_pytorch(client, smollm2_torch):
    prompt = "Dave lives in Palm Coast"
    body = {"prompt": prompt, "target": " FL", "features": "token", "method":
            "integrated-gradients", "options": {"n_steps": 8}}  # fmt: skip
    run = client.wait(client.start(body))
    assert run["state"] == "done", run
    got = pla.AttributionResult.from_dict(run["result"])
    inp = pla.TextTokenInput(prompt, smollm2_torch, baselines=0)
    expected = pla.IntegratedGradients(smollm2_torch).attribute(
        inp, target=" FL", n_steps=8, progress=False
    )
    assert got.method == "IntegratedGradients" and got.input_features == expected.input_features
    scale = float(np.abs(expected.seq_attr).max())
    np.testing.assert_allclose(got.seq_attr, expected.seq_attr, rtol=0, atol=1e-4 * scale)
    assert got.convergence["n_steps"] == 8 and got.convergence["check"] == "half"
    assert run["convergence"] == pla.methods.convergence.describe(got.convergence)
    assert run["convergence"] in run["html"]


@pytest.mark.torch
def test_auto_points_and_the_layer_are_read_from_the_form(client):
    body = {"prompt": "Dave lives in Palm Coast", "target": " FL", "features": "token",
            "method": "integrated-gradients",
            "options": {"n_steps": "auto", "max_steps": 32, "layer": "1"}}  # fmt: skip
    run = client.wait(client.start(body))
    assert run["state"] == "done", run
    convergence, settings = run["result"]["convergence"], run["result"]["settings"]
    assert convergence["check"] == "doubling" and convergence["n_steps"] in (16, 32)
    # the library's warning, shown beside the result, when the cap came first
    assert convergence["converged"] or any("before the values settled" in n for n in run["notes"])
    assert settings["layer"] == 1  # the text "1" is the decoder layer of index 1


def test_gradient_requests_that_cannot_run_say_why(client, monkeypatch):
    body = {"prompt": "Hi there", "target": " you", "method": "integrated-gradients"}
    status, answer = client.json("/api/runs", {**body, "options": {"n_steps": "lots"}})
    assert status == 400 and "n_steps must be a int or 'auto'" in answer["error"]
    status, answer = client.json("/api/runs", {**body, "fast": True})
    assert status == 400 and "the fast layout is llama.cpp's" in answer["error"]
    monkeypatch.setitem(sys.modules, "gguf", None)  # the torch extra, without one package
    status, config = client.json("/api/config")
    ig = next(m for m in config["methods"] if m["name"] == "integrated-gradients")
    assert "pyllmattr[torch]" in ig["unavailable"] and "gguf" in ig["unavailable"]
    status, answer = client.json("/api/runs", body)
    assert status == 400 and "pyllmattr[torch]" in answer["error"]


# ---------------------------------------------------------------- history


def test_the_server_lists_its_runs_with_the_pages_requests(client):
    body = {"prompt": PROMPT, "target": " golf", "features": "sentence"}
    run_id = client.start(body)
    client.wait(run_id)
    status, answer = client.json("/api/runs")
    assert status == 200
    listed = {run["id"]: run for run in answer["runs"]}
    assert list(listed) == sorted(listed)  # oldest first
    mine = listed[run_id]
    assert mine["state"] == "done" and mine["form"] == body
    assert mine["method"] == "FeatureAblation" and mine["output"] == " golf"


def test_history_folder_keeps_runs_across_a_restart(tmp_path):
    folder = tmp_path / "runs"
    body = {"prompt": "Dave lives in Palm Coast", "target": " FL"}
    with Server(port=0, n_threads=2, n_ctx=512, history=folder) as first:
        run = Client(first).wait(Client(first).start(body))
    assert run["state"] == "done", run
    (file,) = folder.glob("run-*.json")
    saved = pla.AttributionResult.from_json(file.read_text(encoding="utf-8"))  # a result file
    np.testing.assert_array_equal(saved.seq_attr, run["result"]["seq_attr"])
    (folder / "run-999999.json").write_text("{not json", encoding="utf-8")
    # the new server loads no model until a run needs one
    with Server(port=0, n_threads=2, n_ctx=512, history=folder) as second:
        client = Client(second)
        runs = client.json("/api/runs")[1]["runs"]
        assert [(r["id"], r["form"], r["output"]) for r in runs] == [(run["id"], body, " FL")]
        again = client.json(f"/api/runs/{run['id']}")[1]
        assert again["html"] == run["html"] and again["result"] == run["result"]
        status, _, raw = client.request(f"/runs/{run['id']}.json")
        assert status == 200 and pla.AttributionResult.from_json(raw.decode()).target == " FL"
        assert any("run-999999.json" in problem for problem in second.runs.problems)
        status, fresh = client.json("/api/runs", {"prompt": "x", "target": " y"})
        assert status == 202 and fresh["id"] == run["id"] + 1  # ids go on after the saved
        client.wait(fresh["id"])


def test_deleting_a_run_forgets_it_and_its_file(tmp_path):
    folder = tmp_path / "runs"
    with Server(port=0, n_threads=2, n_ctx=512, history=folder) as server:
        client = Client(server)
        kept, gone = (
            client.wait(client.start({"prompt": "Dave lives in Palm Coast", "target": t}))["id"]
            for t in (" FL", " Florida")
        )
        assert len(list(folder.glob("run-*.json"))) == 2
        status, answer = client.json(f"/api/runs/{gone}", method="DELETE")
        assert status == 200 and answer == {"deleted": gone, "problem": None}
        assert [file.name for file in folder.glob("run-*.json")] == [f"run-{kept:06d}.json"]
        assert [run["id"] for run in client.json("/api/runs")[1]["runs"]] == [kept]
        assert client.json(f"/api/runs/{gone}")[0] == 404
        assert client.json(f"/api/runs/{gone}", method="DELETE")[0] == 404


def test_a_working_run_is_cancelled_before_it_is_deleted(client):
    working = client.start(LONG_RUN)
    client.wait(working, until=("scoring",))
    status, answer = client.json(f"/api/runs/{working}", method="DELETE")
    assert status == 409 and "cancel it, then delete it" in answer["error"]
    client.json(f"/api/runs/{working}/cancel", {})
    assert client.wait(working)["state"] == "cancelled"
    assert client.json(f"/api/runs/{working}", method="DELETE")[0] == 200


def test_an_unusable_history_folder_is_an_error_at_start(tmp_path, capsys):
    a_file = tmp_path / "runs.txt"
    a_file.write_text("not a folder")
    with pytest.raises(ValueError, match="not a folder"):
        Server(port=0, history=a_file)
    with pytest.raises(ValueError, match="cannot create the folder"):
        Server(port=0, history=a_file / "runs")
    assert main(["serve", "--port", "0", "--history", str(a_file)]) == 1
    assert "--history" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any folder")
def test_a_folder_the_server_cannot_write_is_an_error_at_start(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot read and write files there"):
            Server(port=0, history=folder)
    finally:
        folder.chmod(0o700)


def test_warnings_are_collected_per_thread():
    """The explorer shows a run's warnings beside it; runs in other threads keep theirs."""
    from pyllmattr._warnings import collected, warn

    theirs: list[list[str]] = []

    def elsewhere() -> None:
        with collected() as messages:
            warn("from another thread")
        theirs.append(messages)

    with pytest.warns(UserWarning), collected() as mine:
        warn("from this thread")
        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        warn("from this thread")  # each message once
    assert mine == ["from this thread"] and theirs == [["from another thread"]]
