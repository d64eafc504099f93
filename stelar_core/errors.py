"""Every exception stelar raises derives from :class:`StelarError`."""

from __future__ import annotations


class StelarError(Exception):
    """Base of all stelar errors."""


class ConfigError(StelarError, ValueError):
    """An option has a bad value, or names a plugin that is not installed."""


class PluginError(StelarError):
    """A plugin could not be loaded, or registered something invalid."""


class ProtocolError(StelarError):
    """Bytes that break the wire protocol. ``code`` is the :class:`ErrorCode` sent to the peer."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class ConnectionRefused(StelarError):
    """A connection was refused at admission (limits) or by middleware."""

    def __init__(self, code: str, reason: str, close_code: int) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.close_code = close_code


class LimitReached(ConnectionRefused):
    """A shared limit refused a connection (raised by an IP tracker's ``check``, e.g. a
    cluster-wide ``max_connections``): the hub counts and reports it as its own limits' refusals,
    with ``active`` connections against ``limit`` in ``scope``."""

    def __init__(
        self, code: str, reason: str, close_code: int, *, active: int, limit: int, scope: str
    ) -> None:
        super().__init__(code, reason, close_code)
        self.active = active
        self.limit = limit
        self.scope = scope


class AckError(StelarError):
    """The other side answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AckTimeout(StelarError, TimeoutError):
    """No answer to a request within its timeout."""


class NotConnected(StelarError):
    """The target client is not connected (or no longer)."""


class RemoteError(StelarError):
    """The server sent an ``error`` frame (``code`` from the table in docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidPayload(StelarError, ValueError):
    """A payload does not fit the type its handler declares (or a client's ``result=`` type).

    ``problems`` name each one as ``path: rule`` (``$.text: Length of 'text' must be <= 2000:
    2001``). On the server it is answered with the error code ``invalid_payload``."""

    def __init__(self, event: str, problems: list[str]) -> None:
        super().__init__(f"invalid payload for {event!r}: {'; '.join(problems)}")
        self.event = event
        self.problems = problems
