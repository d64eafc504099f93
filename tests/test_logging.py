"""The logger option and what stelar logs."""

import logging

import pytest

from stelar_core import ConfigError, StelarServer
from stelar_core.testing import connect_client


@pytest.fixture(autouse=True)
def restore_stelar_logger():
    root = logging.getLogger("stelar")
    saved = (root.level, root.propagate, list(root.handlers))
    yield
    root.setLevel(saved[0])
    root.propagate = saved[1]
    root.handlers[:] = saved[2]


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
    StelarServer(transports=["memory"], logger=value)
    assert logging.getLogger("stelar").level == level


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
    assert logging.getLogger("stelar").level == logging.DEBUG
