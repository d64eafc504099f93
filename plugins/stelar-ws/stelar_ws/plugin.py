"""Registers the ``ws`` transport (server factory with its client connector)."""

from __future__ import annotations

from stelar_core import hookimpl
from stelar_core.plugins.hookspecs import Register
from stelar_core.transports.base import HubPort
from stelar_ws.client import connect_ws
from stelar_ws.server import WsTransport


class WsTransportFactory:
    connector = staticmethod(connect_ws)
    schemes = ("ws", "wss")

    def __call__(self, hub: HubPort) -> WsTransport:
        return WsTransport(hub)


@hookimpl
def stelar_register_transports(register: Register) -> None:
    register("ws", WsTransportFactory())
