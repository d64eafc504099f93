"""Serving the hub's HTTP routes, the same way on every HTTP-capable transport."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping

from stelar_core.transports.base import HttpRequest, HttpResponse, HttpRoute


def text(status: int, message: str, **headers: str) -> HttpResponse:
    return HttpResponse(
        status, f"{message}\n".encode(), {"Content-Type": "text/plain; charset=utf-8", **headers}
    )


async def serve_route(
    routes: Mapping[str, HttpRoute], request: HttpRequest, log: logging.Logger
) -> HttpResponse:
    """The route's answer; 404 for an unknown path, 405 (with ``Allow``) for a method the route
    does not take, 500 with a JSON error when the handler raises (logged on ``log``; the
    transport carries on)."""
    route = routes.get(request.path)
    if route is None:
        return text(404, f"no route {request.path}")
    if request.method not in route.methods:
        return text(405, f"{request.method} not allowed", Allow=", ".join(route.methods))
    try:
        response = route.handler(request)
        if inspect.isawaitable(response):
            response = await response
    except Exception as exc:
        log.exception("HTTP route %s failed", request.path)
        body = json.dumps({"error": {"code": "internal_error", "message": str(exc)}}).encode()
        return HttpResponse(500, body, {"Content-Type": "application/json"})
    if not isinstance(response, HttpResponse):
        log.error("HTTP route %s returned %r, not an HttpResponse", request.path, response)
        return text(500, "route returned no response")
    return response
