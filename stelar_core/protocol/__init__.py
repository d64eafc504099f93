"""Wire protocol v1, sans-I/O: frames as bytes and back, no sockets, no asyncio.

See ``docs/protocol.md`` for the contract these functions implement.
"""

from stelar_core.protocol.codes import DisconnectCode, ErrorCode
from stelar_core.protocol.frames import (
    MAX_ACK_ID,
    MAX_EVENT_LENGTH,
    PROTOCOL_VERSION,
    Frame,
    FrameType,
    decode_frame,
    dump_json,
    encode_frame,
    load_json,
)
from stelar_core.protocol.stream import LENGTH_PREFIX_SIZE, StreamParser, length_prefixed

__all__ = [
    "LENGTH_PREFIX_SIZE",
    "MAX_ACK_ID",
    "MAX_EVENT_LENGTH",
    "PROTOCOL_VERSION",
    "DisconnectCode",
    "ErrorCode",
    "Frame",
    "FrameType",
    "StreamParser",
    "decode_frame",
    "dump_json",
    "encode_frame",
    "length_prefixed",
    "load_json",
]
