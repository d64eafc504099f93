"""``stelar publish``, ``stelar kick`` and ``stelar rooms``, run as real processes against a real
server: through its HTTP API, and through a real redis-server with the emitter."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from stelar_core import StelarClient
from stelar_core.testing import eventually

KEY = "operator-key-0123456789"


async def stelar(*args, key=None):
    environment = {**os.environ, "STELAR_API_KEY": key} if key else dict(os.environ)
    environment.pop("STELAR_API_KEY", None) if key is None else None
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stelar_core.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def listener(server):
    client = StelarClient(server.addresses["tcp"][0], reconnection=False)
    client.inbox = asyncio.Queue()
    client.on("news", client.inbox.put_nowait)
    closed = asyncio.get_running_loop().create_future()
    client.on("disconnect", lambda info: closed.done() or closed.set_result(info))
    client.closed = closed
    await client.connect()
    await client.join_room("lobby")
    return client


@pytest.mark.one_loop
async def test_publish_kick_and_rooms_through_the_http_api(stelar_server_factory):
    server = await stelar_server_factory(transports=["tcp", "ws"], api={"enabled": True, "keys": [KEY]})
    url = f"http://127.0.0.1:{server.get_port('ws')}"
    client = await listener(server)
    code, out, _ = await stelar("publish", "lobby", "news", '{"n": 1}', "--url", url, key=KEY)
    assert code == 0 and "published 'news' to room 'lobby'" in out
    assert await asyncio.wait_for(client.inbox.get(), 5) == {"n": 1}
    code, out, _ = await stelar("rooms", "--url", url, "--api-key", KEY)
    assert code == 0 and out.split() == ["lobby"]
    code, out, _ = await stelar("kick", client.id, "--url", url, "--reason", "spam", key=KEY)
    assert code == 0 and client.id in out
    assert (await asyncio.wait_for(client.closed, 5))["reason"] == "spam"
    # Refusals: the server's message, exit status 1; a usage error, 2.
    code, _, err = await stelar("kick", "ghost", "--url", url, key=KEY)
    assert code == 1 and "no client 'ghost'" in err
    code, _, err = await stelar("rooms", "--url", url, key="wrong-key-0123456789")
    assert code == 1 and "401" in err and "not valid" in err
    code, _, err = await stelar("rooms", "--url", url)
    assert code == 2 and "STELAR_API_KEY" in err
    code, _, err = await stelar("publish", "lobby", "news", "{not json", "--url", url, key=KEY)
    assert code == 2 and "DATA is not JSON" in err
    code, _, err = await stelar("rooms", "--url", "ftp://example", key=KEY)
    assert code == 2 and "http(s)://" in err


@pytest.mark.one_loop
async def test_publish_kick_and_rooms_through_redis_with_the_emitter(stelar_server_factory, redis_server):
    server = await stelar_server_factory(
        transports=["tcp"], broker="redis", redis={"url": redis_server.url, "prefix": "ops"}
    )
    client = await listener(server)
    await eventually(lambda: _room_listed(redis_server.url), what="the room written to Redis")
    code, out, _ = await stelar(
        "publish", "lobby", "news", "2", "--url", redis_server.url, "--broker-prefix", "ops"
    )
    assert code == 0, out
    assert await asyncio.wait_for(client.inbox.get(), 5) == 2
    code, out, _ = await stelar("kick", client.id, "--url", redis_server.url, "--broker-prefix", "ops")
    assert code == 0 and client.id in out
    await asyncio.wait_for(client.closed, 5)
    code, _, err = await stelar("kick", "ghost", "--url", redis_server.url, "--broker-prefix", "ops")
    assert code == 1 and "no client 'ghost'" in err


async def _room_listed(url):
    code, out, _ = await stelar("rooms", "--url", url, "--broker-prefix", "ops")
    return code == 0 and out.split() == ["lobby"]
