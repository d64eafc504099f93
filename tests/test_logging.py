"""The logger option and what stelar logs."""

import logging

import pytest

from stelar_core import ConfigError, StelarServer
from stelar_core.testing import connect_client


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("debug", logging.DEBUG),
        ("info", logging.INFO),
        ("warn", logging.WARNING),
        ("error", logging.ERROR),
        ("silent", logging.CRITICAL + 10),
        (False, logging.CRITICAL + 10),
    ],
)
def test_the_seeds_levels(value, level):
    before = logging.getLogger("stelar").level
    server = StelarServer(transports=["memory"], logger=value)
    assert server.hub.log.level == level and server.hub.logger("stelar.ws").level == level
    assert logging.getLogger("stelar").level == before  # the process-wide logger is left alone


def test_a_bad_level_names_the_choices():
    with pytest.raises(
        ConfigError, match=r"option 'logger' = 'loud'.*debug, info, warn, warning, error, silent"
    ):
        StelarServer(transports=["memory"], logger="loud")


async def test_lifecycle_lines_at_info_and_nothing_per_message(stelar_server_factory, caplog):
    app_logger = logging.getLogger("myapp.realtime")
    app_logger.setLevel(logging.INFO)
    server = await stelar_server_factory(logger=app_logger, max_connections=1)
    server.on("chat", lambda ctx: None)
    with caplog.at_level(logging.DEBUG, logger="myapp.realtime"):
        client = await connect_client(server)
        for _ in range(20):
            client.emit("chat", "hello")
        await client.join("room")
        with pytest.raises(Exception, match="server_full"):
            await connect_client(server)
        client.close()
        await client.wait_closed()
    messages = [
        record.getMessage() for record in caplog.records if not record.getMessage().startswith("transport ")
    ]
    assert any(m.startswith(f"client {client.id} connected over memory") for m in messages)
    assert any(m.startswith(f"client {client.id} disconnected") for m in messages)
    assert any(m.startswith("refused connection from memory") for m in messages)
    assert len(messages) == 3  # the 20 messages and the join logged nothing at info


def test_the_logger_option_can_change_at_run_time():
    server = StelarServer(transports=["memory"], logger="error")
    server.update_config(logger="debug")
    assert server.hub.log.level == logging.DEBUG


async def test_each_server_logs_by_its_own_option(stelar_server_factory, caplog):
    quiet = await stelar_server_factory(logger="error")
    chatty = await stelar_server_factory(logger="info")  # built last: it used to win for both
    caplog.set_level(logging.INFO)
    quiet_client = await connect_client(quiet)
    chatty_client = await connect_client(chatty)
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith(f"client {chatty_client.id} connected") for m in messages)
    assert not any(quiet_client.id in m for m in messages)
    silent = await stelar_server_factory(logger=False)
    caplog.clear()
    await connect_client(silent)
    assert caplog.records == []


async def test_without_the_option_the_applications_logging_config_decides(stelar_server_factory, caplog):
    server = await stelar_server_factory()
    caplog.set_level(logging.WARNING, logger="stelar")
    await connect_client(server)
    assert caplog.records == []
    caplog.set_level(logging.INFO, logger="stelar.hub")
    client = await connect_client(server)
    assert [r.getMessage() for r in caplog.records if client.id in r.getMessage()]
