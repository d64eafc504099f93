"""An AsyncAPI 3.0 document of a server's interface, and TypeScript declarations made from it.

What a server offers is read from its handler registry: the events its handlers take (a client
``emit``s them: operations the server *receives*), the requests its ``on_ack`` handlers answer
(received, with a *reply*), and the events declared with ``server.emits`` (the server *sends*
them). Payload schemas come from the types typed handlers declare (``stelar_core.schemas``); an
untyped handler's payload is described as any JSON.

All of stelar's events travel on one connection, so the document has one channel, ``stelar``;
its messages are the events. ``servers`` lists where it listens when it is running (or the URLs
given to ``stelar asyncapi --server``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from stelar_core.hub.presence import PresenceAsk, PresenceDiff, PresenceSnapshot
from stelar_core.protocol.frames import MAX_TRACE_LENGTH, TRACED, FrameType
from stelar_core.protocol.publications import HISTORY_REQUEST, HistoryAnswer, HistoryQuery
from stelar_core.schemas import SchemaBuilder

if TYPE_CHECKING:
    from stelar_core.server.server import StelarServer

ASYNCAPI_VERSION = "3.0.0"
CHANNEL = "stelar"
_KEY = re.compile(r"[^A-Za-z0-9._-]")


def document(
    server: StelarServer, *, title: str = "stelar server", version: str = "1.0.0", servers: Iterable[str] = ()
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``server`` (``servers``: URLs to list besides its own)."""
    schemas = SchemaBuilder(lambda name: f"#/components/schemas/{name}")
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def message(key: str, name: str, payload: Any, summary: str) -> dict[str, str]:
        key = _unique(_KEY.sub("_", key), messages)
        body: dict[str, Any] = {"name": name, "contentType": "application/json"}
        if summary:
            body["summary"] = summary
        body["payload"] = schemas.schema(payload)
        messages[key] = body
        return {"$ref": f"#/channels/{CHANNEL}/messages/{key}"}

    channel_ref = {"$ref": f"#/channels/{CHANNEL}"}

    def operation(key: str, action: str, title: str, sent: dict[str, str], **reply: dict[str, str]) -> None:
        body: dict[str, Any] = {"action": action, "channel": channel_ref, "title": title, "messages": [sent]}
        if reply:
            body["reply"] = {"channel": channel_ref, "messages": [reply["answer"]]}
        operations[_unique(key, operations)] = body

    for entry in server.described_events():
        key, quoted = _KEY.sub("_", entry.name), repr(entry.name)
        if entry.kind == "event":
            emitted = message(key, entry.name, entry.payload, entry.summary)
            operation(f"receive.{key}", "receive", f"a client emits {quoted}", emitted)
        elif entry.kind == "request":
            asked = message(f"{key}.request", entry.name, entry.payload, entry.summary)
            answer = message(f"{key}.reply", entry.name, entry.answer, f"the answer to {quoted}")
            operation(f"request.{key}", "receive", f"a client requests {quoted}", asked, answer=answer)
        else:
            sent = message(f"{key}.sent", entry.name, entry.payload, entry.summary)
            operation(f"send.{key}", "send", f"the server emits {quoted}", sent)
    rooms = server.config.rooms
    if rooms.any_history:
        asked = message("history.request", HISTORY_REQUEST, HistoryQuery, "a page of a room's history")
        answer = message("history.reply", HISTORY_REQUEST, HistoryAnswer, "the publications after the offset")
        operation("request.history", "receive", "a member reads a room's history", asked, answer=answer)
    listed = {url: None for url in (*_addresses(server), *servers)}
    result: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Events over stelar's protocol (WebSocket subprotocol stelar.v1, or stelar's "
                "length-prefixed TCP frames): each message is an event name and a JSON payload; "
                "a request is answered on the same connection."
            ),
        },
        "defaultContentType": "application/json",
    }
    if listed:
        result["servers"] = _servers(listed)
    result["channels"] = {
        CHANNEL: {
            "address": None,
            "title": "the stelar connection",
            "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
        }
    }
    result["operations"] = operations
    result["components"] = {"messages": messages, "schemas": schemas.definitions}
    if any(policy.presence for policy in rooms.patterns.values()):
        # Presence frames (type 13, docs/presence.md): typed for front ends, beside the events.
        result["x-stelar-presence"] = {
            "frame": 13,
            "server": [schemas.schema(PresenceSnapshot), schemas.schema(PresenceDiff)],
            "client": schemas.schema(PresenceAsk),
        }
    if rooms.patterns:
        # The rooms' policies: what history (positions, recovery) and send queues their members
        # meet; the frames they bring are in docs/protocol.md ("Rooms with history", "Lossy rooms").
        result["x-stelar-rooms"] = rooms.to_dict()
    if server.hub.traces:
        # Trace context in events and requests (docs/protocol.md, "Trace context"): a flag on
        # the frame's type byte, then the context; clients send it once the welcome says "trace".
        result["x-stelar-trace-context"] = {
            "format": "W3C traceparent (https://www.w3.org/TR/trace-context/#traceparent-header)",
            "flag": TRACED,
            "frames": [FrameType.JSON.value, FrameType.BINARY.value, FrameType.ACK_REQUEST.value],
            "maxLength": MAX_TRACE_LENGTH,
            "welcome": "trace",
        }
    return result


def _addresses(server: StelarServer) -> list[str]:
    return [
        url
        for urls in server.addresses.values()
        for url in urls
        if "://" in url and not url.startswith("memory")
    ]


