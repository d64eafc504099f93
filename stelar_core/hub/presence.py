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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypedDict

from stelar_core.clock import Clock, Timer
from stelar_core.hub.hooks import Hook
from stelar_core.protocol import ErrorCode, FrameType, dump_json, encode_frame
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
    __slots__ = ("connections", "gone_since", "state")

    def __init__(self) -> None:
        self.connections: set[str] = set()  # session ids
        self.state: Any = None
        self.gone_since: float | None = None  # when its last connection left


class RoomPresence:
    """One room's members and the changes not yet told."""

    __slots__ = ("joins", "members", "policy", "seq", "timer", "updates")

    def __init__(self, policy: RoomPolicy) -> None:
        self.policy = policy
        self.members: dict[str, Member] = {}
        self.seq = 0
        self.joins: set[str] = set()
        self.updates: set[str] = set()
        self.timer: Timer | None = None

    def listed(self) -> dict[str, Any]:
        """The members others see now (those within their grace included)."""
        return {key: member.state for key, member in self.members.items()}


class Presence:
    __slots__ = ("_clock", "_config", "_counters", "_hooks", "_members", "_outbox", "rooms")

    def __init__(
        self, services: HubServices, clock: Clock, members: Callable[[str], Iterable[Session]]
    ) -> None:
        self._config = services.config
        self._counters = services.counters
        self._outbox = services.outbox
        self._hooks = services.hooks
        self._clock = clock
        self._members = members  # the sessions in a room, to send its diffs to
        self.rooms: dict[str, RoomPresence] = {}

    # ------------------------------------------------------------------ membership

    def joined(self, session: Session, room: str) -> None:
        """``session`` is in ``room`` now (called after its join is answered)."""
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
            presence.joins.add(key)
            self._hooks.notify(Hook.PRESENCE_JOIN, room=room, key=key)
            self._schedule(room, presence)
        member.connections.add(session.id)
        member.gone_since = None
        self._send_snapshot(session, room, presence)

    def refusal(self, session: Session, room: str) -> tuple[str, str] | None:
        """Why ``session`` may not join ``room`` (its presence is full), or None."""
        presence = self.rooms.get(room)
        if presence is None or session.presence_key in presence.members:
            return None
        cap = presence.policy.presence_member_cap
        if len(presence.members) >= cap:
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
        presence.updates.add(session.presence_key)
        self._schedule(room, presence)
        return None

    # ------------------------------------------------------------------ reads

    def members(self, room: str) -> dict[str, Any]:
        presence = self.rooms.get(room)
        return {} if presence is None else presence.listed()

    def count(self, room: str) -> int:
        presence = self.rooms.get(room)
        return 0 if presence is None else len(presence.members)

    def snapshot_asked(self, session: Session, room: str) -> str | None:
        presence = self.rooms.get(room)
        if presence is None or room not in session.rooms:
            return f"not in presence room {room!r}"
        self._send_snapshot(session, room, presence)
        return None

    # ------------------------------------------------------------------ telling

    def _send_snapshot(self, session: Session, room: str, presence: RoomPresence) -> None:
        body: dict[str, Any] = {"seq": presence.seq, "count": len(presence.members), "snapshot": True}
        if presence.policy.lists_presence(len(presence.members)):
            body["members"] = presence.listed()
        self._counters.other[PRESENCE_FRAMES] += 1
        self._outbox.send(session, encode_frame(FrameType.PRESENCE, room, dump_json(body)))

    def _schedule(self, room: str, presence: RoomPresence) -> None:
        if presence.timer is None:
            presence.timer = self._clock.call_later(self._config().presence_interval, self._flush, room)

    def _flush(self, room: str) -> None:
        """One diff for the room: who came, who is gone past the grace, whose state changed."""
        presence = self.rooms.get(room)
        if presence is None:
            return
        presence.timer = None
        grace_end = self._clock.now() - self._config().presence_grace
        waiting = False
        leaves = []
        for key, member in tuple(presence.members.items()):
            if member.gone_since is None:
                continue
            if member.gone_since <= grace_end:
                del presence.members[key]
                presence.updates.discard(key)
                if key in presence.joins:  # came and went within one interval: nobody saw it
                    presence.joins.discard(key)
                else:
                    leaves.append(key)
                self._hooks.notify(Hook.PRESENCE_LEAVE, room=room, key=key)
            else:
                waiting = True
        joins, updates = presence.joins, presence.updates - presence.joins
        if joins or updates or leaves:
            presence.seq += 1
            body: dict[str, Any] = {"seq": presence.seq, "count": len(presence.members)}
            if presence.policy.lists_presence(len(presence.members)):
                members = presence.members
                body["joins"] = {key: members[key].state for key in sorted(joins)}
                body["leaves"] = sorted(leaves)
                body["updates"] = {key: members[key].state for key in sorted(updates)}
            frame = encode_frame(FrameType.PRESENCE, room, dump_json(body))
            for session in tuple(self._members(room)):
                self._counters.other[PRESENCE_FRAMES] += 1
                self._outbox.send(session, frame)
        presence.joins, presence.updates = set(), set()
        if not presence.members:
            del self.rooms[room]
        elif waiting:
            self._schedule(room, presence)

    def stop(self) -> None:
        for presence in self.rooms.values():
            if presence.timer is not None:
                presence.timer.cancel()
        self.rooms.clear()
