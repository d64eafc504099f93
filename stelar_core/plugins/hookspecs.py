"""Every hook stelar calls, in one place (modelled on pytest's ``hookspec.py``).

Two kinds of hook:

* **Provider hooks** (``stelar_register_*``) run once when a server is built. Each receives a
  ``register(name, factory)`` callable; the server keeps a name -> factory table per kind and
  selects by the name in its configuration.
* **Event hooks** (``stelar_on_*``) run while the server works. They are synchronous: an
  ``async def`` implementation is refused at registration, because a coroutine would silently
  count as "a result" (pluggy#320). A notification hook that needs to do I/O should start a task.
  Hooks marked *firstresult* stop at the first implementation returning something other than
  ``None``; returning ``False`` there cancels the default action.

Implementations receive only the arguments they name, so a hook can gain arguments without
breaking anyone. ``server`` is always the :class:`~stelar_core.StelarServer` concerned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from typing import TYPE_CHECKING, Any

from stelar_core.plugins.markers import hookspec

if TYPE_CHECKING:
    from stelar_core.server import StelarServer

Register = Callable[[str, Callable[..., Any]], None]

# --------------------------------------------------------------------------- providers


@hookspec
def stelar_register_transports(register: Register) -> None:
    """Register transports: ``register(name, factory)``.

    ``factory(hub: HubPort) -> Transport`` builds the server side (see
    ``stelar_core.transports.base``). A factory may carry a ``connector`` attribute, a
    ``Connector`` used by clients that reach this transport.
    """


@hookspec
def stelar_register_rate_limiters(register: Register) -> None:
    """Register rate-limiter backends: ``register(name, factory)``.

    ``factory(limit: RateLimit) -> RateLimiter``; selected with ``rate_limiter="name"``. The server
    builds one limiter per policy (global, each per-event limit, each per-client override).
    """


@hookspec
def stelar_register_ip_trackers(register: Register) -> None:
    """Register per-IP connection trackers: ``register(name, factory)``, ``factory() -> IPTracker``."""


@hookspec
def stelar_register_id_generators(register: Register) -> None:
    """Register client-ID generators: ``register(name, factory)``, ``factory() -> Callable[[], str]``."""


@hookspec
def stelar_register_brokers(register: Register) -> None:
    """Register delivery brokers: ``register(name, factory)``, ``factory(config) -> Broker``.

    Every emit goes through the selected broker; the default, ``local``, delivers in-process.
    """


@hookspec
def stelar_register_http_routes(register: Callable[..., None], server: StelarServer) -> None:
    """Register HTTP routes served by HTTP-capable transports (and the health plugin's own port).

    ``register(path, handler, methods=("GET",))``; ``handler(request: HttpRequest)`` returns an
    ``HttpResponse`` or an awaitable of one.
    """


# --------------------------------------------------------------------------- events


@hookspec(firstresult=True)
def stelar_on_rate_limit_exceeded(
    server: StelarServer, client_id: str, event: str, protocol: str
) -> bool | None:
    """A client exceeded a rate limit. Return ``False`` to keep it connected (the message is still
    dropped and answered with a ``rate_limited`` error); otherwise it is disconnected."""


@hookspec
def stelar_on_max_connections_reached(
    server: StelarServer, active_connections: int, max_connections: int, ip: str, scope: str
) -> None:
    """A connection was refused by a limit. ``scope`` is ``"global"`` (``max_connections``) or
    ``"ip"`` (``max_connections_per_ip``, then ``active_connections`` counts that IP)."""


@hookspec(firstresult=True)
def stelar_on_client_join_room(
    server: StelarServer, client_id: str, room: str, metadata: Mapping[str, Any]
) -> bool | None:
    """A client asks to join ``room``. Return ``False`` to reject (``join_rejected``)."""


@hookspec(firstresult=True)
def stelar_on_client_leave_room(
    server: StelarServer, client_id: str, room: str, metadata: Mapping[str, Any]
) -> bool | None:
    """A client asks to leave ``room``. Return ``False`` to reject (``leave_rejected``).
    Not called when a disconnect removes the client from its rooms."""


@hookspec
def stelar_on_max_rooms_reached(
    server: StelarServer, client_id: str, room: str, total_rooms: int, max_rooms: int
) -> None:
    """A join would create a room beyond ``max_rooms``; it was refused."""


@hookspec
def stelar_on_max_rooms_per_client_reached(
    server: StelarServer, client_id: str, room: str, current_rooms: int, max_rooms: int
) -> None:
    """A join would put the client in more than ``max_rooms_per_client`` rooms; it was refused."""


@hookspec
def stelar_on_payload_too_large(
    server: StelarServer, client_id: str, event: str, size: int, max_size: int
) -> None:
    """A message's payload exceeded ``max_payload_size``; it was dropped."""


@hookspec
def stelar_on_invalid_message(
    server: StelarServer, client_id: str, code: str, reason: str, protocol: str
) -> None:
    """A frame broke the protocol (``code`` is the error code sent back, ``reason`` the detail)."""


@hookspec
def stelar_on_slow_consumer(server: StelarServer, client_id: str, protocol: str, buffered_bytes: int) -> None:
    """A client stopped reading: its output stayed above ``max_buffered_bytes`` (or reached twice
    that). It is disconnected (1008, ``slow consumer``) and counted as ``slow_consumers``."""


@hookspec
def stelar_on_handler_error(server: StelarServer, client_id: str, event: str, error: BaseException) -> None:
    """A handler (event, ACK, connection or disconnect) raised ``error``; it was logged, the
    connection kept and a request answered with ``handler_error``. For error reporters."""


@hookspec(firstresult=True)
def stelar_on_before_broadcast(
    server: StelarServer, event: str, data: Any, exclude: Set[str], room: str | None
) -> bool | None:
    """Before ``broadcast`` / ``to(room)`` (``room`` is ``None`` for everyone). Return ``False`` to cancel."""


@hookspec
def stelar_on_client_connect(
    server: StelarServer, client_id: str, ip: str, protocol: str, metadata: Mapping[str, Any]
) -> None:
    """A client finished the connect handshake."""


@hookspec
def stelar_on_client_disconnect(
    server: StelarServer,
    client_id: str,
    ip: str,
    protocol: str,
    rooms: Set[str],
    code: int,
    reason: str,
) -> None:
    """A connected client is gone; ``rooms`` are those it was in."""


@hookspec
def stelar_on_server_started(server: StelarServer) -> None:
    """All transports listen."""


@hookspec
def stelar_on_server_stopping(server: StelarServer) -> None:
    """``stop()`` began; transports still run."""
