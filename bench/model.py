"""A model of the large case: 100 nodes x 100,000 connections, on one Redis, a Redis Cluster of
N shards, and NATS (docs/scaling.md, "A model of the large case").

    bench/.venv/bin/python bench/model.py             # the table, from the inputs below
    bench/.venv/bin/python bench/model.py --measure   # measure the broker inputs here first

Per published message it works out, for each topology and each scenario (a 1,000-member room,
a 100,000-member room, a broadcast to everyone): the nodes it reaches, the deliveries and CPU on
each node, the CPU and bytes on the broker shard that carries it, and so the highest message
rate before a node or the broker is saturated, and which one is. A small simulation places
members on nodes and rooms on shards at random and checks the arithmetic (nodes reached, the
busiest node, the busiest shard) against the formulas.

Inputs are costs measured on this machine. The stelar figures come from bench/RESULTS.md (a
node's WebSocket fan-out on one core, idle memory per connection) and from timing an envelope's
decoding here; the broker figures are CPU seconds of a redis-server and of a nats-server per
message in and per message out, which ``--measure`` measures with raw subscribers (recorded
below: the mean of two runs on 2026-12-05).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import threading
import timeit
import zlib

import attrs

NODES = 100
CONNECTIONS_PER_NODE = 100_000
PAYLOAD = 100  # bytes of an event's frame
ENVELOPE = PAYLOAD + 60  # with the envelope around it (origin, room, exclusion)
CORE_US = 1_000_000  # µs of one core per second

# A node's WebSocket fan-out on one core: 450,128 deliveries/s (bench/RESULTS.md, WS fan-out
# burst, stelar ws): the cost of one local delivery, frame shared, kernel write included.
DELIVERY_US = 1e6 / 450_128
# Idle memory per WebSocket connection at 10,000 connections (bench/RESULTS.md).
IDLE_BYTES = 6_414


@attrs.define
class BrokerCosts:
    """µs of broker CPU per message published (in) and per copy sent to a subscriber (out)."""

    redis_in: float = 0.49
    redis_out: float = 0.19
    nats_in: float = 0.26
    nats_out: float = 0.22


# ----------------------------------------------------------------------------- measuring


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain(sock: socket.socket, total: int, done: threading.Event) -> None:
    received = 0
    while received < total:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += len(chunk)
    done.set()


def _server_cpu_per_message(pid: int, port: int, subscribers: int, messages: int, dialect: str) -> float:
    """µs of the server's CPU per message published with ``subscribers`` raw subscribers."""
    payload = b"x" * ENVELOPE
    if dialect == "redis":
        subscribe = b"SUBSCRIBE ch\r\n"
        delivered = len(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%s\r\n" % (ENVELOPE, payload))
        publish = b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$%d\r\n%s\r\n" % (ENVELOPE, payload)
        confirmation = b"subscribe"
    else:
        subscribe = b'CONNECT {"verbose":false}\r\nSUB ch 1\r\nPING\r\n'
        delivered = len(b"MSG ch 1 %d\r\n%s\r\n" % (ENVELOPE, payload))
        publish = b"PUB ch %d\r\n%s\r\n" % (ENVELOPE, payload)
        confirmation = b"PONG"
    readers, done = [], []
    for _ in range(subscribers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(subscribe)
        seen = b""
        while confirmation not in seen:
            seen += sock.recv(4096)
        event = threading.Event()
        threading.Thread(target=_drain, args=(sock, delivered * messages, event), daemon=True).start()
        readers.append(sock)
        done.append(event)
    publisher = socket.create_connection(("127.0.0.1", port))
    if dialect == "nats":
        publisher.sendall(b'CONNECT {"verbose":false}\r\n')
    else:
        publisher.sendall(b"CLIENT REPLY OFF\r\n")
    before = _cpu_seconds(pid)
    batch = publish * 1000
    for _ in range(messages // 1000):
        publisher.sendall(batch)
    for event in done:
        if not event.wait(120):
            raise RuntimeError(f"{dialect}: the subscribers did not receive every message")
    spent = _cpu_seconds(pid) - before
    for sock in [*readers, publisher]:
        sock.close()
    return spent / messages * 1e6


def measure() -> BrokerCosts:
    """Broker CPU per message in and per copy out, from 1 and 8 raw subscribers (median of 3)."""
    from stelar_nats.testing import NatsProcess
    from stelar_redis.testing import RedisProcess

    messages = 200_000
    costs = {}
    for dialect, server in (("redis", RedisProcess()), ("nats", NatsProcess())):
        server.start()
        try:
            assert server.process is not None
            pid = server.process.pid
            one = statistics.median(
                _server_cpu_per_message(pid, server.port, 1, messages, dialect) for _ in range(3)
            )
            eight = statistics.median(
                _server_cpu_per_message(pid, server.port, 8, messages, dialect) for _ in range(3)
            )
        finally:
            server.stop()
        out = (eight - one) / 7
        costs[f"{dialect}_in"], costs[f"{dialect}_out"] = max(one - out, 0.0), out
    return BrokerCosts(**{k: round(v, 2) for k, v in costs.items()})


def envelope_us() -> float:
    """µs to read one envelope of ENVELOPE bytes at a receiving node (stelar-redis's msgpack
    envelope; stelar-nats's is of the same order), timed here."""
    from stelar_redis.envelope import Deliver, decode, encode

    packed = encode(Deliver("node", b"x" * PAYLOAD, "room", None, ()), 1 << 20)
    runs = timeit.repeat(lambda: decode(packed, 1 << 20), number=20_000, repeat=5)
    return min(runs) / 20_000 * 1e6


# ----------------------------------------------------------------------------- the model


def nodes_reached(members: int, nodes: int = NODES) -> float:
    """Expected nodes holding at least one of ``members`` spread at random over ``nodes``."""
    return nodes * (1 - (1 - 1 / nodes) ** members)


@attrs.frozen
class Scenario:
    name: str
    members: int  # recipients of one message (everyone for a broadcast)
    rooms: int  # rooms of this kind in the stated workload
    rate: float  # messages/s published to each


SCENARIOS = (
    Scenario("1,000-member rooms", 1_000, rooms=1_000, rate=1.0),
    Scenario("100,000-member room", 100_000, rooms=1, rate=10.0),
    Scenario("broadcast to all 10M", NODES * CONNECTIONS_PER_NODE, rooms=1, rate=1.0),
)


@attrs.frozen
class Topology:
    name: str
    shards: int  # broker processes that share the rooms (one carries a given room)
    broker_in: float
    broker_out: float
    # Copies a shard sends per message reaching k nodes: k for Redis and one NATS server; for a
    # NATS cluster, one per other server with interest plus its own subscribers.
    fanout: str = "nodes"


def topologies(costs: BrokerCosts, shards: int) -> list[Topology]:
    return [
        Topology("one Redis", 1, costs.redis_in, costs.redis_out),
        Topology(f"Redis Cluster, {shards} shards", shards, costs.redis_in, costs.redis_out),
        Topology("NATS, one server", 1, costs.nats_in, costs.nats_out),
        Topology(f"NATS cluster, {shards} servers", shards, costs.nats_in, costs.nats_out, fanout="routes"),
    ]


def row(topology: Topology, scenario: Scenario, envelope: float) -> dict[str, float]:
    k = nodes_reached(scenario.members)
    per_node = scenario.members / k
    node_us = envelope + per_node * DELIVERY_US
    # Copies one message costs its busiest broker process: on a NATS cluster the publisher's
    # server sends to every other server once and to its own share of the nodes.
    copies = topology.shards - 1 + k / topology.shards if topology.fanout == "routes" else k
    shard_us = topology.broker_in + copies * topology.broker_out
    node_limit = CORE_US / node_us
    shard_limit = CORE_US / shard_us
    return {
        "nodes": k,
        "per_node": per_node,
        "node_us": node_us,
        "shard_us": shard_us,
        "shard_bytes": copies * ENVELOPE,
        "node_limit": node_limit,
        "shard_limit": shard_limit,
    }


def workload_row(topology: Topology, scenario: Scenario, envelope: float) -> str:
    """Per-second figures of ``scenario``'s workload on a node and on the busiest broker process."""
    total = scenario.rooms * scenario.rate  # messages/s published
    k = nodes_reached(scenario.members)
    per_node_in = total * k / NODES  # envelopes a node receives
    deliveries = total * scenario.members / NODES
    node_cpu = (per_node_in * envelope + deliveries * DELIVERY_US) / CORE_US
    n = topology.shards
    if topology.fanout == "routes":
        # Every server sees every message once; it sends to its own nodes, and forwards what its
        # clients published to the other servers.
        shard_in = total
        copies = total * (k / n) + total / n * (n - 1) if scenario.rooms > 1 else total * ((n - 1) + k / n)
    else:
        # Rooms spread over the shards by partition; one room is on one shard.
        shard_in = total / n if scenario.rooms >= n else scenario.rate
        copies = shard_in * k
    shard_cpu = (shard_in * topology.broker_in + copies * topology.broker_out) / CORE_US
    return (
        f"| {scenario.name} | {topology.name} | {per_node_in:,.0f} | {deliveries:,.0f} "
        f"| {per_node_in * ENVELOPE:,.0f} | {node_cpu:.1%} | {shard_in:,.0f} | {copies:,.0f} "
        f"| {copies * ENVELOPE:,.0f} | {shard_cpu:.1%} |"
    )


def aggregate(topology: Topology, envelope: float) -> tuple[float, float]:
    """Messages/s of many 1,000-member rooms the whole cluster carries: rooms spread over the
    shards (Redis Cluster by partition, a NATS cluster by where publishers connect), every
    message reaching every node."""
    one = row(topology, SCENARIOS[0], envelope)
    broker_total = CORE_US / one["shard_us"] * (topology.shards if topology.fanout == "nodes" else 1)
    if topology.fanout == "routes":
        # Every server handles every message once (in, or from a route) plus its share of copies.
        per_server = topology.broker_in + (one["nodes"] / topology.shards) * topology.broker_out
        broker_total = CORE_US / per_server
    node_total = CORE_US / one["node_us"]  # every node sees every message
    return broker_total, node_total


# ----------------------------------------------------------------------------- simulation


def simulate(seed: int = 7) -> list[str]:
    """Place members and rooms at random and compare with the formulas."""
    rng = random.Random(seed)
    lines = []
    for members in (1_000, 100_000):
        reached = []
        busiest = []
        for _ in range(20):
            counts = [0] * NODES
            for _ in range(members):
                counts[rng.randrange(NODES)] += 1
            reached.append(sum(1 for c in counts if c))
            busiest.append(max(counts))
        formula = nodes_reached(members)
        simulated = statistics.mean(reached)
        assert abs(simulated - formula) < 1.0, (members, simulated, formula)
        lines.append(
            f"- {members:,} members on {NODES} nodes: nodes reached {simulated:.1f} simulated, "
            f"{formula:.1f} by the formula; the busiest node holds {statistics.mean(busiest):,.0f} "
            f"members (mean {members / formula:,.0f})"
        )
    # Rooms -> 64 CRC32 partitions -> shards (slots spread evenly, as redis-cli --cluster create does).
    for shards in (3, 8, 16):
        load = [0] * shards
        for room in range(100_000):
            partition = zlib.crc32(f"room-{room}".encode()) % 64
            load[partition * shards // 64] += 1
        imbalance = max(load) / statistics.mean(load)
        lines.append(
            f"- 100,000 equally busy rooms in 64 partitions on {shards} shards: the busiest shard "
            f"carries {imbalance:.2f}x the mean"
        )
    return lines


def table(costs: BrokerCosts, envelope: float, shards: int) -> list[str]:
    lines = [
        f"Inputs: a local delivery {DELIVERY_US:.2f} µs of a node's core; reading an envelope "
        f"{envelope:.2f} µs; Redis {costs.redis_in:.2f} µs per message in + {costs.redis_out:.2f} µs "
        f"per copy out; NATS {costs.nats_in:.2f} + {costs.nats_out:.2f} µs; {ENVELOPE}-byte "
        f"envelopes; {IDLE_BYTES:,} B per idle WebSocket connection.",
        "",
        "| scenario | topology | nodes reached | deliveries per node | node CPU µs/msg "
        "| shard CPU µs/msg | shard bytes out/msg | msg/s a node can take | msg/s the shard can take |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        for topology in topologies(costs, shards):
            r = row(topology, scenario, envelope)
            lines.append(
                f"| {scenario.name} | {topology.name} | {r['nodes']:.0f} | {r['per_node']:,.0f} "
                f"| {r['node_us']:,.1f} | {r['shard_us']:,.1f} | {r['shard_bytes']:,.0f} "
                f"| {r['node_limit']:,.0f} | {r['shard_limit']:,.0f} |"
            )
    lines += [
        "",
        "At a stated workload (1,000 rooms of 1,000 members at 1 message/s each; one "
        "100,000-member room at 10 messages/s; one broadcast to everyone per second), per node and "
        "on the busiest broker process:",
        "",
        "| workload | topology | per node: envelopes/s | deliveries/s | bytes in/s | CPU of a core "
        "| busiest broker process: messages in/s | copies out/s | bytes out/s | CPU of a core |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        for topology in topologies(costs, shards):
            lines.append(workload_row(topology, scenario, envelope))
    lines += [
        "",
        "| topology | many 1,000-member rooms: msg/s the brokers can take | msg/s the nodes can take "
        "| pub/sub connections per broker process | memory per node (connections) |",
        "|---|---:|---:|---:|---:|",
    ]
    memory = CONNECTIONS_PER_NODE * IDLE_BYTES / 1e9
    for topology in topologies(costs, shards):
        # Every node holds one pub/sub connection to every Redis shard; a NATS node one connection
        # to one server of the cluster (which holds routes to the others).
        connections = NODES // topology.shards if topology.fanout == "routes" else NODES
        brokers, nodes = aggregate(topology, envelope)
        lines.append(f"| {topology.name} | {brokers:,.0f} | {nodes:,.0f} | {connections} | {memory:.2f} GB |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="measure the broker costs here first")
    parser.add_argument("--shards", type=int, default=8, help="shards of the Redis Cluster / NATS cluster")
    args = parser.parse_args()
    costs = measure() if args.measure else BrokerCosts()
    if args.measure:
        print(f"measured: {costs}")
    envelope = envelope_us()
    print("\n".join(table(costs, envelope, args.shards)))
    print("\nSimulation:")
    print("\n".join(simulate()))


if __name__ == "__main__":
    main()
