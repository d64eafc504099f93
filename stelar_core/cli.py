"""The ``stelar`` command: ``stelar plugins`` and ``stelar serve``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from stelar_core.commands import asyncapi as asyncapi_command
from stelar_core.commands import bench as bench_command
from stelar_core.commands import connect as connect_command
from stelar_core.config import LOG_LEVELS, merge_options, read_toml
from stelar_core.errors import StelarError
from stelar_core.eventloop import EVENT_LOOPS, loop_name
from stelar_core.plugins import catalog
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.markers import hookimpl
from stelar_core.plugins.options import FLAG_TYPES, OptionSpec, OptionTable, section_name
from stelar_core.plugins.registry import all_registries
from stelar_core.providers import TransportProvider
from stelar_core.server import StelarServer
from stelar_core.server.assembly import collect_options
from stelar_core.server.relay import build_relay_server
from stelar_core.server.view import ServerView
from stelar_core.server.workers import run_workers

EXIT_USAGE = 2


def _plugins(args: argparse.Namespace) -> int:
    pm = build_plugin_manager()
    table = collect_options(pm)
    providers: dict[str, list[str]] = {}
    for kind, registry in all_registries(pm).items():
        for provider in registry.providers():
            providers.setdefault(provider.plugin, []).append(f"{kind}:{provider.name}")
    rows: list[dict[str, Any]] = [
        {
            "name": info.name,
            "distribution": info.distribution or "-",
            "version": info.version or "-",
            "hooks": list(info.hooks),
            "providers": providers.get(info.name, []),
            "options": [
                {"name": spec.qualified, "flag": _flag(spec), "short": spec.short, "help": spec.help}
                for spec in table.sections.get(section_name(info.name), {}).values()
            ],
        }
        for info in pm.describe()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}  ({row['distribution']} {row['version']})")
        print(f"    hooks:     {', '.join(row['hooks']) or '-'}")
        print(f"    providers: {', '.join(row['providers']) or '-'}")
        for option in row["options"]:
            short = f" (short form: {option['short']})" if option["short"] else ""
            flag = f" {option['flag']}" if option["flag"] else ""
            print(f"    option:    {option['name']}{flag}{short} - {option['help']}")
    return 0


def _flag(spec: OptionSpec) -> str | None:
    """The ``stelar serve`` flag of an option, if it has one (options taking objects have none)."""
    return spec.flag if spec.type in FLAG_TYPES else None


def _load_app(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise StelarError(f"APP must look like 'module:attribute', got {spec!r}")
    sys.path.insert(0, ".")
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.pop(0)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise StelarError(f"module {module_name!r} has no attribute {attr!r}") from None


_CORE_FLAGS = (
    "host",
    "max_connections",
    "max_connections_per_ip",
    "logger",
    "broker",
    "rate_limiter",
    "ip_tracker",
    "rate_limit_key",
)
_SHORT = "short:"
_SECTION = "option:"


def _options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options from the flags given: core options, short forms, plugin sections."""
    options: dict[str, Any] = {}
    for name in _CORE_FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.transport:
        options["transports"] = args.transport
    for dest, value in vars(args).items():
        if value is None:
            continue
        if dest.startswith(_SHORT):
            options[dest.removeprefix(_SHORT)] = value
        elif dest.startswith(_SECTION):
            section, _, name = dest.removeprefix(_SECTION).partition(".")
            options.setdefault(section, {})[name] = value
    return options


def _add_option_flags(parser: argparse.ArgumentParser, table: OptionTable) -> None:
    """A flag per plugin option (``--redis-url``) and per short form (``--tcp-port``), from the
    plugins' own declarations."""
    taken: set[str] = set()
    for short, specs in sorted(table.shorts.items()):
        spec = specs[0]
        flag = "--" + short.replace("_", "-")
        if spec.type in FLAG_TYPES and flag not in taken:
            parser.add_argument(
                flag, dest=_SHORT + short, help=f"{spec.help} (short for {spec.qualified})", **_kind(spec)
            )
            taken.add(flag)
    for spec in table.specs():
        section_flag = _flag(spec)
        if section_flag is not None and section_flag not in taken:
            parser.add_argument(section_flag, dest=_SECTION + spec.qualified, help=spec.help, **_kind(spec))
            taken.add(section_flag)


def _kind(spec: OptionSpec) -> dict[str, Any]:
    if spec.type is bool:
        return {"action": argparse.BooleanOptionalAction, "default": None}
    metavar = spec.name.upper()
    if spec.type is list:
        return {"action": "append", "metavar": metavar}
    return {"type": spec.type, "metavar": metavar}


def _unknown_flag(flag: str) -> str:
    """What to say of a flag no installed plugin declares: the distribution that has it, if any."""
    name = flag.removeprefix("--").partition("=")[0].replace("-", "_")
    distribution = catalog.OPTIONS.get(name) or catalog.OPTIONS.get(name.partition("_")[0])
    if distribution is None:
        return f"unrecognized arguments: {flag}"
    return f"{flag.partition('=')[0]} belongs to a plugin that is not installed" + catalog.install_hint(
        distribution
    )


class _AnnounceAddresses:
    """Prints where the server listens once it started (a plugin like any other)."""

    name = "cli-announce"

    @hookimpl
    def stelar_on_server_started(self, server: ServerView) -> None:
        event_loop = loop_name(asyncio.get_running_loop())
        for transport, urls in server.addresses.items():
            where = ", ".join(urls) or "(in-process)"
            print(f"stelar: {transport} listening on {where} (event loop: {event_loop})", flush=True)


