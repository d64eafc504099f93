"""What both sides of stelar-ws agree on."""

from websockets.typing import Subprotocol

# The WebSocket subprotocol of stelar's wire protocol v1 (docs/protocol.md).
SUBPROTOCOL = Subprotocol("stelar.v1")
# How long either side waits for the peer's close frame after sending its own.
CLOSE_HANDSHAKE_TIMEOUT = 5.0
# The only version of RFC 6455 (its Sec-WebSocket-Version).
WEBSOCKET_VERSION = "13"
