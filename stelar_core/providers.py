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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import attrs

from stelar_core.config import RateLimit, ServerConfig
from stelar_core.errors import ConfigError
from stelar_core.plugins.options import Options
from stelar_core.transports.base import Connector, HubPort, Transport

if TYPE_CHECKING:
    from stelar_core.plugins.options import OptionSpec  # noqa: F401

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
        """Whether ``ip`` may open one more connection (``limit`` is ``max_connections_per_ip``)."""

    def add(self, ip: str) -> MaybeAwaitable[None]: ...

    def remove(self, ip: str) -> MaybeAwaitable[None]: ...

    def count(self, ip: str) -> MaybeAwaitable[int]: ...


@attrs.frozen(slots=True)
class Delivery:
    """One emit on its way to recipients: an encoded frame and who gets it.

    ``client_id`` set: that client. Else ``room`` set: the room's members. Else: everyone.
    ``exclude`` names clients that must not receive it.
    """

    frame: bytes
    room: str | None = None
    client_id: str | None = None
    exclude: frozenset[str] = frozenset()


@runtime_checkable
class Broker(Protocol):
    """The delivery seam. Every ``broadcast``, ``to(room)`` and ``to_id`` is published here; the
    broker hands it to ``deliver`` on every node that should see it (the local one included).
    A broker shared by several processes (e.g. over Redis) makes them act as one server."""

    async def start(self, deliver: Callable[[Delivery], Any]) -> None: ...

    def publish(self, delivery: Delivery) -> None: ...

    async def stop(self) -> None: ...


class IdGenerator(Protocol):
    def __call__(self) -> str: ...


# --------------------------------------------------------------------------- contexts


@attrs.frozen(slots=True)
class ProviderContext:
    """What every factory receives. ``options`` are the registering plugin's own, validated;
    ``section`` is their name in the configuration (``config.plugin(section)`` reads them live)."""

    config: ServerConfig
    options: Options
    section: str


@attrs.frozen(slots=True)
class LimiterContext(ProviderContext):
    """A rate limiter's context: ``limit`` is the policy this limiter enforces (the global
    ``rate_limit``, a per-event or a per-client limit; the server builds one limiter per policy)."""

    limit: RateLimit


@attrs.frozen(slots=True)
class TransportContext(ProviderContext):
    """A transport's context: ``hub`` is its side of the hub/transport seam."""

    hub: HubPort


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
