"""``stelar connect URL``: an interactive client for ws://, wss://, tcp:// and tcps:// servers.

Each line typed (or piped) is one action:

    chat {"text": "hi"}          emit an event (the JSON payload may be left out)
    /join lobby                  join a room (also --room at start)
    /leave lobby
    /request get_user {"id": 7}  ask, and print the answer
    /binary photo 89504e47       emit binary data, given in hex or as @path/to/file
    /help, /quit                 (end of input quits too)
    # a comment                  ignored, for scripts

What arrives is printed with a timestamp: ``<`` events, ``=`` answers, ``!`` errors, ``*`` the
connection's own news. On a terminal the line is edited with readline (arrows, history); from a
pipe, lines run one after the other, each request waiting for its answer, so a script's output
comes in a stable order.

Parsing and printing are pure functions (:func:`parse_line`, :func:`format_arrival`...), tested
on their own; :func:`run_session` drives a ``StelarClient`` with them.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import json
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs

from stelar_core.client.client import StelarClient
from stelar_core.errors import StelarError

PROMPT = "> "
COMMANDS = ("/join", "/leave", "/request", "/binary", "/help", "/quit")
# "Each line ... is one action:" and the table of actions, from the docstring above.
HELP = "\n".join(__doc__.split("\n\n")[1:3]) if __doc__ else ""


# --------------------------------------------------------------------------- what a line means


@attrs.frozen
class Emit:
    event: str
    data: Any = None


@attrs.frozen
class Request:
    event: str
    data: Any = None


@attrs.frozen
class Binary:
    event: str
    data: bytes


@attrs.frozen
class Join:
    room: str


@attrs.frozen
class Leave:
    room: str


@attrs.frozen
class Help:
    pass


@attrs.frozen
class Quit:
    pass


Action = Emit | Request | Binary | Join | Leave | Help | Quit


class LineError(ValueError):
    """A line that means nothing; the message says what would."""


def parse_line(
    line: str, read_file: Callable[[str], bytes] = lambda path: Path(path).read_bytes()
) -> Action | None:
    """The action of one input line (``None``: a blank line or a comment)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if not text.startswith("/"):
        event, data = _event_and_json(text)
        return Emit(event, data)
    command, _, rest = text.partition(" ")
    rest = rest.strip()
    if command == "/quit":
        return Quit()
    if command == "/help":
        return Help()
    if command in ("/join", "/leave"):
        if not rest or " " in rest:
            raise LineError(f"usage: {command} ROOM")
        return Join(rest) if command == "/join" else Leave(rest)
    if command == "/request":
        if not rest:
            raise LineError("usage: /request EVENT [JSON]")
        return Request(*_event_and_json(rest))
    if command == "/binary":
        event, _, source = rest.partition(" ")
        if not event or not source.strip():
            raise LineError("usage: /binary EVENT HEX or /binary EVENT @FILE")
        return Binary(event, _bytes(source.strip(), read_file))
    raise LineError(f"unknown command {command}; known: {', '.join(COMMANDS)}")


def _event_and_json(text: str) -> tuple[str, Any]:
    event, _, payload = text.partition(" ")
    if not payload.strip():
        return event, None
    try:
        return event, json.loads(payload)
    except json.JSONDecodeError as exc:
        raise LineError(f"the payload of {event!r} is not JSON ({exc.msg} at column {exc.colno})") from None


def _bytes(source: str, read_file: Callable[[str], bytes]) -> bytes:
    if source.startswith("@"):
        try:
            return read_file(source[1:])
        except OSError as exc:
            raise LineError(f"cannot read {source[1:]}: {exc.strerror}") from None
    try:
        return bytes.fromhex(source)
    except ValueError:
        raise LineError(f"not hex: {source!r} (or give @path to send a file)") from None


# --------------------------------------------------------------------------- what is printed


