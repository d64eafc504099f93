"""stelar's WebSocket transport (``ws``): one stelar frame per binary message, ``stelar.v1``."""

from stelar_ws.client import HandshakeRejected, WsClientLink, connect_ws
from stelar_ws.server import WsConnection, WsTransport
from stelar_ws.wire import SUBPROTOCOL

__all__ = ["SUBPROTOCOL", "HandshakeRejected", "WsClientLink", "WsConnection", "WsTransport", "connect_ws"]
