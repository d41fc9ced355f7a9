"""The app's routes (Starlette): the page, its JSON API and the downloads.

GET  /                     the page (first visit: /?token=..., traded for a cookie)
GET  /static/{file}        its script and style sheet
GET  /api/config           methods and their options, feature kinds, chat templates
GET  /api/models           the models found (pyllmattr models), the server's first
GET  /api/runs             the runs kept (oldest first): state, the page's request, summary
POST /api/runs             start an attribution -> 202 {id}; 400 bad input; 409 busy
GET  /api/runs/{id}        its state and progress; its result once done
POST /api/runs/{id}/cancel stop it (within a decode)
GET  /runs/{id}.json       the result as AttributionResult.to_json() (a download)
GET  /runs/{id}.html       the result as AttributionResult.to_html() (a download)
"""

from __future__ import annotations

import html
import json
import math
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import render
from ..chat import builtin_chat_templates
from ..frontend import CONTEXT_UNITS
from ..methods.convergence import describe
from .requests import FEATURES, method_config, page_methods, parse_request
from .runs import Busy, Runs
from .security import SECURITY_HEADERS, Guard

STATIC_TYPES = {"app.js": "text/javascript", "style.css": "text/css"}


class AppState:
    """What the routes share: the runs, the guard and the models the page may pick.

    Example:
        >>> app = create_app(AppState(Runs(load), Guard(new_token(), 8421, True),  # doctest: +SKIP
        ...                           "default", lambda: model_rows(find_models())))
    """

    def __init__(self, runs: Runs, guard: Guard, default_model: str, models: Any) -> None:
        self.runs, self.guard, self.default_model = runs, guard, default_model
        self.list_models = models  # () -> rows as `pyllmattr models --json` prints them


def create_app(state: AppState) -> Starlette:
    """The Starlette application serving ``state`` (see :func:`pyllmattr.serve.serve`)."""
    routes = [
        Route("/", _page(state)),
        Route("/static/{name}", _static),
        Route("/api/config", _config(state)),
        Route("/api/models", _models(state)),
        Route("/api/runs", _list(state), methods=["GET"]),
        Route("/api/runs", _start(state), methods=["POST"]),
        Route("/api/runs/{run_id:int}", _status(state), methods=["GET"]),
        Route("/api/runs/{run_id:int}", _delete(state), methods=["DELETE"]),
        Route("/api/runs/{run_id:int}/cancel", _cancel(state), methods=["POST"]),
        Route("/runs/{run_id:int}.{kind}", _download(state)),
    ]
    middleware = [Middleware(BaseHTTPMiddleware, dispatch=_guarded(state.guard))]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.pyllmattr = state
    return app


def _guarded(guard: Guard):
    async def dispatch(request: Request, call_next: Any) -> Response:
        refusal = guard.refusal(request)
        if refusal is not None:
            api = request.url.path.startswith("/api/")
            response = json_response({"error": refusal}, 403) if api else _refused(refusal)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    return dispatch


def json_response(data: Any, status: int = 200) -> Response:
    """JSON with non-finite numbers as null (JSON has no NaN; the page would choke on it)."""
    body = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False)
    return Response(body, status, media_type="application/json")


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def _refused(reason: str) -> Response:
    body = f"<!DOCTYPE html><title>pyllmattr</title><p>{html.escape(reason)}</p>"
    return HTMLResponse(body, 403)


def _asset(name: str) -> str:
    # one name per joinpath: Python 3.10's Traversable takes no more
    return resources.files("pyllmattr.serve").joinpath("static").joinpath(name).read_text("utf-8")


# ---------------------------------------------------------------- routes


def _page(state: AppState):
    async def page(request: Request) -> Response:
        guard = state.guard
        if guard.welcomes(request):  # trade the URL's token for a cookie, drop it from the URL
            response = RedirectResponse("/", 303)
            response.set_cookie(
                guard.cookie, guard.token, httponly=True, samesite="strict", path="/"
            )
            return response
        return HTMLResponse(_asset("index.html").replace("{{TOKEN}}", guard.token))

    return page


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_TYPES:
        return Response("not found", 404)
    return Response(_asset(name), media_type=STATIC_TYPES[name])


def _config(state: AppState):
    async def config(request: Request) -> Response:
        methods = [method_config(name, cls) for name, cls in page_methods().items()]
        return json_response(
            {
                "methods": methods,
                "features": list(FEATURES),
                "context_features": list(CONTEXT_UNITS),
                "chat_templates": list(builtin_chat_templates()),
                "default_model": state.default_model,
            }
        )

    return config


def _models(state: AppState):
    async def models(request: Request) -> Response:
        return json_response({"default": state.default_model, "models": state.list_models()})

    return models


def _list(state: AppState):
    async def runs(request: Request) -> Response:
        return json_response({"runs": [run.summary() for run in state.runs.kept()]})

    return runs


def _start(state: AppState):
    async def start(request: Request) -> Response:
        try:
            data = await request.json()
        except ValueError:
            return json_response({"error": "the request body must be JSON"}, 400)
        try:
            request = parse_request(data, state.default_model)
            allowed = {row["reference"] for row in state.list_models()} | {state.default_model}
            if request.model not in allowed:
                raise ValueError(f"unknown model {request.model!r}; pick one of the listed models")
            run = state.runs.start(request)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        except Busy as exc:
            return json_response({"error": str(exc)}, 409)
        return json_response(run.status(), 202)

    return start


def _status(state: AppState):
    def status(run: Any) -> Response:
        body = run.status()
        body["form"] = run.form
        if run.state == "done":
            body["convergence"] = describe(run.result.convergence) or None
            body["result"] = run.result.to_dict()
            body["html"] = render.to_html(run.result)
            body["below_noise"] = run.result.below_noise().tolist()
        return json_response(body)

    return _on_run(state.runs.get, status)


def _delete(state: AppState):
    async def delete(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            run, problem = state.runs.delete(run_id)
        except Busy as exc:
            return json_response({"error": str(exc)}, 409)
        if run is None:
            return json_response({"error": "no such run"}, 404)
        return json_response({"deleted": run_id, "problem": problem})

    return delete


def _cancel(state: AppState):
    return _on_run(state.runs.cancel, lambda run: json_response(run.status()))


def _on_run(find: Any, answer: Any):
    """A route about one run: ``find(run_id)`` gives it (None: 404), ``answer(run)`` the
    response."""

    async def route(request: Request) -> Response:
        run = find(request.path_params["run_id"])
        if run is None:
            return json_response({"error": "no such run"}, 404)
        return answer(run)

    return route


def _download(state: AppState):
    async def download(request: Request) -> Response:
        run, kind = state.runs.get(request.path_params["run_id"]), request.path_params["kind"]
        if run is None or run.state != "done" or kind not in ("json", "html"):
            return Response("no such result", 404)
        if kind == "json":
            body, media = run.result.to_json(indent=2), "application/json"
        else:
            body, media = run.result.to_html(), "text/html"
        name = f"pyllmattr-run-{run.id}.{kind}"
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        return Response(body, media_type=media, headers=headers)

    return download
