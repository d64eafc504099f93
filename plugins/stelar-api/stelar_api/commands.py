"""The server API's commands, and reading them from request bodies (sans-I/O).

Every command is declared once, here (``COMMANDS``): its parameters with their kinds, whether
it changes anything (refused to read-only keys), and what it does, in words. The same table
validates requests (``read_command``, ``read_batch``: a :class:`BadRequest` names the field that
is wrong, as ``params.room`` or ``commands[2].params.event``) and writes the OpenAPI document.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

MAX_ID_LENGTH = 256
MAX_REASON_BYTES = 123  # what a WebSocket close frame carries
MAX_PAGE = 10_000


class BadRequest(Exception):
    """A request the API cannot run: 400, with the field at fault (``None``: the whole body)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


@attrs.frozen(slots=True)
class Limits:
    """The bounds of the server the commands are read for."""

    max_name_length: int  # rooms and events: the server's max_event_name_length
    max_batch: int


Check = Callable[[Any, Limits], Any]


def _name(value: Any, limits: Limits) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    if len(value) > limits.max_name_length:
        raise ValueError(f"at most {limits.max_name_length} characters")
    return value


def _client_id(value: Any, limits: Limits) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"expected a client ID (a string of 1..{MAX_ID_LENGTH} characters)")
    return value


def _any_json(value: Any, limits: Limits) -> Any:
    return value


def _base64(value: Any, limits: Limits) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("expected a base64 string") from None


def _client_ids(value: Any, limits: Limits) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_PAGE:
        raise ValueError(f"expected a list of at most {MAX_PAGE} client IDs")
    return [_client_id(item, limits) for item in value]


def _close_code(value: Any, limits: Limits) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1000 <= value <= 4999:
        raise ValueError("expected a close code from 1000 to 4999")
    return value


def _reason(value: Any, limits: Limits) -> str:
    if not isinstance(value, str) or len(value.encode()) > MAX_REASON_BYTES:
        raise ValueError(f"expected a string of at most {MAX_REASON_BYTES} bytes")
    return value


def _offset(value: Any, limits: Limits) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("expected an offset (an integer, 0 or more)")
    return value


def _page_size(value: Any, limits: Limits) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PAGE:
        raise ValueError(f"expected an integer from 1 to {MAX_PAGE}")
    return value


@attrs.frozen(slots=True)
class Param:
    name: str
    check: Check
    schema: Mapping[str, Any]  # its JSON Schema, for the OpenAPI document
    description: str
    required: bool = False


ROOM = Param("room", _name, {"type": "string", "minLength": 1}, "the room", required=True)
EVENT = Param("event", _name, {"type": "string", "minLength": 1}, "the event name", required=True)
CLIENT = Param("client", _client_id, {"type": "string", "minLength": 1}, "the client's ID", required=True)
DATA = Param("data", _any_json, {}, "the event's data (any JSON value)")
BINARY = Param(
    "binary",
    _base64,
    {"type": "string", "contentEncoding": "base64"},
    "binary data, base64-encoded (instead of data): a binary event",
)
EXCLUDE = Param(
    "exclude", _client_ids, {"type": "array", "items": {"type": "string"}}, "client IDs not to send to"
)
PAYLOAD = (DATA, BINARY)


@attrs.frozen(slots=True)
class Spec:
    name: str
    summary: str
    params: tuple[Param, ...] = ()
    changes: bool = True  # refused to read-only keys
    result: Mapping[str, Any] = attrs.field(factory=lambda: {"type": "object"})


def _spec(*specs: Spec) -> dict[str, Spec]:
    return {spec.name: spec for spec in specs}


