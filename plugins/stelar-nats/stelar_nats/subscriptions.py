"""A node's subscriptions to room and client subjects: wanted as members come and go, made in
order, and live once the server is known to have them (what a join waits for, ``room_ready``).

A batch of changes is confirmed by a *probe*: a message the node sends itself on its own
subject. It leaves in the NATS client's write queue behind the SUBs, and the server reads a
connection in order, so the probe coming back means the SUBs are in place. (Not
``nc.flush()``: nats-py writes its PING straight to the socket, ahead of commands still in
that queue, so its PONG confirms nothing.)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from stelar_nats.envelope import Envelope, Kind, encode
from stelar_nats.failures import NATS_FAILURES

# What a node's subscription may hold unread before NATS's client drops (a slow consumer).
PENDING_MESSAGES = 65_536


class Subscriptions:
    def __init__(
        self,
        options: Any,
        node_id: str,
        own_subject: str,
        on_message: Callable[[Msg], Awaitable[None]],
        log: Callable[[], logging.Logger],
    ) -> None:
        self._options = options
        self._node_id = node_id
        self._own_subject = own_subject
        self._on_message = on_message
        self._log = log
        self._wanted: deque[tuple[str, bool]] = deque()
        self.changed = asyncio.Event()
        self._made: dict[str, Subscription] = {}
        self._live: set[str] = set()
        self._live_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._probes = 0
        self._probe_waiter: asyncio.Future[None] | None = None

    def is_live(self, subject: str) -> bool:
        return subject in self._live

    @property
    def unconfirmed(self) -> bool:
        """Some subscription is not confirmed (a probe that failed)."""
        return len(self._live) < len(self._made)

    def want(self, subject: str, subscribe: bool) -> None:
        # Not live until the server confirms this change, even if the subject is subscribed now.
        self._live.discard(subject)
        self._wanted.append((subject, subscribe))
        self.changed.set()

    def lost(self) -> None:
        """Disconnected: nothing is live until a probe after the reconnect says so."""
        self._live.clear()

    def clear(self) -> None:
        self._made.clear()
        self._live.clear()

    async def live_within(self, subject: str) -> None:
        """Return once ``subject`` is live, or after ``command_timeout``."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._live_waiters.setdefault(subject, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, self._options.command_timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._live_waiters.get(subject, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._live_waiters.pop(subject, None)

    async def keep_applying(self, connected: asyncio.Event, connection: Callable[[], Client | None]) -> None:
        """Apply the changes as they come, each batch confirmed by one probe; after a
        reconnect (``changed`` set), a probe confirms them all again."""
        while True:
            await self.changed.wait()
            self.changed.clear()
            nc = connection()
            if connected.is_set() and nc is not None:
                await self.apply(nc)

    async def apply(self, nc: Client) -> None:
        try:
            while self._wanted:
                subject, subscribe = self._wanted.popleft()
                current = self._made.get(subject)
                if subscribe and current is None:
                    self._made[subject] = await nc.subscribe(
                        subject, cb=self._on_message, pending_msgs_limit=PENDING_MESSAGES
                    )
                elif not subscribe and current is not None:
                    del self._made[subject]
                    self._live.discard(subject)
                    await current.unsubscribe()
            sent = dict(self._made)
            await self._probe(nc)
        except (TimeoutError, *NATS_FAILURES) as exc:
            # Subscribed or not, the NATS client sends every subscription again when it is back;
            # a heartbeat that comes back asks for another probe.
            self._log().warning("subscriptions not confirmed: %s", type(exc).__name__)
            return
        self._confirm(sent)

    async def _probe(self, nc: Client) -> None:
        """Return when the server has every subscription this node sent before now."""
        self._probes += 1
        number = self._probes
        returned = self._probe_waiter = asyncio.get_running_loop().create_future()
        try:
            envelope = Envelope(Kind.PROBE, self._node_id, (number,))
            await nc.publish(self._own_subject, encode(envelope, self._options.max_message_size))
            await asyncio.wait_for(returned, self._options.command_timeout)
        finally:
            self._probe_waiter = None

    def probe_came_back(self, number: int) -> None:
        # (One probe at a time: a late one, after its wait timed out, is ignored.)
        if number == self._probes and self._probe_waiter is not None and not self._probe_waiter.done():
            self._probe_waiter.set_result(None)

    def _confirm(self, sent: dict[str, Subscription]) -> None:
        """The server has the subscriptions ``sent``: live, each unless it was changed since
        (a leave and a join meanwhile wait for their own probe)."""
        waiting = {subject for subject, _ in self._wanted}
        for subject, subscription in sent.items():
            if self._made.get(subject) is subscription and subject not in waiting:
                self._live.add(subject)
                for waiter in self._live_waiters.pop(subject, ()):
                    if not waiter.done():
                        waiter.set_result(None)
