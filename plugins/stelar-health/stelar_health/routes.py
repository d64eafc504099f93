"""The HTTP handlers: health, liveness, readiness, metrics, with CORS."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stelar_core.plugin_api import HttpRequest, HttpResponse, Options, ServerView, hot_path
from stelar_health.metrics import metrics_registry

ALLOWED_METHODS = "GET, OPTIONS"
ALLOWED_HEADERS = "Accept, Authorization, Content-Type"
PREFLIGHT_MAX_AGE = "600"


def json_body(status: int, data: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    body = json.dumps(data, separators=(",", ":")).encode()
    return HttpResponse(
        status, body, {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})}
    )


class HealthRoutes:
    """The routes of one server. ``paths()`` gives what to register."""

    def __init__(self, server: ServerView, section: str) -> None:
        self.server = server
        self.section = section
        self.registry = metrics_registry(server)
        self._hot_path = hot_path()  # which implementation runs: it does not change while it runs

    @property
    def options(self) -> Options:
        """This plugin's options in force (some may change at run time)."""
        return self.server.config.plugin(self.section)

    def paths(self) -> dict[str, Callable[[HttpRequest], Any]]:
        endpoint = self.options.endpoint
        if endpoint is None:
            return {}
        base = endpoint.rstrip("/")
        return {
            endpoint: self.health,
            f"{base}/live": self.live,
            f"{base}/ready": self.ready,
            "/metrics": self.metrics,
        }

    # ------------------------------------------------------------------ CORS

    def cors(self, request: HttpRequest) -> dict[str, str]:
        """``Access-Control-Allow-Origin`` for an allowed origin (``*`` when unrestricted)."""
        allowed = self.options.allowed_origins
        if allowed is None:
            return {"Access-Control-Allow-Origin": "*"}
        origin = request.headers.get("origin")
        if origin is not None and origin in allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {"Vary": "Origin"}

    def preflight(self, request: HttpRequest) -> HttpResponse:
        headers = self.cors(request)
        if "Access-Control-Allow-Origin" in headers:
            requested = request.headers.get("access-control-request-headers")
            headers |= {
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": requested or ALLOWED_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            }
        return HttpResponse(204, b"", headers)

    # ------------------------------------------------------------------ handlers

    async def health(self, request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            return self.preflight(request)
        stats = self.server.get_stats()
        handler = self.options.custom_handler
        cors = self.cors(request)
        if handler is not None:
            return await self._custom(handler, request, stats, cors)
        accepting = self.server.accepting
        # Degraded still serves its own clients (200): only other nodes are out of reach.
        status = ("degraded" if stats.degraded else "ok") if accepting else self.server.state
        body = {"status": status, **stats.to_dict()}
        body["memory_usage"] = dict(stats.memory_usage)
        body["degraded"] = dict(stats.degraded)
        body["ack_latency"] = {"count": stats.ack_latency.total, "sum_seconds": stats.ack_latency.sum}
        body["hot_path"] = self._hot_path
        return json_body(200 if accepting else 503, body, cors)

    async def _custom(
        self, handler: Callable[..., Any], request: HttpRequest, stats: Any, cors: dict[str, str]
    ) -> HttpResponse:
        try:
            result = handler(request, stats)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self.server.logger("stelar.health").exception("custom_health_handler raised")
            return json_body(
                500, {"status": "error", "error": {"code": "health_handler_error", "message": str(exc)}}, cors
            )
        if isinstance(result, HttpResponse):
            return HttpResponse(result.status, result.body, {**cors, **result.headers})
        if isinstance(result, tuple) and len(result) == 2:
            status, body = result
            return json_body(int(status), body, cors)
        return json_body(200, result, cors)

    async def live(self, request: HttpRequest) -> HttpResponse:
        """The process answers: that is all liveness means."""
        if request.method == "OPTIONS":
            return self.preflight(request)
        return json_body(200, {"status": "alive"}, self.cors(request))

    async def ready(self, request: HttpRequest) -> HttpResponse:
        """Started and accepting; 503 before start completes and from the moment stop() begins."""
        if request.method == "OPTIONS":
            return self.preflight(request)
        if self.server.accepting:
            return json_body(200, {"status": "ready"}, self.cors(request))
        return json_body(503, {"status": self.server.state}, self.cors(request))

    async def metrics(self, request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            return self.preflight(request)
        headers = {"Content-Type": CONTENT_TYPE_LATEST, **self.cors(request)}
        return HttpResponse(200, generate_latest(self.registry), headers)
