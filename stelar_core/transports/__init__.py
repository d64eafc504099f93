"""Transports: the seam (``base``) and the in-memory transport that ships with the core."""

from stelar_core.transports.base import (
    Admission,
    ClientLink,
    Connection,
    Connector,
    FrameReceiver,
    HttpRequest,
    HttpResponse,
    HttpRoute,
    HubPort,
    SessionPort,
    Transport,
)

__all__ = [
    "Admission",
    "ClientLink",
    "Connection",
    "Connector",
    "FrameReceiver",
    "HttpRequest",
    "HttpResponse",
    "HttpRoute",
    "HubPort",
    "SessionPort",
    "Transport",
]
