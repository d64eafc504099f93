"""The seams a broker joining several nodes builds on: the broker's port (membership watching,
answering for local clients, degraded state), ``server.cluster``, shared provider resources and
limiter scopes. The Redis broker's own tests (plugins/stelar-redis) use them over real Redis."""

import json

import pytest

from stelar_core import AckError, NotConnected, RateLimit, StelarServer, hookimpl
from stelar_core.builtins.brokers import LocalBroker
from stelar_core.builtins.token_bucket import TokenBucketLimiter
from stelar_core.protocol import decode_frame
from stelar_core.providers import BrokerPort, ClusterBroker, Delivery
from stelar_core.testing.http import http_call as call
from stelar_core.values import ClientInfo


class WatchingBroker(LocalBroker):
    """The local broker plus a record of every membership change the hub reports."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[tuple] = []
        self.port: BrokerPort | None = None

    async def start(self, port: BrokerPort) -> None:
        await super().start(port)
        self.port = port
        port.watch(self)

    def client_opened(self, info):
        self.changes.append(("opened", info.id))

    def client_closed(self, client_id):
        self.changes.append(("closed", client_id))

    def client_updated(self, info):
        self.changes.append(("updated", info.id, dict(info.metadata)))

    def room_joined(self, client_id, room, first):
        self.changes.append(("joined", client_id, room, first))

    def room_left(self, client_id, room, last):
        self.changes.append(("left", client_id, room, last))


async def test_the_broker_watches_clients_and_first_and_last_room_members(
    stelar_server_factory, stelar_client_factory
):
    broker = WatchingBroker()
    server = await stelar_server_factory(broker=broker)
    alice = await stelar_client_factory(server)
    bob = await stelar_client_factory(server)
    await alice.join("team")
    await bob.join("team")
    await alice.leave("team")
    await bob.join("other")
    bob.close()
    await server.stop()
    assert broker.changes[:6] == [
        ("opened", alice.id),
        ("opened", bob.id),
        ("joined", alice.id, "team", True),
        ("joined", bob.id, "team", False),
        ("left", alice.id, "team", False),
        ("joined", bob.id, "other", True),
    ]
    # Leaving on close: each room (in no particular order), then the client.
    assert set(broker.changes[6:8]) == {("left", bob.id, "team", True), ("left", bob.id, "other", True)}
    assert broker.changes[8:] == [("closed", bob.id), ("closed", alice.id)]


async def test_the_broker_is_told_when_an_open_clients_metadata_changes(
    stelar_server_factory, stelar_client_factory
):
    broker = WatchingBroker()
    server = await stelar_server_factory(broker=broker)

    @server.use
    def in_middleware(ctx, next):
        ctx.set_metadata("plan", "free")  # before the client is open: part of its opening
        next()

    server.on_ack("upgrade", lambda ctx: ctx.set_metadata("plan", ctx.data))
    alice = await stelar_client_factory(server)
    await alice.request("upgrade", "pro")
    assert broker.changes == [("opened", alice.id), ("updated", alice.id, {"plan": "pro"})]
    assert server.get_clients()[0].metadata == {"plan": "pro"}


async def test_the_port_asks_and_disconnects_local_clients(stelar_server_factory, stelar_client_factory):
    broker = WatchingBroker()
    server = await stelar_server_factory(broker=broker)
    client = await stelar_client_factory(server)
    client.on_ack("double", lambda data: data * 2)
    port = broker.port
    assert port.has_client(client.id) and not port.has_client("nobody")
    assert [info.id for info in port.clients()] == [client.id]
    assert await port.ask(client.id, "double", 21, 5.0) == 42
    with pytest.raises(NotConnected, match="nobody"):
        await port.ask("nobody", "double", 1, 5.0)
    assert port.stats().active_connections == 1
    assert port.disconnect(client.id, 4000, "bye") is True
    assert port.disconnect(client.id, 4000, "bye") is False
    assert (await client.wait_closed())[0] == 4000


async def test_degraded_reaches_hooks_stats_health_and_metrics(stelar_server_factory):
    calls = []
    broker = WatchingBroker()
    server = await stelar_server_factory(
        port=0,
        broker=broker,
        hooks={
            "on_degraded": lambda component, reason: calls.append(("degraded", component, reason)),
            "on_restored": lambda component, seconds: calls.append(("restored", component, seconds >= 0)),
        },
    )
    http_port = server.get_port("ws")
    broker.port.set_degraded("redis", "connection refused")
    broker.port.set_degraded("redis", "still refused")  # a new reason is no new event
    assert server.get_stats().degraded == {"redis": "still refused"}
    status, _, body = await call(http_port, "/health")
    assert status == 200  # the node still serves its own clients
    data = json.loads(body)
    assert data["status"] == "degraded" and data["degraded"] == {"redis": "still refused"}
    _, _, metrics = await call(http_port, "/metrics")
    assert b'stelar_degraded{component="redis"} 1.0' in metrics
    broker.port.set_degraded("redis", None)
    broker.port.set_degraded("redis", None)
    assert calls == [("degraded", "redis", "connection refused"), ("restored", "redis", True)]
    assert json.loads((await call(http_port, "/health"))[2])["status"] == "ok"


async def test_the_cluster_of_a_local_broker_is_this_node(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory()
    alice = await stelar_client_factory(server)
    await alice.join("team")
    cluster = server.cluster
    assert cluster.node_id == "local"
    assert [info.id for info in await cluster.get_clients("team")] == [alice.id]
    assert await cluster.get_room_members("team") == [alice.id]
    assert await cluster.get_rooms() == ["team"]
    stats = await cluster.get_stats()
    assert stats.node_count == 1 and stats.active_connections == 1 and stats.total_rooms == 1
    assert stats.nodes["local"]["active_connections"] == 1
    with pytest.raises(AttributeError):
        _ = stats.no_such_figure
    assert await cluster.disconnect(alice.id) is True
    assert await cluster.disconnect(alice.id) is False


class RemoteOnly(WatchingBroker):
    """A cluster broker whose other nodes have one client, ``far``, that answers by echo."""

    node_id = "node-a"

    def __init__(self):
        super().__init__()
        self.sent = []
        self.moved = []

    async def request(self, client_id, event, data, timeout):
        if client_id != "far":
            raise NotConnected(client_id)
        if event == "fail":
            raise AckError("nope", "refused far away")
        return {"echo": data, "timeout": timeout}

    async def disconnect(self, client_id, code, reason):
        return client_id == "far"

    async def send(self, client_id, frame):
        self.sent.append((client_id, decode_frame(frame).event))
        return client_id == "far"

    async def membership(self, client_id, room, join):
        self.moved.append((client_id, room, join))
        return client_id == "far"

    async def clients(self, room):
        return [ClientInfo("far", "tcp", "10.0.0.9", frozenset({"far-room"}), {}, 1.5e9)]

    async def room_members(self, room):
        return ["far"]

    async def rooms(self):
        return ["far-room"]

    async def node_stats(self):
        return {"node-a": {"active_connections": 2}, "node-b": {"active_connections": 3}}


async def test_requests_and_reads_go_through_a_cluster_broker(stelar_server_factory):
    broker = RemoteOnly()
    assert isinstance(broker, ClusterBroker)
    server = await stelar_server_factory(broker=broker, ack_timeout=7.0)
    assert await server.request("far", "ask", 1) == {"echo": 1, "timeout": 7.0}
    assert await server.request("far", "ask", 1, timeout=2.0) == {"echo": 1, "timeout": 2.0}
    with pytest.raises(AckError, match="refused far away"):
        await server.request("far", "fail")
    with pytest.raises(NotConnected):
        await server.request("nowhere", "ask")
    assert await server.cluster.disconnect("far") is True
    assert await server.cluster.get_room_members("x") == ["far"]
    stats = await server.cluster.get_stats()
    assert (stats.node_count, stats.active_connections, stats.total_rooms) == (2, 5, 1)
    assert server.cluster.node_id == "node-a"
    # Actions on a client of another node go through the broker; a local one is acted on here.
    assert await server.cluster.to_id("far", "hello", 1) is True
    assert await server.cluster.to_id("nowhere", "hello", 1) is False
    assert await server.cluster.join("far", "r") is True and await server.cluster.leave("far", "r") is True
    assert broker.sent == [("far", "hello"), ("nowhere", "hello")]
    assert broker.moved == [("far", "r", True), ("far", "r", False)]
    far = await server.cluster.get_client("far")
    assert far is not None and far.remote_address == "10.0.0.9" and far.connected_at == 1.5e9
    assert await server.cluster.get_client("nowhere") is None


class Link:
    """A shared resource with a lifecycle, as a Redis plugin's connection pool is."""

    events: list[str] = []

    async def start(self):
        self.events.append("start")

    async def stop(self):
        self.events.append("stop")


