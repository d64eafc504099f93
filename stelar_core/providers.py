"""The providers a plugin can supply, with one typed contract for all of them.

Every kind is registered the same way, from its ``stelar_register_*`` hook::

    @hookimpl
    def stelar_register_rate_limiters(register):
        register("redis", make_limiter)          # make_limiter(context: LimiterContext)

and every factory is called with one argument, a *context*: the server's configuration, the
registering plugin's own validated options (its section) and what the kind needs besides (the
``RateLimit`` for a limiter, the hub for a transport). What a factory returns, and any object
passed directly (``ip_tracker=MyTracker()``), is checked against its protocol when the server is
built (:func:`check_provider`).

Protocol methods may be plain or ``async``: the hub awaits a returned awaitable and takes the
fast path when the result is plain, so an in-process provider costs no ``await`` per message.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import attrs

from stelar_core.config import RateLimit, ServerConfig
from stelar_core.errors import ConfigError
from stelar_core.protocol.publications import Position
from stelar_core.room_policies import RoomPolicy
from stelar_core.transports.base import Connector, HubPort, Transport
from stelar_core.values import ClientInfo, Options, Stats

if TYPE_CHECKING:
    from stelar_core.clock import Clock
    from stelar_core.plugins.options import OptionSpec  # noqa: F401
    from stelar_core.tls import ServerTLS

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
F_contra = TypeVar("F_contra", contravariant=True)
MaybeAwaitable: TypeAlias = "T | Awaitable[T]"


async def resolve(value: MaybeAwaitable[T]) -> T:
    """Await ``value`` if it is awaitable (for the slow path of a maybe-async provider)."""
    if inspect.isawaitable(value):
        return await value
    return value


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class RateLimiter(Protocol):
    """The seed's ``IRateLimiter``. ``key`` is a client ID."""

    def check(self, key: str) -> MaybeAwaitable[bool]:
        """Take one point for ``key``; ``False`` when it has none left."""

    def reset(self, key: str) -> MaybeAwaitable[None]:
        """Forget ``key`` (called when a client disconnects)."""

    def cleanup(self) -> MaybeAwaitable[None]:
        """Drop expired entries (called on every heartbeat sweep)."""

    def size(self) -> MaybeAwaitable[int]:
        """Entries held (``rate_limiter_entries`` in the stats)."""


@runtime_checkable
class IPTracker(Protocol):
    """The seed's ``IIPTracker``: open connections per IP address."""

    def check(self, ip: str, limit: int) -> MaybeAwaitable[bool]:
        """Whether ``ip`` may open one more connection (``limit`` is ``max_connections_per_ip``).
        A tracker that also keeps a limit of its own across nodes (stelar-redis's cluster-wide
        ``max_connections``) raises ``LimitReached`` for it: the hub counts and reports it."""

    def add(self, ip: str) -> MaybeAwaitable[None]: ...

    def remove(self, ip: str) -> MaybeAwaitable[None]: ...

    def count(self, ip: str) -> MaybeAwaitable[int]: ...


class Problems:
    """What is wrong with a plugin's component, by where (``"commands"``, ``"pubsub"``...), as
    the one reason ``BrokerPort.set_degraded`` takes: a broker records each problem as it comes
    and goes and reports the summary when it changed."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._items)

    def record(self, where: str, reason: str | None) -> bool:
        """Record (or clear, ``None``) the problem with ``where``; whether the summary changed."""
        if reason is None:
            return self._items.pop(where, None) is not None
        if self._items.get(where) == reason:
            return False
        self._items[where] = reason
        return True

    @property
    def summary(self) -> str | None:
        """``where: reason; ...`` sorted by where, or None when nothing is wrong."""
        return "; ".join(f"{where}: {reason}" for where, reason in sorted(self._items.items())) or None


@attrs.frozen(slots=True)
class Delivery:
    """One emit on its way to recipients: an encoded frame and who gets it.

    ``client_id`` set: that client. Else ``room`` set: the room's members. Else: everyone.
    ``exclude`` names clients that must not receive it.

    ``history`` set (the room keeps history): the broker gives the message the room's next
    position, stores it and delivers it as a publication frame (``encode_publication``) with
    ``position`` set, on every node in the order of the positions.

    ``trace`` set (a tracing plugin records the send): the W3C traceparent of the send, which a
    broker carries as it is to every node that delivers the message.
    """

    frame: bytes
    room: str | None = None
    client_id: str | None = None
    exclude: frozenset[str] = frozenset()
    history: RoomPolicy | None = None
    position: Position | None = None
    trace: str | None = None


@attrs.frozen(slots=True)
class HistoryPage:
    """A read of a room's history: its current ``position`` (the last offset given, in the
    current epoch; offset 0 when nothing was published) and the publications after the offset
    asked for, oldest first, as ``(offset, publication frame)``."""

    position: Position
    publications: tuple[tuple[int, bytes], ...] = ()


@runtime_checkable
class HistoryStore(Protocol):
    """Where a broker keeps the rooms' histories (``broker.history``); any node reads any room."""

    def read(
        self, room: str, policy: RoomPolicy, after: int | None, limit: int
    ) -> MaybeAwaitable[HistoryPage]:
        """The room's position and at most ``limit`` publications with offsets above ``after``
        (none when ``after`` is None). A room never published to gets its epoch here."""


