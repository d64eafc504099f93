"""Every hook stelar calls, in one place (modelled on pytest's ``hookspec.py``).

Two kinds of hook:

* **Provider hooks** (``stelar_register_*``) and ``stelar_add_options`` run once when a server is
  built, once per plugin (so each registration is attributed to its plugin). A provider hook
  receives a ``register(name, factory)`` callable; the server keeps a name -> factory table per
  kind and selects by the name in its configuration.
* **Event hooks** (``stelar_on_*``) run while the server works. They are synchronous: an
  ``async def`` implementation is refused at registration, because a coroutine would silently
  count as "a result" (pluggy#320). A notification hook that needs to do I/O should start a task.
  *Veto* hooks (join, leave, before-broadcast, rate-limit-exceeded) ask **every** implementation:
  any ``False`` cancels the action, so the outcome never depends on the order plugins were
  registered in (none is ``firstresult``, where an early ``True`` would hide a later ``False``).
  An implementation that raises is logged, counted as ``hook_errors`` and counts as ``False``.
  In notification hooks an implementation that raises is logged and counted; the others run.

Implementations receive only the arguments they name, so a hook can gain arguments without
breaking anyone. ``server`` is always a :class:`~stelar_core.plugins.view.ServerView` of the server
concerned: its public reads and sends, not its internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import TYPE_CHECKING, Any

from stelar_core.plugins.markers import hookspec

if TYPE_CHECKING:
    from stelar_core.plugins.options import OptionDeclarations
    from stelar_core.plugins.routes import RouteContext, RouteRegister
    from stelar_core.plugins.view import ServerView
    from stelar_core.providers import (
        BrokerFactory,
        EmitterProvider,
        IdGeneratorFactory,
        IPTrackerFactory,
        RateLimiterFactory,
        Register,
        TransportProvider,
    )
    from stelar_core.tls import TLSProvider
    from stelar_core.tracing import TracerFactory

# --------------------------------------------------------------------------- options


@hookspec
def stelar_add_options(options: OptionDeclarations) -> None:
    """Declare this plugin's options: ``options.add(name, default=..., type=..., help=...)``.

    They form a section named after the plugin (``[stelar.<name>]`` in TOML, ``<name>={...}``
    in Python, ``--<name>-<option>`` on ``stelar serve``) and are validated before any provider
    is built; the plugin's factories receive them as ``context.options``. Called once per plugin
    when a server is built (see ``stelar_core.plugins.options``).
    """


# --------------------------------------------------------------------------- providers
# Every factory is called as ``factory(context)`` (``stelar_core.providers``); what it returns
# is checked against its protocol when the server is built.


@hookspec
def stelar_register_transports(register: Register[TransportProvider]) -> None:
    """Register transports: ``register(name, TransportProvider(factory, connector=..., schemes=...))``.

    ``factory(context: TransportContext) -> Transport`` builds the server side (see
    ``stelar_core.transports.base``); ``connector`` is the client side, used for URLs of the
    given ``schemes``.
    """


@hookspec
def stelar_register_rate_limiters(register: Register[RateLimiterFactory]) -> None:
    """Register rate-limiter backends: ``register(name, factory)``,
    ``factory(context: LimiterContext) -> RateLimiter``; selected with ``rate_limiter="name"``.
    The server builds one limiter per policy (global, each per-event limit, each per-client
    override), each with its ``context.limit``.
    """


@hookspec
def stelar_register_ip_trackers(register: Register[IPTrackerFactory]) -> None:
    """Register per-IP connection trackers: ``register(name, factory)``,
    ``factory(context: ProviderContext) -> IPTracker``; selected with ``ip_tracker="name"``."""


@hookspec
def stelar_register_id_generators(register: Register[IdGeneratorFactory]) -> None:
    """Register client-ID generators: ``register(name, factory)``,
    ``factory(context: ProviderContext) -> Callable[[], str]``; selected with ``id_generator="name"``."""


@hookspec
def stelar_register_brokers(register: Register[BrokerFactory]) -> None:
    """Register delivery brokers: ``register(name, factory)``,
    ``factory(context: ProviderContext) -> Broker``; selected with ``broker="name"``.

    Every emit goes through the selected broker; the default, ``local``, delivers in-process.
    """


@hookspec
def stelar_register_emitters(register: Register[EmitterProvider]) -> None:
    """Register a broker's emitter: ``register(name, EmitterProvider(open, schemes))``, what the
    operator's commands (``stelar publish --url redis://...``) send through for URLs of those
    schemes, without a server."""


@hookspec
def stelar_register_tracers(register: Register[TracerFactory]) -> None:
    """Register a tracer: ``register(name, factory)``, ``factory(context: ProviderContext)``
    called once per server, returning a ``Tracer`` or ``None`` when the plugin's options ask
    for no tracing; at most one may serve a server. See ``stelar_core.tracing``."""


@hookspec
def stelar_register_tls(register: Register[TLSProvider]) -> None:
    """Register a TLS provider: ``register(name, TLSProvider(server=..., client=...))``.

    ``server(context: ProviderContext)`` is called once per server and returns a ``ServerTLS``
    (which socket transports ask for the ``ssl.SSLContext`` of each connection) or ``None`` when
    the plugin's options ask for no TLS; at most one provider may serve a server.
    ``client(options: ConnectOptions)`` returns the context ``wss://`` / ``tcps://`` clients
    connect with. See ``stelar_core.tls``.
    """


@hookspec
def stelar_register_http_routes(
    register: RouteRegister, context: RouteContext, server: ServerView, section: str
) -> None:
    """Register HTTP routes served by HTTP-capable transports (and the health plugin's own port).

    ``register(path, handler, methods=("GET",))``; ``handler(request: HttpRequest)`` returns an
    ``HttpResponse`` or an awaitable of one. ``context`` is a ``RouteContext``: ``server`` (a
    ``ServerView``), this plugin's ``options`` and its ``section`` (``server.config.plugin(section)``
    reads the options as they are in force). Two plugins registering one path is an error.

    ``server`` and ``section`` as arguments of their own are deprecated (``context.server``,
    ``context.section``): an implementation naming them still works, with a warning.
    """


# --------------------------------------------------------------------------- events


@hookspec
def stelar_on_rate_limit_exceeded(
    server: ServerView, client_id: str, event: str, protocol: str
) -> bool | None:
    """A client exceeded a rate limit; the message is dropped and answered with ``rate_limited``.

    Veto hook: the client is then disconnected unless any implementation returns ``False`` (or
    raises) to keep it connected. Every implementation is asked, in any order."""


@hookspec
def stelar_on_max_connections_reached(
    server: ServerView, active_connections: int, max_connections: int, ip: str, scope: str
) -> None:
    """A connection was refused by a limit. ``scope`` is ``"global"`` (``max_connections``) or
    ``"ip"`` (``max_connections_per_ip``, then ``active_connections`` counts that IP)."""


@hookspec
def stelar_on_client_join_room(
    server: ServerView, client_id: str, room: str, metadata: Mapping[str, Any]
) -> bool | None:
    """A client asks to join ``room``.

    Veto hook: any implementation returning ``False`` (or raising) rejects it (``join_rejected``),
    whatever the others answer. Every implementation is asked."""


@hookspec
def stelar_on_client_leave_room(
    server: ServerView, client_id: str, room: str, metadata: Mapping[str, Any]
) -> bool | None:
    """A client asks to leave ``room``. Not called when a disconnect removes it from its rooms.

    Veto hook: any implementation returning ``False`` (or raising) rejects it (``leave_rejected``),
    whatever the others answer. Every implementation is asked."""


@hookspec
def stelar_on_max_rooms_reached(
    server: ServerView, client_id: str, room: str, total_rooms: int, max_rooms: int
) -> None:
    """A join would create a room beyond ``max_rooms``; it was refused."""


@hookspec
def stelar_on_max_rooms_per_client_reached(
    server: ServerView, client_id: str, room: str, current_rooms: int, max_rooms: int
) -> None:
    """A join would put the client in more than ``max_rooms_per_client`` rooms; it was refused."""


@hookspec
def stelar_on_payload_too_large(
    server: ServerView, client_id: str, event: str, size: int, max_size: int
) -> None:
    """A message's payload exceeded ``max_payload_size``; it was dropped."""


