"""Registers the health routes on HTTP-capable transports, and the ``http`` transport that
serves them on ``health_port`` for servers without one."""

from __future__ import annotations

from collections.abc import Callable

from stelar_core import hookimpl
from stelar_core.plugins.hookspecs import Register
from stelar_core.server import StelarServer
from stelar_core.transports.base import HubPort
from stelar_health.routes import HealthRoutes
from stelar_health.transport import HttpTransport


@hookimpl
def stelar_register_http_routes(register: Callable[..., None], server: StelarServer) -> None:
    for path, handler in HealthRoutes(server).paths().items():
        register(path, handler, ("GET", "OPTIONS"))


def _http_transport(hub: HubPort) -> HttpTransport:
    return HttpTransport(hub)


@hookimpl
def stelar_register_transports(register: Register) -> None:
    register("http", _http_transport)