@attrs.frozen(slots=True)
class SessionRecord:
    """A closed session its client may resume on another node (``broker.sessions``): what the
    new connection takes over."""

    id: str
    metadata: dict[str, Any]
    rooms: frozenset[str]
    received: int  # events and requests handled in the session
    answers: dict[int, bytes]  # the last answers to its requests, by ack id (encoded frames)


@runtime_checkable
class SessionStore(Protocol):
    """Where a broker shares closed sessions with the other nodes, so that a client resumes on
    any of them within ``recovery_window``. Entries are keyed by session and token: a wrong token
    finds nothing and removes nothing."""

    def keep(self, record: SessionRecord, token: str, ttl: float) -> None:
        """Share ``record`` for ``ttl`` seconds (in the background: the hub does not wait)."""

    async def take(self, session_id: str, token: str) -> SessionRecord | None:
        """The record, removed (a session is resumed once), or None."""

    def forget(self, session_id: str, token: str) -> None:
        """The session was resumed on its own node: remove the shared copy (in the background)."""


@runtime_checkable
class PresenceStore(Protocol):
    """Where a broker shares presence between nodes (``broker.presence``): each node writes its
    own members of each presence room (in the background), and reads every live node's. A node
    that dies takes its members with it when its registration expires."""

    def write(self, room: str, key: str, state: Any, stamp: float) -> None:
        """This node's member ``key`` of ``room`` has ``state``, set at ``stamp`` (epoch seconds:
        with a key on several nodes, the latest state is the member's)."""

    def remove(self, room: str, key: str) -> None: ...

    def read(self, room: str) -> Awaitable[dict[str, tuple[float, Any]]]:
        """Every live node's members of ``room``, by key: the latest ``(stamp, state)``."""


class MembershipWatcher(Protocol):
    """Told of every change in who is connected here and which rooms they are in (a broker that
    shares membership across nodes watches; see :meth:`BrokerPort.watch`). Called synchronously
    on the hub's path: record the change and return, do I/O later."""

    def client_opened(self, info: ClientInfo) -> None:
        """A client finished its handshake on this node."""

    def client_closed(self, client_id: str) -> None:
        """A client of this node is gone (it has left its rooms first)."""

    def client_updated(self, info: ClientInfo) -> None:
        """An open client's metadata changed (``ctx.set_metadata``)."""

    def room_joined(self, client_id: str, room: str, first: bool) -> None:
        """``first``: the room had no member on this node before."""

    def room_left(self, client_id: str, room: str, last: bool) -> None:
        """``last``: the room has no member left on this node."""


@runtime_checkable
class BrokerPort(Protocol):
    """The hub as a broker sees it: deliver what arrives, and act on this node's clients for
    other nodes (answer their requests, disconnect, report who is here)."""

    @property
    def clock(self) -> Clock: ...

    def deliver(self, delivery: Delivery) -> None:
        """Write ``delivery`` to its recipients connected to this node."""

    def has_client(self, client_id: str) -> bool: ...

    def clients(self) -> list[ClientInfo]:
        """This node's clients, for a broker that (re)writes shared membership."""

    async def ask(self, client_id: str, event: str, data: Any, timeout: float | None) -> Any:
        """Send a request to a client of this node and return its answer (raises ``AckError``,
        ``AckTimeout``, ``NotConnected`` as ``server.request`` does)."""

    def disconnect(self, client_id: str, code: int, reason: str) -> bool: ...

    def join(self, client_id: str, room: str) -> tuple[str, str] | None:
        """Put a client of this node in ``room`` for another node (the emitter, the server API),
        with the limits and hooks of a join; ``(code, message)`` when refused or not here."""

    def leave(self, client_id: str, room: str) -> tuple[str, str] | None: ...

    def stats(self) -> Stats:
        """This node's statistics."""

    def watch(self, watcher: MembershipWatcher) -> None:
        """Be told of every membership change from now on (one watcher per hub)."""

    def set_degraded(self, component: str, reason: str | None) -> None:
        """Say that ``component`` works only in part (``reason``), or again fully (``None``):
        health turns ``degraded`` and the ``on_degraded`` / ``on_restored`` hooks run."""

    def count(self, counter: str, amount: int = 1) -> None: ...

    def logger(self, name: str) -> logging.Logger: ...


