"""The load generator of bench/compare.py: stelar's own (``stelar_core.loadgen``, which
``stelar bench`` runs too, so both report the same figures for the same scenario) plus a peer
speaking Socket.IO, for the servers stelar is compared with.

Peers count frames by their first bytes without decoding them, so the generator is not the
bottleneck; scenarios check that nothing is lost or duplicated. Three wire dialects, one per kind
of server: stelar frames length-prefixed over TCP, stelar frames in binary WebSocket messages, and
Socket.IO (Engine.IO 4) packets in text WebSocket messages. Every peer offers the same four
operations (hello, join, request, publish) and counts the same four answers.
"""

from __future__ import annotations

from stelar_core.loadgen.peers import (
    ANSWER,
    JOINED,
    MESSAGE,
    RELAYED,
    WELCOME,
    LengthPrefixedPeer,
    Peer,
    Tally,
    Target,
    WebSocketPeer,
)
from stelar_core.loadgen.scenarios import (
    Window,
    ack_round_trips,
    churn,
    close_all,
    fan_out,
    idle_memory,
    open_peers,
    percentile,
    process_memory,
)

__all__ = [
    "RELAYED",
    "LengthPrefixedPeer",
    "Peer",
    "SocketIOPeer",
    "Tally",
    "Target",
    "WebSocketPeer",
    "Window",
    "ack_round_trips",
    "churn",
    "close_all",
    "fan_out",
    "idle_memory",
    "local",
    "open_peers",
    "percentile",
    "process_memory",
]


def local(port: int) -> Target:
    """A server of this benchmark: on 127.0.0.1, with the reference work's names."""
    return Target(port)


class SocketIOPeer(WebSocketPeer):
    """Socket.IO 4 (Engine.IO 4) over WebSocket only: text packets. ``40`` connects to the main
    namespace, ``42["event",data]`` is an event, ``42<id>[...]`` asks for an ACK that comes back
    as ``43<id>[...]``. The join asks with ACK id 0, requests with id 1, so answers are told
    apart by their first three bytes. Engine.IO pings (``2``) are answered (``3``)."""

    path = "/socket.io/?EIO=4&transport=websocket"
    extra_headers = ""
    opcode = 0x1

    def hello(self) -> None:
        self.send(b"40")

    def join(self) -> None:
        self.send(b'420["join","' + self.target.room.encode() + b'"]')

    def request(self) -> None:
        self.send(b'421["' + self.target.request.encode() + b'",' + MESSAGE + b"]")

    def publish(self, count: int) -> None:
        self.send_many(b'42["' + self.target.event.encode() + b'",' + MESSAGE + b"]", count)

    def count_message(self, buffer: bytearray, start: int, end: int) -> None:
        head = bytes(buffer[start : start + 3])
        if head.startswith(b"42"):
            self.counts[RELAYED] += 1
        elif head == b"431":
            self.counts[ANSWER] += 1
        elif head == b"430":
            self.counts[JOINED] += 1
        elif head.startswith(b"40"):
            self.counts[WELCOME] += 1
        elif head.startswith(b"2"):
            self.send(b"3")
