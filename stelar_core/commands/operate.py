"""``stelar publish``, ``stelar kick``, ``stelar rooms``: an operator's reach from a shell, through
a server's HTTP API (``--url http://host:port``, with ``--api-key`` or ``STELAR_API_KEY``) or
through the cluster's broker with an emitter (``--url redis://...``: stelar-redis's, found through
``stelar_register_emitters``)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from stelar_core.errors import StelarError
from stelar_core.plugins import hints
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.registry import ProviderRegistry
from stelar_core.providers import EmitterProvider

HTTP_SCHEMES = ("http", "https")
TIMEOUT = 10.0
EXIT_FAILED = 1


class Failed(StelarError):
    """The server refused or failed the command: its message, exit status 1."""


def add_parsers(commands: Any) -> None:
    publish = _parser(commands, "publish", "send an event to a room's members on every node")
    publish.add_argument("room")
    publish.add_argument("event")
    publish.add_argument("data", nargs="?", default="null", help="the event's data, as JSON (default null)")
    publish.set_defaults(run=_publish)
    kick = _parser(commands, "kick", "disconnect a client, on whichever node has it")
    kick.add_argument("client_id")
    kick.add_argument("--code", type=int, default=4000, help="close code (default 4000)")
    kick.add_argument("--reason", default="kicked by an operator", help="close reason")
    kick.set_defaults(run=_kick)
    rooms = _parser(commands, "rooms", "list the rooms with a member on any node")
    rooms.set_defaults(run=_rooms)


def _parser(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=help[0].upper() + help[1:]
    )
    parser.add_argument(
        "--url",
        required=True,
        help="a node's HTTP port (http://127.0.0.1:3000, with the API on) or the cluster's Redis (redis://...)",
    )
    parser.add_argument("--api-key", help="an API key (default: $STELAR_API_KEY, kept out of shell history)")
    parser.add_argument("--api-prefix", default="/api", help="the API's path on the server (default /api)")
    parser.add_argument(
        "--broker-prefix",
        default="stelar",
        help="with a broker URL: the cluster's prefix there (redis.prefix; default stelar)",
    )
    return parser


def _publish(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise StelarError(f"DATA is not JSON: {exc}") from None
    _run(
        args,
        ("publish", {"room": args.room, "event": args.event, "data": data}),
        lambda e: e.to(args.room, args.event, data),
    )
    print(f"published {args.event!r} to room {args.room!r}")
    return 0


def _kick(args: argparse.Namespace) -> int:
    params = {"client": args.client_id, "code": args.code, "reason": args.reason}
    found = _run(args, ("disconnect", params), lambda e: e.disconnect(args.client_id, args.code, args.reason))
    if found is False:
        raise Failed(f"no client {args.client_id!r} is connected to any node")
    print(f"disconnected {args.client_id}")
    return 0


def _rooms(args: argparse.Namespace) -> int:
    rooms = _run(args, ("rooms", {}), lambda emitter: {"rooms": emitter.get_rooms()})
    for room in rooms["rooms"]:
        print(room)
    return 0


def _run(args: argparse.Namespace, command: tuple[str, dict[str, Any]], emit: Callable[[Any], Any]) -> Any:
    """The command through the API or the emitter, whichever ``--url`` names."""
    scheme = urlsplit(args.url).scheme
    if scheme in HTTP_SCHEMES:
        return _call_api(args, *command)
    provider = _emitter(args.url)
    if provider is None:
        raise StelarError(
            f"--url {args.url!r}: expected http(s):// (a node's API) or the URL of a broker with an "
            "emitter (redis://...)" + hints.install_hint(hints.for_provider("emitter", scheme))
        )
    return _with_emitter(args, provider, emit)


def _call_api(args: argparse.Namespace, name: str, params: dict[str, Any]) -> Any:
    key = args.api_key or os.environ.get("STELAR_API_KEY")
    if not key:
        raise StelarError("an API key is needed: --api-key or STELAR_API_KEY")
    url = f"{args.url.rstrip('/')}{args.api_prefix.rstrip('/')}/{name}"
    request = urllib.request.Request(
        url,
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read())["result"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and name == "disconnect":
            return False
        raise Failed(f"{url}: {exc.code} {_message(exc.read())}") from None
    except urllib.error.URLError as exc:
        raise Failed(f"{url}: {exc.reason}") from None


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()


def _emitter(url: str) -> EmitterProvider | None:
    """The installed emitter that opens ``url``'s scheme (stelar-redis's for redis://)."""
    scheme = urlsplit(url).scheme
    registry: ProviderRegistry[EmitterProvider] = ProviderRegistry(build_plugin_manager(), "emitter")
    return next((p.factory for p in registry.providers() if scheme in p.factory.schemes), None)


def _with_emitter(args: argparse.Namespace, provider: EmitterProvider, emit: Callable[[Any], Any]) -> Any:
    emitter = provider.open(args.url, args.broker_prefix)
    try:
        return emit(emitter)
    except Exception as exc:  # the broker client's connection errors, say: the operator is told
        raise Failed(f"{args.url}: {exc}") from None
    finally:
        emitter.close()
