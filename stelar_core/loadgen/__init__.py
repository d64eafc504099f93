"""Load generation for stelar servers: raw-socket peers (``peers``) and the timed scenarios they
play (``scenarios``), used by ``stelar bench`` and by the side-by-side benchmark in ``bench/``."""

from stelar_core.loadgen.peers import LengthPrefixedPeer, Peer, Target, WebSocketPeer
from stelar_core.loadgen.scenarios import Progress, Window, ack_round_trips, churn, fan_out, idle_memory

__all__ = [
    "LengthPrefixedPeer",
    "Peer",
    "Progress",
    "Target",
    "WebSocketPeer",
    "Window",
    "ack_round_trips",
    "churn",
    "fan_out",
    "idle_memory",
]
