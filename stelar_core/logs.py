"""The ``logger`` option: the seed's levels or a ``logging.Logger``, onto the standard
``logging`` module. stelar logs under ``stelar.*``: one info line per connection lifecycle event
(connected, disconnected, refused), warnings for limits hit, nothing per message above debug."""

from __future__ import annotations

import logging
from typing import Any

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


class _ServerLogger(logging.Logger):
    """A logger outside ``logging``'s registry. The registry clears its loggers' level caches
    when any level changes; this one is not among them, so it reads the levels each time."""

    def isEnabledFor(self, level: int) -> bool:
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= self.getEffectiveLevel()


class ServerLogging:
    """The loggers of one server, so that its ``logger`` option concerns it alone.

    Each is a logger of its own (not in ``logging``'s registry) whose parent is the usual
    ``stelar.<part>`` logger: with ``logger=None`` it inherits that logger's level and records
    reach the application's handlers exactly as before; a level, ``False`` or a
    ``logging.Logger`` to forward to applies to this server only, whatever other servers of the
    process were given.
    """

    def __init__(self, value: Any) -> None:
        self._value = value
        self._loggers: dict[str, logging.Logger] = {}

    def get(self, name: str) -> logging.Logger:
        logger = self._loggers.get(name)
        if logger is None:
            logger = _ServerLogger(name)
            logger.parent = logging.getLogger(name)
            _configure(logger, self._value)
            self._loggers[name] = logger
        return logger

    def apply(self, value: Any) -> None:
        """A new ``logger`` option (``update_config``), for every logger already handed out."""
        self._value = value
        for logger in self._loggers.values():
            _configure(logger, value)


def _configure(logger: logging.Logger, value: Any) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    if value is None:
        logger.setLevel(logging.NOTSET)  # the application's configuration of stelar.* decides
    elif isinstance(value, logging.Logger):
        logger.addHandler(_ForwardTo(value))
        logger.propagate = False
        logger.setLevel(logging.NOTSET if value.level == logging.NOTSET else value.level)
    else:
        logger.setLevel(LEVELS["silent"] if value is False else LEVELS[value])
