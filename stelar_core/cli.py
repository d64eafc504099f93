"""The ``stelar`` command: each subcommand is a module of ``stelar_core.commands``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stelar_core.commands import apps
from stelar_core.commands import asyncapi as asyncapi_command
from stelar_core.commands import bench as bench_command
from stelar_core.commands import connect as connect_command
from stelar_core.commands import operate as operate_command
from stelar_core.commands import plugins as plugins_command
from stelar_core.commands import serve as serve_command
from stelar_core.errors import StelarError
from stelar_core.plugins import hints
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.options import OptionTable
from stelar_core.server.assembly import collect_options

EXIT_USAGE = 2


def _parser(table: OptionTable) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stelar", description="Real-time messaging server.")
    commands = parser.add_subparsers(dest="command", required=True)
    plugins_command.add_parser(commands)
    serve_command.add_parser(commands, table)
    asyncapi_command.add_parser(commands, apps.build_server)
    connect_command.add_parser(commands)
    bench_command.add_parser(commands)
    operate_command.add_parsers(commands)
    return parser


def _unknown_flag(flag: str) -> str:
    """What to say of a flag no installed plugin declares: the distribution that has it, if any."""
    name = flag.removeprefix("--").partition("=")[0].replace("-", "_")
    distribution = hints.for_option(name) or hints.for_option(name.partition("_")[0])
    if distribution is None:
        return f"unrecognized arguments: {flag}"
    return f"{flag.partition('=')[0]} belongs to a plugin that is not installed" + hints.install_hint(
        distribution
    )


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
    except operate_command.Failed as exc:  # the command was understood; the server refused it
        print(f"stelar: {exc}", file=sys.stderr)
        return operate_command.EXIT_FAILED
    except StelarError as exc:
        print(f"stelar: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