COMMANDS = _spec(
    Spec("publish", "Send an event to a room's members on every node", (ROOM, EVENT, *PAYLOAD, EXCLUDE)),
    Spec("broadcast", "Send an event to every client on every node", (EVENT, *PAYLOAD, EXCLUDE)),
    Spec("send", "Send an event to one client, on whichever node has it", (CLIENT, EVENT, *PAYLOAD)),
    Spec(
        "disconnect",
        "Disconnect a client, on whichever node has it",
        (
            CLIENT,
            Param("code", _close_code, {"type": "integer", "minimum": 1000, "maximum": 4999}, "close code"),
            Param("reason", _reason, {"type": "string", "maxLength": MAX_REASON_BYTES}, "close reason"),
        ),
    ),
    Spec("join", "Make a client join a room (with the limits and hooks of a join)", (CLIENT, ROOM)),
    Spec("leave", "Make a client leave a room", (CLIENT, ROOM)),
    Spec("rooms", "The rooms with a member on any node", changes=False),
    Spec("members", "The client IDs in a room, on every node", (ROOM,), changes=False),
    Spec(
        "clients",
        "The clients connected, on every node (in a room, if given)",
        (
            attrs.evolve(ROOM, required=False, description="only the clients in this room"),
            Param("limit", _page_size, {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "at most"),
        ),
        changes=False,
    ),
    Spec(
        "info", "One client: transport, address, rooms, metadata, connected since", (CLIENT,), changes=False
    ),
    Spec("stats", "The cluster's statistics, with each node's", changes=False),
    Spec("presence", "A presence room's members with their state, on every node", (ROOM,), changes=False),
    Spec(
        "history",
        "A page of a room's history (rooms that keep history)",
        (
            ROOM,
            Param("since", _offset, {"type": "integer", "minimum": 0}, "publications after this offset"),
            Param("limit", _page_size, {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "at most"),
        ),
        changes=False,
    ),
)
BATCH = "batch"


@attrs.frozen(slots=True)
class Command:
    spec: Spec
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name


def read_json(body: bytes) -> Any:
    """The body as JSON; :class:`BadRequest` naming what is wrong with it."""
    if not body:
        raise BadRequest("the body is empty: expected a JSON object")
    try:
        return json.loads(body.decode("utf-8"))  # decoded first: json would guess UTF-16 and -32 too
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None


def read_command(name: str, params: Any, limits: Limits, where: str = "params") -> Command:
    """Command ``name`` with ``params`` (a JSON object), checked; ``where`` prefixes field names."""
    spec = COMMANDS.get(name)
    if spec is None:
        raise BadRequest(f"unknown command {name!r}; known: {', '.join(COMMANDS)}", code="unknown_command")
    if not isinstance(params, dict):
        raise BadRequest("expected a JSON object", where)
    declared = {param.name: param for param in spec.params}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        allowed = ", ".join(declared) or "none"
        raise BadRequest(f"unknown parameter {unknown[0]!r} (allowed: {allowed})", f"{where}.{unknown[0]}")
    checked: dict[str, Any] = {}
    for param in spec.params:
        field = f"{where}.{param.name}"
        if param.name not in params:
            if param.required:
                raise BadRequest(f"{param.name} is required", field)
            continue
        try:
            checked[param.name] = param.check(params[param.name], limits)
        except ValueError as exc:
            raise BadRequest(f"{param.name}: {exc}", field) from None
    if "data" in checked and "binary" in checked:
        raise BadRequest("give data or binary, not both", f"{where}.binary")
    return Command(spec, checked)


def read_batch(body: Any, limits: Limits) -> list[Command]:
    """``{"commands": [{"method": ..., "params": {...}}, ...]}``, every command checked before
    any runs."""
    if not isinstance(body, dict) or set(body) != {"commands"}:
        raise BadRequest('expected {"commands": [{"method": ..., "params": {...}}, ...]}')
    items = body["commands"]
    if not isinstance(items, list) or not items:
        raise BadRequest("expected a non-empty list of commands", "commands")
    if len(items) > limits.max_batch:
        raise BadRequest(f"at most {limits.max_batch} commands in one batch", "commands")
    commands = []
    for index, item in enumerate(items):
        where = f"commands[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("method"), str):
            raise BadRequest('expected {"method": ..., "params": {...}}', where)
        extra = sorted(set(item) - {"method", "params"})
        if extra:
            raise BadRequest(f"unknown field {extra[0]!r}", f"{where}.{extra[0]}")
        if item["method"] not in COMMANDS:
            message = f"unknown command {item['method']!r}; known: {', '.join(COMMANDS)}"
            raise BadRequest(message, f"{where}.method", "unknown_command")
        commands.append(read_command(item["method"], item.get("params", {}), limits, f"{where}.params"))
    return commands
