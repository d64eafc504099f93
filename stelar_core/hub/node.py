"""``BrokerNode``: the hub as its broker sees it (:class:`~stelar_core.providers.BrokerPort`).

A broker joining several nodes delivers what other nodes publish, answers their requests for
clients connected here and keeps shared membership up to date; this is all it may touch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from stelar_core.clock import Clock
from stelar_core.errors import NotConnected
from stelar_core.providers import MembershipWatcher
from stelar_core.values import ClientInfo, Stats

if TYPE_CHECKING:
    from stelar_core.hub.hub import Hub


class BrokerNode:
    __slots__ = ("_hub", "deliver")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.deliver = hub.fanout.deliver

    @property
    def clock(self) -> Clock:
        return self._hub.clock

    def has_client(self, client_id: str) -> bool:
        return self._hub.session(client_id) is not None

    def clients(self) -> list[ClientInfo]:
        return self._hub.get_clients()

    async def ask(self, client_id: str, event: str, data: Any, timeout: float | None) -> Any:
        session = self._hub.session(client_id)
        if session is None:
            raise NotConnected(f"no client {client_id!r} is connected here")
        return await self._hub.requests.ask(session, event, data, timeout=timeout)

    def disconnect(self, client_id: str, code: int, reason: str) -> bool:
        return self._hub.disconnect(client_id, code, reason)

    def join(self, client_id: str, room: str) -> tuple[str, str] | None:
        return self._hub.join_client(client_id, room)

    def leave(self, client_id: str, room: str) -> tuple[str, str] | None:
        return self._hub.leave_client(client_id, room)

    def stats(self) -> Stats:
        return self._hub.stats({})

    def watch(self, watcher: MembershipWatcher) -> None:
        self._hub.rooms.table.watcher = watcher

    def set_degraded(self, component: str, reason: str | None) -> None:
        self._hub.degradation.set(component, reason)

    def count(self, counter: str, amount: int = 1) -> None:
        self._hub.count(counter, amount)

    def logger(self, name: str) -> logging.Logger:
        return self._hub.logger(name)