@runtime_checkable
class Broker(Protocol):
    """The delivery seam. Every ``broadcast``, ``to(room)`` and ``to_id`` is published here; the
    broker hands it to ``port.deliver`` on every node that should see it (the local one
    included). A broker shared by several processes (e.g. over Redis) makes them act as one
    server; it also implements :class:`ClusterBroker`.

    A broker that subscribes per room (stelar-redis) may also offer ``room_ready(room)``: None
    when this node already receives what is published to ``room``, else an awaitable that
    resolves once it does (bounded by the broker: it never raises). The hub answers a join only
    then, so that nothing published after a client's ``join_room`` returned can miss it."""

    async def start(self, port: BrokerPort) -> None: ...

    def publish(self, delivery: Delivery) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class ClusterBroker(Broker, Protocol):
    """A broker joining several nodes also reaches clients connected elsewhere and reads the
    cluster's shared state (``server.cluster``)."""

    @property
    def node_id(self) -> str: ...

    async def request(self, client_id: str, event: str, data: Any, timeout: float) -> Any:
        """Ask a client connected to another node (``NotConnected`` if none has it)."""

    async def disconnect(self, client_id: str, code: int, reason: str) -> bool:
        """Disconnect a client of another node; whether one had it."""

    async def send(self, client_id: str, frame: bytes) -> bool:
        """Deliver ``frame`` to a client of another node; whether one had it."""

    async def membership(self, client_id: str, room: str, join: bool) -> bool:
        """Make a client of another node join (or leave) ``room``; whether a node had it (its
        node applies the limits and hooks of a join there)."""

    async def clients(self, room: str | None) -> list[ClientInfo]: ...

    async def room_members(self, room: str) -> list[str]: ...

    async def rooms(self) -> list[str]: ...

    async def node_stats(self) -> dict[str, dict[str, Any]]:
        """Each live node's last published statistics (``Stats.to_dict()``), by node ID."""


class IdGenerator(Protocol):
    def __call__(self) -> str: ...


# --------------------------------------------------------------------------- contexts


