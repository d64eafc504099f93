"""One connected peer as the hub sees it, and the ordering of its messages."""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from stelar_core.clock import Timer
from stelar_core.hub.acks import PendingAcks
from stelar_core.hub.slots import Slots
from stelar_core.protocol import DisconnectCode, FrameType
from stelar_core.transports.base import Admission, Connection, HttpRequest
from stelar_core.values import ClientInfo

if TYPE_CHECKING:
    from stelar_core.hub.hub import Hub
    from stelar_core.hub.lossy import LossyQueue

# Frames handled at once even while a handler runs: they run no user code, and a handler may be
# awaiting one of them (the ACK response to its own ``ctx.request``).
_RUN_NO_USER_CODE = frozenset({FrameType.ACK_RESPONSE, FrameType.PING, FrameType.PONG})


class SessionState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class Session:
    """Handles one peer's frames strictly in order.

    Synchronous handlers run inline. When handling a frame needs an ``await`` (an async handler
    or provider), later frames wait in a bounded inbox; when it fills, the transport is asked to
    stop reading, which pushes back on the peer instead of growing memory.
    """

    __slots__ = (
        "_acks",
        "_connect_timer",
        "_draining",
        "_hub",
        "_inbox",
        "_paused",
        "_presence_key",
        "_request_slots",
        "admission",
        "answers",
        "auth",
        "connected_at",
        "connection",
        "id",
        "last_seen",
        "lossy",
        "metadata",
        "rate_key",
        "received",
        "recovered",
        "resume_token",
        "rooms",
        "state",
        "successor",
    )

    def __init__(self, hub: Hub, session_id: str, connection: Connection, admission: Admission) -> None:
        self._hub = hub
        self.id = session_id
        # Whom the rate limits count this client's messages for (see ``rate_limit_key``).
        self.rate_key = session_id
        self.connection = connection
        self.admission = admission
        self.state = SessionState.HANDSHAKE
        self.auth: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}
        self.rooms: set[str] = set()
        self.connected_at = 0.0  # wall-clock time of mark_open, for operators (ClientInfo)
        # Made on the first request to this client: most sessions are never asked anything.
        self._acks: PendingAcks | None = None
        self.last_seen = hub.clock.now()
        # Made when a handler first has to wait: an empty deque costs ~600 bytes per connection.
        self._inbox: deque[bytes] | None = None
        self._draining = False
        self._paused = False
        self._connect_timer: Timer | None = None
        self._request_slots: Slots | None = None  # made on the first concurrent request
        # Resumption (docs/delivery.md): events and requests handled in this session (across its
        # connections), the answers to its last requests by ack id (None: not resumable), the
        # secret a client resumes with, whether this connection resumed an earlier one, and the
        # session that resumed this one once it closed (late answers go there).
        self.received = 0
        self.answers: dict[int, bytes] | None = None
        self.resume_token: str | None = None
        self.recovered = False
        self.successor: Session | None = None
        # Lossy send queues of rooms with such a policy, by room (made when first needed).
        self.lossy: dict[str, LossyQueue] | None = None
        self._presence_key: str | None = None

    @property
    def protocol(self) -> str:
        return self.connection.protocol

    @property
    def remote_address(self) -> str:
        return self.connection.remote_address

    @property
    def request(self) -> HttpRequest | None:
        return self.connection.request

    @property
    def presence_key(self) -> str:
        """Whom this connection counts as in presence rooms (``ctx.presence_key``; its ID
        unless the application says otherwise)."""
        return self.id if self._presence_key is None else self._presence_key

    @presence_key.setter
    def presence_key(self, key: str) -> None:
        self._presence_key = key

    @property
    def is_open(self) -> bool:
        return self.state is SessionState.OPEN

    # ------------------------------------------------------------------ SessionPort

    def receive(self, frame: bytes) -> None:
        if self.state is SessionState.CLOSED:
            return
        self.last_seen = self._hub.clock.now()
        if self._draining and (not frame or frame[0] not in _RUN_NO_USER_CODE):
            if self._inbox is None:
                self._inbox = deque()
            self._inbox.append(frame)
            if len(self._inbox) >= self._hub.config.max_queued_messages and not self._paused:
                self._paused = True
                self.connection.pause_reading()
            return
        pending = self._hub.handle_frame(self, frame)
        if pending is not None:
            self._start_draining(pending)

    def connection_lost(self, code: int, reason: str) -> None:
        self._hub.session_closed(self, code, reason)

    def fail(self, code: str, reason: str, close_code: int) -> None:
        self._hub.stream_failed(self, code, reason, close_code)

    def slow_consumer(self, buffered_bytes: int) -> None:
        self._hub.slow_consumer(self, buffered_bytes)

    def resume_sending(self) -> None:
        if self.lossy:
            self._hub.lossy.resume(self)

    # ------------------------------------------------------------------ ordering

    def _start_draining(self, pending: Awaitable[None]) -> None:
        self._draining = True
        self._hub.tasks.spawn(self._drain(pending))

    async def _drain(self, pending: Awaitable[None]) -> None:
        hub = self._hub
        try:
            await pending
            while (inbox := self._inbox) and self.state is not SessionState.CLOSED:
                if self._paused and len(inbox) <= hub.config.max_queued_messages // 2:
                    self._paused = False
                    self.connection.resume_reading()
                more = hub.handle_frame(self, inbox.popleft())
                if more is not None:
                    await more
        except Exception:
            hub.log.exception("unexpected error while handling frames of client %s", self.id)
            hub.close_session(self, DisconnectCode.SERVER_ERROR, "internal error")
        finally:
            self._draining = False
            if self._paused and self.state is not SessionState.CLOSED:
                self._paused = False
                self.connection.resume_reading()

    @property
    def acks(self) -> PendingAcks:
        """The server's requests to this client that wait for its answer."""
        if self._acks is None:
            self._acks = PendingAcks(self._hub.config.max_pending_acks, self._hub.clock)
        return self._acks

    @property
    def pending_acks(self) -> int:
        return 0 if self._acks is None else len(self._acks)

    def fail_pending_acks(self, reason: str) -> None:
        if self._acks is not None:
            self._acks.fail_all(reason)

    def request_slots(self, limit: int) -> Slots:
        """Places for this client's requests to ``concurrent=True`` handlers."""
        if self._request_slots is None:
            self._request_slots = Slots(limit)
        return self._request_slots

    def info(self) -> ClientInfo:
        """This client as ``get_clients()`` lists it (a snapshot: rooms and metadata copied)."""
        return ClientInfo(
            self.id,
            self.protocol,
            self.remote_address,
            frozenset(self.rooms),
            dict(self.metadata),
            self.connected_at,
        )

    def start_connect_timer(self, timeout: float) -> None:
        self._connect_timer = self._hub.clock.call_later(timeout, self._hub.connect_timed_out, self)

    def mark_open(self) -> None:
        self.state = SessionState.OPEN
        self.connected_at = time.time()
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def mark_closed(self) -> None:
        """Frames still queued are dropped; a handler already running finishes (the hub's
        ``stop`` bounds it by ``shutdown_timeout``)."""
        self.state = SessionState.CLOSED
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        self._inbox = None
