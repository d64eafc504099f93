"""Plain HTTP on the WebSocket port: request conversion, the client's address behind proxies,
origin checks, and the responses of routes and refusals."""

from __future__ import annotations

import http
import ipaddress
from collections.abc import Iterator, Mapping, Sequence

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from stelar_core.plugin_api import ConnectionRefused, ErrorCode, HttpRequest, HttpResponse, Options, text


def request_fields(request: Request) -> dict[str, str]:
    """The fields of a request websockets read: lower-case names, every value of a repeated
    field joined with ", " as RFC 9110 allows (websockets keys its index by lower-case name)."""
    return {name: ", ".join(request.headers.get_all(name)) for name in request.headers}


class RequestHeaders(Mapping[str, str]):
    """The request's headers as stelar shows them: lower-case names (looked up in any case),
    repeated fields joined. One compact dict: websockets' parser keeps its handshake request
    alive for the whole connection (a local of its generator), so once the upgrade is accepted
    the server empties that request's ``Headers`` (two indexes of the same fields) and an idle
    connection holds its headers once (issue 18: ~1 KB each)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"RequestHeaders({self._fields!r})"


def client_address(peer: str, headers: Mapping[str, str], trusted: Sequence[str]) -> str:
    """The client's IP: the peer's, unless the peer is a trusted proxy; then the right-most
    address of X-Forwarded-For that is not itself a trusted proxy (the left part of the header
    is whatever the client wrote and cannot be believed)."""
    forwarded = headers.get("x-forwarded-for")
    if not trusted or not forwarded or not _is_trusted(peer, trusted):
        return peer
    for candidate in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not _is_trusted(candidate, trusted):
            return candidate
    return peer


def _is_trusted(address: str, trusted: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in trusted)


def origin_refusal(headers: Mapping[str, str], options: Options) -> str | None:
    """Why the upgrade's Origin is refused, or None when it is allowed."""
    allowed = options.allowed_origins
    if allowed is None:
        return None
    origin = headers.get("origin")
    if origin is None:
        if options.allow_missing_origin:
            return None
        return (
            "an Origin header is required: allowed_origins is set (a non-browser client sends one "
            "with StelarClient(..., origin=...), or the server sets allow_missing_origin=True)"
        )
    return None if origin in allowed else f"origin {origin!r} is not allowed"


def to_request(
    method: str, target: str, fields: dict[str, str], peer: str, trusted_proxies: Sequence[str] = ()
) -> HttpRequest:
    """stelar's view of a request for ``target`` from ``peer`` (``fields`` as
    :func:`request_fields` gives them); the client's address per ``trusted_proxies``."""
    path, _, query = target.partition("?")
    headers = RequestHeaders(fields)
    return HttpRequest(method, path, query, headers, client_address(peer, headers, trusted_proxies))


# Admission refusals as HTTP statuses: a refused upgrade gets an answer, not a hang.
REFUSAL_STATUS: dict[str, http.HTTPStatus] = {
    ErrorCode.SERVER_FULL: http.HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.SERVER_SHUTDOWN: http.HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP: http.HTTPStatus.TOO_MANY_REQUESTS,
}


def refusal_response(refusal: ConnectionRefused) -> HttpResponse:
    """The answer to an upgrade that admission refused (connection limits)."""
    status = REFUSAL_STATUS.get(refusal.code, http.HTTPStatus.SERVICE_UNAVAILABLE)
    return text(status, f"{refusal.code}: {refusal.reason}")


def to_response(response: HttpResponse) -> Response:
    headers = Headers(response.headers)
    headers["Content-Length"] = str(len(response.body))
    headers["Connection"] = "close"
    return Response(response.status, http.HTTPStatus(response.status).phrase, headers, response.body)


def text_response(status: int, message: str, **headers: str) -> Response:
    return to_response(text(status, message, **headers))
