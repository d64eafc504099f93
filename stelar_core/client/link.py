"""The client's link to the server: connecting, the handshake, reconnecting with backoff and
full jitter after a loss, and the heartbeat watchdog that declares a silent server gone.

:class:`LinkKeeper` owns the connection's life and the client's state; what a connection
carries (frames in, the offline queue, rooms) it leaves to the client, told through
:class:`LinkEvents`."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from stelar_core.client.backoff import full_jitter_delay
from stelar_core.client.channel import ClientServices
from stelar_core.clock import Timer
from stelar_core.errors import NotConnected
from stelar_core.protocol import DisconnectCode
from stelar_core.protocol.client import Welcome
from stelar_core.transports.base import ClientLink, ConnectOptions, Connector

# Without heartbeat_timeout, a server silent for this many of its heartbeat intervals is gone.
HEARTBEAT_FACTOR = 2.5


class ClientState(enum.StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


@attrs.frozen(slots=True, kw_only=True)
class LinkEvents:
    """What the keeper tells the client about its connections."""

    # Welcomed: the client is connected (the keeper has set the state); ``connect`` is told to
    # the listeners right after.
    opened: Callable[[], None]
    # The connection is gone (code, reason); the keeper reconnects unless told to stop.
    closed: Callable[[int, str], None]
    frame: Callable[[bytes], None]
    # Tell the client's listeners (``connect``, ``reconnecting``, ``reconnect_failed``).
    notify: Callable[..., None]


class _Receiver:
    """Frames of one connection attempt; a late callback from an old link is ignored."""

    __slots__ = ("_generation", "_keeper")

    def __init__(self, keeper: LinkKeeper, generation: int) -> None:
        self._keeper = keeper
        self._generation = generation

    def frame_received(self, frame: bytes) -> None:
        if self._keeper.generation == self._generation:
            self._keeper.frame_received(frame)

    def connection_lost(self, code: int, reason: str) -> None:
        if self._keeper.generation == self._generation:
            self._keeper.lost(code, reason)


class LinkKeeper:
    def __init__(
        self,
        services: ClientServices,
        events: LinkEvents,
        *,
        connector: Callable[[], Connector],
        url: Callable[[], str],
        connect_options: Callable[[], ConnectOptions],
        random: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
    ) -> None:
        self._services = services
        self._channel = services.channel
        self._options = services.options
        self._clock = services.clock
        self._events = events
        self._connector = connector
        self._url = url
        self._connect_options = connect_options
        self._random = random
        self._sleep = sleep
        self.state = ClientState.DISCONNECTED
        self.id: str | None = None
        self.connect_time: float | None = None
        # Bumped for each link (and when one is given up): callbacks of older links are ignored.
        self.generation = 0
        self._manager: asyncio.Task[None] | None = None
        self._first_connect: asyncio.Future[None] | None = None
        self._welcome: asyncio.Future[Welcome] | None = None
        self._lost: asyncio.Future[tuple[int, str]] | None = None
        self._closing = False
        self._last_failure: BaseException | None = None
        self._last_received = 0.0
        self.watchdog: Timer | None = None
        self._heartbeat_timeout: float | None = None

    @property
    def running(self) -> bool:
        """Connected, or trying to be."""
        return self._manager is not None and not self._manager.done()

    def set_state(self, state: ClientState) -> None:
        if state is not self.state:
            previous, self.state = self.state, state
            self._services.hook("on_state_change", from_state=previous.value, to_state=state.value)

    async def connect(self) -> None:
        if self.running:
            assert self._first_connect is not None
            await asyncio.shield(self._first_connect)
            return
        self._closing = False
        self._first_connect = asyncio.get_running_loop().create_future()
        self._manager = asyncio.ensure_future(self._run())
        await asyncio.shield(self._first_connect)

    async def close(self) -> None:
        """Close the link and stop reconnecting; returns once the connection's life has ended."""
        self._closing = True
        if self._channel.link is not None:
            self._channel.link.close(DisconnectCode.NORMAL, "client disconnected")
        if self._lost is not None and not self._lost.done():
            self._lost.set_result((DisconnectCode.NORMAL, "client disconnected"))
        if self._manager is not None:
            await asyncio.gather(self._manager, return_exceptions=True)
            self._manager = None
        self._stop_watchdog()

    async def _run(self) -> None:
        """Connect, serve until the link is lost, back off, again; until told to stop."""
        attempt = 0
        while not self._closing:
            if attempt == 0:
                self.set_state(ClientState.CONNECTING)
            try:
                await self._open()
            except Exception as exc:
                self._last_failure = exc
                self._services.record_error(exc, "connect")
            else:
                attempt = 0
                self._connected()
                assert self._lost is not None
                code, reason = await self._lost
                self._disconnected(code, reason)
            if self._closing or not self._options().reconnection:
                break
            attempt += 1
            limit = self._options().reconnection_attempts
            if limit is not None and attempt > limit:
                self._events.notify("reconnect_failed")
                break
            self.set_state(ClientState.RECONNECTING)
            self._events.notify("reconnecting", attempt)
            await self._sleep(self._reconnect_delay(attempt))
        self.set_state(ClientState.DISCONNECTED)
        if self._first_connect is not None and not self._first_connect.done():
            self._first_connect.set_exception(
                NotConnected(f"could not connect to {self._url()}: {self._last_failure}")
            )

    def _reconnect_delay(self, attempt: int) -> float:
        options = self._options()
        base, maximum = options.reconnection_delay, options.max_reconnection_delay
        if options.custom_reconnect_delay is not None:
            delay = float(options.custom_reconnect_delay(attempt, base, maximum))
        else:
            delay = full_jitter_delay(attempt, base, maximum, self._random)
        chosen = self._services.hook("on_reconnect_delay", attempt=attempt, default_delay=delay)
        return float(chosen) if isinstance(chosen, int | float) and not isinstance(chosen, bool) else delay

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self.generation += 1
        self._welcome = loop.create_future()
        self._lost = loop.create_future()
        timeout = self._options().connect_timeout
        link: ClientLink = await asyncio.wait_for(
            self._connector()(self._url(), _Receiver(self, self.generation), self._connect_options()),
            timeout,
        )
        self._channel.link = link
        session = self._channel.session
        session.connect(dict(self._options().auth))
        for frame in session.data_to_send():  # the handshake: not counted in messages_sent
            link.send(frame)
        try:
            welcome = await asyncio.wait_for(asyncio.shield(self._welcome), timeout)
        except BaseException:
            link.close(DisconnectCode.NORMAL, "handshake failed")
            self._channel.link = None
            raise
        self.id = welcome.id
        interval = welcome.heartbeat
        self._heartbeat_timeout = self._options().heartbeat_timeout or (
            interval * HEARTBEAT_FACTOR if interval is not None else None
        )

    def _connected(self) -> None:
        self.connect_time = time.time()
        self._last_received = self._clock.now()
        self._channel.connected = True
        self.set_state(ClientState.CONNECTED)
        self._start_watchdog()
        self._events.opened()
        if self._first_connect is not None and not self._first_connect.done():
            self._first_connect.set_result(None)
        self._events.notify("connect")

    def _disconnected(self, code: int, reason: str) -> None:
        self._channel.link = None
        self._channel.connected = False
        self._stop_watchdog()
        self._events.closed(code, reason)

    def welcomed(self, welcome: Welcome) -> None:
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_result(welcome)

    def frame_received(self, frame: bytes) -> None:
        self._last_received = self._clock.now()
        self._events.frame(frame)

    def lost(self, code: int, reason: str) -> None:
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(NotConnected(f"server closed the connection: {code} {reason}"))
        if self._lost is not None and not self._lost.done():
            self._lost.set_result((code, reason))

    # ------------------------------------------------------------------ heartbeats

    def _start_watchdog(self) -> None:
        self._stop_watchdog()
        if self._heartbeat_timeout is not None:
            self.watchdog = self._clock.call_later(self._heartbeat_timeout / 4, self._check_heartbeat)

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def _check_heartbeat(self) -> None:
        assert self._heartbeat_timeout is not None
        silent = self._clock.now() - self._last_received
        if silent > self._heartbeat_timeout:
            self._services.record_error(NotConnected(f"server silent for {silent:.1f}s"), "heartbeat")
            # Gone for us now: a late answer from this link is ignored (new generation).
            self.generation += 1
            if self._channel.link is not None:
                self._channel.link.close(DisconnectCode.SERVER_ERROR, "heartbeat timeout")
            if self._lost is not None and not self._lost.done():
                self._lost.set_result((DisconnectCode.ABNORMAL, "heartbeat timeout"))
            return
        self._start_watchdog()
