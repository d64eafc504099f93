"""Serving the hub's HTTP routes, the same way on every HTTP-capable transport, and reading a
plain HTTP/1.1 request with its body (sans-I/O, on h11) for the transports that take one."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping

import h11

from stelar_core.transports.base import HttpRequest, HttpResponse, HttpRoute

MAX_REQUEST_HEAD = 16 * 1024


def text(status: int, message: str, **headers: str) -> HttpResponse:
    return HttpResponse(
        status, f"{message}\n".encode(), {"Content-Type": "text/plain; charset=utf-8", **headers}
    )


async def serve_route(
    routes: Mapping[str, HttpRoute], request: HttpRequest, log: logging.Logger
) -> HttpResponse:
    """The route's answer; 404 for an unknown path, 405 (with ``Allow``) for a method the route
    does not take, 500 with a JSON error when the handler raises (logged on ``log``; the
    transport carries on)."""
    route = routes.get(request.path)
    if route is None:
        return text(404, f"no route {request.path}")
    if request.method not in route.methods:
        return text(405, f"{request.method} not allowed", Allow=", ".join(route.methods))
    try:
        response = route.handler(request)
        if inspect.isawaitable(response):
            response = await response
    except Exception as exc:
        log.exception("HTTP route %s failed", request.path)
        body = json.dumps({"error": {"code": "internal_error", "message": str(exc)}}).encode()
        return HttpResponse(500, body, {"Content-Type": "application/json"})
    if not isinstance(response, HttpResponse):
        log.error("HTTP route %s returned %r, not an HttpResponse", request.path, response)
        return text(500, "route returned no response")
    return response


class PlainHttpExchange:
    """One request and its answer on a connection that closes after it (sans-I/O).

    ``receive(data)`` returns None while the request is incomplete, then the whole
    :class:`HttpRequest` (with its body), or an :class:`HttpResponse` that refuses it (malformed:
    400; a body over ``max_body`` bytes: 413, said as soon as ``Content-Length`` announces it).
    ``respond(response)`` gives the bytes of the answer. ``client_address(peer, headers)``, when
    given, says who the client is (behind trusted proxies); the peer's address otherwise."""

    def __init__(
        self,
        peer: str,
        max_body: int,
        client_address: Callable[[str, Mapping[str, str]], str] | None = None,
    ) -> None:
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self._peer = peer
        self._client_address = client_address
        self._max_body = max_body
        self._head: h11.Request | None = None
        self._body: list[bytes] = []
        self._size = 0

    def receive(self, data: bytes) -> HttpRequest | HttpResponse | None:
        try:
            self._http.receive_data(data)
            while True:
                event = self._http.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return None
                if isinstance(event, h11.Request):
                    self._head = event
                    declared = _content_length(event)
                    if declared is not None and declared > self._max_body:
                        return self._too_large()
                elif isinstance(event, h11.Data):
                    self._size += len(event.data)
                    if self._size > self._max_body:
                        return self._too_large()
                    self._body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage) and self._head is not None:
                    return self._request(self._head, b"".join(self._body))
                elif isinstance(event, h11.ConnectionClosed):
                    return text(400, "bad request: the connection closed before the request ended")
        except h11.RemoteProtocolError as exc:
            return text(exc.error_status_hint, f"bad request: {exc}")

    def _too_large(self) -> HttpResponse:
        return text(413, f"request body too large: at most {self._max_body} bytes")

    def _request(self, head: h11.Request, body: bytes) -> HttpRequest:
        path, _, query = head.target.decode("latin-1").partition("?")
        headers: dict[str, str] = {}
        for name, value in head.headers:
            key = name.decode("latin-1").lower()
            decoded = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {decoded}" if key in headers else decoded
        address = self._peer if self._client_address is None else self._client_address(self._peer, headers)
        return HttpRequest(head.method.decode("ascii"), path, query, headers, address, body=body)

    def respond(self, response: HttpResponse) -> bytes | None:
        """The answer's bytes (``Connection: close``: one request per connection), also to a
        request refused before it was whole; None when none can be sent (a header h11 refuses)."""
        headers = list(response.headers.items())
        headers += [("Content-Length", str(len(response.body))), ("Connection", "close")]
        try:
            out = self._http.send(h11.Response(status_code=response.status, headers=headers)) or b""
            if response.body:
                out += self._http.send(h11.Data(data=response.body)) or b""
            return out + (self._http.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            return None


def _content_length(head: h11.Request) -> int | None:
    for name, value in head.headers:
        if name == b"content-length":
            return int(value)  # h11 has checked it is a number
    return None
