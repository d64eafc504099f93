"""stelar's binary TCP transport (``tcp``): length-prefixed frames over TCP, with optional TLS."""

from stelar_tcp.client import TcpClientLink, connect_tcp
from stelar_tcp.server import TcpConnection, TcpTransport

__all__ = ["TcpClientLink", "TcpConnection", "TcpTransport", "connect_tcp"]
