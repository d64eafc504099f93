"""The server API's HTTP routes: ``POST {prefix}/{command}`` with the command's parameters as a
JSON object, ``POST {prefix}/batch`` with several commands, and ``GET {prefix}/openapi.json``.

Every request goes through the same steps, each with its own answer: CORS preflight, origin
(403), key (401, or 429 after too many failures from one address), content type (415), size
(413), body and parameters (400, naming the field), read-only keys (403), the key's rate limit
(429), then the command (200, or 404 when it names something no node has, 503 when the cluster
cannot be reached). Each outcome is counted (``stelar_api_requests{outcome}`` in ``/metrics``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from stelar_api.access import Access
from stelar_api.actions import NotFound, run
from stelar_api.commands import (
    BATCH,
    COMMANDS,
    BadRequest,
    Command,
    Limits,
    read_batch,
    read_command,
    read_json,
)
from stelar_api.http import cors_headers, cross_origin_refusal, error_response, json_response, preflight
from stelar_api.keys import ApiKey
from stelar_api.openapi import document
from stelar_core.plugin_api import (
    HttpRequest,
    HttpResponse,
    Options,
    RateLimit,
    ServerView,
    StelarError,
    TokenBucketLimiter,
)

COUNTER = "api_requests"
JSON_TYPES = ("application/json", "text/json")
MAX_KEYS_LIMITED = 1000

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class ApiRoutes:
    def __init__(self, server: ServerView, section: str) -> None:
        self.server = server
        self.section = section
        self.access = Access(lambda: self.options, self.options.failed_auth_limit, self.count)
        self._limit: RateLimit | None = None
        self._limiter: TokenBucketLimiter | None = None

    @property
    def options(self) -> Options:
        """The options in force (keys, limits and origins may change while the server runs)."""
        return self.server.config.plugin(self.section)

    def count(self, outcome: str) -> None:
        self.server.count(f"{COUNTER}:{outcome}")

    def paths(self, prefix: str) -> dict[str, tuple[Handler, tuple[str, ...]]]:
        base = prefix.rstrip("/")
        routes: dict[str, tuple[Handler, tuple[str, ...]]] = {
            f"{base}/{name}": (self._command_handler(name), ("POST", "OPTIONS")) for name in COMMANDS
        }
        routes[f"{base}/{BATCH}"] = (self.batch, ("POST", "OPTIONS"))
        routes[f"{base}/openapi.json"] = (self.openapi, ("GET",))
        return routes

    def _command_handler(self, name: str) -> Handler:
        async def handle(request: HttpRequest) -> HttpResponse:
            return await self._serve(request, lambda body, limits: [read_command(name, body, limits)], False)

        return handle

    async def batch(self, request: HttpRequest) -> HttpResponse:
        return await self._serve(request, read_batch, True)

    async def openapi(self, request: HttpRequest) -> HttpResponse:
        """The API's description: public, like the AsyncAPI one (it holds no data)."""
        return json_response(200, document(self.options.prefix), {"Access-Control-Allow-Origin": "*"})

    # ------------------------------------------------------------------ the steps

    async def _serve(
        self, request: HttpRequest, read: Callable[[Any, Limits], list[Command]], batch: bool
    ) -> HttpResponse:
        options = self.options
        allowed = options.allowed_origins
        if request.method == "OPTIONS":
            return preflight(request, allowed)
        response = await self._checked(request, options, read, batch)
        cors = cors_headers(request, allowed)
        if cors:
            response = HttpResponse(response.status, response.body, {**response.headers, **cors})
        return response

    async def _checked(
        self,
        request: HttpRequest,
        options: Options,
        read: Callable[[Any, Limits], list[Command]],
        batch: bool,
    ) -> HttpResponse:
        refusal = cross_origin_refusal(request, options.allowed_origins)
        if refusal is not None:
            self.count("cross_origin")
            return refusal
        key = self.access.authenticate(request)
        if isinstance(key, HttpResponse):
            return key
        content_type = request.headers.get("content-type", "application/json").partition(";")[0].strip()
        if content_type.lower() not in JSON_TYPES:
            self.count("unsupported_media_type")
            return error_response(
                415, "unsupported_media_type", f"expected application/json, got {content_type!r}"
            )
        if len(request.body) > options.max_body_size:
            self.count("too_large")
            return error_response(
                413,
                "body_too_large",
                f"the body is {len(request.body)} bytes, at most {options.max_body_size}",
            )
        limits = Limits(self.server.config.max_event_name_length, options.max_batch)
        try:
            commands = read(read_json(request.body), limits)
        except BadRequest as exc:
            self.count("bad_request")
            return error_response(400, exc.code, exc.message, exc.field)
        forbidden = self._forbidden(key, commands, batch)
        if forbidden is not None:
            self.count("forbidden")
            return forbidden
        if not self._limiter_for(options.rate_limit).check(key.name, len(commands)):
            self.count("rate_limited")
            limit: RateLimit = options.rate_limit
            return error_response(
                429,
                "rate_limited",
                f"key {key.name!r} may run {limit.max_points} commands per {limit.window:g} s",
                headers={"Retry-After": str(max(1, round(limit.window)))},
            )
        if batch:
            results = [await self._result(command) for command in commands]
            self.count("ok")
            return json_response(200, {"results": results})
        return self._single(await self._result(commands[0]))

    def _forbidden(self, key: ApiKey, commands: list[Command], batch: bool) -> HttpResponse | None:
        if not key.read_only:
            return None
        for index, command in enumerate(commands):
            if command.spec.changes:
                field = f"commands[{index}].method" if batch else None
                message = f"key {key.name!r} is read-only: {command.name} changes the server"
                return error_response(403, "read_only_key", message, field)
        return None

    def _limiter_for(self, limit: RateLimit) -> TokenBucketLimiter:
        if self._limiter is None or limit != self._limit:  # made again when update_config changed it
            self._limit, self._limiter = limit, TokenBucketLimiter(limit, max_entries=MAX_KEYS_LIMITED)
        return self._limiter

    async def _result(self, command: Command) -> dict[str, Any]:
        """``{"result": ...}`` or ``{"error": {...}}`` with the status it would answer alone."""
        try:
            return {"result": await run(self.server, command)}
        except NotFound as exc:
            return {"error": {"code": exc.code, "message": exc.message}, "status": 404}
        except StelarError as exc:  # the cluster cannot be reached (Redis down), say
            self.server.logger("stelar.api").warning("%s failed: %s", command.name, exc)
            return {"error": {"code": "unavailable", "message": str(exc)}, "status": 503}

    def _single(self, outcome: dict[str, Any]) -> HttpResponse:
        status = outcome.pop("status", 200)
        self.count({200: "ok", 404: "not_found"}.get(status, "unavailable"))
        return json_response(status, outcome)
