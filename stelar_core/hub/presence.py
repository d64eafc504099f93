"""Presence: who is in a room, by presence key (a user, however many connections it has), with a
little state each, told to the room's members as numbered, batched diffs (docs/presence.md).

A member appears with its key's first connection and leaves ``presence_grace`` seconds after its
last one is gone, so a reconnection within the grace produces no event at all. Changes are
gathered and sent at most every ``presence_interval`` as one diff per room, the same bytes to
every member: the traffic grows with the changes, not with members times changes. A member that
joins gets a snapshot numbered like the diffs; a client that sees a gap in the numbers asks for a
new snapshot. Above ``presence_max_members`` members the room's frames carry the count only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypedDict

from stelar_core.clock import Clock, Timer
from stelar_core.hub.hooks import Hook
from stelar_core.protocol import ErrorCode, FrameType, dump_json, encode_frame
from stelar_core.providers import PresenceStore
from stelar_core.room_policies import RoomPolicy

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices
    from stelar_core.hub.session import Session

PRESENCE_FRAMES = "presence_frames"


# The presence frames' payloads, as the AsyncAPI document types them. (Keys that are not always
# there in a total=False subclass: Required[...] is not seen under future annotations on 3.11.)
class _Numbered(TypedDict):
    seq: int
    count: int


class PresenceSnapshot(_Numbered, total=False):
    """A presence room's members, sent on join and when a client asks (``members`` absent when
    the room is counts only)."""

    snapshot: bool
    members: dict[str, Any]


class PresenceDiff(_Numbered, total=False):
    """What changed in a presence room since the diff numbered ``seq - 1``."""

    joins: dict[str, Any]
    leaves: list[str]
    updates: dict[str, Any]


class PresenceAsk(TypedDict, total=False):
    """What a client sends in a presence frame: its ``state``, or ``snapshot: true``."""

    state: Any
    snapshot: bool


class Member:
    """A presence key's connections on this node, its state, and since when it has none."""

    __slots__ = ("connections", "gone_since", "stamp", "state")

    def __init__(self) -> None:
        self.connections: set[str] = set()  # session ids
        self.state: Any = None
        # When the state was set, in epoch seconds: a key on several nodes shows its latest.
        self.stamp = time.time()
        self.gone_since: float | None = None


class RoomPresence:
    """One room: this node's members, and the view its connections were last told."""

    __slots__ = ("members", "policy", "reading", "seq", "timer", "told", "told_at")

    def __init__(self, policy: RoomPolicy) -> None:
        self.policy = policy
        self.members: dict[str, Member] = {}
        self.told: dict[str, Any] = {}
        self.told_at = 0.0  # when ``told`` was last made (epoch seconds, as the stamps)
        self.seq = 0
        self.timer: Timer | None = None
        self.reading = False  # a read of the shared view is under way

    def local(self) -> dict[str, Any]:
        """This node's members (those within their grace included), with their state."""
        return {key: member.state for key, member in self.members.items()}

    def current(self) -> dict[str, Any]:
        """What the room has now as far as this node knows: the view last told, with this node's
        members that joined or changed since."""
        view = dict(self.told)
        for key, member in self.members.items():
            if key not in view or member.stamp > self.told_at:
                view[key] = member.state
        return view

    def merged(self, shared: dict[str, tuple[float, Any]]) -> dict[str, Any]:
        """Every node's members with this node's own: for a key in both, the latest state."""
        latest = dict(shared)
        for key, member in self.members.items():
            if key not in latest or latest[key][0] <= member.stamp:
                latest[key] = (member.stamp, member.state)
        return {key: state for key, (_, state) in latest.items()}


