"""Files stelar-ws serves over plain HTTP on its port: the browser client (``/stelar.js``,
``/stelar.d.ts``) and, with ``demo``, the demo page (``/``) with its figures (``/demo/state``).

The client files are read once, served with a strong ETag (a hash of their bytes), revalidated
with ``If-None-Match`` (304) and cacheable for an hour; cross-origin pages may import them (they
are public code, like a CDN's).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from stelar_core.plugin_api import HttpRequest, HttpResponse, ServerView

CLIENT_FILES = {
    "/stelar.js": ("stelar.js", "text/javascript; charset=utf-8"),
    "/stelar.d.ts": ("stelar.d.ts", "application/typescript; charset=utf-8"),
}
DEMO_PAGE = ("demo.html", "text/html; charset=utf-8")
CACHE_CONTROL = "public, max-age=3600"


def read_static(name: str) -> bytes:
    return (resources.files("stelar_ws") / "static" / name).read_bytes()


class StaticFile:
    """One file's route: 200 with caching headers, 304 when the client has this version."""

    def __init__(self, name: str, content_type: str, *, cache: bool = True) -> None:
        self.body = read_static(name)
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
        self.headers = {"Content-Type": content_type, "ETag": self.etag, "Access-Control-Allow-Origin": "*"}
        self.headers["Cache-Control"] = CACHE_CONTROL if cache else "no-cache"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.etag in request.headers.get("if-none-match", ""):
            return HttpResponse(304, b"", self.headers)
        return HttpResponse(200, self.body, self.headers)


def client_routes() -> dict[str, Callable[[HttpRequest], HttpResponse]]:
    return {path: StaticFile(name, content_type) for path, (name, content_type) in CLIENT_FILES.items()}


def demo_routes(server: ServerView) -> dict[str, Callable[[HttpRequest], HttpResponse]]:
    """The demo page, and what it polls: the room's members and the server's figures."""

    def state(request: HttpRequest) -> HttpResponse:
        room = _query(request.query).get("room", "lobby")
        stats = server.get_stats()
        body: dict[str, Any] = {
            "room": room,
            "members": sorted(server.get_room_members(room)),
            "connections_by_transport": dict(stats.connections_by_transport),
            "total_messages_received": stats.total_messages_received,
            "total_messages_sent": stats.total_messages_sent,
            "uptime_seconds": stats.uptime_seconds,
        }
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        return HttpResponse(200, json.dumps(body).encode(), headers)

    name, content_type = DEMO_PAGE
    return {"/": StaticFile(name, content_type, cache=False), "/demo/state": state}


def asyncapi_routes(server: ServerView) -> dict[str, Callable[[HttpRequest], HttpResponse]]:
    """``/asyncapi.json``: the server's AsyncAPI document, made at each request (handlers may be
    added while it runs), readable cross-origin by documentation tools."""

    def asyncapi(request: HttpRequest) -> HttpResponse:
        headers = {
            "Content-Type": "application/json",
            "Cache-Control": "no-cache",
            "Access-Control-Allow-Origin": "*",
        }
        return HttpResponse(200, json.dumps(server.asyncapi(), indent=2).encode(), headers)

    return {"/asyncapi.json": asyncapi}


def _query(query: str) -> dict[str, str]:
    return dict(parse_qsl(query))
