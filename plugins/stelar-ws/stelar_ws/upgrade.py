"""The common WebSocket upgrade, read and answered without the library (sans-I/O).

Per connection, websockets' own handshake (a generator-based HTTP parser, a ``Request`` and a
``Headers`` with two indexes, ``accept()`` building a ``Response``) cost more than everything
else stelar does to open a connection (issue 31). Nearly every upgrade is the same plain
request, so it is read here with two compiled regular expressions and answered with bytes.

This path only ever *claims* a request: :func:`read_upgrade` returns ``None`` for anything
that is not a whole, well-formed upgrade the library would accept with the same answer, and
the server then hands the bytes to the library as before, which keeps every refusal, error
status and negotiation (compression) it makes. The rule is strict: whatever this module
accepts, ``ServerProtocol.accept()`` accepts with byte-identical headers (tests/test_upgrade.py
holds it to that on generated requests).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
import time
from collections.abc import Sequence

from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS
from websockets.utils import accept_key

# The same grammar as websockets.http11: a token for a name, visible characters, tabs, spaces
# and obs-text for a value (stripped of spaces and tabs either side, in Python: one quantifier
# per line keeps the match linear whatever the bytes). The head is read as ISO-8859-1 text,
# one character per byte, which is how the library decodes values (names are ASCII tokens).
_TOKEN_CHARACTERS = r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD = r"(" + _TOKEN_CHARACTERS + r"):([\t\x20-\x7e\x80-\xff]*)\r\n"
# Only GET, only HTTP/1.1 and a target of visible ASCII: what a WebSocket client sends.
_HEAD = re.compile(r"GET ([\x21-\x7e]+) HTTP/1\.1\r\n(?:" + _FIELD + r")*\r\n")
_FIELDS = re.compile(_FIELD)
_TOKEN = re.compile(_TOKEN_CHARACTERS)
# Fields that must appear once: websockets refuses the upgrade otherwise.
_SINGLE = frozenset(("upgrade", "sec-websocket-key", "sec-websocket-version", "origin"))
# Fields that mean a body, which the library refuses (or accepts with ``0``: left to it).
_BODY = frozenset(("content-length", "transfer-encoding"))


class Upgrade:
    """A claimed upgrade request: its target and fields (lower-case names, repeated fields
    joined with ", "), and what the answer needs."""

    __slots__ = ("accept", "fields", "subprotocol", "target")

    def __init__(self, target: str, fields: dict[str, str], accept: str, subprotocol: str | None) -> None:
        self.target = target
        self.fields = fields
        self.accept = accept
        self.subprotocol = subprotocol


def read_upgrade(head: bytes, subprotocols: Sequence[str] | None, compression: bool) -> Upgrade | None:
    """The upgrade ``head`` asks for (the request up to and including its empty line), or
    ``None`` when the library must read it: not an upgrade, malformed, over the library's
    limits, a subprotocol it would refuse, or an extension offer the server may take
    (``compression``)."""
    if len(head) > MAX_LINE_LENGTH:
        return None
    text = head.decode("iso-8859-1")
    if _HEAD.fullmatch(text) is None:
        return None
    target_end = text.index(" HTTP/1.1\r\n")
    pairs = _FIELDS.findall(text, target_end)
    if len(pairs) > MAX_NUM_HEADERS:
        return None
    fields: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = raw_name.lower()
        value = raw_value.strip(" \t")
        if name in fields:
            if name in _SINGLE:
                return None
            fields[name] = f"{fields[name]}, {value}"
        else:
            fields[name] = value
    if not _BODY.isdisjoint(fields) or (compression and "sec-websocket-extensions" in fields):
        return None
    if fields.get("upgrade", "").lower() != "websocket" or fields.get("sec-websocket-version") != "13":
        return None
    connection = _tokens(fields.get("connection", ""))
    if connection is None or not any(option.lower() == "upgrade" for option in connection):
        return None
    key = fields.get("sec-websocket-key", "")
    try:
        if len(base64.b64decode(key.encode(), validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    # The library reads an offer even when it has no subprotocol to choose (400 if malformed).
    offer = fields.get("sec-websocket-protocol")
    offered = _tokens(offer) if offer is not None else []
    if offered is None:
        return None
    subprotocol: str | None = None
    if subprotocols:
        subprotocol = next((name for name in subprotocols if name in offered), None)
        if subprotocol is None:
            return None  # none offered or none shared: the library answers 400
    return Upgrade(text[4:target_end], fields, accept_key(key), subprotocol)


def _tokens(value: str) -> list[str] | None:
    """A comma-separated list of tokens (``Connection``, ``Sec-WebSocket-Protocol``), or
    ``None`` when it is empty or anything else."""
    items = [item.strip(" \t") for item in value.split(",")]
    return items if all(_TOKEN.fullmatch(item) for item in items) else None


def switching_protocols(upgrade: Upgrade) -> bytes:
    """The 101 answer, byte for byte what ``ServerProtocol.accept()`` would send."""
    protocol = f"Sec-WebSocket-Protocol: {upgrade.subprotocol}\r\n" if upgrade.subprotocol else ""
    return (
        f"HTTP/1.1 101 Switching Protocols\r\nDate: {http_date()}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Accept: {upgrade.accept}\r\n{protocol}\r\n"
    ).encode()


_date_second = -1
_date = ""


def http_date() -> str:
    """The ``Date`` field's value (RFC 9110), formatted once a second."""
    global _date_second, _date
    now = int(time.time())
    if now != _date_second:
        _date_second, _date = now, email.utils.formatdate(now, usegmt=True)
    return _date
