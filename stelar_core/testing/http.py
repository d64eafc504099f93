"""Plain HTTP requests to a server's port from tests (its routes: ``/health``, ``/stelar.js``,
a refused upgrade): ``(status, headers with lower-case names, body)``."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Mapping

Response = tuple[int, dict[str, str], bytes]


def http_request(
    port: int, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
) -> Response:
    """One request on a connection of its own, to 127.0.0.1 (blocking; ``http_call`` awaits it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def http_get(port: int, path: str, headers: Mapping[str, str] | None = None) -> Response:
    return http_request(port, "GET", path, headers)


async def http_call(
    port: int,
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """``http_request`` in a thread, so the server under test keeps running on this loop."""
    return await asyncio.to_thread(http_request, port, method, path, headers, body)
