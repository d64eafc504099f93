"""Presence across nodes on NATS: every node's members in every view, a killed node's members
gone from them, and the merge of the nodes' answers (bad ones refused)."""

from __future__ import annotations

import pytest
from nats_nodes import NodeProcess, start_nodes

from stelar_core import StelarClient
from stelar_core.testing import eventually
from stelar_nats.envelope import EnvelopeError
from stelar_nats.presence import merge

pytestmark = pytest.mark.one_loop

PRESENCE = {"rooms": {"doc": {"presence": True}}, "presence_interval": 0.05, "presence_grace": 0}


async def connected(server) -> StelarClient:
    client = StelarClient(server.addresses["tcp"][0], reconnection=False)
    await client.connect()
    return client


async def test_every_nodes_members_are_in_every_view(nats_server):
    one, two = await start_nodes(nats_server.url, 2, rate_limit=None, **PRESENCE)
    ann, bob = await connected(one), await connected(two)
    try:
        assert (await ann.join_room("doc")).ok and (await bob.join_room("doc")).ok
        ann.update_presence("doc", {"cursor": 1})
        everyone = {ann.id: {"cursor": 1}, bob.id: None}
        for member in (ann, bob):
            await eventually(lambda member=member: member.presence("doc") == everyone, what="every map")
        assert await one.cluster.presence("doc") == everyone == await two.cluster.presence("doc")
        await bob.leave_room("doc")
        await eventually(lambda: ann.presence("doc") == {ann.id: {"cursor": 1}}, what="bob gone")
    finally:
        for client in (ann, bob):
            await client.disconnect()
        for server in (one, two):
            await server.stop()


async def test_a_killed_nodes_members_leave_every_view(nats_server):
    (one,) = await start_nodes(nats_server.url, 1, rate_limit=None, **PRESENCE)
    node = NodeProcess(nats_server.url, one.get_config()["nats"]["prefix"], PRESENCE["rooms"])
    ann = await connected(one)
    try:
        other = StelarClient(node.tcp, reconnection=False)
        await other.connect()
        assert (await other.join_room("doc")).ok and (await ann.join_room("doc")).ok
        await eventually(lambda: ann.presence("doc").keys() == {ann.id, other.id}, what="both")
        node.kill()  # no goodbye: its members go when it stops answering
        await eventually(lambda: ann.presence("doc").keys() == {ann.id}, what="the other gone")
        await other.disconnect()
    finally:
        node.kill()
        await ann.disconnect()
        await one.stop()


def test_the_latest_stamp_of_a_key_on_several_nodes_wins():
    latest: dict = {}
    merge(latest, {"ann": [2.0, "two"], "bob": [1, None]})
    merge(latest, {"ann": [1.0, "one"], "cy": [3.0, {"x": 1}]})
    merge(latest, {"bob": [5.0, "later"]})
    assert latest == {"ann": (2.0, "two"), "bob": (5.0, "later"), "cy": (3.0, {"x": 1})}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([["ann", 1.0, None]], "not an object"),
        ({"ann": [1.0]}, "not \\[stamp, state\\]"),
        ({"ann": ["1.0", None]}, "not \\[stamp, state\\]"),
        ({"ann": [True, None]}, "has no stamp"),
    ],
)
def test_a_malformed_answer_is_refused_whole(answer, message):
    latest = {"bob": (1.0, None)}
    with pytest.raises(EnvelopeError, match=message):
        merge(latest, {"cy": [1.0, None], **answer} if isinstance(answer, dict) else answer)
    assert latest == {"bob": (1.0, None)}
