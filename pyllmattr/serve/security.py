"""Who may talk to the app: the person who has the URL with its token, nobody else.

Like Jupyter, the server prints a URL that carries a random token. The first visit
trades it for a cookie (HttpOnly, SameSite=Strict, named after the port, since
cookies are shared across ports) and the page sends the token in a header with every
JSON request. So:

- a request without the token (no header, cookie or query) is refused (403);
- the JSON API takes the token only from its header, which another origin's page
  cannot set without a CORS preflight this server never grants, so another page open
  in the same browser can neither drive the app nor read its results (the cookie,
  which the browser would attach, is not enough there);
- on a loopback address the Host header must name that address (a DNS-rebinding page
  naming its own host is refused), and a request with a foreign Origin is refused;
- every answer forbids framing, inline scripts and referrers (the token stays out of
  other sites' logs).
"""

from __future__ import annotations

import secrets
from typing import Any

TOKEN_HEADER = "x-pyllmattr-token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Guard:
    """Decides, per request, whether it carries the token and comes from where it should.

    Example:
        >>> guard = Guard(new_token(), port=8421, loopback=True)
        >>> guard.cookie
        'pyllmattr-8421'
    """

    def __init__(self, token: str, port: int, loopback: bool) -> None:
        self.token = token
        self.cookie = f"pyllmattr-{port}"
        self.hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES} if loopback else None

    def refusal(self, request: Any) -> str | None:
        """Why the request is refused, or None when it may go on."""
        host = request.headers.get("host", "")
        if self.hosts is not None and host not in self.hosts:
            return f"unexpected Host {host!r}: open the URL the server printed"
        origin = request.headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            return "requests from other sites are refused"
        api = request.url.path.startswith("/api/")
        offered = [request.headers.get(TOKEN_HEADER)]
        if not api:
            offered += [request.query_params.get("token"), request.cookies.get(self.cookie)]
        if any(value and secrets.compare_digest(value, self.token) for value in offered):
            return None
        if api:
            return f"this API needs the {TOKEN_HEADER} header with the server's token"
        return (
            "this pyllmattr server needs its token: open the URL with ?token=... that "
            "`pyllmattr serve` printed in its terminal"
        )

    def welcomes(self, request: Any) -> bool:
        """A first visit with the token in the URL (trade it for the cookie)."""
        given = request.query_params.get("token")
        return bool(given) and secrets.compare_digest(given, self.token)