class Presence:
    __slots__ = (
        "_clock",
        "_config",
        "_counters",
        "_hooks",
        "_log",
        "_members",
        "_outbox",
        "_spawn",
        "_store",
        "rooms",
    )

    def __init__(
        self,
        services: HubServices,
        clock: Clock,
        members: Callable[[str], Iterable[Session]],
        store: Callable[[], PresenceStore | None],
    ) -> None:
        self._config = services.config
        self._counters = services.counters
        self._outbox = services.outbox
        self._hooks = services.hooks
        self._spawn = services.spawn
        self._log = services.log
        self._clock = clock
        self._members = members  # the sessions in a room, to send its diffs to
        self._store = store  # the broker's shared presence, if it has one
        self.rooms: dict[str, RoomPresence] = {}

    # ------------------------------------------------------------------ membership

    def joined(self, session: Session, room: str) -> None:
        """``session`` is in ``room`` now."""
        policy = self._config().rooms.for_room(room)
        if policy is None or not policy.presence:
            return
        presence = self.rooms.get(room)
        if presence is None:
            presence = self.rooms[room] = RoomPresence(policy)
        key = session.presence_key
        member = presence.members.get(key)
        if member is None:
            member = presence.members[key] = Member()
            self._hooks.notify(Hook.PRESENCE_JOIN, room=room, key=key)
            store = self._store()
            if store is not None:
                store.write(room, key, None, member.stamp)
        member.connections.add(session.id)
        member.gone_since = None
        self._send_snapshot(session, room, presence)
        self._schedule(room, presence)

    def refusal(self, session: Session, room: str) -> tuple[str, str] | None:
        """Why ``session`` may not join ``room`` (its presence is full), or None."""
        presence = self.rooms.get(room)
        if presence is None or session.presence_key in presence.members:
            return None
        cap = presence.policy.presence_member_cap
        if len(presence.told.keys() | presence.members.keys()) >= cap:
            return ErrorCode.PRESENCE_FULL, f"presence room {room!r} has its {cap} members"
        return None

    def left(self, session: Session, room: str) -> None:
        presence = self.rooms.get(room)
        if presence is None:
            return
        member = presence.members.get(session.presence_key)
        if member is None or session.id not in member.connections:
            return
        member.connections.discard(session.id)
        if not member.connections:
            member.gone_since = self._clock.now()
            self._schedule(room, presence)

    def update(self, session: Session, room: str, state: Any) -> str | None:
        """Set the member's state; the refusal's message when it cannot be."""
        presence = self.rooms.get(room)
        member = None if presence is None else presence.members.get(session.presence_key)
        if presence is None or member is None or session.id not in member.connections:
            return f"not in presence room {room!r}"
        size = len(dump_json(state))
        limit = self._config().max_presence_state
        if size > limit:
            return f"presence state is {size} bytes, at most {limit}"
        member.state = state
        member.stamp = time.time()
        store = self._store()
        if store is not None:
            store.write(room, session.presence_key, state, member.stamp)
        self._schedule(room, presence)
        return None

    # ------------------------------------------------------------------ reads

    def members(self, room: str) -> dict[str, Any]:
        """The room's members as its connections here see them (every node's, when shared)."""
        presence = self.rooms.get(room)
        return {} if presence is None else presence.current()

    def count(self, room: str) -> int:
        return len(self.members(room))

    def snapshot_asked(self, session: Session, room: str) -> str | None:
        presence = self.rooms.get(room)
        if presence is None or room not in session.rooms:
            return f"not in presence room {room!r}"
        self._send_snapshot(session, room, presence)
        return None

    # ------------------------------------------------------------------ telling

    def _send_snapshot(self, session: Session, room: str, presence: RoomPresence) -> None:
        # What the room was told at ``seq``, and this node's members already (the joiner
        # included): a key told again by the next diff changes nothing.
        members = presence.current()
        body: dict[str, Any] = {"seq": presence.seq, "count": len(members), "snapshot": True}
        if presence.policy.lists_presence(len(members)):
            body["members"] = members
        self._counters.other[PRESENCE_FRAMES] += 1
        self._outbox.send(session, encode_frame(FrameType.PRESENCE, room, dump_json(body)))

    def _schedule(self, room: str, presence: RoomPresence) -> None:
        if presence.timer is None:
            presence.timer = self._clock.call_later(self._config().presence_interval, self._flush, room)

    def _flush(self, room: str) -> None:
        presence = self.rooms.get(room)
        if presence is None:
            return
        presence.timer = None
        self._expire(room, presence)
        store = self._store()
        if store is None:
            self._tell(room, presence, presence.local())
            if any(member.gone_since is not None for member in presence.members.values()):
                self._schedule(room, presence)  # a leave is still to be told after its grace
        elif not presence.reading:
            presence.reading = True
            self._spawn(self._flush_shared(room, presence, store.read(room)))
        if not presence.members and not presence.told and not presence.reading:
            del self.rooms[room]

    async def _flush_shared(
        self, room: str, presence: RoomPresence, view: Awaitable[dict[str, tuple[float, Any]]]
    ) -> None:
        """Tell the room what every live node has; while the store cannot answer, what this node
        has (and the store's broker reports itself degraded)."""
        shared: dict[str, tuple[float, Any]] = {}
        try:
            shared = await view
        except Exception as exc:
            self._log.info("presence of %r could not be read from the shared store: %s", room, exc)
        finally:
            presence.reading = False
        self._tell(room, presence, presence.merged(shared))
        if any(True for _ in self._members(room)):
            self._schedule(room, presence)  # other nodes' changes come without a local event
        elif not presence.members:
            self.rooms.pop(room, None)

    def _expire(self, room: str, presence: RoomPresence) -> None:
        """Members whose last connection left more than ``presence_grace`` ago are gone."""
        grace_end = self._clock.now() - self._config().presence_grace
        store = self._store()
        for key, member in tuple(presence.members.items()):
            if member.gone_since is not None and member.gone_since <= grace_end:
                del presence.members[key]
                self._hooks.notify(Hook.PRESENCE_LEAVE, room=room, key=key)
                if store is not None:
                    store.remove(room, key)

    def _tell(self, room: str, presence: RoomPresence, view: dict[str, Any]) -> None:
        """Send the room's connections here one diff from what they were told to ``view``."""
        told = presence.told
        presence.told_at = time.time()
        joins = {key: state for key, state in view.items() if key not in told}
        leaves = sorted(key for key in told if key not in view)
        updates = {key: state for key, state in view.items() if key in told and told[key] != state}
        presence.told = view
        if not (joins or leaves or updates):
            return
        presence.seq += 1
        body: dict[str, Any] = {"seq": presence.seq, "count": len(view)}
        if presence.policy.lists_presence(len(view)):
            body.update(joins=joins, leaves=leaves, updates=updates)
        frame = encode_frame(FrameType.PRESENCE, room, dump_json(body))
        for session in tuple(self._members(room)):
            self._counters.other[PRESENCE_FRAMES] += 1
            self._outbox.send(session, frame)

    def stop(self) -> None:
        for presence in self.rooms.values():
            if presence.timer is not None:
                presence.timer.cancel()
        self.rooms.clear()
