"""Room history on JetStream, beyond what the conformance kit checks on every broker (one
sequence of positions while nodes publish at once, recovery on any node, outages, NATS restarted
empty: test_nats_conformance.py): a room's history holding something that is not stelar's, a
publication not from JetStream refused, NATS paused, a server without JetStream, the stream's
per-room cap, bad options, and a client dropped again and again across two node processes that
misses nothing."""

from __future__ import annotations

import gc
import random
import uuid

import nats
import pytest
from nats_nodes import NodeProcess, start_nodes

from stelar_core import StelarClient, StelarServer
from stelar_core.plugin_api import (
    ConfigError,
    FrameType,
    Position,
    dump_json,
    encode_frame,
    encode_publication,
)
from stelar_core.testing import eventually
from stelar_core.testing.drops import drop_client_link
from stelar_nats.envelope import Envelope, Kind, encode
from stelar_nats.history import stream_name
from stelar_nats.subjects import Subjects
from stelar_nats.testing import NatsProcess

pytestmark = pytest.mark.one_loop

ROOMS = {"feed*": {"history_size": 5, "history_ttl": 60}}


@pytest.fixture
async def nodes(nats_server):
    """``await nodes(n)``: n in-process nodes (memory transport) with history rooms on the
    test's NATS under one fresh prefix."""
    prefix = f"h{uuid.uuid4().hex[:8]}"
    servers: list[StelarServer] = []

    async def start(count: int) -> list[StelarServer]:
        made = await start_nodes(
            nats_server.url,
            count,
            transports=["memory"],
            rooms=ROOMS,
            rate_limit=None,
            nats={"prefix": prefix},
        )
        servers.extend(made)
        return made

    start.prefix = prefix
    yield start
    for server in servers:
        await server.stop()


def counter(server: StelarServer, name: str) -> int:
    return server.get_stats().counters.get(name, 0)


async def test_something_else_in_a_rooms_history_is_counted_and_the_room_goes_on(
    nodes, nats_server, stelar_client_factory
):
    one, two = await nodes(2)
    a = await stelar_client_factory(one)
    epoch = (await a.join("feed"))["position"]["epoch"]
    one.to("feed", "tick", 1)
    assert (await a.next_event()).position == Position(epoch, 1)
    # Published on the room's history subject by something else: JetStream stores it as the
    # room's last message.
    raw = await nats.connect(nats_server.url)
    try:
        await raw.jetstream().publish(Subjects(nodes.prefix).history("feed"), b"\xff not stelar's")
    finally:
        await raw.close()
    await eventually(lambda: counter(one, "broker_invalid_envelopes") == 1, what="refused as it came")
    two.to("feed", "tick", 2)
    event = await a.next_event()
    # The room could not go on from a last message with no position: a new epoch, from 1.
    assert event.data == 2 and event.position is not None
    assert event.position.epoch != epoch and event.position.offset == 1
    answer = await a.join("feed", since=Position(epoch, 1))
    assert answer["recovered"] is False and answer["reason"] == "epoch_changed"
    assert counter(two, "broker_invalid_envelopes") >= 1  # the one that read it as the last
    assert not one.get_stats().degraded and not two.get_stats().degraded


async def test_a_publication_not_from_jetstream_is_refused(nodes, nats_server, stelar_client_factory):
    """Only what the stream stored is delivered: a publication envelope sent plainly on the room's
    subject is counted, never delivered. (What is stored on its history subject is the stream's:
    NATS permissions keep others from publishing under the prefix, docs/scaling.md.)"""
    one, two = await nodes(2)
    a = await stelar_client_factory(one)
    epoch = (await a.join("feed"))["position"]["epoch"]
    two.to("feed", "tick", 1)
    stored = await a.next_event()
    subjects = Subjects(nodes.prefix)
    forged = stored_envelope_of(stored, epoch)
    raw = await nats.connect(nats_server.url)
    try:
        await raw.publish(subjects.room("feed"), forged)
        await raw.flush()
    finally:
        await raw.close()
    await eventually(lambda: counter(one, "broker_invalid_envelopes") == 1, what="the plain one refused")
    two.to("feed", "tick", 2)
    assert [(e.data, e.position.offset) for e in [await a.next_event()]] == [(2, 2)]


def stored_envelope_of(event, epoch: str) -> bytes:
    """A PUBLISHED envelope like the one JetStream stored for ``event``, offset 99."""
    frame = encode_publication("feed", epoch, 99, encode_frame(FrameType.JSON, "tick", dump_json(event.data)))
    return encode(Envelope(Kind.PUBLISHED, "forger", ("feed", []), frame), 1 << 20)


