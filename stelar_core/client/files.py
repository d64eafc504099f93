"""``send_file``'s payload: a binary event whose payload is ``metaLen (2, BE) | meta JSON | bytes``,
``meta`` being ``{"name", "size", "type"}`` (see docs/protocol.md)."""

from __future__ import annotations

import mimetypes
import struct
from pathlib import Path
from typing import BinaryIO

import attrs

from stelar_core.errors import ProtocolError
from stelar_core.protocol import ErrorCode, dump_json, load_json

_META_LENGTH = struct.Struct(">H")


@attrs.frozen(slots=True)
class FileData:
    name: str
    size: int
    content_type: str
    content: bytes


def encode_file(
    source: str | Path | BinaryIO, *, name: str | None = None, content_type: str | None = None
) -> bytes:
    if isinstance(source, str | Path):
        path = Path(source)
        content = path.read_bytes()
        name = name or path.name
    else:
        content = source.read()
        name = name or Path(getattr(source, "name", "file")).name
    content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    meta = dump_json({"name": name, "size": len(content), "type": content_type})
    return _META_LENGTH.pack(len(meta)) + meta + content


def parse_file(payload: bytes) -> FileData:
    """The server side: read a payload made by ``send_file``."""
    if len(payload) < _META_LENGTH.size:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "file payload shorter than its 2-byte header")
    (meta_length,) = _META_LENGTH.unpack_from(payload)
    end = _META_LENGTH.size + meta_length
    meta = load_json(payload[_META_LENGTH.size : end])
    if not isinstance(meta, dict) or not {"name", "size", "type"} <= set(meta):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "file metadata needs name, size and type")
    content = payload[end:]
    if meta["size"] != len(content):
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, f"file says {meta['size']} bytes, carries {len(content)}"
        )
    return FileData(str(meta["name"]), len(content), str(meta["type"]), content)
