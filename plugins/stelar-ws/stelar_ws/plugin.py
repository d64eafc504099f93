"""Registers the ``ws`` transport (server side with its client connector) and its options."""

from __future__ import annotations

from stelar_core.plugin_api import (
    OptionDeclarations,
    Register,
    RouteContext,
    RouteRegister,
    TransportContext,
    TransportProvider,
    hookimpl,
    networks,
    port,
    strings_or_none,
    url_path,
)
from stelar_ws.assets import asyncapi_routes, client_routes, demo_routes
from stelar_ws.client import connect_ws
from stelar_ws.server import DEFAULT_PORT, WsTransport


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add(
        "port",
        default=DEFAULT_PORT,
        type=int,
        check=port,
        short="port",
        help="WebSocket port to listen on (0 picks a free one; None: no WebSocket listener)",
    )
    options.add("path", default="/", type=str, check=url_path, short="path", help="URL path of the upgrade")
    options.add(
        "allowed_origins",
        type=list,
        check=strings_or_none,
        short="allowed_origins",
        restart=False,
        help="browser origins allowed to connect (None: any); an upgrade without Origin is refused "
        "unless allow_missing_origin",
    )
    options.add(
        "allow_missing_origin",
        default=False,
        type=bool,
        short="allow_missing_origin",
        restart=False,
        help="with allowed_origins set, let in upgrades without an Origin header (non-browser clients)",
    )
    options.add(
        "trusted_proxies",
        default=(),
        type=list,
        check=networks,
        short="trusted_proxies",
        restart=False,
        help="proxy addresses or networks whose X-Forwarded-For is believed",
    )
    options.add(
        "compression",
        default=False,
        type=bool,
        short="compression",
        help="offer permessage-deflate (costs CPU and memory per connection)",
    )
    options.add(
        "serve_client",
        default=True,
        type=bool,
        help="serve the browser client at /stelar.js (and its types at /stelar.d.ts)",
    )
    options.add(
        "asyncapi",
        default=False,
        type=bool,
        help="serve the AsyncAPI 3.0 document of the server's events at /asyncapi.json",
    )
    options.add(
        "demo",
        default=False,
        type=bool,
        short="demo",
        help="serve the demo page at / (rooms, chat, members and live figures; with the relay app)",
    )


@hookimpl
def stelar_register_http_routes(register: RouteRegister, context: RouteContext) -> None:
    options = context.options
    routes = client_routes() if options.serve_client else {}
    if options.asyncapi:
        routes |= asyncapi_routes(context.server)
    if options.demo:
        routes |= demo_routes(context.server)
    for path, handler in routes.items():
        register(path, handler, ("GET",))


def _ws_transport(context: TransportContext) -> WsTransport:
    return WsTransport(context.hub, context.options, section=context.section, tls=context.tls)


@hookimpl
def stelar_register_transports(register: Register[TransportProvider]) -> None:
    register(
        "ws",
        TransportProvider(
            _ws_transport,
            connect_ws,
            ("ws", "wss"),
            listen_option="port",
            serve_default=DEFAULT_PORT,
            order=10,
        ),
    )
