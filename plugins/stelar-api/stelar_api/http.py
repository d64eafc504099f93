"""JSON answers and the checks every API and admin request shares: CORS (none unless
configured), the client's origin, and the throttle on failed authentication per IP."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from stelar_core.plugin_api import HttpRequest, HttpResponse, RateLimit, TokenBucketLimiter

# Answers are never cached, never sniffed as another type, never framed.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
MAX_THROTTLED_ADDRESSES = 10_000


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    data = json.dumps(body, separators=(",", ":"), default=repr).encode()
    return HttpResponse(
        status, data, {"Content-Type": "application/json", **SECURITY_HEADERS, **(headers or {})}
    )


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_response(status, {"error": error}, headers)


def same_origin(request: HttpRequest) -> bool:
    """Whether the request's ``Origin`` (sent by browsers) is the host it was sent to."""
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == request.headers.get("host")


def cross_origin_refusal(request: HttpRequest, allowed: tuple[str, ...] | None) -> HttpResponse | None:
    """403 for a browser's request from a page of another origin that ``allowed`` does not
    list: without CORS configured, only non-browser callers and same-origin pages reach the API."""
    origin = request.headers.get("origin")
    if origin is None or same_origin(request) or (allowed is not None and origin in allowed):
        return None
    return error_response(
        403, "cross_origin", f"requests from origin {origin!r} are not allowed (api.allowed_origins)"
    )


def cors_headers(request: HttpRequest, allowed: tuple[str, ...] | None) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin is None or allowed is None or origin not in allowed:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight(request: HttpRequest, allowed: tuple[str, ...] | None) -> HttpResponse:
    headers = cors_headers(request, allowed)
    if headers:
        headers |= {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        }
    return HttpResponse(204, b"", headers)


class FailureThrottle:
    """At most ``limit`` failed authentications per IP address: past it, the address is refused
    before its credentials are even looked at, until its bucket refills (bounded: the least
    recently seen address is forgotten first)."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets = TokenBucketLimiter(limit, max_entries=MAX_THROTTLED_ADDRESSES)

    def blocked(self, address: str) -> bool:
        return self._buckets.available(address) < 1

    def failed(self, address: str) -> None:
        self._buckets.check(address)

    def retry_after(self) -> str:
        """Seconds until a blocked address has one try again, for ``Retry-After``."""
        return str(max(1, round(self.limit.window / self.limit.max_points)))
