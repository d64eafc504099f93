"""`stelar connect`: its line parser byte by byte, and the real command against real servers,
through a pipe and through a pseudo-terminal (readline's editing and history)."""

from __future__ import annotations

import asyncio
import datetime
import os
import pty
import re
import sys

import pytest

from stelar_core.commands.connect import (
    Binary,
    Emit,
    Help,
    Join,
    Leave,
    LineError,
    Quit,
    Request,
    format_arrival,
    format_error,
    parse_line,
    show,
)

STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d ")


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ('chat {"text": "hi"}', Emit("chat", {"text": "hi"})),
        ("ping", Emit("ping")),
        ("  count 3  ", Emit("count", 3)),
        ("/join lobby", Join("lobby")),
        ("/leave lobby", Leave("lobby")),
        ('/request get_user {"id": 7}', Request("get_user", {"id": 7})),
        ("/request stats", Request("stats")),
        ("/binary photo 89504e47", Binary("photo", b"\x89PNG")),
        ("/binary photo @pic.png", Binary("photo", b"read from pic.png")),
        ("/help", Help()),
        ("/quit", Quit()),
        ("", None),
        ("   ", None),
        ("# a comment", None),
    ],
)
def test_each_line_means_one_action(line, action):
    assert parse_line(line, read_file=lambda path: f"read from {path}".encode()) == action


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "chat {oops",
            "the payload of 'chat' is not JSON (Expecting property name enclosed in double quotes",
        ),
        ("/join", "usage: /join ROOM"),
        ("/join two rooms", "usage: /join ROOM"),
        ("/request", "usage: /request EVENT [JSON]"),
        ("/binary photo", "usage: /binary EVENT HEX or /binary EVENT @FILE"),
        ("/binary photo zz", "not hex: 'zz' (or give @path to send a file)"),
        ("/binary photo @missing.png", "cannot read missing.png: No such file or directory"),
        ("/frobnicate", "unknown command /frobnicate; known: /join, /leave, /request, /binary, /help, /quit"),
    ],
)
def test_a_line_that_means_nothing_says_what_would(line, message):
    def missing(path):
        raise FileNotFoundError(2, "No such file or directory", path)

    with pytest.raises(LineError) as refused:
        parse_line(line, read_file=missing)
    assert str(refused.value).startswith(message)


def test_help_lists_every_action():
    from stelar_core.commands.connect import COMMANDS, HELP

    assert HELP.startswith("Each line typed (or piped) is one action:")
    assert all(command in HELP for command in COMMANDS)


def test_what_arrives_is_printed_with_a_timestamp():
    now = datetime.datetime(2026, 12, 2, 9, 5, 7, 42_000)
    assert format_arrival("chat", {"text": "hé"}, now) == '09:05:07.042 < chat {"text": "hé"}'
    assert format_error("rate_limited: slow down", now) == "09:05:07.042 ! rate_limited: slow down"
    assert show(bytes(range(20))) == "<20 bytes: 000102030405060708090a0b0c0d0e0f...>"


@pytest.fixture(params=["tcp", "ws"])
def stelar_transport(request):
    return request.param


@pytest.fixture
async def echo_server(stelar_server_factory):
    server = await stelar_server_factory()
    server.received = []

    @server.on("say")
    def say(ctx):
        server.received.append(ctx.data)
        ctx.emit("said", ctx.data)

    @server.on("photo")
    def photo(ctx):
        ctx.emit_binary("photo_back", ctx.data[::-1])

    server.on_ack("add", lambda ctx: sum(ctx.data))
    return server


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stelar_core.cli", "connect", *args]


def lines_of(output: bytes) -> list[str]:
    """The printed lines without their timestamps (each must have one)."""
    found = []
    for line in output.decode().splitlines():
        assert STAMP.match(line), line
        found.append(STAMP.sub("", line))
    return found


async def test_through_a_pipe_lines_run_in_order(echo_server, stelar_transport):
    url = echo_server.addresses[stelar_transport][0]
    script = (
        b'say {"n": 1}\n# ignored\n/request add [1, 2, 3]\n/binary photo 010203\n/request add "x"\n'
        b"/quit\nsay 2\n"
    )
    process = await asyncio.create_subprocess_exec(
        *command(url, "--room", "lobby"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(script), 30)
    assert process.returncode == 0, err.decode()
    printed = lines_of(out)
    assert printed[0].startswith("* connected as ")
    # What was sent and answered, in input order; events arrive while the next lines go out.
    assert [line for line in printed[1:] if not line.startswith("<")] == [
        "* joined lobby",
        '> say {"n": 1}',
        "> /request add [1, 2, 3]",
        "= add 6",
        "> /binary photo 010203",
        '> /request add "x"',
        "! add: handler_error: unsupported operand type(s) for +: 'int' and 'str'",
        "* lost (1000 client disconnected)",
    ]
    # An event the server sent before answering a request is printed before that answer.
    assert printed.index('> say {"n": 1}') < printed.index('< said {"n": 1}') < printed.index("= add 6")
    assert printed.index("> /binary photo 010203") < printed.index("< photo_back <3 bytes: 030201>")
    assert printed.index("< photo_back <3 bytes: 030201>") < printed.index(
        "! add: handler_error: " + "unsupported operand type(s) for +: 'int' and 'str'"
    )
    assert echo_server.received == [{"n": 1}]  # nothing after /quit was sent


async def test_an_unreachable_server_is_reported():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    process = await asyncio.create_subprocess_exec(
        *command(f"tcp://127.0.0.1:{port}", "--reconnection-attempts", "0"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(b""), 30)
    assert process.returncode == 1
    *attempts, last = lines_of(out)
    assert attempts == [f"! [Errno 111] Connect call failed ('127.0.0.1', {port})"]
    assert last.startswith(f"! could not connect: could not connect to tcp://127.0.0.1:{port}")


@pytest.mark.one_loop
@pytest.mark.parametrize("stelar_transport", ["ws"], indirect=True)
async def test_on_a_terminal_lines_are_edited_and_recalled(echo_server):
    url = echo_server.addresses["ws"][0]
    leader, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        *command(url), stdin=follower, stdout=follower, stderr=follower, env={**os.environ, "TERM": "xterm"}
    )
    os.close(follower)
    loop = asyncio.get_running_loop()
    screen = bytearray()
    readable = asyncio.Event()
    loop.add_reader(leader, readable.set)

    async def until(text: bytes, times: int = 1) -> None:
        """Read the terminal until ``text`` has appeared ``times`` times."""
        while screen.count(text) < times:
            await asyncio.wait_for(readable.wait(), 15)
            readable.clear()
            try:
                screen.extend(os.read(leader, 4096))
            except OSError:  # the terminal closed
                break
        assert screen.count(text) >= times, screen.decode(errors="replace")

    try:
        await until(b"* connected as ")
        os.write(leader, b'say {"n": 1}\r')
        await until(b'< said {"n": 1}')
        os.write(leader, b"\x1b[A\r")  # up arrow: the last line again, from readline's history
        await until(b'< said {"n": 1}', times=2)
        os.write(leader, b"say 2\x7f3\r")  # a backspace edits the line before it is sent
        await until(b"< said 3")
        assert echo_server.received == [{"n": 1}, {"n": 1}, 3]
        # A line, not Ctrl-D: between two prompts readline gives the terminal back to the line
        # discipline, which may drop an end-of-file typed just then (a line is kept).
        os.write(leader, b"/quit\r")
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        loop.remove_reader(leader)
        os.close(leader)
        if process.returncode is None:
            process.kill()
            await process.wait()
