"""The client's event listeners: ``on``, ``once``, ``off``, ``on_any`` and calling them.

A listener may be sync or ``async``; one that raises is reported to ``failed`` and the others
still run; an awaitable result runs in a task through ``spawn``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Listener = Callable[..., Any]


class Listeners:
    __slots__ = ("_any", "_by_event", "_failed", "_spawn")

    def __init__(
        self, spawn: Callable[[Awaitable[Any]], None], failed: Callable[[Listener, Exception], None]
    ) -> None:
        self._by_event: dict[str, list[Listener]] = {}
        self._any: list[Listener] = []
        self._spawn = spawn
        self._failed = failed

    def add(self, event: str, listener: Listener) -> None:
        self._by_event.setdefault(event, []).append(listener)

    def add_once(self, event: str, listener: Listener) -> None:
        def once_wrapper(*args: Any) -> Any:
            self.remove(event, once_wrapper)
            return listener(*args)

        # ``remove(event, listener)`` finds the wrapper by the function it wraps.
        once_wrapper.__wrapped__ = listener  # type: ignore[attr-defined]
        self.add(event, once_wrapper)

    def remove(self, event: str, listener: Listener | None = None) -> None:
        """Remove ``listener`` (added with ``add`` or ``add_once``) from ``event``, or all of them."""
        listeners = self._by_event.get(event, [])
        if listener is None:
            listeners.clear()
        else:
            for registered in listeners:
                if registered == listener or getattr(registered, "__wrapped__", None) == listener:
                    listeners.remove(registered)
                    break
        if not listeners:
            self._by_event.pop(event, None)

    def add_any(self, listener: Listener) -> None:
        self._any.append(listener)

    def clear(self, event: str | None = None) -> None:
        if event is None:
            self._by_event.clear()
            self._any.clear()
        else:
            self._by_event.pop(event, None)

    def emit(self, event: str, *args: Any) -> None:
        for listener in tuple(self._by_event.get(event, ())):
            self._call(listener, *args)

    def emit_to_any(self, event: str, data: Any) -> None:
        """A server event, to the ``on_any`` listeners."""
        for listener in tuple(self._any):
            self._call(listener, event, data)

    def _call(self, listener: Listener, *args: Any) -> None:
        try:
            result = listener(*args)
        except Exception as exc:
            self._failed(listener, exc)
            return
        if inspect.isawaitable(result):
            self._spawn(result)
