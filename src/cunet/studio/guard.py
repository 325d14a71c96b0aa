"""Only the studio's own page may drive the studio: a local server is reachable from every web page
the user visits, so requests are checked before any route sees them.

- `Host` must name this server (127.0.0.1, localhost, [::1], or the `--host` it was started on; on
  0.0.0.0 any IP address and the machine's name): DNS rebinding, where evil.example resolves to
  127.0.0.1, arrives with `Host: evil.example` (421).
- A request that changes state (POST, PUT, PATCH, DELETE) needs a same-origin `Origin`, or, for
  scripts that send none, the per-launch token the page gets from its own HTML (`X-Cunet-Token`):
  cross-site forms and "simple" `text/plain` POSTs carry a foreign Origin (403).
- Every answer says not to be framed or sniffed.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse

from cunet.fields import shorten

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = {"0.0.0.0", "::"}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN_HEADER = "x-cunet-token"
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer")]


def host_name(authority: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1', '[::1]:8765' -> '::1', 'LocalHost' -> 'localhost'."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:authority.find("]")] if "]" in authority else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def new_token() -> str:
    return secrets.token_urlsafe(24)


class LocalOnly:
    """ASGI middleware refusing requests that do not come from this server's own page (see the module)."""

    def __init__(self, app, hosts: tuple[str, ...] = LOOPBACK_NAMES, token: str | None = None) -> None:
        self.app = app
        self.hosts = {host_name(host) for host in (*LOOPBACK_NAMES, *hosts)}
        # Served on every interface (--host 0.0.0.0 or ::): reached by any of this machine's addresses,
        # which it cannot list, so any IP literal is its own (a rebinding attack needs a domain name),
        # as is this machine's name.
        self.any_address = bool(self.hosts & WILDCARDS)
        if self.any_address:
            self.hosts |= {socket.gethostname().lower(), socket.gethostname().lower() + ".local"}
        self.token = token

    def serves(self, host: str) -> bool:
        name = host_name(host)
        if name in self.hosts:
            return True
        if not self.any_address:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        refusal = self.refusal(scope["method"], headers)
        if refusal is not None:
            status, message = refusal
            await JSONResponse({"error": message}, status_code=status,
                               headers={key.decode(): value.decode() for key, value in SECURITY_HEADERS})(
                scope, receive, send)
            return

        async def secured_send(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, secured_send)

    def refusal(self, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) for a request to refuse, None for one to serve."""
        host = headers.get("host", "")
        if not self.serves(host):
            return 421, (f"refused: Host {shorten(host, 40)} is not this server (cunet studio answers only at the "
                         "address it was started on)")
        if method not in STATE_CHANGING:
            return None
        origin = headers.get("origin")
        if origin is not None:
            try:
                parts = urlsplit(origin)
                netloc = parts.netloc
            except ValueError:  # "http://[::1" and the like: not this server
                parts, netloc = None, None
            if parts is None or parts.scheme not in ("http", "https") or netloc.lower() != host.lower():
                return 403, f"refused: a request from another site ({shorten(origin, 40)}) cannot change the studio"
            return None
        sent = headers.get(TOKEN_HEADER, "").encode("latin-1")  # as bytes: any header value compares, none raises
        if self.token is not None and secrets.compare_digest(sent, self.token.encode()):
            return None
        return 403, ("refused: a request that changes the studio needs this server's Origin header (or the page's "
                     "X-Cunet-Token)")