@hookspec
def stelar_on_invalid_message(
    server: ServerView, client_id: str, code: str, reason: str, protocol: str
) -> None:
    """A frame broke the protocol (``code`` is the error code sent back, ``reason`` the detail)."""


@hookspec
def stelar_on_invalid_payload(server: ServerView, client_id: str, event: str, errors: list[str]) -> None:
    """A payload did not fit the type its handler declares (``def chat(ctx, msg: ChatMessage)``):
    the handler was not called and the client was answered ``invalid_payload``. ``errors`` name
    each problem as ``path: rule``. Counted as ``invalid_payloads``."""


@hookspec
def stelar_on_slow_consumer(server: ServerView, client_id: str, protocol: str, buffered_bytes: int) -> None:
    """A client stopped reading: its output stayed above ``max_buffered_bytes`` (or reached twice
    that). It is disconnected (1008, ``slow consumer``) and counted as ``slow_consumers``."""


@hookspec
def stelar_on_handler_error(server: ServerView, client_id: str, event: str, error: BaseException) -> None:
    """A handler (event, ACK, connection or disconnect) raised ``error``; it was logged, the
    connection kept and a request answered with ``handler_error``. For error reporters."""


@hookspec
def stelar_on_before_broadcast(
    server: ServerView, event: str, data: Any, exclude: Set[str], room: str | None
) -> bool | None:
    """Before ``broadcast`` / ``to(room)`` (``room`` is ``None`` for everyone).

    Veto hook: any implementation returning ``False`` (or raising) cancels it, whatever the
    others answer. Every implementation is asked."""