def _servers(urls: Iterable[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for url in urls:
        found[_unique(_server_key(url), found)] = _server(url)
    return found


def _server_key(url: str) -> str:
    return _KEY.sub("_", urlsplit(url).scheme)


def _server(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    entry: dict[str, Any] = {"host": parts.netloc, "protocol": parts.scheme}
    if parts.path and parts.path != "/":
        entry["pathname"] = parts.path
    return entry


def _unique(key: str, taken: Mapping[str, Any]) -> str:
    candidate, counter = key, 2
    while candidate in taken:
        candidate, counter = f"{key}{counter}", counter + 1
    return candidate


def to_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- TypeScript


def typescript(doc: Mapping[str, Any], module: str = "stelar-client") -> str:
    """Declarations for a front end: the payload types, and ``TypedStelarClient``, the browser
    client with ``emit``/``on``/``request`` typed for this server's events.

    ``const client = new StelarClient(url) as TypedStelarClient;``"""
    components = doc.get("components", {})
    schemas: Mapping[str, Any] = components.get("schemas", {})
    messages: Mapping[str, Any] = components.get("messages", {})
    info = doc["info"]
    lines = [
        f"// Generated by `stelar asyncapi --typescript` from {info['title']} {info['version']};",
        "// do not edit. Use: const client = new StelarClient(url) as TypedStelarClient;",
        f'import type {{ StelarClient }} from "{module}";',
        "",
    ]
    for name, schema in schemas.items():
        description = schema.get("description")
        if description:
            lines.append(f"/** {description} */")
        lines.append(f"export interface {_ts_name(name)} {_ts_object(schema)}")
        lines.append("")
    emitted: dict[str, str] = {}
    sent: dict[str, str] = {}
    requests: dict[str, tuple[str, str]] = {}
    for operation in doc.get("operations", {}).values():
        key = operation["messages"][0]["$ref"].rsplit("/", 1)[1]
        body = messages[key]
        if "reply" in operation:
            reply = messages[operation["reply"]["messages"][0]["$ref"].rsplit("/", 1)[1]]
            requests[body["name"]] = (_ts_type(body["payload"]), _ts_type(reply["payload"]))
        elif operation["action"] == "receive":
            emitted[body["name"]] = _ts_type(body["payload"])
        else:
            sent[body["name"]] = _ts_type(body["payload"])
    lines.append("/** Events a client emits (the server's handlers take them). */")
    lines.append("export interface ClientEvents " + _ts_members(emitted))
    lines.append("")
    lines.append("/** Events the server emits to clients. */")
    lines.append("export interface ServerEvents " + _ts_members(sent))
    lines.append("")
    lines.append("/** Requests a client makes, and their answers. */")
    pairs = {
        name: f"{{ request: {asked}; response: {answer} }}" for name, (asked, answer) in requests.items()
    }
    lines.append("export interface Requests " + _ts_members(pairs))
    lines.append("")
    lines += [
        "/** The browser client, typed for this server's events. */",
        'export type TypedStelarClient = Omit<StelarClient, "emit" | "on" | "once" | "request"> & {',
        "  emit<E extends keyof ClientEvents>(event: E, data: ClientEvents[E]): boolean;",
        "  on<E extends keyof ServerEvents>(",
        "    event: E, listener: (data: ServerEvents[E]) => void",
        "  ): TypedStelarClient;",
        '  on(event: "connect" | "reconnect_failed", listener: () => void): TypedStelarClient;',
        "  once<E extends keyof ServerEvents>(",
        "    event: E, listener: (data: ServerEvents[E]) => void",
        "  ): TypedStelarClient;",
        "  request<R extends keyof Requests>(",
        '    event: R, data: Requests[R]["request"], options?: { timeout?: number }',
        '  ): Promise<Requests[R]["response"]>;',
        "};",
        "",
    ]
    return "\n".join(lines)


def _ts_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_$]", "_", name)


def _ts_members(members: Mapping[str, str]) -> str:
    if not members:
        return "{}"
    return "{\n" + "".join(f"  {json.dumps(name)}: {kind};\n" for name, kind in members.items()) + "}"


def _ts_object(schema: Mapping[str, Any]) -> str:
    required = set(schema.get("required", ()))
    fields = {
        _ts_key(name) + ("" if name in required else "?"): _ts_type(field)
        for name, field in schema.get("properties", {}).items()
    }
    if not fields:
        return "{}"
    return "{\n" + "".join(f"  {name}: {kind};\n" for name, kind in fields.items()) + "}"


def _ts_key(name: str) -> str:
    return name if name.isidentifier() else json.dumps(name)


def _ts_type(schema: Mapping[str, Any]) -> str:
    """The TypeScript type of a schema this module (``stelar_core.schemas``) writes."""
    if "$ref" in schema:
        return _ts_name(schema["$ref"].rsplit("/", 1)[1])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"]) or "never"
    if "anyOf" in schema:
        return " | ".join(_ts_type(option) for option in schema["anyOf"])
    kind = schema.get("type")
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        items = schema.get("items", {})
        if isinstance(items, list):
            return "[" + ", ".join(_ts_type(item) for item in items) + "]"
        inner = _ts_type(items)
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if kind == "object":
        if "properties" in schema:
            return _ts_object(schema)
        return f"Record<string, {_ts_type(schema.get('additionalProperties', {}))}>"
    return "unknown"
