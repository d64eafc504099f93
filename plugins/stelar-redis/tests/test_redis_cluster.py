"""stelar-redis across real processes: two and three nodes on one real redis-server, clients of
both transports on different nodes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from cluster_nodes import NodeProcess

from stelar_core import AckError, NotConnected
from stelar_core.testing import eventually

pytestmark = pytest.mark.one_loop


@pytest.fixture
def nodes(redis_server):
    """``nodes(n, **options)`` starts n nodes sharing the test's Redis and a fresh prefix."""
    started: list[NodeProcess] = []
    prefix = f"t{uuid.uuid4().hex[:8]}"

    def start(count: int, **options) -> list[NodeProcess]:
        new = [NodeProcess(redis_server.url, prefix, **options) for _ in range(count)]
        for node in new:
            node.start()
        started.extend(new)
        return new

    start.prefix = prefix
    yield start
    for node in started:
        node.stop()


async def subscribers(redis_server, prefix: str, room: str) -> int:
    counts = await redis_server.command("PUBSUB", "NUMSUB", f"{prefix}:room:{room}")
    return int(counts[1])


async def test_rooms_broadcasts_to_id_and_exclude_across_two_nodes(redis_server, nodes, connect):
    one, two = nodes(2)
    alice = await connect(one.addresses["ws"])
    bob = await connect(two.addresses["tcp"])
    carol = await connect(two.addresses["ws"])
    assert await alice.client.join_room("team") and await bob.client.join_room("team")
    await eventually(lambda: subscribers(redis_server, nodes.prefix, "team"), what="node two subscribed")
    await eventually(
        lambda: _count(subscribers(redis_server, nodes.prefix, "team"), 2), what="both nodes subscribed"
    )

    # A client's message to its room reaches the member on the other node, not the sender.
    alice.client.emit("say", {"room": "team", "text": "hi", "exclude": alice.id})
    assert (await bob.wait_for(1))[-1] == ("said", "hi")

    # Server calls on node two reach node one's members; carol is in no room.
    assert await carol.do("to", room="team", event="news", data=1) == {"ok": None}
    assert (await alice.wait_for(1))[-1] == ("news", 1)
    assert (await bob.wait_for(2))[-1] == ("news", 1)
    await carol.do("broadcast", event="all", data=2, exclude=[bob.id])
    assert (await alice.wait_for(2))[-1] == ("all", 2)
    assert (await carol.wait_for(1))[-1] == ("all", 2)
    await bob.do("to_id", client_id=alice.id, event="direct", data=3)
    assert (await alice.wait_for(3))[-1] == ("direct", 3)
    await carol.do("broadcast_binary", event="blob", data="xyz")
    assert (await alice.wait_for(4))[-1] == ("blob", b"xyz")

    # Nothing was delivered twice, and nobody got what was not for them. A last broadcast from
    # each node closes the count: Redis hands a node's subscription everything published before
    # it, so a duplicate would have arrived first.
    await alice.do("broadcast", event="end", data=1)
    await carol.do("broadcast", event="end", data=2)
    for client, count in ((alice, 6), (bob, 5), (carol, 4)):
        await client.wait_for(count)
    assert [e for e, _ in alice.received] == ["news", "all", "direct", "blob", "end", "end"]
    assert [e for e, _ in bob.received] == ["said", "news", "blob", "end", "end"]
    assert [e for e, _ in carol.received] == ["all", "blob", "end", "end"]


async def _count(value, wanted):
    return (await value) == wanted


async def test_a_node_without_members_does_not_subscribe_to_the_room(redis_server, nodes, connect):
    one, _two = nodes(2)
    alice = await connect(one.addresses["tcp"])
    await alice.client.join_room("solo")
    await eventually(lambda: subscribers(redis_server, nodes.prefix, "solo"))
    assert await subscribers(redis_server, nodes.prefix, "solo") == 1
    await alice.client.leave_room("solo")
    await eventually(lambda: _count(subscribers(redis_server, nodes.prefix, "solo"), 0), what="unsubscribed")


async def test_requests_to_a_client_on_another_node(redis_server, nodes, connect):
    one, two = nodes(2)
    asker = await connect(one.addresses["tcp"])
    answerer = await connect(two.addresses["ws"])
    answerer.client.on_ack("double", lambda data: data * 2)

    def refuse(data):
        raise ValueError("not today")

    answerer.client.on_ack("refuse", refuse)

    async def slow(data):
        await asyncio.Event().wait()

    answerer.client.on_ack("slow", slow)
    await eventually(lambda: asker.do("clients"), what="directory written")
    await eventually(
        lambda: _has(asker.do("clients"), answerer.id), what="the answerer in the cluster directory"
    )
    assert await asker.do("request", client_id=answerer.id, event="double", data=21) == {"ok": 42}
    refused = await asker.do("request", client_id=answerer.id, event="refuse", data=1)
    assert refused["error"] == "AckError" and "not today" in refused["message"]
    timed_out = await asker.do("request", client_id=answerer.id, event="slow", timeout=0.3)
    assert timed_out["error"] == "AckTimeout"
    missing = await asker.do("request", client_id="nobody", event="double", data=1)
    assert missing["error"] == "NotConnected"


