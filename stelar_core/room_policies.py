"""What a room keeps and how it delivers, set per room pattern: ``rooms={"chat:*": {...}}`` or,
in TOML, ``[stelar.rooms."chat:*"]``.

A room takes the policy of the first pattern (``fnmatch`` rules: ``*``, ``?``, ``[...]``) that
matches its name, in the order given; an exact name is a pattern that matches only itself.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

import attrs

from stelar_core import validation
from stelar_core.errors import ConfigError
from stelar_core.validation import fail

DEFAULT_HISTORY_TTL = 300.0
DEFAULT_MAX_QUEUE = 1000
DEFAULT_PRESENCE_MAX_MEMBERS = 1000
DEFAULT_PRESENCE_MEMBER_CAP = 100_000
SEND_QUEUES = ("queue", "drop_oldest", "conflate")
# Rooms whose policy is remembered; past it the memo starts again (names are unbounded).
_MEMO_SIZE = 10_000


def _send_queue(option: str, value: Any) -> Any:
    if value not in SEND_QUEUES:
        raise fail(option, value, f"expected one of {', '.join(SEND_QUEUES)}")
    return value


def _events(value: Any) -> tuple[str, ...] | None:
    return validation.strings_or_none("events", value)


def _rate(option: str, value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
        raise fail(option, value, "expected messages per second > 0, or None")
    return value


@attrs.frozen(slots=True, kw_only=True)
class RoomPolicy:
    """What a room keeps and how its messages reach a member that cannot keep up
    (docs/delivery.md).

    ``history_size``: publications kept (0: none, the room has no positions); ``history_ttl``:
    seconds a room's history is kept after its last publication. ``send_queue``: ``queue``
    (everything, bounded by the connection's output limits, then closed as a slow consumer),
    ``drop_oldest`` (at most ``max_queue`` waiting, the oldest dropped) or ``conflate`` (the
    latest message per key waits: the event and its payload's ``conflate_key`` field; at most
    ``max_queue`` keys). ``max_rate``: messages per second per member, past which a lossy queue
    holds them. ``events``: the events a lossy queue applies to (None: all)."""

    history_size: int = attrs.field(default=0, validator=validation.validator(validation.integer(0)))
    history_ttl: float = attrs.field(
        default=DEFAULT_HISTORY_TTL, validator=validation.validator(validation.seconds)
    )
    send_queue: str = attrs.field(default="queue", validator=validation.validator(_send_queue))
    conflate_key: str | None = attrs.field(
        default=None, validator=validation.validator(validation.optional(validation.text))
    )
    max_queue: int = attrs.field(
        default=DEFAULT_MAX_QUEUE, validator=validation.validator(validation.integer(1))
    )
    max_rate: float | None = attrs.field(default=None, validator=validation.validator(_rate))
    events: tuple[str, ...] | None = attrs.field(default=None, converter=_events)
    # Presence (docs/presence.md): who is in the room, by presence key, with a little state each.
    presence: bool = attrs.field(default=False, validator=validation.validator(validation.boolean))
    # Above this many members the room's presence is counts only (no member lists on the wire);
    # presence_counts_only makes it so whatever the number.
    presence_max_members: int = attrs.field(
        default=DEFAULT_PRESENCE_MAX_MEMBERS, validator=validation.validator(validation.integer(0))
    )
    presence_counts_only: bool = attrs.field(
        default=False, validator=validation.validator(validation.boolean)
    )
    # Members a presence room takes at most; a join past it is refused (presence_full).
    presence_member_cap: int = attrs.field(
        default=DEFAULT_PRESENCE_MEMBER_CAP, validator=validation.validator(validation.integer(1))
    )

    def __attrs_post_init__(self) -> None:
        if self.lossy and self.keeps_history:
            raise ConfigError(
                f"a room with history cannot use send_queue = {self.send_queue!r}: its members would "
                "lose positions they can never recover; use 'queue' (a slow member recovers on reconnect)"
            )
        if self.conflate_key is not None and self.send_queue != "conflate":
            raise ConfigError("conflate_key is for send_queue = 'conflate'")
        if self.max_rate is not None and not self.lossy:
            raise ConfigError(
                "max_rate needs a lossy send_queue ('drop_oldest' or 'conflate') to hold the excess"
            )

    @property
    def keeps_history(self) -> bool:
        return self.history_size > 0

    def lists_presence(self, members: int) -> bool:
        """Whether presence frames of a room with ``members`` carry the member lists."""
        return not self.presence_counts_only and members <= self.presence_max_members

    @property
    def lossy(self) -> bool:
        return self.send_queue != "queue"


_FIELDS = tuple(field.name for field in attrs.fields(RoomPolicy))


class RoomPolicies:
    """The policies by pattern, and the lookup of a room's own (memoised: it runs per publish)."""

    __slots__ = ("_compiled", "_memo", "_pattern_memo", "patterns")

    def __init__(self, patterns: Mapping[str, RoomPolicy]) -> None:
        self.patterns = dict(patterns)
        self._compiled = [(re.compile(fnmatch.translate(p)).match, policy) for p, policy in patterns.items()]
        self._memo: dict[str, RoomPolicy | None] = {}
        self._pattern_memo: dict[str, str | None] = {}

    def for_room(self, room: str) -> RoomPolicy | None:
        try:
            return self._memo[room]
        except KeyError:
            pass
        found = next((policy for match, policy in self._compiled if match(room)), None)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[room] = found
        return found

    def pattern_of(self, room: str) -> str | None:
        """The pattern whose policy ``room`` takes (what traces name a room by), or None."""
        try:
            return self._pattern_memo[room]
        except KeyError:
            pass
        matching = (p for p, (match, _) in zip(self.patterns, self._compiled, strict=True) if match(room))
        found = next(matching, None)
        if len(self._pattern_memo) >= _MEMO_SIZE:
            self._pattern_memo.clear()
        self._pattern_memo[room] = found
        return found

    @property
    def any_lossy(self) -> bool:
        return any(policy.lossy for policy in self.patterns.values())

    @property
    def any_history(self) -> bool:
        return any(policy.keeps_history for policy in self.patterns.values())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {pattern: attrs.asdict(policy) for pattern, policy in self.patterns.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RoomPolicies) and other.patterns == self.patterns

    def __hash__(self) -> int:
        return hash(tuple(self.patterns.items()))

    def __repr__(self) -> str:
        return f"RoomPolicies({self.patterns!r})"


def room_policies(value: Any) -> RoomPolicies:
    """The ``rooms`` option: ``{pattern: {history_size, history_ttl}}`` (or RoomPolicy values)."""
    if isinstance(value, RoomPolicies):
        return value
    if value is None:
        return RoomPolicies({})
    if not isinstance(value, Mapping):
        raise fail("rooms", value, 'expected a mapping of room pattern to its policy, e.g. {"chat:*": {...}}')
    policies: dict[str, RoomPolicy] = {}
    for pattern, policy in value.items():
        option = f"rooms[{pattern!r}]"
        if not isinstance(pattern, str) or not pattern:
            raise fail("rooms", pattern, "room patterns are non-empty strings")
        if isinstance(policy, RoomPolicy):
            policies[pattern] = policy
            continue
        if not isinstance(policy, Mapping):
            raise fail(option, policy, f"expected a mapping of {', '.join(_FIELDS)}")
        unknown = sorted(set(policy) - set(_FIELDS))
        if unknown:
            raise fail(option, dict(policy), f"unknown keys {unknown}; allowed: {', '.join(_FIELDS)}")
        try:
            policies[pattern] = RoomPolicy(**policy)
        except ConfigError as exc:
            raise ConfigError(f"in {option}: {exc}") from None
    return RoomPolicies(policies)
