"""Conformance mode: the WebSocket transport with an echo sink standing in for the hub.

For the Autobahn|Testsuite (which needs a peer echoing every message as it came, text or
binary), and proof that the transport needs nothing of the hub but the seam::

    python -m stelar_ws.conformance --port 9001 [--compression]
    bash ../shared/tools/autobahn.sh ws://127.0.0.1:9001
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Mapping

from stelar_core.plugin_api import (
    REAL_CLOCK,
    Admission,
    Clock,
    Connection,
    HttpRoute,
    OptionDeclarations,
    Options,
    ServerConfig,
    SessionPort,
)
from stelar_ws.plugin import stelar_add_options
from stelar_ws.server import WsConnection, WsTransport

# Autobahn's largest non-performance messages are 16 MiB.
MAX_MESSAGE = 16 * 1024 * 1024 + 1024


class _Admitted:
    def __init__(self, ip: str) -> None:
        self.ip = ip

    def release(self) -> None:
        """Nothing was reserved."""


class EchoSession:
    """Sends every binary message back as it came."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def receive(self, frame: bytes) -> None:
        self._connection.send(frame)

    def connection_lost(self, code: int, reason: str) -> None:
        """Nothing to forget."""

    def fail(self, code: str, reason: str, close_code: int) -> None:
        self._connection.close(close_code, reason)

    def slow_consumer(self, buffered_bytes: int) -> None:
        self._connection.close(1008, "slow consumer")

    def resume_sending(self) -> None:
        """Nothing is held back."""


class EchoHub:
    """The smallest ``HubPort``: admits everyone, echoes everything."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config

    @property
    def config(self) -> ServerConfig:
        return self._config

    @property
    def http_routes(self) -> Mapping[str, HttpRoute]:
        return {}

    async def admit(self, remote_address: str, protocol: str) -> Admission:
        return _Admitted(remote_address)

    def admit_nowait(self, remote_address: str, protocol: str) -> Admission:
        return _Admitted(remote_address)

    def open_session(self, connection: Connection, admission: Admission) -> SessionPort:
        return EchoSession(connection)

    @property
    def clock(self) -> Clock:
        return REAL_CLOCK

    def count(self, counter: str, amount: int = 1) -> None:
        """No statistics here."""

    def tls_handshake_failed(self, remote_address: str, protocol: str, category: str, reason: str) -> None:
        """No TLS here."""

    def logger(self, name: str) -> logging.Logger:
        return logging.getLogger(name)


def echo_text(connection: WsConnection, text: str) -> None:
    connection.send_text(text)


def echo_transport(*, host: str = "127.0.0.1", port: int = 0, compression: bool = False) -> WsTransport:
    config = ServerConfig(
        host=host,
        max_payload_size=MAX_MESSAGE,
        max_frame_size=MAX_MESSAGE,
        max_buffered_bytes=64 * 1024 * 1024,
    )
    declarations = OptionDeclarations("ws")
    stelar_add_options(declarations)
    defaults = {name: spec.default for name, spec in declarations.specs.items()}
    options = Options("ws", {**defaults, "port": port, "compression": compression})
    return WsTransport(EchoHub(config), options, text_handler=echo_text, subprotocols=None)


async def serve(port: int, compression: bool) -> None:
    transport = echo_transport(port=port, compression=compression)
    await transport.start()
    print("conformance echo server on", *transport.addresses, flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await transport.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="stelar-ws echo server for the Autobahn|Testsuite")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.compression))


if __name__ == "__main__":
    main()