@hookspec
def stelar_on_client_connect(
    server: ServerView, client_id: str, ip: str, protocol: str, metadata: Mapping[str, Any]
) -> None:
    """A client finished the connect handshake."""


@hookspec
def stelar_on_presence_join(server: ServerView, room: str, key: str) -> None:
    """A presence key (a user) appeared in a presence room: its first connection joined."""


@hookspec
def stelar_on_presence_leave(server: ServerView, room: str, key: str) -> None:
    """A presence key left a presence room: its last connection left ``presence_grace`` ago."""


@hookspec
def stelar_on_session_expired(server: ServerView, client_id: str, metadata: Mapping[str, Any]) -> None:
    """A closed session was not resumed within ``recovery_window`` (or was dropped to keep
    ``max_resumable_sessions``): its client will start a new session."""


@hookspec
def stelar_on_client_disconnect(
    server: ServerView,
    client_id: str,
    ip: str,
    protocol: str,
    rooms: Set[str],
    code: int,
    reason: str,
) -> None:
    """A connected client is gone; ``rooms`` are those it was in."""


@hookspec
def stelar_on_server_started(server: ServerView) -> None:
    """All transports listen."""


@hookspec
def stelar_on_server_stopping(server: ServerView) -> None:
    """``stop()`` began; transports still run."""


@hookspec
def stelar_on_tls_handshake_failed(
    server: ServerView, ip: str, protocol: str, category: str, reason: str
) -> None:
    """A TLS handshake on a socket transport did not complete; no connection was made.

    ``category``: ``client_certificate`` (a client certificate required and not sent, or one that
    does not verify against ``ca_file``: an mTLS refusal), ``timeout`` (not complete within
    ``connect_timeout``), ``overload`` (too many handshakes in progress) or ``error`` (anything
    else, e.g. plaintext sent to a TLS port); ``reason`` says what happened. Counted in
    ``get_stats().tls_handshake_failures``."""


@hookspec
def stelar_on_degraded(server: ServerView, component: str, reason: str) -> None:
    """A component now works only in part: e.g. ``component="redis"`` when the broker lost its
    Redis connection (local delivery goes on; messages to other nodes are dropped and counted).
    Health reports ``"status": "degraded"`` until :func:`stelar_on_restored`."""


@hookspec
def stelar_on_restored(server: ServerView, component: str, seconds: float) -> None:
    """A degraded component works fully again, after ``seconds``."""
