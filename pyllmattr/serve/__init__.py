"""``pyllmattr serve``: explore attributions of local GGUF models in the browser.

A local web app (Starlette on uvicorn, the ``serve`` extra) bound to 127.0.0.1: pick
a model, type a prompt, pick features, method and options, and see the prompt
highlighted by attribution, the per-token heatmap and the ranked table, with
progress, Cancel and a history of runs to compare and download. The URL it prints
carries a random token, as Jupyter's does (see :mod:`pyllmattr.serve.security`).

Example:
    >>> from pyllmattr.serve import Server
    >>> with Server(model="default", port=0) as server:  # doctest: +SKIP
    ...     print(server.url)  # http://127.0.0.1:PORT/?token=...
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from typing import Any

from .._extras import require

INSTALL_HINT = "pip install 'pyllmattr[serve]'"
DEFAULT_PORT = 8421


def require_server_libraries() -> None:
    """ImportError naming the extra when Starlette or uvicorn is missing."""
    require(("starlette", "uvicorn"), "pyllmattr serve", INSTALL_HINT)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Server:
    """The app on a socket of its own, started in a background thread or run in the foreground.

    ``model`` is the model the page starts with (a path, a reference or ``"default"``);
    ``port=0`` takes a free port. A ``host`` other than loopback needs
    ``allow_remote=True``: anyone who can reach it and has the token can run models.
    ``history``: a folder where every finished run is saved as JSON and read back at the
    next start (ValueError now when it cannot be read or written).

    Example:
        >>> server = Server(port=0).start()  # doctest: +SKIP
        >>> server.url, server.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str = "default",
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        allow_remote: bool = False,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        history: str | os.PathLike | None = None,
    ) -> None:
        require_server_libraries()
        if not is_loopback(host) and not allow_remote:
            raise ValueError(
                f"--host {host} would let other machines reach the app; pass --allow-remote "
                "to mean it (anyone with the URL's token can then run models here)"
            )
        self.model, self.host = model, host
        self._history = None
        if history is not None:
            from .history import History

            self._history = History(history)  # a folder it cannot use fails here, at start
        self._sock = _bind(host, port)
        self.port = self._sock.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._server, self.app, self.runs = self._build(n_threads, n_ctx)
        for problem in self.runs.problems:
            print(f"pyllmattr serve: skipped a history file: {problem}", file=sys.stderr)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.app.state.pyllmattr.guard.token}"

    @property
    def history_folder(self) -> Any:
        """Where finished runs are saved (None: nowhere, they live while the server does)."""
        return None if self._history is None else self._history.folder

    @property
    def token(self) -> str:
        return self.app.state.pyllmattr.guard.token

    def _build(self, n_threads: int | None, n_ctx: int) -> tuple[Any, Any, Any]:
        import uvicorn

        from ..cli.models import model_rows
        from ..frontend import load_model, model_file
        from ..models.refs import find_models
        from .app import AppState, create_app
        from .runs import Runs
        from .security import Guard, new_token

        model_file(self.model)  # a wrong --model fails now, not at the first run

        def load(ref: str, method: Any, fast: bool) -> Any:
            # PyTorch for a method that needs gradients (the same GGUF), llama.cpp otherwise,
            # whose default layout is exact on the CPU; "fast" asks for the fast one.
            options: dict[str, Any] = {"n_ctx": n_ctx, "n_threads": n_threads}
            if not method.needs_gradients:
                options["deterministic"] = False if fast else None
            return load_model(ref, method, options)

        def models() -> list[dict[str, Any]]:
            return model_rows(find_models())

        runs = Runs(load, self._history)
        guard = Guard(new_token(), self.port, loopback=is_loopback(self.host))
        app = create_app(AppState(runs, guard, self.model, models))
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        return uvicorn.Server(config), app, runs

    def start(self) -> Server:
        """Serve in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self._serve, name="pyllmattr-serve", daemon=True)
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.02)
        if not self._server.started:
            raise RuntimeError("the pyllmattr server did not start; see the log above")
        return self

    def run(self) -> None:
        """Serve in this thread until Ctrl-C."""
        try:
            self._serve()
        finally:
            self.runs.close()

    def stop(self) -> None:
        """Cancel the runs, stop serving and free the models."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self.runs.close()

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port (0: any free)"
        ) from None
    sock.listen(64)
    return sock


def serve(
    model: str = "default",
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    allow_remote: bool = False,
    open_browser: bool = False,
    n_threads: int | None = None,
    n_ctx: int = 4096,
    history: str | os.PathLike | None = None,
) -> None:
    """Run the app until Ctrl-C, printing its URL (with the token) first.

    Example:
        >>> pyllmattr.serve.serve(model="ollama:llama3.2:1b")  # doctest: +SKIP
    """
    server = Server(
        model, host, port, allow_remote=allow_remote, n_threads=n_threads, n_ctx=n_ctx,
        history=history,
    )  # fmt: skip
    if not is_loopback(host):
        print(
            f"pyllmattr: warning: serving on {host}, reachable from other machines; anyone "
            "with the URL below can run models on this one",
            file=sys.stderr,
        )
    if history is not None:
        kept = len(server.runs.kept())
        print(f"pyllmattr serve: runs are saved in {server.history_folder} ({kept} read back)")
    print(f"pyllmattr serve: model {model}; open this URL (Ctrl-C stops):\n\n    {server.url}\n")
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(server.url,)).start()
    server.run()


__all__ = ["DEFAULT_PORT", "INSTALL_HINT", "Server", "serve"]
