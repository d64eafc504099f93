"""HTTP routes from plugins: what ``stelar_register_http_routes`` receives, and the table built.

Like every other ``stelar_register_*`` hook, it receives a typed ``register`` and a context::

    @hookimpl
    def stelar_register_http_routes(register, context):
        if context.options.serve_client:
            register("/stelar.js", serve_client)            # methods=("GET",) by default
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import attrs

from stelar_core.errors import PluginError
from stelar_core.plugins.view import ServerView
from stelar_core.transports.base import HttpHandler, HttpRoute
from stelar_core.values import Options


class RouteRegister(Protocol):
    """``register(path, handler, methods=("GET",))``; ``handler(request: HttpRequest)`` returns
    an ``HttpResponse`` or an awaitable of one."""

    def __call__(self, path: str, handler: HttpHandler, /, methods: Iterable[str] = ("GET",)) -> None: ...


@attrs.frozen(slots=True)
class RouteContext:
    """What a route registration is given: ``server`` (the view its handlers may read and act
    through), the plugin's ``options`` as they were when the server was built, and its
    ``section`` (``server.config.plugin(section)`` reads the options in force)."""

    server: ServerView
    options: Options
    section: str


class RouteTable:
    """The routes of one server; two registrations of one path are an error naming both."""

    def __init__(self) -> None:
        self.routes: dict[str, HttpRoute] = {}
        self._owners: dict[str, str] = {}

    def registrar(self, plugin: str) -> RouteRegister:
        def register(path: str, handler: HttpHandler, /, methods: Iterable[str] = ("GET",)) -> None:
            if not isinstance(path, str) or not path.startswith("/"):
                raise PluginError(f"plugin {plugin!r}: HTTP route path must start with '/', got {path!r}")
            if not callable(handler):
                raise PluginError(f"plugin {plugin!r}: the handler of HTTP route {path!r} is not callable")
            if path in self.routes:
                raise PluginError(
                    f"plugins {self._owners[path]!r} and {plugin!r} both register the HTTP route {path!r}"
                )
            self.routes[path] = HttpRoute(path, handler, tuple(m.upper() for m in methods))
            self._owners[path] = plugin

        return register
