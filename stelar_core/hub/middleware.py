"""Connection middleware: ``use(fn)``, where ``fn(ctx, next)`` calls ``next()`` to let the
connection through (``await next()`` works too). Not calling it, calling ``ctx.reject(...)`` or
raising refuses the connection."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from stelar_core.errors import ConnectionRefused
from stelar_core.protocol import DisconnectCode, ErrorCode

if TYPE_CHECKING:
    from stelar_core.hub.context import Context

Middleware = Callable[["Context", Callable[[], Any]], "Awaitable[None] | None"]


class _Proceed:
    """The ``next`` given to middleware: records the call; awaitable so ``await next()`` works."""

    __slots__ = ("called",)

    def __init__(self) -> None:
        self.called = False

    def __call__(self) -> _Proceed:
        self.called = True
        return self

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


async def run_middleware(chain: Sequence[Middleware], ctx: Context, log: logging.Logger) -> None:
    """Run ``chain`` in order; raises :class:`ConnectionRefused` if any link stops the connection."""
    for middleware in chain:
        proceed = _Proceed()
        name = getattr(middleware, "__name__", repr(middleware))
        try:
            result = middleware(ctx, proceed)
            if inspect.isawaitable(result):
                await result
        except ConnectionRefused:
            raise
        except Exception as exc:
            log.exception("middleware %s raised; refusing the connection", name)
            raise ConnectionRefused(
                ErrorCode.UNAUTHORIZED,
                f"connection refused: {exc}",
                DisconnectCode.POLICY_VIOLATION,
            ) from exc
        if not proceed.called:
            raise ConnectionRefused(
                ErrorCode.UNAUTHORIZED,
                "connection refused by middleware",
                DisconnectCode.POLICY_VIOLATION,
            )
