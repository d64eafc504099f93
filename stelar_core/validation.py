"""Checks shared by every kind of option (server, plugin sections, client): each names the
option, the value and what is allowed.

A check is ``check(option, value) -> value`` (it may convert, idempotently, since
``attrs.evolve`` runs converters again); :func:`validator` and :func:`converter` adapt one to
an attrs field.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from stelar_core.errors import ConfigError

Check = Callable[[str, Any], Any]


def fail(option: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"option {option!r} = {value!r} is invalid: {allowed}")


def unknown(kind: str, name: str, known: Iterable[str]) -> ConfigError:
    """An unknown name, with the closest known one (did you mean ...?) or the list of them."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
    return ConfigError(f"unknown {kind} {name!r}{hint}")


def validator(check: Check) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def run(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(attribute.name, value)

    return run


def integer(minimum: int) -> Check:
    def check(option: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise fail(option, value, f"expected an integer >= {minimum}")
        return value

    return check


def seconds(option: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise fail(option, value, "expected a duration in seconds > 0")
    return value


def boolean(option: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise fail(option, value, "expected True or False")
    return value


def text(option: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise fail(option, value, "expected a non-empty string")
    return value


def port(option: str, value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise fail(option, value, "expected a port number 0..65535 (0 picks a free port) or None")
    return value


def url_path(option: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith("/"):
        raise fail(option, value, "expected a URL path starting with '/'")
    return value


def function_or_none(option: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise fail(option, value, "expected a function or None")
    return value


def strings_or_none(option: str, value: Any) -> tuple[str, ...] | None:
    """A string or an iterable of them, as a tuple; ``None`` stays ``None``."""
    if value is None:
        return None
    items = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, Iterable) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise fail(option, value, "expected a string or a list of strings")
    return items


def optional(check: Check) -> Check:
    def run(option: str, value: Any) -> Any:
        return None if value is None else check(option, value)

    return run