def timestamp(now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def show(data: Any) -> str:
    """A payload as one line: compact JSON, or the size and start of binary data."""
    if isinstance(data, bytes | bytearray):
        preview = bytes(data[:16]).hex()
        return f"<{len(data)} bytes: {preview}{'...' if len(data) > 16 else ''}>"
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def format_arrival(event: str, data: Any, now: datetime.datetime | None = None) -> str:
    return f"{timestamp(now)} < {event} {show(data)}"


def format_answer(event: str, data: Any, now: datetime.datetime | None = None) -> str:
    return f"{timestamp(now)} = {event} {show(data)}"


def format_error(text: str, now: datetime.datetime | None = None) -> str:
    return f"{timestamp(now)} ! {text}"


def format_news(text: str, now: datetime.datetime | None = None) -> str:
    return f"{timestamp(now)} * {text}"


# --------------------------------------------------------------------------- the session


class Console:
    """Where lines go. On a terminal, a line printed while the user types is put above the
    prompt, and the prompt and what was typed so far are drawn again below it."""

    def __init__(self, out: TextIO, interactive: bool) -> None:
        self._out = out
        self.interactive = interactive
        # Set by the input thread while ``input()`` shows the prompt.
        self.prompting = threading.Event()

    def print(self, line: str) -> None:
        if self.interactive and self.prompting.is_set():
            self._out.write(f"\r\x1b[K{line}\n{PROMPT}{_readline_buffer()}")
        else:
            self._out.write(line + "\n")
        self._out.flush()


def _readline_buffer() -> str:
    try:
        import readline
    except ImportError:  # Windows without pyreadline: no line editing, nothing to redraw
        return ""
    return readline.get_line_buffer()


def input_lines(console: Console) -> Iterator[str]:
    """Lines from standard input: ``input()`` with readline's editing and history on a terminal.
    Read on the main thread, so the terminal is always given back as it was (a quit never leaves
    a reader blocked somewhere). Ctrl-D and Ctrl-C at the prompt end the input."""
    if console.interactive:
        import readline  # noqa: F401  (loading it gives input() editing and history)
    while True:
        try:
            if console.interactive:
                console.prompting.set()
                line = input(PROMPT)
            else:
                line = sys.stdin.readline()
                if not line:
                    return
        except (EOFError, KeyboardInterrupt):
            return
        finally:
            console.prompting.clear()
        yield line


def attach(client: StelarClient, console: Console) -> None:
    """Print what arrives, and the connection's news."""
    client.on_any(lambda event, data: console.print(format_arrival(event, data)))
    client.on("error", lambda error: console.print(format_error(str(error))))
    client.on(
        "disconnect", lambda info: console.print(format_news(f"lost ({info['code']} {info['reason']})"))
    )
    client.on("reconnecting", lambda attempt: console.print(format_news(f"reconnecting, attempt {attempt}")))
    client.on("connect", lambda: console.print(format_news(f"connected as {client.id}")))


def run_session(client: StelarClient, lines: Iterable[str], console: Console, rooms: list[str]) -> int:
    """Connect, join ``rooms``, then act on each line until the input ends or ``/quit``.

    The client lives on an event loop of its own thread; lines are read here. From a pipe each
    action is finished before the next line is read (a request waits for its answer); on a
    terminal a request is answered while typing goes on."""
    loop = asyncio.new_event_loop()
    worker = threading.Thread(target=loop.run_forever, name="stelar-connect", daemon=True)
    worker.start()

    def call(work: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(work, loop)

    try:
        attach(client, console)
        try:
            call(client.connect()).result()
        except (StelarError, OSError) as exc:
            console.print(format_error(f"could not connect: {exc}"))
            return 1
        for room in rooms:
            call(_act(client, Join(room), console)).result()
        pending: list[concurrent.futures.Future[Any]] = []
        for line in lines:
            try:
                action = parse_line(line)
            except LineError as exc:
                console.print(format_error(str(exc)))
                continue
            if action is None:
                continue
            if isinstance(action, Quit):
                break
            if not console.interactive:
                console.print(f"{timestamp()} > {line.strip()}")
            done = call(_act(client, action, console))
            if console.interactive and isinstance(action, Request):
                pending.append(done)
            else:
                done.result()
        for done in pending:
            done.result()
        call(client.disconnect()).result()
        return 0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        worker.join()
        loop.close()


async def _act(client: StelarClient, action: Action, console: Console) -> None:
    if isinstance(action, Emit):
        client.emit(action.event, action.data)
    elif isinstance(action, Binary):
        client.emit_binary(action.event, action.data)
    elif isinstance(action, Request):
        try:
            console.print(format_answer(action.event, await client.request(action.event, action.data)))
        except StelarError as exc:
            console.print(format_error(f"{action.event}: {exc}"))
    elif isinstance(action, Join):
        joined = await client.join_room(action.room)
        console.print(format_news(f"joined {action.room}" if joined else f"join of {action.room} refused"))
    elif isinstance(action, Leave):
        left = await client.leave_room(action.room)
        console.print(format_news(f"left {action.room}" if left else f"leave of {action.room} refused"))
    elif isinstance(action, Help):
        for line in HELP.splitlines():
            console.print(line.strip())


# --------------------------------------------------------------------------- the command


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "connect",
        help="an interactive client: print what arrives, send what you type",
        description="Connect to URL (ws://, wss://, tcp://, tcps://) and send events typed or piped in, "
        "one per line; what arrives is printed with a timestamp. Type /help once connected.",
    )
    parser.add_argument("url")
    parser.add_argument(
        "--auth", type=json.loads, default={}, metavar="JSON", help="the connect frame's auth"
    )
    parser.add_argument("--room", action="append", default=[], help="join ROOM once connected; repeat")
    parser.add_argument(
        "--ca-file", help="trust this CA for wss:// and tcps:// (a private or development CA)"
    )
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    parser.add_argument("--origin", help="the Origin header of a WebSocket upgrade")
    parser.add_argument(
        "--reconnection-attempts",
        type=int,
        default=3,
        metavar="N",
        help="tries after a failed or lost connection, with backoff (default 3; 0: give up at once)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"auth": args.auth, "reconnection_attempts": args.reconnection_attempts}
    if args.ca_file:
        options["ca_file"] = args.ca_file
    if args.insecure:
        options["reject_unauthorized"] = False
    if args.origin:
        options["origin"] = args.origin
    interactive = sys.stdin.isatty() and sys.stdout.isatty()

    console = Console(sys.stdout, interactive)
    return run_session(StelarClient(args.url, **options), input_lines(console), console, args.room)
