"""``StelarClient``: the Python client, over any installed transport (ws, tcp, memory)."""

from stelar_core.client.backoff import full_jitter_delay
from stelar_core.client.client import ClientState, StelarClient
from stelar_core.client.files import FileData, encode_file, parse_file
from stelar_core.client.options import ClientOptions
from stelar_core.client.rooms import HistoryEntry, RoomHistory, RoomJoin

__all__ = [
    "ClientOptions",
    "ClientState",
    "FileData",
    "HistoryEntry",
    "RoomHistory",
    "RoomJoin",
    "StelarClient",
    "encode_file",
    "full_jitter_delay",
    "parse_file",
]
