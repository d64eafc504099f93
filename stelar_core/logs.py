"""The ``logger`` option: the seed's levels or a ``logging.Logger``, onto the standard
``logging`` module. stelar logs under ``stelar.*``: one info line per connection lifecycle event
(connected, disconnected, refused), warnings for limits hit, nothing per message above debug."""

from __future__ import annotations

import logging
from typing import Any

STELAR_LOGGER = "stelar"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "silent": logging.CRITICAL + 10,
}


class _ForwardTo(logging.Handler):
    """Hands stelar's records to the application's logger."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.handle(record)


def is_valid(value: Any) -> bool:
    return value is None or value is False or isinstance(value, logging.Logger) or value in LEVELS


def apply(value: Any) -> None:
    """``None`` leaves logging as the application set it up. ``logging`` is process-wide, so the
    last server configured wins."""
    if value is None:
        return
    root = logging.getLogger(STELAR_LOGGER)
    for handler in [h for h in root.handlers if isinstance(h, _ForwardTo)]:
        root.removeHandler(handler)
    if isinstance(value, logging.Logger):
        root.addHandler(_ForwardTo(value))
        root.propagate = False
        root.setLevel(logging.NOTSET if value.level == logging.NOTSET else value.level)
        return
    root.propagate = True
    root.setLevel(LEVELS["silent"] if value is False else LEVELS[value])
