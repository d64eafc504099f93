"""``stelar asyncapi APP``: print the AsyncAPI 3.0 document of a server (or, with
``--typescript``, declarations that type the browser client for it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from stelar_core.asyncapi import document, to_json, typescript
from stelar_core.server.server import StelarServer

BuildServer = Callable[[str, dict[str, Any]], StelarServer]


def add_parser(commands: Any, build: BuildServer) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "asyncapi",
        help="print the AsyncAPI 3.0 document of a server's events and requests",
        description="Print the AsyncAPI 3.0 document of APP's events, requests and their payload "
        "schemas (from its typed handlers), or TypeScript declarations for the browser client.",
    )
    parser.add_argument(
        "app", help="module:attribute of your server (a StelarServer or a function building one)"
    )
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="URL",
        help="a URL clients reach it at (wss://example.com/, tcps://example.com:3001); repeat for several",
    )
    parser.add_argument("--title", help="the document's title (default: APP)")
    parser.add_argument("--api-version", default="1.0.0", help="the version of your API (default 1.0.0)")
    parser.add_argument(
        "--typescript",
        action="store_true",
        help="print TypeScript declarations instead: the payload types and a TypedStelarClient",
    )
    parser.add_argument(
        "--module",
        default="stelar-client",
        help="where the declarations import StelarClient from (default: the npm package stelar-client)",
    )
    parser.set_defaults(run=lambda args: run(args, build))


def run(args: argparse.Namespace, build: BuildServer) -> int:
    server = build(args.app, {})
    doc = document(server, title=args.title or args.app, version=args.api_version, servers=args.server)
    sys.stdout.write(typescript(doc, args.module) if args.typescript else to_json(doc))
    return 0
