"""``StelarServer``: the public face of the hub, its transports and its plugins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

import attrs
import cattrs

from stelar_core import compiled, logs, tracing
from stelar_core.config import RESTART_OPTIONS, RateLimit, ServerConfig, is_secret, merge_options, read_toml
from stelar_core.errors import ConfigError
from stelar_core.eventloop import loop_name
from stelar_core.eventloop import run as run_loop
from stelar_core.hub import ClientInfo, Hub, Stats
from stelar_core.hub.emitter import ServerEmitter
from stelar_core.hub.handlers import Described, HandlerRegistry
from stelar_core.hub.middleware import Middleware
from stelar_core.hub.ratelimit import RateLimitPolicy
from stelar_core.plugins.manager import USER_HOOKS_PLUGIN, StelarPluginManager, user_hooks_plugin
from stelar_core.plugins.options import OptionTable, section_name
from stelar_core.plugins.registry import ProviderRegistry, call_each_plugin
from stelar_core.plugins.routes import RouteContext, RouteTable
from stelar_core.server.assembly import Assembly, check_plugin_option_names, split_options
from stelar_core.server.cluster import Cluster
from stelar_core.server.signals import on_shutdown_signal
from stelar_core.server.view import PluginView
from stelar_core.tracing import Tracer
from stelar_core.transports.base import HttpRoute, Transport
from stelar_core.values import Options

H = TypeVar("H", bound=Callable[..., Any])
LISTENING_LOGGER = "stelar.server.listening"


class StelarServer(ServerEmitter):
    """One server: any number of transports sharing rooms, handlers, limits and stats.

    ``StelarServer(**options)`` takes the core's options (:class:`ServerConfig`), each installed
    plugin's section (``ws={...}``, ``redis={...}``) and the plugins' short forms (``port``,
    ``tcp_port``, ``allowed_origins``...); or pass a built ``config`` (options then override it).
    ``plugins`` are registered after the installed ones.
    """

    def __init__(
        self, config: ServerConfig | None = None, *, plugins: Iterable[object] = (), **options: Any
    ) -> None:
        assembly = Assembly(config, plugins, options)
        config = assembly.config
        self._logging = logs.ServerLogging(config.logger)
        self._log = self._logging.get("stelar.server")
        self._config = config
        self.plugin_manager: StelarPluginManager = assembly.pm
        self.options: OptionTable = assembly.options
        self.providers: dict[str, ProviderRegistry[Any]] = assembly.providers
        self._assembly = assembly
        self._limiter_factory = assembly.limiter_factory()
        # What hooks and HTTP routes receive as ``server``.
        self.view = PluginView(self)
        self.cluster = Cluster(self)
        # The rate-limit policy is the server's: it changes it for set_*_rate_limit and update_config.
        self._limits = RateLimitPolicy(
            self._limiter_factory,
            assembly.global_limiter(self._limiter_factory, config),
            config.event_rate_limits,
        )
        # So is the handler registry: on(), on_ack(), use() fill it.
        self._handlers = HandlerRegistry()
        tracer = assembly.tracer()
        self.hub = Hub(
            self.view,
            config,
            self.plugin_manager,
            limits=self._limits,
            handlers=self._handlers,
            ip_tracker=assembly.ip_tracker(),
            id_generator=assembly.id_generator(),
            broker=assembly.broker(),
            http_routes=self._collect_http_routes(tracer),
            clock=config.clock,
            logging_=self._logging,
            tracer=tracer,
        )
        # Built now, so that a bad option of a transport (an unreadable certificate) fails here;
        # they listen only from start().
        self.transports: list[Transport] = assembly.transports(self.hub)
        self._running = False
        self._state = "stopped"
        self._unsubscribe_signals: Callable[[], None] | None = None
        self._signal_stop: asyncio.Future[None] | None = None
        self._closed: asyncio.Event | None = None
        # Set once start() has returned (for applications awaiting serve_forever in a task).
        self.started = asyncio.Event()

    @classmethod
    def from_toml(cls, path: str | Path, *, plugins: Iterable[object] = (), **overrides: Any) -> StelarServer:
        """A server from a TOML file (``[stelar]`` and its plugin tables); ``overrides`` win."""
        return cls(plugins=plugins, **merge_options(read_toml(path), overrides))

    def _collect_http_routes(self, tracer: Tracer | None) -> dict[str, HttpRoute]:
        # Routes registered traced=True are processed in a scope of the tracer's, if any.
        table = RouteTable(tracer, lambda: self.hub.count(tracing.INVALID_CONTEXT))

        def arguments(plugin: str) -> dict[str, Any]:
            section = section_name(plugin)
            options = self._config.plugins.get(section) or Options(section, {})
            context = RouteContext(self.view, options, section)
            return {
                "register": table.registrar(plugin),
                "context": context,
                "server": self.view,
                "section": section,
            }

        call_each_plugin(self.plugin_manager, "stelar_register_http_routes", arguments)
        return table.routes

    # ------------------------------------------------------------------ registration

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H) -> H: ...
    def on(self, event: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Handle ``event``: ``server.on("chat", fn)`` or ``@server.on("chat")``.

        ``fn(ctx)`` reads the payload as ``ctx.data``. A typed handler, ``fn(ctx, msg:
        ChatMessage)``, gets it structured into its type first (attrs classes, dataclasses,
        TypedDicts, plain types); one that does not fit is answered ``invalid_payload`` and the
        handler is not called (``docs/typed-events.md``)."""
        if not event or not isinstance(event, str):
            raise ValueError(f"event name must be a non-empty string, got {event!r}")

        def add(fn: H) -> H:
            self._handlers.add_event(event, fn)
            return fn

        return add if handler is None else add(handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove one handler of ``event``, or all of them."""
        self._handlers.remove_event(event, handler)

    def on_any(self, handler: H) -> H:
        """Handle every event (after its own handlers); usable as a decorator."""
        self._handlers.add_any(handler)
        return handler

    def on_connection(self, handler: H) -> H:
        """Called with the client's ``ctx`` once its connect handshake is accepted."""
        self._handlers.add_connection(handler)
        return handler

    def on_disconnect(self, handler: H) -> H:
        """Called with ``ctx`` (``ctx.data`` is ``{"code", "reason"}``) when a client has gone."""
        self._handlers.add_disconnect(handler)
        return handler

    @overload
    def on_ack(self, name: str, *, concurrent: bool = False) -> Callable[[H], H]: ...
    @overload
    def on_ack(self, name: str, handler: H, *, concurrent: bool = False) -> H: ...
    def on_ack(
        self, name: str, handler: H | None = None, *, concurrent: bool = False
    ) -> H | Callable[[H], H]:
        """Answer requests named ``name``: the handler's return value is the reply, an exception
        becomes an error reply. One handler per name (a new one replaces the old). Typed as
        ``on`` is: ``fn(ctx, q: UserQuery) -> User`` checks the request and unstructures the answer.

        A client's messages are handled in order: its next message waits until an async handler
        has answered. ``concurrent=True`` lets this handler's requests run side by side with that
        client's later messages (at most ``max_concurrent_requests`` per client; past that, the
        client's messages wait for a place), for requests that do not depend on each other."""
        if not name or not isinstance(name, str):
            raise ValueError(f"request name must be a non-empty string, got {name!r}")

        def add(fn: H) -> H:
            self._handlers.set_ack(name, fn, concurrent=concurrent)
            return fn

        return add if handler is None else add(handler)

    def emits(self, event: str, payload: Any, *, description: str = "") -> None:
        """Declare an event this server sends to clients, with its payload's type: it has no
        handler to read it from, and the AsyncAPI document (``stelar asyncapi``) and the
        TypeScript declarations made from it describe it (``docs/typed-events.md``)."""
        if not event or not isinstance(event, str):
            raise ValueError(f"event name must be a non-empty string, got {event!r}")
        self._handlers.declare_emit(event, payload, description)

    def described_events(self) -> list[Described]:
        """Every event and request its handlers take and every event declared with ``emits``,
        with their types, in registration order (what ``asyncapi`` documents)."""
        return self._handlers.described()

    @property
    def converter(self) -> cattrs.Converter:
        """The cattrs converter typed handlers structure payloads with: register hooks on it for
        types of your own (``server.converter.register_structure_hook(Money, ...)``)."""
        return self._handlers.converter

    def use(self, middleware: Middleware) -> Middleware:
        """Add connection middleware ``fn(ctx, next)``; usable as a decorator."""
        self._handlers.add_middleware(middleware)
        return middleware

    # ------------------------------------------------------------------ sending
    # broadcast, broadcast_binary, to, to_binary, to_id, to_id_binary, request, disconnect:
    # ServerEmitter's, the one implementation the plugins' ServerView and ctx share.

    def _target(self) -> Hub:
        return self.hub

    # ------------------------------------------------------------------ information

    def get_clients(self, room: str | None = None) -> list[ClientInfo]:
        """This node's clients (``await server.cluster.get_clients()`` for every node's)."""
        return self.hub.get_clients(room)

    def get_room_members(self, room: str) -> list[str]:
        return self.hub.get_room_members(room)

    def get_rooms(self) -> list[str]:
        return self.hub.get_rooms()

    def presence(self, room: str) -> dict[str, Any]:
        """The members of presence room ``room`` on this server, by presence key, with their
        state (docs/presence.md)."""
        return self.hub.presence.members(room)

    def get_presence_count(self, room: str) -> int:
        return self.hub.presence.count(room)

    def get_stats(self) -> Stats:
        return self.hub.stats({transport.name: transport.stats() for transport in self.transports})

    @property
    def addresses(self) -> dict[str, list[str]]:
        """Where each transport can be reached, as URLs (empty lists until started)."""
        return {transport.name: list(transport.addresses) for transport in self.transports}

    def get_port(self, transport: str | None = None) -> int | None:
        """The bound port of ``transport`` (default: the first one that has a port)."""
        for running in self.transports:
            if transport is not None and running.name != transport:
                continue
            for url in running.addresses:
                port = urlsplit(url).port
                if port is not None:
                    return port
        return None

    @property
    def running(self) -> bool:
        return self._running

    @property
    def state(self) -> str:
        """``"stopped"``, ``"starting"``, ``"running"`` or ``"stopping"``."""
        return self._state

    @property
    def accepting(self) -> bool:
        """Started and taking new connections: false before start and from the moment stop()
        begins (what a readiness probe reports)."""
        return self._running and self.hub.accepting

    # ------------------------------------------------------------------ rate limits

    def set_client_rate_limit(self, client_id: str, limit: RateLimit | dict[str, Any]) -> None:
        """Give one client its own limit (takes priority over per-event and global limits)."""
        coerced = RateLimit.coerce(limit, "limit")
        assert coerced is not None
        self._limits.set_client_limit(client_id, coerced)

    def remove_client_rate_limit(self, client_id: str) -> bool:
        return self._limits.remove_client_limit(client_id)

    def set_event_rate_limit(self, event: str, limit: RateLimit | dict[str, Any]) -> None:
        coerced = RateLimit.coerce(limit, "limit")
        assert coerced is not None
        self._limits.set_event_limit(event, coerced)

    def remove_event_rate_limit(self, event: str) -> bool:
        return self._limits.remove_event_limit(event)

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> ServerConfig:
        return self._config

    def update_config(self, **options: Any) -> None:
        """Change options on the running server, all or nothing: core options, a plugin's section
        (``update_config(ws={"allowed_origins": [...]})``) or a short form.

        Options that shape listeners, providers or plugins (``RESTART_OPTIONS``, and plugin
        options declared with ``restart=True``) are refused: they take a new server. Lowering a
        limit applies to what comes next and drops nobody.
        """
        core, rest = split_options(options)
        check_plugin_option_names(self.options, rest)
        given = self.options.given(rest)
        needs_restart = sorted(
            [name for name in core if name in RESTART_OPTIONS]
            + [f"{section}.{name}" for section, name in given if self.options.sections[section][name].restart]
        )
        if needs_restart:
            raise ConfigError(
                f"options {', '.join(needs_restart)} cannot change on a built server; "
                "create a new server with them"
            )
        new = attrs.evolve(self._config, **core, plugins=self.options.apply(self._config.plugins, given))
        global_limiter = self._limits.global_limiter
        if "rate_limit" in options:
            global_limiter = self._assembly.global_limiter(self._limiter_factory, new)
        new_hooks_plugin = user_hooks_plugin(new.hooks) if "hooks" in options and new.hooks else None
        # Everything is validated and built; now commit.
        if "hooks" in options:
            pm = self.plugin_manager
            if pm.has_plugin(USER_HOOKS_PLUGIN):
                pm.unregister(name=USER_HOOKS_PLUGIN)
            if new_hooks_plugin is not None:
                pm.register(new_hooks_plugin, name=USER_HOOKS_PLUGIN)
        self._limits.global_limiter = global_limiter
        if "event_rate_limits" in options:
            for event in list(self._limits.event_limits):
                self._limits.remove_event_limit(event)
            for event, limit in new.event_rate_limits.items():
                self._limits.set_event_limit(event, limit)
        if "logger" in options:
            self._logging.apply(new.logger)
        self._config = new
        self.hub.reconfigure(new)

    def get_config(self) -> dict[str, Any]:
        """The options in force, secrets redacted: the core's, each plugin's section (and the
        short forms, as the seed names them), plus what was changed at run time."""
        data = self._config.redacted()
        for section, values in self._config.plugins.items():
            specs = self.options.sections.get(section, {})
            shown = {}
            for name, value in values.items():
                spec = specs.get(name)
                if spec is not None and (spec.secret or is_secret(name)) and value is not None:
                    value = "***"
                shown[name] = _plain(value)
            data[section] = shown
        for short, claimed in self.options.shorts.items():
            data.setdefault(short, data[claimed[0].section][claimed[0].name])
        data["has_custom_rate_limiter"] = not isinstance(self._config.rate_limiter, str)
        data["client_rate_limits"] = {
            client: attrs.asdict(limit) for client, limit in self._limits.client_limits.items()
        }
        data["event_rate_limits"] = {
            event: attrs.asdict(limit) for event, limit in self._limits.event_limits.items()
        }
        return data

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every transport; returns once all listen."""
        if self._running:
            raise RuntimeError("server already running")
        self._state = "starting"
        await self._assembly.resources.start()
        started: list[Transport] = []
        try:
            await self.hub.start()
            for transport in self.transports:
                await transport.start()
                started.append(transport)
        except BaseException:
            for transport in reversed(started):
                await transport.stop()
            await self.hub.stop(0)
            await self._assembly.resources.stop()
            self._state = "stopped"
            raise
        self._running = True
        self._state = "running"
        self._closed = asyncio.Event()
        self.started.set()
        if self._config.graceful_shutdown:
            self._install_signal_handlers()
        self.hub.serving()
        # A logger of its own, so that a front end printing these lines itself (``stelar serve``)
        # can quiet it without quieting the rest.
        listening = self._logging.get(LISTENING_LOGGER)
        for name, urls in self.addresses.items():
            listening.info(
                "transport %s listening on %s (event loop: %s; hot path: %s)",
                name,
                ", ".join(urls) or "(no address)",
                loop_name(asyncio.get_running_loop()),
                compiled.describe(),
            )

    async def stop(self) -> None:
        """Graceful shutdown, in this order: readiness turns 503 and listeners close (no new
        connections); handlers already running finish and answer their ACKs; every client gets
        a going-away disconnect (WebSocket 1001 / a TCP disconnect frame); clients have up to
        ``shutdown_timeout`` to leave, then the rest are closed; tasks and timers are cancelled
        and the signal handlers that were there before are restored."""
        if not self._running:
            return
        self._running = False
        self._state = "stopping"
        self._restore_signal_handlers()
        self.hub.stop_accepting()
        for transport in self.transports:
            await transport.stop_accepting()
        await self.hub.stop(self._config.shutdown_timeout)
        for transport in reversed(self.transports):
            await transport.stop()
        await self._assembly.resources.stop()
        self._state = "stopped"
        self.started.clear()
        if self._closed is not None:
            self._closed.set()

    async def serve_forever(self) -> None:
        """Start (unless running) and return once the server has stopped: by ``stop()``, or by
        SIGINT/SIGTERM when ``graceful_shutdown=True`` (as ``asyncio.Server.serve_forever``)."""
        if not self._running:
            await self.start()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once a started server has stopped (at once if it is not running)."""
        if self._closed is not None:
            await self._closed.wait()

    async def __aenter__(self) -> StelarServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def run(self, *, event_loop: str = "auto") -> None:
        """Start, serve until SIGINT or SIGTERM, stop. For scripts; blocks. ``event_loop``:
        "auto" (uvloop when installed), "uvloop" or "asyncio"."""

        async def serve() -> None:
            stopped = asyncio.Event()
            # Subscribed first: a signal arriving while transports start must still stop cleanly.
            unsubscribe = on_shutdown_signal(stopped.set)
            try:
                await self.start()
                await stopped.wait()
            finally:
                unsubscribe()
                await self.stop()

        run_loop(serve(), event_loop=event_loop)

    def _install_signal_handlers(self) -> None:
        self._unsubscribe_signals = on_shutdown_signal(self._stop_on_signal)

    def _stop_on_signal(self) -> None:
        # Not a hub task: the hub's stop waits for its own tasks, and this one runs that stop.
        self._signal_stop = asyncio.ensure_future(self.stop())

    def _restore_signal_handlers(self) -> None:
        if self._unsubscribe_signals is not None:
            self._unsubscribe_signals()
            self._unsubscribe_signals = None


def _plain(value: Any) -> Any:
    """An option's value as ``get_config`` shows it: attrs classes as dicts, functions by name."""
    if attrs.has(type(value)):
        return {k: "***" if is_secret(k) else v for k, v in attrs.asdict(value).items()}
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    return value
