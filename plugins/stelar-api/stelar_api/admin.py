"""The admin page: its files (shipped here, no CDN), the login that turns an API key into a
session (throttled per address), and the live tail. Everything else the page shows and does goes
through the server API, with the session's token and the key's rights (a read-only key gets a
read-only page: the API refuses it any change).

The tail is read by polling rather than pushed over a stelar connection: the page also works
where there is no WebSocket (on ``health_port``), and an operator's view never becomes traffic
that its own tail would show.
"""

from __future__ import annotations

import hashlib
import html
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from stelar_api.access import Access
from stelar_api.commands import BadRequest, read_json
from stelar_api.http import SECURITY_HEADERS, cross_origin_refusal, error_response, json_response
from stelar_api.keys import bearer
from stelar_api.tail import Tail, TailFilter
from stelar_core.plugin_api import HttpRequest, HttpResponse, Options, ServerView

COUNTER = "admin_logins"
MAX_LOGIN_BODY = 4096
# The page runs only its own files: no inline script, no other origin, never framed.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
FILES = {
    "": ("admin.html", "text/html; charset=utf-8"),
    "/admin.js": ("admin.js", "text/javascript; charset=utf-8"),
    "/admin.css": ("admin.css", "text/css; charset=utf-8"),
}

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class AdminRoutes:
    def __init__(self, server: ServerView, options: Callable[[], Options], access: Access) -> None:
        self.server = server
        self._options = options
        self.access = access
        self.tail = Tail(server, lambda: options().tail_size, lambda: options().tail_sample, time.monotonic)

    def paths(self, path: str, api_prefix: str) -> dict[str, tuple[Handler, tuple[str, ...]]]:
        base = path.rstrip("/")
        # The page learns where its files and the API are from two <meta> tags.
        places = {"{{admin}}": html.escape(base), "{{api}}": html.escape(api_prefix.rstrip("/"))}
        routes: dict[str, tuple[Handler, tuple[str, ...]]] = {
            (base + suffix or "/"): (_static(name, content_type, places), ("GET",))
            for suffix, (name, content_type) in FILES.items()
        }
        routes[f"{base}/login"] = (self.login, ("POST",))
        routes[f"{base}/logout"] = (self.logout, ("POST",))
        routes[f"{base}/tail"] = (self.read_tail, ("POST",))
        return routes

    def count(self, outcome: str) -> None:
        self.server.count(f"{COUNTER}:{outcome}")

    async def login(self, request: HttpRequest) -> HttpResponse:
        """``{"key": ...}`` -> ``{"token", "name", "read_only", "expires_in"}``."""
        refusal = cross_origin_refusal(request, self._options().allowed_origins)
        if refusal is not None:
            return refusal
        address = request.remote_address
        if self.access.throttle.blocked(address):
            self.count("throttled")
            return error_response(
                429,
                "too_many_failures",
                "too many failed logins from this address; try again later",
                headers={"Retry-After": self.access.throttle.retry_after()},
            )
        try:
            if len(request.body) > MAX_LOGIN_BODY:
                raise BadRequest(f"at most {MAX_LOGIN_BODY} bytes")
            body = read_json(request.body)
            if not isinstance(body, dict) or not isinstance(body.get("key"), str):
                raise BadRequest('expected {"key": "<an API key>"}', "key")
        except BadRequest as exc:
            return error_response(400, exc.code, exc.message, exc.field)
        key = self.access.find_api_key(body["key"])
        if key is None:
            self.access.throttle.failed(address)
            self.count("failed")
            return error_response(401, "unauthorized", "this key is not one of api.keys")
        options = self._options()
        token = self.access.sessions.open(key, options.admin_session_ttl, options.max_admin_sessions)
        self.count("ok")
        return json_response(
            200,
            {
                "token": token,
                "name": key.name,
                "read_only": key.read_only,
                "expires_in": options.admin_session_ttl,
            },
        )

    async def logout(self, request: HttpRequest) -> HttpResponse:
        key = self.access.authenticate(request)
        if isinstance(key, HttpResponse):
            return key
        self.access.sessions.close(bearer(request.headers.get("authorization")) or "")
        return json_response(200, {})

    async def read_tail(self, request: HttpRequest) -> HttpResponse:
        """``{"after": seq, "room", "event", "client"}`` (patterns, all optional)."""
        refusal = cross_origin_refusal(request, self._options().allowed_origins)
        if refusal is not None:
            return refusal
        key = self.access.authenticate(request)
        if isinstance(key, HttpResponse):
            return key
        try:
            after, selected = _tail_request(read_json(request.body or b"{}"))
        except BadRequest as exc:
            return error_response(400, exc.code, exc.message, exc.field)
        return json_response(200, {**self.tail.read(after, selected), "node": self.server.cluster.node_id})


def _tail_request(body: Any) -> tuple[int, TailFilter]:
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    unknown = sorted(set(body) - {"after", "room", "event", "client"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}", unknown[0])
    after = body.get("after", 0)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise BadRequest("expected a sequence number (an integer, 0 or more)", "after")
    patterns: dict[str, str | None] = {}
    for field in ("room", "event", "client"):
        value = body.get(field) or None
        if value is not None and (not isinstance(value, str) or len(value) > 256):
            raise BadRequest("expected a pattern (a string of at most 256 characters)", field)
        patterns[field] = value
    return after, TailFilter(**patterns)


def _static(name: str, content_type: str, places: dict[str, str]) -> Handler:
    body = (resources.files("stelar_api") / "static" / name).read_bytes()
    if name.endswith(".html"):
        for place, value in places.items():
            body = body.replace(place.encode(), value.encode())
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**SECURITY_HEADERS, "Content-Type": content_type, "ETag": etag, "Cache-Control": "no-cache"}
    if name.endswith(".html"):
        headers["Content-Security-Policy"] = PAGE_POLICY
        headers["Referrer-Policy"] = "no-referrer"

    async def serve(request: HttpRequest) -> HttpResponse:
        if etag in request.headers.get("if-none-match", ""):
            return HttpResponse(304, b"", headers)
        return HttpResponse(200, body, headers)

    return serve
