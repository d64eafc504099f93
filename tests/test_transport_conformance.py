"""stelar's own transports pass the conformance suite it ships for third-party transports."""

from stelar_core.testing.conformance import TransportConformance


class TestMemoryTransport(TransportConformance):
    transport = "memory"


class TestWebSocketTransport(TransportConformance):
    transport = "ws"


class TestTcpTransport(TransportConformance):
    transport = "tcp"
