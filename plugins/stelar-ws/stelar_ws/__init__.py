"""stelar's WebSocket transport (``ws``): one stelar frame per binary message, ``stelar.v1``."""

from stelar_ws.client import HandshakeRejected, WsClientLink, connect_ws

# The HTTP side of the upgrade, exported for other transports that accept WebSocket upgrades
# themselves (stelar-asgi): the same origin policy, refusal answers and client address.
from stelar_ws.http import client_address, origin_refusal, refusal_response
from stelar_ws.server import WsConnection, WsTransport
from stelar_ws.wire import SUBPROTOCOL

__all__ = [
    "SUBPROTOCOL",
    "HandshakeRejected",
    "WsClientLink",
    "WsConnection",
    "WsTransport",
    "client_address",
    "connect_ws",
    "origin_refusal",
    "refusal_response",
]