async def _has(answer, client_id):
    return any(entry[0] == client_id for entry in (await answer)["ok"])


async def test_disconnect_and_cluster_reads_and_a_killed_node_disappears(redis_server, nodes, connect):
    one, two, three = nodes(3, redis={"heartbeat_interval": 0.2, "node_timeout": 1.0})
    alice = await connect(one.addresses["ws"])
    bob = await connect(two.addresses["tcp"])
    carol = await connect(three.addresses["tcp"])
    await alice.client.join_room("a")
    await bob.client.join_room("a")
    await carol.client.join_room("c")

    async def reads():
        return (
            (await alice.do("clients"))["ok"],
            (await alice.do("members", room="a"))["ok"],
            (await alice.do("rooms"))["ok"],
            (await alice.do("stats"))["ok"],
        )

    expected_clients = sorted([[alice.id, "ws", ["a"]], [bob.id, "tcp", ["a"]], [carol.id, "tcp", ["c"]]])

    async def all_there():
        clients, members, rooms, stats = await reads()
        return (
            clients == expected_clients
            and members == sorted([alice.id, bob.id])
            and rooms == ["a", "c"]
            and (stats["active"] == 3 and len(stats["nodes"]) == 3)
        )

    await eventually(all_there, what="cluster reads show three nodes")
    stats = (await alice.do("stats"))["ok"]
    assert sorted(stats["nodes"]) == sorted([one.node_id, two.node_id, three.node_id])

    # Disconnect a client of another node.
    assert await alice.do("disconnect", client_id=bob.id) == {"ok": True}
    await eventually(lambda: not bob.client.connected, what="bob disconnected")
    assert await alice.do("disconnect", client_id=bob.id) == {"ok": False}

    # A node killed with SIGKILL leaves every read within node_timeout (1 s) + one sweep.
    three.kill()
    loop = asyncio.get_running_loop()
    killed_at = loop.time()

    async def three_gone():
        clients, _, rooms, stats = await reads()
        return clients == [[alice.id, "ws", ["a"]]] and rooms == ["a"] and len(stats["nodes"]) == 2

    await eventually(three_gone, timeout=5.0, what="the killed node gone from the reads")
    assert loop.time() - killed_at < 2.5
    missing = await alice.do("request", client_id=carol.id, event="x", timeout=1)
    assert missing["error"] == "NotConnected"


async def test_a_senders_messages_arrive_in_order_on_the_other_node(redis_server, nodes, connect):
    one, two = nodes(2)
    sender = await connect(one.addresses["tcp"])
    receiver = await connect(two.addresses["ws"])
    await sender.client.join_room("feed")
    await receiver.client.join_room("feed")
    await eventually(lambda: _count(subscribers(redis_server, nodes.prefix, "feed"), 2), what="subscribed")
    for n in range(300):
        sender.client.emit("say", {"room": "feed", "text": n, "exclude": sender.id})
    received = await receiver.wait_for(300)
    assert [data for _, data in received] == list(range(300))


async def command_calls(redis_server) -> dict[str, int]:
    info = await redis_server.command("INFO", "commandstats")
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in info.items()}


async def test_one_broadcast_costs_one_redis_command_whatever_the_members(redis_server, nodes, connect):
    # Long heartbeats: nothing else talks to Redis while the commands are counted.
    quiet = {"redis": {"heartbeat_interval": 30.0, "node_timeout": 60.0}}
    one, two, three = nodes(3, **quiet)
    members = [await connect(node.addresses["tcp"]) for node in (one, two, three) for _ in range(5)]
    for member in members:
        await member.client.join_room("big")
    await eventually(lambda: _count(subscribers(redis_server, nodes.prefix, "big"), 3), what="subscribed")
    sender = members[0]
    await eventually(lambda: _has(sender.do("clients"), members[-1].id), what="membership written")
    before = await command_calls(redis_server)
    for n in range(10):
        await sender.do("to", room="big", event="news", data=n)
    for n in range(10):
        await sender.do("broadcast", event="all", data=n)
    for member in members:
        await member.wait_for(20)
    after = await command_calls(redis_server)
    used = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    for measuring in ("info", "hello", "client|setinfo"):  # the counting connection's own
        used.pop(measuring, None)
    assert used == {"publish": 20}  # 20 emits to 15 members on 3 nodes: 20 commands