class Resources:
    """Objects the providers of one server share, such as one connection pool for a plugin's
    broker, rate limiter and IP tracker: ``context.resources.get("redis", make_link)``.

    A resource with ``async start()`` / ``async stop()`` methods is started before the hub (and
    its broker) starts and stopped after it has stopped, in reverse order of creation."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get(self, key: str, factory: Callable[[], T]) -> T:
        """The resource ``key``, made by ``factory()`` the first time it is asked for."""
        if key not in self._items:
            self._items[key] = factory()
        value: T = self._items[key]
        return value

    async def start(self) -> None:
        for item in self._items.values():
            start = getattr(item, "start", None)
            if start is not None:
                await start()

    async def stop(self) -> None:
        for item in reversed(self._items.values()):
            stop = getattr(item, "stop", None)
            if stop is not None:
                await stop()


@attrs.frozen(slots=True)
class ProviderContext:
    """What every factory receives. ``options`` are the registering plugin's own, validated;
    ``section`` is their name in the configuration (``config.plugin(section)`` reads them live);
    ``resources`` are shared by the providers of this server."""

    config: ServerConfig
    options: Options
    section: str
    resources: Resources = attrs.field(factory=Resources)


@attrs.frozen(slots=True)
class LimiterContext(ProviderContext):
    """A rate limiter's context: ``limit`` is the policy this limiter enforces (the global
    ``rate_limit``, a per-event or a per-client limit; the server builds one limiter per policy)
    and ``scope`` names it (``"global"``, ``"event:<name>"``, ``"client:<id>"``), for a backend
    that keeps the buckets of all policies in one store."""

    limit: RateLimit = attrs.field(kw_only=True)
    scope: str = attrs.field(kw_only=True, default="global")


@attrs.frozen(slots=True)
class TransportContext(ProviderContext):
    """A transport's context: ``hub`` is its side of the hub/transport seam; ``tls`` the
    server's TLS (``None`` when no TLS provider is configured), which a socket transport asks
    for the context of each connection it accepts (``stelar_core.tls``)."""

    hub: HubPort = attrs.field(kw_only=True)
    tls: ServerTLS | None = attrs.field(kw_only=True, default=None)


class Factory(Protocol[F_contra, T_co]):
    def __call__(self, context: F_contra, /) -> T_co: ...


class Register(Protocol[F_contra]):
    """The ``register`` callable a provider hook receives: ``register(name, factory)``."""

    def __call__(self, name: str, factory: F_contra, /) -> None: ...


RateLimiterFactory = Factory[LimiterContext, RateLimiter]
IPTrackerFactory = Factory[ProviderContext, IPTracker]
IdGeneratorFactory = Factory[ProviderContext, Callable[[], str]]
BrokerFactory = Factory[ProviderContext, Broker]


@attrs.frozen(slots=True)
class TransportProvider:
    """What a transport plugin registers: the server side's factory and the client side.

    ``schemes`` are the URL schemes ``connector`` opens (``ws``, ``wss``). ``listen_option`` names
    the option of the plugin's section that says where it listens (``port`` for ws and tcp, a
    socket ``path``...): when ``transports`` is not given, the transport starts if that option is
    set (not ``None``). ``serve_default`` is the value ``stelar serve`` gives it when no listener
    is named on its command line (ws 3000, tcp 3001; ``None``: not started by default).
    ``order`` places it among the transports started (lower first)."""

    factory: Factory[TransportContext, Transport]
    connector: Connector | None = None
    schemes: tuple[str, ...] = ()
    listen_option: str | None = None
    serve_default: Any = None
    order: int = 100

    def __call__(self, context: TransportContext) -> Transport:
        return self.factory(context)

    def listens(self, options: Options) -> bool:
        """Whether its section asks for it to start."""
        return self.listen_option is not None and options.get(self.listen_option) is not None


class ClusterEmitter(Protocol):
    """Sending into a cluster from code that runs no server, synchronously (an emitter, such as
    stelar-redis's ``SyncEmitter``): what ``stelar publish``, ``kick`` and ``rooms`` use."""

    def to(self, room: str, event: str, data: Any = None, exclude: Any = None) -> None: ...

    def disconnect(self, client_id: str, code: int = ..., reason: str = "") -> bool: ...

    def get_rooms(self) -> list[str]: ...

    def close(self) -> None: ...


@attrs.frozen(slots=True)
class EmitterProvider:
    """What a broker plugin registers for its emitter: ``open(url, prefix)`` connects one to the
    cluster at ``url`` (one of ``schemes``) whose keys start with ``prefix``."""

    open: Callable[[str, str], ClusterEmitter]
    schemes: tuple[str, ...]

    def __call__(self, url: str, prefix: str) -> ClusterEmitter:
        return self.open(url, prefix)


# --------------------------------------------------------------------------- conformance


def _expected(protocol: type, name: str) -> tuple[inspect.Signature, int]:
    """A protocol method's signature (without ``self``) and how many arguments the hub passes."""
    signature = inspect.signature(getattr(protocol, name))
    parameters = list(signature.parameters.values())[1:]
    passed = sum(1 for p in parameters if p.default is p.empty and p.kind <= p.POSITIONAL_OR_KEYWORD)
    return signature.replace(parameters=parameters), passed


def _protocol_methods(protocol: type) -> list[str]:
    return [
        name
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and (not name.startswith("_") or name == "__call__")
    ]


def check_provider(value: Any, protocol: type, kind: str, option: str) -> None:
    """Fail with :class:`ConfigError` unless ``value`` can be called as the hub calls a
    ``protocol``: every method present, callable with the arguments the hub passes."""
    for name in _protocol_methods(protocol):
        expected, passed = _expected(protocol, name)
        shown = f"{name}{expected}" if name != "__call__" else f"a callable {expected}"
        method = value if name == "__call__" else getattr(value, name, None)
        if not callable(method):
            raise ConfigError(
                f"option {option!r}: the {kind} {type(value).__name__} has no method {name}; expected {shown}"
            )
        try:
            actual = inspect.signature(method)
        except (TypeError, ValueError):
            continue  # a builtin without a signature: nothing to compare
        try:
            actual.bind(*range(passed))
        except TypeError:
            raise ConfigError(
                f"option {option!r}: the {kind} {type(value).__name__}.{name}{actual} cannot be "
                f"called as the hub calls it; expected {shown}"
            ) from None
