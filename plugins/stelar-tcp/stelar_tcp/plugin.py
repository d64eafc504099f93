"""Registers the ``tcp`` transport (server factory with its client connector)."""

from __future__ import annotations

from stelar_core import hookimpl
from stelar_core.plugins.hookspecs import Register
from stelar_core.transports.base import HubPort
from stelar_tcp.client import connect_tcp
from stelar_tcp.server import TcpTransport


class TcpTransportFactory:
    connector = staticmethod(connect_tcp)
    schemes = ("tcp", "tcps")

    def __call__(self, hub: HubPort) -> TcpTransport:
        return TcpTransport(hub)


@hookimpl
def stelar_register_transports(register: Register) -> None:
    register("tcp", TcpTransportFactory())