async def test_shared_rate_limits_count_a_users_messages_on_every_node(redis_server, nodes, connect):
    limits = {
        "rate_limiter": "redis",
        "rate_limit": {"max_points": 5, "window": 60.0},
        "rate_limit_key": "user",
    }
    one, two = nodes(2, **limits)
    on_one = await connect(one.addresses["tcp"], auth={"user": "ann"})
    on_two = await connect(two.addresses["ws"], auth={"user": "ann"})
    other = await connect(two.addresses["tcp"], auth={"user": "bob"})
    answers = [await on_one.client.request("echo", n, timeout=5) for n in range(3)]
    answers += [await on_two.client.request("echo", n, timeout=5) for n in range(2)]
    assert answers == [0, 1, 2, 0, 1]
    # Ann's five points are spent across both nodes; Bob's bucket is his own.
    for client in (on_one, on_two):
        with pytest.raises(AckError) as refused:
            await client.client.request("echo", "one more", timeout=5)
        assert refused.value.code == "rate_limited"
    assert await other.client.request("echo", "bob", timeout=5) == "bob"


async def test_the_per_ip_limit_counts_every_node_and_forgets_a_dead_one(redis_server, nodes, connect):
    fast = {"redis": {"heartbeat_interval": 0.2, "node_timeout": 1.0}}
    one, two = nodes(2, ip_tracker="redis", max_connections_per_ip=2, **fast)
    await connect(one.addresses["tcp"])
    await connect(two.addresses["tcp"])

    async def counted(node):
        return (
            await redis_server.command("HGET", f"{nodes.prefix}:node:{node.node_id}:ips", "127.0.0.1") == b"1"
        )

    for node in (one, two):
        await eventually(lambda node=node: counted(node), what="the IP count written")
    with pytest.raises(NotConnected):
        await connect(one.addresses["ws"])
    # Node two dies: its connection stops counting once its registration expires.
    two.kill()
    await eventually(
        lambda: _connects(connect, one.addresses["ws"]), timeout=5, what="the dead node forgotten"
    )


async def test_the_per_ip_limit_holds_for_parallel_connections_across_nodes(redis_server, nodes, connect):
    """Eight connections opened at once, four on each node, with max_connections_per_ip=4:
    exactly four are admitted (each admission reserves its place in one script), every round."""
    one, two = nodes(2, ip_tracker="redis", max_connections_per_ip=4, rate_limit=None)
    urls = [one.addresses["tcp"], two.addresses["tcp"]] * 4
    for _ in range(3):
        outcomes = await asyncio.gather(*(connect(url) for url in urls), return_exceptions=True)
        admitted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, NotConnected)]
        assert (len(admitted), len(refused)) == (4, 4), outcomes
        assert all("too many connections" in str(error) for error in refused)
        for recorder in admitted:
            await recorder.client.disconnect()
        # The places come back as the connections close (the releases are written behind).
        await eventually(lambda: _no_ip_counted(redis_server, nodes.prefix), what="every place given back")


async def test_a_cluster_wide_max_connections_holds_for_parallel_connections(redis_server, nodes, connect):
    """cluster_max_connections=3 on two nodes: eight connections opened at once admit exactly
    three, the others are refused as "the cluster is full"; the places come back as they close."""
    limits = {"redis": {"cluster_max_connections": 3}}
    one, two = nodes(2, ip_tracker="redis", max_connections_per_ip=100, rate_limit=None, **limits)
    urls = [one.addresses["tcp"], two.addresses["tcp"]] * 4
    outcomes = await asyncio.gather(*(connect(url) for url in urls), return_exceptions=True)
    admitted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, NotConnected)]
    assert (len(admitted), len(refused)) == (3, 5), outcomes
    assert all("the cluster is full (3 connections across its nodes)" in str(error) for error in refused)
    for recorder in admitted:
        await recorder.client.disconnect()
    # The places come back (written behind): three again, wherever they connect.
    await eventually(lambda: _no_ip_counted(redis_server, nodes.prefix), what="every place given back")
    again = await asyncio.gather(*(connect(url) for url in urls[:3]))
    assert len(again) == 3


async def _no_ip_counted(redis_server, prefix) -> bool:
    keys = await redis_server.command("KEYS", f"{prefix}:node:*:ips")
    for key in keys:
        if await redis_server.command("HGETALL", key):
            return False
    return True


async def _connects(connect, url) -> bool:
    try:
        await connect(url)
    except NotConnected:
        return False
    return True
