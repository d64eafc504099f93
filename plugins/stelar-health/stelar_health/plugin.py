"""Registers the health routes on HTTP-capable transports, the ``http`` transport that serves
them on a port of their own (``health_port``) for servers without one, and the options of both."""

from __future__ import annotations

from typing import Any

from stelar_core.plugin_api import (
    OptionDeclarations,
    Register,
    RouteContext,
    RouteRegister,
    TransportContext,
    TransportProvider,
    fail,
    function_or_none,
    hookimpl,
    port,
    strings_or_none,
)
from stelar_health.routes import HealthRoutes
from stelar_health.transport import HttpTransport

DEFAULT_ENDPOINT = "/health"


def _endpoint(option: str, value: Any) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise fail(option, value, "expected a URL path starting with '/', or False")
    return value


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add(
        "endpoint",
        default=DEFAULT_ENDPOINT,
        type=str,
        check=_endpoint,
        short="health_endpoint",
        help="path of the health route (with /live and /ready under it); False: no health routes",
    )
    options.add(
        "port",
        type=int,
        check=port,
        short="health_port",
        help="a port of its own for the health routes and /metrics, for servers with no WebSocket port",
    )
    options.add(
        "custom_handler",
        check=function_or_none,
        short="custom_health_handler",
        restart=False,
        help="fn(request, stats) (sync or async) returning the health body and status",
    )
    options.add(
        "allowed_origins",
        type=list,
        check=strings_or_none,
        short="allowed_origins",
        restart=False,
        help="origins the CORS headers of the health routes allow (None: any)",
    )


@hookimpl
def stelar_register_http_routes(register: RouteRegister, context: RouteContext) -> None:
    for path, handler in HealthRoutes(context.server, context.section).paths().items():
        register(path, handler, ("GET", "OPTIONS"))


def _http_transport(context: TransportContext) -> HttpTransport:
    return HttpTransport(context.hub, context.options.port or 0, context.tls)


@hookimpl
def stelar_register_transports(register: Register[TransportProvider]) -> None:
    register("http", TransportProvider(_http_transport, listen_option="port", order=90))
