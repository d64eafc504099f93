"""Rate limits: token bucket, priority client > event > global, custom limiters, the hook."""

import asyncio

import pytest

from stelar_core import AckError, ErrorCode, RateLimit
from stelar_core.builtins.token_bucket import TokenBucketLimiter


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_token_bucket_allows_a_burst_then_refills_over_the_window():
    clock = FakeClock()
    limiter = TokenBucketLimiter(RateLimit(3, 1.0), clock=clock)
    assert [limiter.check("a") for _ in range(4)] == [True, True, True, False]
    clock.now = 1 / 3
    assert limiter.check("a") is True
    assert limiter.check("a") is False
    assert limiter.check("b") is True  # keys are independent


def test_token_bucket_says_what_is_available_without_taking_it():
    clock = FakeClock()
    limiter = TokenBucketLimiter(RateLimit(2, 1.0), clock=clock)
    assert limiter.available("a") == 2
    assert limiter.check("a", cost=2) is True
    assert limiter.available("a") == 0 and limiter.available("a") == 0
    clock.now = 0.25
    assert limiter.available("a") == 0.5
    clock.now = 5
    assert limiter.available("a") == 2  # never above the bucket's size


def test_token_bucket_cost_and_reset():
    limiter = TokenBucketLimiter(RateLimit(5, 1.0), clock=FakeClock())
    assert limiter.check("a", cost=5) is True
    assert limiter.check("a") is False
    limiter.reset("a")
    assert limiter.check("a") is True


def test_token_bucket_entries_expire_once_full_again():
    clock = FakeClock()
    limiter = TokenBucketLimiter(RateLimit(2, 1.0), clock=clock)
    limiter.check("a")
    limiter.check("b")
    limiter.check("b")
    clock.now = 0.5
    limiter.cleanup()
    assert limiter.size() == 1  # "a" refilled to full; "b" still owes a token
    clock.now = 1.0
    limiter.cleanup()
    assert limiter.size() == 0


def test_token_bucket_table_is_bounded_and_forgets_the_least_recently_used():
    limiter = TokenBucketLimiter(RateLimit(1, 60.0), max_entries=3, clock=FakeClock())
    for key in "abc":
        assert limiter.check(key)
    assert limiter.check("a") is False  # "a" is now the most recently used
    assert limiter.check("d") is True  # evicts "b"
    assert limiter.size() == 3
    assert limiter.check("b") is True  # "b" was forgotten: full bucket again (evicts "c")
    assert limiter.check("a") is False  # "a" was kept, still empty
    assert limiter.size() == 3


async def test_exceeding_the_global_limit_disconnects_with_an_error(
    stelar_server_factory, stelar_client_factory
):
    server = await stelar_server_factory(rate_limit=RateLimit(3, 60.0))
    client = await stelar_client_factory(server)
    for _ in range(4):
        client.emit("spam")
    code, body = await client.next_error()
    assert code == ErrorCode.RATE_LIMITED and body["event"] == "spam"
    assert (await client.wait_closed())[0] == 1008
    assert client.disconnect == {"code": 1008, "reason": "rate limit exceeded"}
    assert server.get_stats().rate_limited == 1


async def test_the_hook_can_keep_the_client_connected(stelar_server_factory, stelar_client_factory):
    exceeded = []

    def warn_only(client_id, event, protocol):
        exceeded.append((client_id, event, protocol))
        return False

    server = await stelar_server_factory(
        rate_limit=RateLimit(2, 60.0), hooks={"on_rate_limit_exceeded": warn_only}
    )
    server.on_ack("q", lambda ctx: "answer")
    client = await stelar_client_factory(server)
    assert await client.request("q") == "answer"
    client.emit("e")
    client.emit("e")
    assert (await client.next_error())[0] == ErrorCode.RATE_LIMITED
    with pytest.raises(AckError) as info:
        await client.request("q")
    assert info.value.code == ErrorCode.RATE_LIMITED
    assert exceeded == [(client.id, "e", "memory"), (client.id, "q", "memory")]
    assert not client.closed.done()


