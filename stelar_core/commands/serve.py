"""``stelar serve [APP]``: run a server, with flags generated from the plugins' options."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from stelar_core.commands.apps import build_server
from stelar_core.commands.workers import run_workers
from stelar_core.config import LOG_LEVELS, RateLimit, merge_options, read_toml
from stelar_core.errors import ConfigError
from stelar_core.eventloop import EVENT_LOOPS
from stelar_core.plugins.options import FLAG_TYPES, OptionSpec, OptionTable
from stelar_core.server.server import LISTENING_LOGGER

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


# ``--rate-limit off`` gives None, so "not given" needs a value of its own.
NOT_GIVEN: Any = object()


def rate_limit_flag(text: str) -> RateLimit | None:
    """``--rate-limit 1000/1`` (points per window of seconds; ``1000`` alone is per second) or ``off``."""
    if text.strip().lower() in ("off", "none", "0"):
        return None
    points, _, window = text.partition("/")
    try:
        return RateLimit(int(points), float(window or 1))
    except (ValueError, ConfigError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not N/SECONDS (e.g. 1000/1) or off: {exc}") from None


def event_rate_limit_flag(text: str) -> tuple[str, RateLimit]:
    """``--event-rate-limit chat=5/1``."""
    event, _, limit = text.partition("=")
    if not event or not limit:
        raise argparse.ArgumentTypeError(f"{text!r} is not EVENT=N/SECONDS (e.g. chat=5/1)")
    parsed = rate_limit_flag(limit)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"{text!r}: an event's limit cannot be off")
    return event, parsed


def _options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options from the flags given: core options, short forms, plugin sections."""
    options: dict[str, Any] = {}
    for name in _CORE_FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.transport:
        options["transports"] = args.transport
    if args.rate_limit is not NOT_GIVEN:
        options["rate_limit"] = args.rate_limit
    if args.event_rate_limit:
        options["event_rate_limits"] = dict(args.event_rate_limit)
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
        section_flag = spec.command_line_flag
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


def serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``stelar serve``: the file's, then the flags' (which win)."""
    options = _options_from_args(args)
    if args.config:
        options = merge_options(read_toml(args.config), options)
    return options


def configure_logging() -> None:
    """Log lines on stderr; the server's own "listening on" lines are left out, because the
    command prints them itself (as ``stelar: ws listening on ...``, once per listener)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger(LISTENING_LOGGER).setLevel(logging.WARNING)


def _serve(args: argparse.Namespace) -> int:
    configure_logging()
    options = serve_options(args)
    if args.workers != 1:
        return run_workers(args.app, args.workers, options, event_loop=args.event_loop)
    build_server(args.app, options).run(event_loop=args.event_loop)
    return 0


def add_parser(commands: Any, table: OptionTable) -> None:
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
    serve.add_argument(
        "--rate-limit",
        type=rate_limit_flag,
        default=NOT_GIVEN,
        metavar="N/SECONDS|off",
        help="each client's messages allowed per window, e.g. 1000/1 (default 100/1); off: no limit",
    )
    serve.add_argument(
        "--event-rate-limit",
        type=event_rate_limit_flag,
        action="append",
        metavar="EVENT=N/SECONDS",
        help="a limit of one event's own, e.g. chat=5/1; repeat for several",
    )
    _add_option_flags(serve, table)
    serve.set_defaults(run=_serve)
