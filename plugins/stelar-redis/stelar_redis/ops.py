"""The Redis commands that put a message into a cluster, as the broker and the emitter both send
them: to a room or everyone, to the node that has a client, into a room's history."""

from __future__ import annotations

from stelar_core.plugin_api import FrameType, RoomPolicy, encode_frame, new_epoch
from stelar_redis.envelope import EnvelopeError, Published, encode
from stelar_redis.history import meta_ttl_ms
from stelar_redis.keys import Keys
from stelar_redis.presence import Op
from stelar_redis.scripts import Scripts


def deliver_op(keys: Keys, payload: bytes, room: str | None) -> Op:
    """A ``DELIVER`` envelope to a room's nodes, or to every node."""
    return (keys.publish, keys.all if room is None else keys.room_channel(room), payload)


def route_op(keys: Keys, scripts: Scripts, client_id: str, payload: bytes) -> Op:
    """To the node that has ``client_id``; the result is how many received it."""
    return ("EVALSHA", scripts.route.sha, 1, keys.dir, keys.prefix, client_id, payload)


def history_op(
    keys: Keys,
    scripts: Scripts,
    origin: str,
    room: str,
    policy: RoomPolicy,
    frame: bytes,
    exclude: tuple[str, ...],
    max_size: int,
    meta_ttl: float,
    trace: str | None = None,
) -> Op:
    """One publish into a room with history: the script positions, stores and publishes it.
    ``EnvelopeError`` when the message would be over ``max_size``."""
    head = encode(Published(origin, room, exclude, trace), max_size)
    publication_head = encode_frame(FrameType.PUBLICATION, room)
    if len(head) + len(publication_head) + 80 + len(frame) > max_size:
        raise EnvelopeError(f"message to room {room!r} is over redis.max_message_size")
    return (
        "EVALSHA",
        scripts.publish_history.sha,
        2,
        keys.history(room),
        keys.history_meta(room),
        keys.room_channel(room),
        new_epoch(),
        policy.history_size,
        int(policy.history_ttl * 1000),
        meta_ttl_ms(meta_ttl, policy),
        publication_head,
        frame,
        head,
    )
