"""The transport conformance suite: what every stelar transport must do, as pytest tests.

A transport's author subclasses :class:`TransportConformance` in a test module and names the
transport; the fixtures of ``stelar_core.testing.pytest_plugin`` must be enabled::

    from stelar_core.testing.conformance import TransportConformance

    class TestMyTransport(TransportConformance):
        transport = "unix"

        @pytest.fixture
        def transport_options(self, tmp_path_factory):  # what a server of it needs (optional)
            return {"unix": {"path": str(tmp_path_factory.mktemp("sock") / "stelar.sock")}}

The tests speak through the transport's own connector (the client side it registers) to a real
server built with it: the handshake, events both ways (JSON, binary, large), rooms, ACKs both
ways, bad frames, a full inbox pausing the reader without losing anything, a client that stops
reading dropped as a slow consumer while the others keep up, heartbeats (on a fake clock), a
client's goodbye, statistics, and shutdown. stelar's memory, ws and tcp
transports run the same suite (``tests/test_transport_conformance.py``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import pytest

from stelar_core.errors import AckError
from stelar_core.protocol import DisconnectCode, ErrorCode, FrameType, dump_json
from stelar_core.server import StelarServer
from stelar_core.testing.client import TestClient, connect_client
from stelar_core.testing.clock import FakeClock

ServerFactory = Callable[..., Awaitable[StelarServer]]


def _pinged(client: TestClient, times: int) -> bool:
    return client.pings_received == times


def _received(client: TestClient, events: int) -> bool:
    return client.events_received >= events


class TransportConformance:
    """Subclass it (its name must start with ``Test``) and set ``transport``."""

    transport: ClassVar[str] = ""
    # Options every server of the suite gets (e.g. the transport's own section with port 0).
    server_options: ClassVar[Mapping[str, Any]] = {}
    # A payload this size must cross intact in both directions.
    large_payload: ClassVar[int] = 1024 * 1024

    @pytest.fixture
    def stelar_transport(self) -> str:
        if not self.transport:
            pytest.fail(f"{type(self).__name__} must set the class attribute 'transport'")
        return self.transport

    @pytest.fixture
    def transport_options(self) -> Mapping[str, Any]:
        """Options every server of the suite gets; override this fixture when they depend on
        the test (a socket path in a temporary folder), else set ``server_options``."""
        return self.server_options

    @pytest.fixture
    def serve(
        self, stelar_server_factory: ServerFactory, transport_options: Mapping[str, Any]
    ) -> Callable[..., Awaitable[StelarServer]]:
        async def make(**options: Any) -> StelarServer:
            return await stelar_server_factory(
                **{"transports": [self.transport], **transport_options, **options}
            )

        return make

    async def connect(self, server: StelarServer, **options: Any) -> TestClient:
        return await connect_client(server, self.transport, **options)

    # ------------------------------------------------------------------ the tests

    async def test_handshake_welcomes_with_id_and_limits(
        self, serve: Callable[..., Awaitable[StelarServer]]
    ) -> None:
        server = await serve(heartbeat_interval=12.5, heartbeat_timeout=30, max_payload_size=2_000_000)
        assert server.addresses[self.transport], "a started transport says where it is reached"
        client = await self.connect(server)
        welcome = dict(client.welcome)
        resume = welcome.pop("resume")  # the session's resumption secret (docs/delivery.md)
        assert welcome == {"id": client.id, "v": 1, "heartbeat": 12.5, "max_payload": 2_000_000}
        assert isinstance(resume["token"], str) and len(resume["token"]) >= 16
        assert resume["window"] == server.config.recovery_window
        (info,) = server.get_clients()
        assert (info.id, info.protocol) == (client.id, self.transport)
        client.close()

    async def test_events_cross_both_ways_intact(self, serve: Callable[..., Awaitable[StelarServer]]) -> None:
        server = await serve(
            max_payload_size=2 * self.large_payload, max_frame_size=4 * self.large_payload, rate_limit=None
        )
        server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
        server.on("echo_binary", lambda ctx: ctx.emit_binary("echo_binary", ctx.data))
        client = await self.connect(server, max_frame_size=4 * self.large_payload)
        client.emit("echo", {"text": "héllo", "n": [1, 2.5, None]})
        assert (await client.next_event()).data == {"text": "héllo", "n": [1, 2.5, None]}
        blob = bytes(range(256)) * (self.large_payload // 256)
        client.emit_binary("echo_binary", blob)
        received = await client.next_event()
        assert received.binary and received.data == blob
        for n in range(100):  # order kept
            client.emit("echo", n)
        assert [(await client.next_event()).data for _ in range(100)] == list(range(100))
        client.close()

    async def test_rooms_and_broadcasts(self, serve: Callable[..., Awaitable[StelarServer]]) -> None:
        server = await serve()
        first, second, outsider = [await self.connect(server) for _ in range(3)]
        assert (await first.join("room")) == {"ok": True}
        assert (await second.join("room")) == {"ok": True}
        server.to("room", "news", 1)
        assert (await first.next_event()).data == 1 and (await second.next_event()).data == 1
        server.broadcast("all", 2, exclude=first.id)
        assert (await second.next_event()).data == 2 and (await outsider.next_event()).data == 2
        assert (await second.leave("room")) == {"ok": True}
        assert server.get_room_members("room") == [first.id]
        for client in (first, second, outsider):
            assert client.pending_events() == []
            client.close()

    async def test_acks_both_ways(self, serve: Callable[..., Awaitable[StelarServer]]) -> None:
        server = await serve()
        server.on_ack("add", lambda ctx: sum(ctx.data))
        client = await self.connect(server)
        assert await client.request("add", [1, 2, 3]) == 6
        with pytest.raises(AckError) as info:
            await client.request("missing")
        assert info.value.code == ErrorCode.NO_HANDLER
        client.on_ack("whoami", lambda data: {"me": data})
        assert client.id is not None
        assert await server.request(client.id, "whoami", "x") == {"me": "x"}
        client.close()

    async def test_bad_frames_are_answered_and_nobody_else_notices(
        self, serve: Callable[..., Awaitable[StelarServer]]
    ) -> None:
        server = await serve()
        server.on_ack("ping", lambda ctx: "pong")
        server.on("e", lambda ctx: None)
        offender, bystander = await self.connect(server), await self.connect(server)
        offender.send_raw(b"\x63\x00\x00")  # unknown type
        offender.send_raw(b"\x00\x00\x05ab")  # the event name runs past the end
        offender.send_frame(FrameType.JSON, "e", b"{broken")
        codes = [(await offender.next_error())[0] for _ in range(3)]
        assert codes == [ErrorCode.INVALID_FRAME, ErrorCode.INVALID_FRAME, ErrorCode.INVALID_JSON]
        assert server.get_stats().invalid_messages == 3
        assert await offender.request("ping") == "pong"  # still served
        assert await bystander.request("ping") == "pong"
        offender.close()
        bystander.close()

    async def test_a_full_inbox_pauses_reading_and_loses_nothing(
        self, serve: Callable[..., Awaitable[StelarServer]]
    ) -> None:
        server = await serve(max_queued_messages=4, rate_limit=None)
        started, release = asyncio.Event(), asyncio.Event()
        handled: list[int] = []

        @server.on("work")
        async def work(ctx: Any) -> None:
            started.set()
            await release.wait()
            handled.append(ctx.data)

        server.on_ack("done", lambda ctx: len(handled))
        client = await self.connect(server)
        for n in range(200):
            client.emit("work", n)
        answer = asyncio.ensure_future(client.request("done"))
        await started.wait()  # the first message holds the session: the rest wait, reading pauses
        release.set()
        assert await answer == 200
        assert handled == list(range(200))
        client.close()

    async def test_a_client_that_stops_reading_is_dropped_not_waited_for(
        self, serve: Callable[..., Awaitable[StelarServer]]
    ) -> None:
        clock = FakeClock()
        server = await serve(
            clock=clock,
            rate_limit=None,
            max_buffered_bytes=64 * 1024,
            slow_consumer_timeout=5,
            heartbeat_interval=3600,
            heartbeat_timeout=7200,
        )
        dropped: list[tuple[str, int, str]] = []
        server.on_disconnect(lambda ctx: dropped.append((ctx.id, ctx.data["code"], ctx.data["reason"])))
        slow, reader = await self.connect(server), await self.connect(server)
        await slow.join("room")
        await reader.join("room")
        slow.pause_reading()
        chunk = "x" * 16 * 1024
        sent = 0
        while not dropped and sent < 4096:  # 64 MiB at most: past any socket buffer
            for _ in range(8):
                server.to("room", "big", chunk)
            sent += 8
            await reader.wait_until(functools.partial(_received, reader, sent))  # it keeps up
            clock.advance(5)  # the grace of a peer over max_buffered_bytes
        assert dropped == [(slow.id, DisconnectCode.POLICY_VIOLATION, "slow consumer")]
        assert server.get_stats().counters["slow_consumers"] == 1
        assert len(reader.pending_events()) == sent and not reader.closed.done()
        reader.close()
        slow.resume_reading()  # and so learns that the server is gone
        await slow.wait_closed()

    async def test_heartbeats_ping_and_drop_the_silent(
        self, serve: Callable[..., Awaitable[StelarServer]]
    ) -> None:
        clock = FakeClock()
        server = await serve(heartbeat_interval=30, heartbeat_timeout=60, clock=clock)
        silent = await self.connect(server, client=TestClient(auto_pong=False))
        lively = await self.connect(server)
        for sweep in range(1, 3):
            clock.advance(30)
            await lively.wait_until(functools.partial(_pinged, lively, sweep))
            await lively.join(f"round-trip-{sweep}")  # the server has read the pong before this
        clock.advance(30)
        assert await silent.wait_closed() == (DisconnectCode.SERVER_ERROR, "heartbeat timeout")
        assert not lively.closed.done() and [c.id for c in server.get_clients()] == [lively.id]
        lively.close()

    async def test_a_clients_goodbye_is_seen(self, serve: Callable[..., Awaitable[StelarServer]]) -> None:
        server = await serve()
        gone = asyncio.Event()
        server.on_disconnect(lambda ctx: gone.set())
        client = await self.connect(server)
        client.send_frame(FrameType.DISCONNECT, payload=dump_json({"code": 1000, "reason": "bye"}))
        await asyncio.wait_for(gone.wait(), 5)
        assert server.get_clients() == []
        assert server.get_stats().connections_by_transport == {}

    async def test_stats_come_from_the_transport(self, serve: Callable[..., Awaitable[StelarServer]]) -> None:
        server = await serve()
        client = await self.connect(server)
        stats = server.get_stats()
        assert stats.connections_by_transport == {self.transport: 1}
        own = stats.transports[self.transport]
        assert isinstance(own, Mapping) and all(isinstance(v, int) for v in own.values())
        client.close()

    async def test_shutdown_says_going_away_and_stops_listening(
        self, serve: Callable[..., Awaitable[StelarServer]]
    ) -> None:
        server = await serve()
        clients = [await self.connect(server) for _ in range(3)]
        await server.stop()
        for client in clients:
            assert await client.wait_closed() == (DisconnectCode.GOING_AWAY, "server shutting down")
        assert server.addresses[self.transport] == []
