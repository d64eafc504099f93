"""Calling the server API from tests: real HTTP requests on a server's port."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from stelar_core import StelarClient
from stelar_core.testing.http import http_call

KEY = "full-access-key-0123456789"
READ_ONLY_KEY = "read-only-key-0123456789"
KEYS = [{"key": KEY, "name": "ops"}, {"key": READ_ONLY_KEY, "name": "dash", "read_only": True}]


async def api(
    port: int,
    command: str,
    params: Any = None,
    *,
    key: str | None = KEY,
    prefix: str = "/api",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """POST ``params`` to ``{prefix}/{command}``: (status, headers, the JSON answer)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    data = body if body is not None else json.dumps({} if params is None else params).encode()
    status, answer_headers, answer = await http_call(port, f"{prefix}/{command}", "POST", sent, data)
    return status, answer_headers, json.loads(answer) if answer.startswith(b"{") else answer


async def result(port: int, command: str, params: Any = None, **options: Any) -> Any:
    """The command's result; fails the test on any other answer."""
    status, _, answer = await api(port, command, params, **options)
    assert status == 200, answer
    return answer["result"]


async def client_of(server: Any, *rooms: str) -> StelarClient:
    """A TCP client of ``server`` in ``rooms``; what it receives goes to ``client.inbox``."""
    client = StelarClient(server.addresses["tcp"][0], reconnection=False)
    inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    client.on_any(lambda event, data: inbox.put_nowait((event, data)))
    await client.connect()
    for room in rooms:
        await client.join_room(room)
    client.inbox = inbox  # type: ignore[attr-defined]
    return client
