"""A small HTTP client for tests of `pyllmattr serve` (the standard library's urllib)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

# A run that takes minutes on any CPU, whose preparation takes about a second: KernelSHAP
# with 3000 samples of a 28-word prompt and a 17-token target (~150k tokens to decode).
LONG_PROMPT = (
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing "
    "golf on weekends, reading history books, and cooking Italian food for his friends."
)
LONG_RUN = {
    "prompt": LONG_PROMPT,
    "target": " He also enjoys long walks on the beach with his dog and his two children.",
    "method": "kernel-shap",
    "options": {"n_samples": 3000},
}


class Client:
    """Talks to a server as the page does: the token in a header on every request."""

    def __init__(self, server: Any) -> None:
        self.base = f"http://127.0.0.1:{server.port}"
        self.token = server.token

    def request(
        self,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: bool = True,
        method: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if token:
            sent["x-pyllmattr-token"] = self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["content-type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=sent, method=method)
        try:
            with _no_redirects().open(req, timeout=60) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        status, _, raw = self.request(path, body, **kwargs)
        return status, json.loads(raw)

    def start(self, body: dict) -> int:
        status, run = self.json("/api/runs", body)
        assert status == 202, run
        return run["id"]

    def wait(
        self, run_id: int, timeout: float = 600, until: tuple = ("done", "error", "cancelled")
    ):
        """Poll the run until its state is one of ``until`` (a generous limit, not a timing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, run = self.json(f"/api/runs/{run_id}")
            assert status == 200, run
            if run["state"] in until:
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not reach {until} within {timeout} s: {run}")


def _no_redirects() -> urllib.request.OpenerDirector:
    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(Keep)