async def test_per_event_limits_apply_to_their_event_only(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(
        rate_limit=RateLimit(100, 60.0),
        event_rate_limits={"chat": RateLimit(1, 60.0)},
        hooks={"on_rate_limit_exceeded": lambda: False},
    )
    server.on("other", lambda ctx: ctx.emit("ok"))
    client = await stelar_client_factory(server)
    client.emit("chat")
    client.emit("chat")
    assert (await client.next_error())[1]["event"] == "chat"
    for _ in range(5):
        client.emit("other")
    for _ in range(5):
        assert (await client.next_event()).event == "ok"
    server.remove_event_rate_limit("chat")
    server.on("chat", lambda ctx: ctx.emit("chat-ok"))
    client.emit("chat")
    assert (await client.next_event()).event == "chat-ok"


async def test_a_client_override_wins_over_event_and_global_limits(
    stelar_server_factory, stelar_client_factory
):
    server = await stelar_server_factory(
        rate_limit=RateLimit(1, 60.0),
        event_rate_limits={"chat": {"max_points": 1, "window": 60.0}},
        hooks={"on_rate_limit_exceeded": lambda: False},
    )
    server.on("chat", lambda ctx: ctx.emit("chat-ok"))
    premium = await stelar_client_factory(server)
    server.set_client_rate_limit(premium.id, {"max_points": 10, "window": 60.0})
    for _ in range(10):
        premium.emit("chat")
    for _ in range(10):
        assert (await premium.next_event()).event == "chat-ok"
    premium.emit("chat")
    assert (await premium.next_error())[0] == ErrorCode.RATE_LIMITED
    assert server.remove_client_rate_limit(premium.id) is True
    assert server.remove_client_rate_limit(premium.id) is False
    assert server.get_config()["client_rate_limits"] == {}


async def test_a_disconnect_forgets_the_client_in_the_limiters(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(rate_limit=RateLimit(10, 60.0))
    client = await stelar_client_factory(server)
    server.set_client_rate_limit(client.id, RateLimit(5, 60.0))
    server.on_ack("q", lambda ctx: True)
    await client.request("q")
    assert server.get_stats().rate_limiter_entries == 1  # the client's own limiter holds it
    client.close()
    await client.wait_closed()
    assert server.get_stats().rate_limiter_entries == 0
    assert server.get_config()["client_rate_limits"] == {}


async def test_rate_limit_key_makes_a_users_connections_share_one_bucket(
    stelar_server_factory, stelar_client_factory
):
    server = await stelar_server_factory(rate_limit=RateLimit(3, 60.0), rate_limit_key="user")

    @server.use
    def user_from_auth(ctx, next):
        if "user" in ctx.auth:
            ctx.set_metadata("user", ctx.auth["user"])
        next()

    server.on_ack("q", lambda ctx: ctx.data)
    first = await stelar_client_factory(server, auth={"user": "ann"})
    assert [await first.request("q", n) for n in range(2)] == [0, 1]
    first.close()
    await first.wait_closed()
    # Leaving does not refill Ann's bucket: her next connection has one point left.
    second = await stelar_client_factory(server, auth={"user": "ann"})
    assert await second.request("q", 2) == 2
    with pytest.raises(AckError, match="rate limit exceeded"):
        await second.request("q", 3)
    # A client without the key counts for itself.
    anonymous = await stelar_client_factory(server)
    assert [await anonymous.request("q", n) for n in range(3)] == [0, 1, 2]


class CountingLimiter:
    """A custom limiter object (the seed's IRateLimiter): allows ``allowed`` checks per key."""

    def __init__(self, allowed):
        self.allowed = allowed
        self.counts = {}
        self.resets = []
        self.reset_done = asyncio.Event()

    def check(self, key, cost=1):
        self.counts[key] = self.counts.get(key, 0) + cost
        return self.counts[key] <= self.allowed

    def reset(self, key):
        self.resets.append(key)
        self.counts.pop(key, None)
        self.reset_done.set()

    def cleanup(self):
        return None

    def size(self):
        return len(self.counts)


class AsyncCountingLimiter(CountingLimiter):
    """The same with async methods, as a Redis-backed limiter would have."""

    async def check(self, key, cost=1):
        return CountingLimiter.check(self, key, cost)

    async def reset(self, key):
        CountingLimiter.reset(self, key)

    async def cleanup(self):
        return None

    async def size(self):
        return len(self.counts)


@pytest.mark.parametrize("limiter_class", [CountingLimiter, AsyncCountingLimiter])
async def test_a_custom_limiter_object_replaces_the_global_limit(
    limiter_class, stelar_server_factory, stelar_client_factory
):
    limiter = limiter_class(allowed=2)
    server = await stelar_server_factory(rate_limiter=limiter)
    server.on("e", lambda ctx: ctx.emit("ok"))
    client = await stelar_client_factory(server)
    for _ in range(3):
        client.emit("e")
    assert (await client.next_event()).event == "ok"
    assert (await client.next_event()).event == "ok"
    assert (await client.next_error())[0] == ErrorCode.RATE_LIMITED
    await client.wait_closed()
    assert server.get_config()["has_custom_rate_limiter"] is True
    await asyncio.wait_for(limiter.reset_done.wait(), 5)
    assert limiter.resets == [client.id]


async def test_no_rate_limit_means_no_limiter_entries(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(rate_limit=None)
    client = await stelar_client_factory(server)
    server.on("e", lambda ctx: None)
    for _ in range(500):
        client.emit("e")
    server.on_ack("done", lambda ctx: True)
    assert await client.request("done") is True
    assert server.get_stats().rate_limiter_entries == 0


async def test_a_rate_limited_join_is_answered_as_a_join(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(
        rate_limit=RateLimit(1, 60.0), hooks={"on_rate_limit_exceeded": lambda: False}
    )
    client = await stelar_client_factory(server)
    assert await client.join("a") == {"ok": True}
    answer = await client.join("b")
    assert answer["error"]["code"] == ErrorCode.RATE_LIMITED
    assert server.get_rooms() == ["a"]