async def test_a_paused_nats_loses_no_stored_publication(nodes, nats_server, stelar_client_factory):
    one, two = await nodes(2)
    a = await stelar_client_factory(one)
    epoch = (await a.join("feed"))["position"]["epoch"]
    two.to("feed", "tick", 1)
    assert (await a.next_event()).position == Position(epoch, 1)
    nats_server.pause()
    await eventually(lambda: one.get_stats().degraded and two.get_stats().degraded, what="both degraded")
    nats_server.resume()
    await eventually(lambda: not one.get_stats().degraded and not two.get_stats().degraded, what="healed")
    for n in (2, 3):
        two.to("feed", "tick", n)
    got = [await a.next_event() for _ in range(2)]
    assert [(e.data, e.position) for e in got] == [(2, Position(epoch, 2)), (3, Position(epoch, 3))]


async def test_without_jetstream_a_history_room_is_local_and_the_node_says_why(stelar_client_factory):
    plain = NatsProcess(jetstream=False)
    plain.start()
    try:
        (one,) = await start_nodes(plain.url, 1, transports=["memory"], rooms=ROOMS, rate_limit=None)
        try:
            a = await stelar_client_factory(one)
            answer = await a.join("feed")
            assert answer["ok"] is True and "position" not in answer
            one.to("feed", "tick", 1)
            event = await a.next_event()
            assert event.data == 1 and event.position is None
            assert counter(one, "history_unavailable") == 1
            degraded = one.get_stats().degraded
            assert "JetStream did not store a publication" in degraded["nats"], degraded
            one.to("lobby", "plain", 1)  # rooms without history are not concerned
        finally:
            await one.stop()
    finally:
        plain.stop()


async def test_a_client_dropped_across_two_node_processes_gets_every_message_once_in_order(nats_server):
    prefix = f"p{uuid.uuid4().hex[:8]}"
    rooms = {"feed": {"history_size": 1000}}
    processes = [NodeProcess(nats_server.url, prefix, rooms) for _ in range(2)]
    (publisher,) = await start_nodes(
        nats_server.url, 1, transports=["memory"], rooms=rooms, rate_limit=None, nats={"prefix": prefix}
    )
    client = StelarClient(processes[0].tcp, reconnection=False)
    received: list[int] = []
    outcomes: list[tuple[str, object]] = []
    client.on("n", received.append)
    client.on("recovered", lambda info: outcomes.append(("recovered", info["replayed"])))
    client.on("not_recovered", lambda info: outcomes.append(("not_recovered", info["reason"])))
    rng = random.Random(2026)
    drops = set(rng.sample(range(1, 400), 16))
    try:
        await client.connect()
        assert (await client.join_room("feed")).position.offset == 0
        dropped = 0
        for n in range(1, 401):
            publisher.to("feed", "n", n)
            if n in drops:
                drop_client_link(client)
                await eventually(lambda: not client.connected, what="the drop seen")
                dropped += 1
                client.url = processes[dropped % 2].tcp  # back on the other node
                await client.connect()
                if rng.random() < 0.5:
                    drop_client_link(client)  # in the middle of the replay
                    await eventually(lambda: not client.connected, what="the drop seen")
                    await client.connect()
            elif n % 20 == 0:  # (paced: drops fall among messages on their way)
                await eventually(lambda sent=n: len(received) >= sent - 20, what="the client keeping up")
        await eventually(lambda: len(received) >= 400, what="all 400", timeout=20)
    finally:
        await client.disconnect()
        await publisher.stop()
        for process in processes:
            process.kill()
        gc.collect()  # the aborted links' transports are finalized now, in this test's loop
    assert received == list(range(1, 401))
    assert len(outcomes) >= 8 and all(kind == "recovered" for kind, _ in outcomes), outcomes
    assert sum(replayed for _, replayed in outcomes) > 0


async def test_a_rooms_stream_keeps_at_most_history_max_size_per_room(nats_server, stelar_client_factory):
    (one,) = await start_nodes(
        nats_server.url, 1, transports=["memory"], rooms=ROOMS, rate_limit=None, nats={"history_max_size": 3}
    )
    try:
        a = await stelar_client_factory(one)
        await a.join("feed")
        for n in range(10):
            one.to("feed", "tick", n)
        for _ in range(10):
            await a.next_event()
        prefix = one.get_config()["nats"]["prefix"]
        raw = await nats.connect(nats_server.url)
        try:
            info = await raw.jetstream().stream_info(stream_name(prefix))
            assert info.config.max_msgs_per_subject == 3 and info.state.messages == 3
        finally:
            await raw.close()
    finally:
        await one.stop()


async def test_history_options_are_checked():
    for options, message in (
        ({"history_max_size": 0}, "nats.history_max_size"),
        ({"history_max_age": -1}, "nats.history_max_age"),
    ):
        with pytest.raises(ConfigError, match=message):
            server = StelarServer(transports=["memory"], broker="nats", nats=options)
            await server.start()
