"""HTTP routes from plugins: what ``stelar_register_http_routes`` receives, and the table built.

Like every other ``stelar_register_*`` hook, it receives a typed ``register`` and a context::

    @hookimpl
    def stelar_register_http_routes(register, context):
        if context.options.serve_client:
            register("/stelar.js", serve_client)            # methods=("GET",) by default
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Protocol

import attrs

from stelar_core import tracing
from stelar_core.errors import PluginError
from stelar_core.plugins.view import ServerView
from stelar_core.tracing import Tracer
from stelar_core.transports.base import HttpHandler, HttpRequest, HttpResponse, HttpRoute
from stelar_core.values import Options


class RouteRegister(Protocol):
    """``register(path, handler, methods=("GET",), traced=False)``; ``handler(request:
    HttpRequest)`` returns an ``HttpResponse`` or an awaitable of one. ``traced``: a tracing
    plugin records each request as it records a client's request (a route that acts on clients,
    as the server API's do; not one scraped every few seconds, as /health is)."""

    def __call__(
        self, path: str, handler: HttpHandler, /, methods: Iterable[str] = ("GET",), traced: bool = False
    ) -> None: ...


@attrs.frozen(slots=True)
class RouteContext:
    """What a route registration is given: ``server`` (the view its handlers may read and act
    through), the plugin's ``options`` as they were when the server was built, and its
    ``section`` (``server.config.plugin(section)`` reads the options in force)."""

    server: ServerView
    options: Options
    section: str


class RouteTable:
    """The routes of one server; two registrations of one path are an error naming both.
    ``tracer``: the server's, which traced routes are processed with (``count_invalid`` is
    called for a ``traceparent`` header that is not one)."""

    def __init__(
        self, tracer: Tracer | None = None, count_invalid: Callable[[], None] = lambda: None
    ) -> None:
        self.routes: dict[str, HttpRoute] = {}
        self._owners: dict[str, str] = {}
        self._tracer = tracer
        self._count_invalid = count_invalid

    def registrar(self, plugin: str) -> RouteRegister:
        def register(
            path: str, handler: HttpHandler, /, methods: Iterable[str] = ("GET",), traced: bool = False
        ) -> None:
            if not isinstance(path, str) or not path.startswith("/"):
                raise PluginError(f"plugin {plugin!r}: HTTP route path must start with '/', got {path!r}")
            if not callable(handler):
                raise PluginError(f"plugin {plugin!r}: the handler of HTTP route {path!r} is not callable")
            if path in self.routes:
                raise PluginError(
                    f"plugins {self._owners[path]!r} and {plugin!r} both register the HTTP route {path!r}"
                )
            if traced and self._tracer is not None:
                handler = traced_route(self._tracer, path, handler, self._count_invalid)
            self.routes[path] = HttpRoute(path, handler, tuple(m.upper() for m in methods))
            self._owners[path] = plugin

        return register


def traced_route(
    tracer: Tracer, path: str, handler: HttpHandler, count_invalid: Callable[[], None]
) -> HttpHandler:
    """``handler`` processed in a scope of ``tracer``'s named ``{method} {path}``, continuing the
    request's ``traceparent`` header when it is one; an answer of 400 or above is its error."""

    async def traced(request: HttpRequest) -> HttpResponse:
        header = request.headers.get("traceparent")
        parent = None if header is None else tracing.checked(header, count_invalid)
        scope = tracer.process(
            event=f"{request.method} {path}",
            request=True,
            client_id=request.remote_address,
            protocol="http",
            size=len(request.body),
            parent=parent,
        )
        tokens = tracing.enter(scope)
        try:
            response = handler(request)
            if inspect.isawaitable(response):
                response = await response
            if response.status >= 400:
                scope.refused(str(response.status))
            return response
        except BaseException as exc:
            scope.failed(exc)
            raise
        finally:
            tracing.leave(scope, tokens)
            scope.end()

    return traced
