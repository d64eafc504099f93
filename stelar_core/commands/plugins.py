"""``stelar plugins``: the plugins found, with their hooks, providers and options."""

from __future__ import annotations

import argparse
import json
from typing import Any

from stelar_core import compiled
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.options import section_name
from stelar_core.plugins.registry import all_registries
from stelar_core.server.assembly import collect_options


def run(args: argparse.Namespace) -> int:
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
                {
                    "name": spec.qualified,
                    "flag": spec.command_line_flag,
                    "short": spec.short,
                    "help": spec.help,
                }
                for spec in table.sections.get(section_name(info.name), {}).values()
            ],
        }
        for info in pm.describe()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"hot path: {compiled.describe()}")
    for row in rows:
        print(f"{row['name']}  ({row['distribution']} {row['version']})")
        print(f"    hooks:     {', '.join(row['hooks']) or '-'}")
        print(f"    providers: {', '.join(row['providers']) or '-'}")
        for option in row["options"]:
            short = f" (short form: {option['short']})" if option["short"] else ""
            flag = f" {option['flag']}" if option["flag"] else ""
            print(f"    option:    {option['name']}{flag}{short} - {option['help']}")
    return 0


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("plugins", help="list discovered plugins")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)
