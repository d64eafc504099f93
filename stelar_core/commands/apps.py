"""Which server ``stelar serve`` runs (and each worker of ``--workers``): the relay app with the
transports the options name (or every installed one's default), or the user's APP."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from typing import Any

from stelar_core import compiled
from stelar_core.config import merge_options
from stelar_core.errors import StelarError
from stelar_core.eventloop import loop_name
from stelar_core.plugins import hints
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.markers import hookimpl
from stelar_core.plugins.registry import all_registries
from stelar_core.plugins.view import ServerView
from stelar_core.providers import TransportProvider
from stelar_core.server import StelarServer
from stelar_core.server.assembly import collect_options
from stelar_core.server.relay import build_relay_server

# Set in each worker's environment by the supervisor: its index, 0..N-1.
WORKER_ENV = "STELAR_WORKER"


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


class _AnnounceAddresses:
    """Prints where the server listens once it started (a plugin like any other): one line per
    listener; of ``--workers``, the first worker's only (they share the ports)."""

    name = "cli-announce"

    @hookimpl
    def stelar_on_server_started(self, server: ServerView) -> None:
        if os.environ.get(WORKER_ENV, "0") != "0":
            return
        running = f"event loop: {loop_name(asyncio.get_running_loop())}; hot path: {compiled.describe()}"
        for transport, urls in server.addresses.items():
            where = ", ".join(urls) or "(in-process)"
            print(f"stelar: {transport} listening on {where} ({running})", flush=True)


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
            f"no network transport is installed: pip install {hints.for_option('port')} (WebSocket) "
            f"and/or {hints.for_option('tcp_port')} (TCP), or run in-process with --transport memory"
        )
    return merge_options(defaults, options)


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