def _listeners(options: dict[str, Any]) -> dict[str, Any]:
    """Which transports ``stelar serve`` starts. Named on the command line or in the file (an
    option saying where a transport listens, or ``transports``): those only. Else: every
    installed transport that has a default for ``stelar serve`` (WebSocket on 3000, TCP on 3001),
    as the transport plugins declare them."""
    if "transports" in options:
        return options
    pm = build_plugin_manager()
    table = collect_options(pm)
    # Names no plugin knows are left for the server to refuse, with its did-you-mean.
    given = table.given({key: value for key, value in options.items() if table.knows(key)})
    transports = sorted(
        (
            (provider, transport)
            for provider in all_registries(pm)["transport"].providers()
            if isinstance(transport := provider.factory, TransportProvider) and transport.listen_option
        ),
        key=lambda pair: (pair[1].order, pair[0].name),
    )
    named = [
        provider.name
        for provider, transport in transports
        if given.get((provider.section, str(transport.listen_option))) is not None
    ]
    if any((provider.section, transport.listen_option) in given for provider, transport in transports):
        return {**options, "transports": named}
    defaults = {
        provider.section: {str(transport.listen_option): transport.serve_default}
        for provider, transport in transports
        if transport.serve_default is not None
    }
    if not defaults:
        raise StelarError(
            "no network transport is installed: pip install stelar-ws (WebSocket) and/or "
            "stelar-tcp (TCP), or run in-process with --transport memory"
        )
    return merge_options(defaults, options)


def serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``stelar serve``: the file's, then the flags' (which win)."""
    options = _options_from_args(args)
    if args.config:
        options = merge_options(read_toml(args.config), options)
    return options


def build_server(app_spec: str | None, options: dict[str, Any], *, worker: bool = False) -> StelarServer:
    """The server ``stelar serve`` runs: the relay app, or APP (a built server, or a function
    called with the options). A ``worker`` of ``--workers`` shares its ports (``reuse_port``)."""
    plugins = [_AnnounceAddresses()]
    shared = {"reuse_port": True} if worker else {}
    if app_spec is None:
        return build_relay_server(plugins=plugins, **_listeners(options), **shared)
    app = _load_app(app_spec)
    if isinstance(app, StelarServer):
        if options:
            raise StelarError(
                f"{app_spec} is a built server; options come from its code, not from the command line"
            )
        if worker and not app.config.reuse_port:
            raise StelarError(f"{app_spec} is a built server: give it reuse_port=True to run it in --workers")
        app.plugin_manager.register(plugins[0], name=_AnnounceAddresses.name)
        return app
    if callable(app):
        server = app(plugins=plugins, **options, **shared)
        if isinstance(server, StelarServer):
            return server
    raise StelarError(f"{app_spec} must be a StelarServer or a function returning one")


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = serve_options(args)
    if args.workers != 1:
        return run_workers(args.app, args.workers, options, event_loop=args.event_loop)
    build_server(args.app, options).run(event_loop=args.event_loop)
    return 0


def _parser(table: OptionTable) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stelar", description="Real-time messaging server.")
    commands = parser.add_subparsers(dest="command", required=True)

    plugins = commands.add_parser("plugins", help="list discovered plugins")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(run=_plugins)

    serve = commands.add_parser(
        "serve",
        help="run a server",
        description="Run APP (module:attribute, a StelarServer or a function building one), "
        "or the built-in relay app: clients join rooms and their events go to the room.",
    )
    serve.add_argument("app", nargs="?", help="module:attribute of your server")
    serve.add_argument(
        "--config", help="TOML file of server options (top level or [stelar]; plugins' in [stelar.<plugin>])"
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--transport", action="append", help="transport name; repeat for several")
    serve.add_argument("--max-connections", type=int)
    serve.add_argument("--max-connections-per-ip", type=int)
    serve.add_argument("--log-level", dest="logger", choices=LOG_LEVELS, help="stelar's log level")
    serve.add_argument("--broker", help="delivery broker: local (default), or redis to join a cluster")
    serve.add_argument("--rate-limiter", help="rate limiter: token-bucket (default), or redis (shared)")
    serve.add_argument("--ip-tracker", help="per-IP connection tracker: memory (default), or redis (shared)")
    serve.add_argument("--rate-limit-key", help="metadata key the rate limits count for (default: client ID)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N processes sharing the ports (SO_REUSEPORT), joined by the broker (needs one "
        "shared across processes, e.g. --broker redis); a worker that dies is restarted",
    )
    serve.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default="auto",
        help="auto (default): uvloop when installed (pip install 'stelar-core[uvloop]'), else asyncio's",
    )
    _add_option_flags(serve, table)
    serve.set_defaults(run=_serve)

    asyncapi_command.add_parser(commands, build_server)
    connect_command.add_parser(commands)
    bench_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        table = collect_options(build_plugin_manager())
    except StelarError as exc:
        print(f"stelar: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser = _parser(table)
    args, unknown_flags = parser.parse_known_args(argv)
    if unknown_flags:
        parser.error(_unknown_flag(unknown_flags[0]))
    try:
        code: int = args.run(args)
    except StelarError as exc:
        print(f"stelar: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
