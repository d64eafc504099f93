"""The ``[stelar.api]`` options, and the routes of the server API (and, with ``admin``, of the
admin page) on every HTTP-capable transport: the WebSocket port, ``health_port``, ASGI."""

from __future__ import annotations

from typing import Any

from stelar_api.admin import AdminRoutes
from stelar_api.api import ApiRoutes
from stelar_api.keys import api_keys
from stelar_core.plugin_api import (
    OptionDeclarations,
    RateLimit,
    RouteContext,
    RouteRegister,
    fail,
    hookimpl,
    integer,
    seconds,
    strings_or_none,
    url_path,
)

DEFAULT_RATE_LIMIT = RateLimit(1000, 1.0)
DEFAULT_FAILED_AUTH_LIMIT = RateLimit(10, 60.0)


def _rate_limit(option: str, value: Any) -> RateLimit:
    limit = RateLimit.coerce(value, option)
    if limit is None:
        raise fail(option, value, "expected {max_points, window}")
    return limit


def _fraction(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise fail(option, value, "expected a number above 0 and at most 1")
    return float(value)


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add("enabled", default=False, type=bool, help="serve the server API (off by default)")
    options.add("prefix", default="/api", type=str, check=url_path, help="path the API's routes are under")
    options.add(
        "keys",
        default=(),
        check=api_keys,
        secret=True,
        restart=False,
        short="api_keys",
        help="API keys: secrets of 16+ characters, or {key, name, read_only} tables (several: rotation)",
    )
    options.add(
        "rate_limit",
        default=DEFAULT_RATE_LIMIT,
        check=_rate_limit,
        restart=False,
        help="commands per key and node: {max_points, window} (a batch counts each command)",
    )
    options.add(
        "failed_auth_limit",
        default=DEFAULT_FAILED_AUTH_LIMIT,
        check=_rate_limit,
        help="failed authentications (API and admin login) per IP address: {max_points, window}",
    )
    options.add(
        "max_body_size", default=65536, type=int, check=integer(2), restart=False, help="bytes per request"
    )
    options.add(
        "max_batch", default=100, type=int, check=integer(1), restart=False, help="commands per batch"
    )
    options.add(
        "allowed_origins",
        type=list,
        check=strings_or_none,
        restart=False,
        help="origins whose pages may call the API (CORS); none by default",
    )
    options.add("admin", default=False, type=bool, help="serve the admin page (off by default)")
    options.add("admin_path", default="/admin", type=str, check=url_path, help="path of the admin page")
    options.add(
        "admin_session_ttl",
        default=3600.0,
        type=float,
        check=seconds,
        restart=False,
        help="seconds an admin page login lasts",
    )
    options.add(
        "max_admin_sessions",
        default=100,
        type=int,
        check=integer(1),
        restart=False,
        help="admin logins at once",
    )
    options.add(
        "tail_sample",
        default=1.0,
        type=float,
        check=_fraction,
        restart=False,
        help="share of events the admin page's live tail records (0.01: one in a hundred)",
    )
    options.add(
        "tail_size", default=500, type=int, check=integer(1), restart=False, help="events the live tail keeps"
    )


@hookimpl
def stelar_register_http_routes(register: RouteRegister, context: RouteContext) -> None:
    options = context.options
    if not options.enabled and not options.admin:
        return
    api = ApiRoutes(context.server, context.section)
    commands = api.paths(options.prefix)
    routes = dict(commands)
    if options.admin:
        admin = AdminRoutes(context.server, lambda: api.options, api.access)
        routes |= admin.paths(options.admin_path, options.prefix)
    for path, (handler, methods) in routes.items():
        # A command (a POST) continues the caller's trace when a tracing plugin records one.
        register(path, handler, methods, traced=path in commands and "POST" in methods)
