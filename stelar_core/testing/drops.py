"""Dropping a connection the way a network does (no close frame, nothing flushed), from either
end, for the tests of what survives a drop: resumption, recovery, reconnection."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stelar_core.client import StelarClient
    from stelar_core.server import StelarServer


def drop_client_link(client: StelarClient) -> None:
    """Drop ``client``'s connection at the client's end (its reconnection, if any, follows);
    a socket transport (TCP or WebSocket)."""
    link = client._channel.link
    if link is None:
        return
    abort = getattr(link, "abort", None)
    if abort is None:
        raise TypeError(f"a {type(link).__name__} cannot be dropped: a socket transport's link can")
    abort(1006, "dropped by the test")


def drop_session(server: StelarServer, client_id: str) -> None:
    """Drop the connection of ``server``'s client ``client_id`` at the server's end (a socket
    transport: TCP or WebSocket)."""
    session = server.hub.session(client_id)
    if session is not None:
        session.connection._stream().abort()  # type: ignore[attr-defined]
