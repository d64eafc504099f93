"""Registers the ``tcp`` transport (server side with its client connector) and its options."""

from __future__ import annotations

from stelar_core.plugin_api import (
    OptionDeclarations,
    Register,
    TransportContext,
    TransportProvider,
    hookimpl,
    port,
)
from stelar_tcp.client import connect_tcp
from stelar_tcp.server import DEFAULT_TCP_PORT, TcpTransport


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add(
        "port", type=int, check=port, short="tcp_port", help="TCP port to listen on (0 picks a free one)"
    )


def _tcp_transport(context: TransportContext) -> TcpTransport:
    return TcpTransport(context.hub, context.options, context.tls)


@hookimpl
def stelar_register_transports(register: Register[TransportProvider]) -> None:
    register(
        "tcp",
        TransportProvider(
            _tcp_transport,
            connect_tcp,
            ("tcp", "tcps"),
            listen_option="port",
            serve_default=DEFAULT_TCP_PORT,
            order=20,
        ),
    )