class ScopedLimiters:
    """A plugin whose limiters and tracker share one resource and record their scopes."""

    def __init__(self):
        self.scopes: list[str] = []
        self.links: list[Link] = []

    @hookimpl
    def stelar_register_rate_limiters(self, register):
        def make(context):
            self.links.append(context.resources.get("link", Link))
            self.scopes.append(context.scope)
            return TokenBucketLimiter(context.limit)

        register("scoped", make)


async def test_limiters_know_their_scope_and_providers_share_resources():
    Link.events.clear()
    plugin = ScopedLimiters()
    server = StelarServer(
        transports=["memory"],
        plugins=[plugin],
        rate_limiter="scoped",
        rate_limit=RateLimit(10, 1.0),
        event_rate_limits={"chat": RateLimit(1, 1.0)},
    )
    server.set_client_rate_limit("vip", RateLimit(100, 1.0))
    assert sorted(plugin.scopes) == ["client:vip", "event:chat", "global"]
    assert len({id(link) for link in plugin.links}) == 1
    await server.start()
    assert Link.events == ["start"]
    await server.stop()
    assert Link.events == ["start", "stop"]


def test_a_delivery_is_frozen():
    delivery = Delivery(b"x", room="r")
    with pytest.raises(AttributeError):
        delivery.room = "s"
