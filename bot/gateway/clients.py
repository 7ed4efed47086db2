"""Who is calling the gateway: the client's address and the page's origin, from a request."""
from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping, Optional

from aiohttp import web


def client_address(request: web.Request, trust_forwarded_for: bool) -> str:
    """The client's IP address: the connection's, or the one the trusted proxy saw.

    Behind a trusted proxy (``trust_forwarded_for``) that is the *last*
    X-Forwarded-For entry: the proxy appends the address that connected to
    it, while every entry before it came from the client and can be forged
    (a guesser would rotate it to dodge the per-address sign-in and rate
    limits). Not an IP address there: the connection's address.
    """
    if trust_forwarded_for:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
        if hops[-1]:
            try:
                return str(ipaddress.ip_address(hops[-1]))
            except ValueError:
                pass
    return request.remote or "unknown"


def own_origins(environ: Mapping[str, object]) -> set:
    """The gateway's own origin(s) as a browser sends them: scheme://host, and the forwarded one behind a proxy."""
    host = str(environ.get("HTTP_HOST") or "")
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    origins = {f"{scheme}://{host}"} if host else set()
    forwarded_host = str(environ.get("HTTP_X_FORWARDED_HOST") or host).split(",")[0].strip()
    forwarded_scheme = str(environ.get("HTTP_X_FORWARDED_PROTO") or scheme).split(",")[0].strip()
    if forwarded_host:
        origins.add(f"{forwarded_scheme}://{forwarded_host}")
    return origins


def origin_allowed(origin: Optional[str], environ: Mapping[str, object], also: Iterable[str] = ()) -> bool:
    """Whether a socket from page ``origin`` may connect: the gateway's own origin or one of ``also``.

    No Origin header (not a browser: a server or a test client) is allowed:
    the check is against other web pages using a visitor's browser.
    """
    if not origin:
        return True
    origin = origin.rstrip("/")
    return origin in own_origins(environ) or origin in set(also)
