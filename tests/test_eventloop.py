"""Choosing the event loop: uvloop when installed, asyncio's otherwise, or the one named."""

import asyncio
import sys

import pytest
import uvloop

from stelar_core import ConfigError, StelarClient, StelarServer
from stelar_core.cli import main
from stelar_core.eventloop import loop_factory, loop_name, run


@pytest.fixture
def without_uvloop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError


def test_auto_picks_uvloop_when_it_is_installed():
    assert loop_factory() is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("asyncio") is asyncio.new_event_loop


def test_auto_falls_back_to_asyncio_without_uvloop(without_uvloop):
    assert loop_factory("auto") is asyncio.new_event_loop


def test_asking_for_a_missing_uvloop_names_the_extra(without_uvloop):
    with pytest.raises(ConfigError, match=r"pip install 'stelar-core\[uvloop\]'"):
        loop_factory("uvloop")


def test_an_unknown_loop_name_lists_the_choices():
    with pytest.raises(ConfigError, match="event_loop must be one of auto, uvloop, asyncio; got 'trio'"):
        loop_factory("trio")


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_a_server_and_clients_of_both_transports_work_on_the_chosen_loop(event_loop):
    async def scenario():
        server = StelarServer(port=0, tcp_port=0)
        server.on_ack("where", lambda ctx: loop_name(asyncio.get_running_loop()))
        server.on("say", lambda ctx: ctx.to("room", "said", ctx.data))
        async with server:
            ws = StelarClient(server.addresses["ws"][0])
            tcp = StelarClient(server.addresses["tcp"][0])
            heard = asyncio.get_running_loop().create_future()
            tcp.on("said", heard.set_result)
            async with ws, tcp:
                assert await ws.join_room("room") and await tcp.join_room("room")
                ws.emit("say", "hello")
                return await ws.request("where"), await asyncio.wait_for(heard, 5)

    assert run(scenario(), event_loop=event_loop) == (event_loop, "hello")


def test_serve_refuses_a_missing_uvloop_clearly(capsys, without_uvloop):
    assert main(["serve", "--transport", "memory", "--event-loop", "uvloop"]) == 2
    assert "pip install 'stelar-core[uvloop]'" in capsys.readouterr().err
