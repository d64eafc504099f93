"""Delivery brokers: ``local`` (one process, the default) and an in-memory bus joining several
hubs in one process (the shape a Redis broker takes across processes, and its test double)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stelar_core.builtins.history import MemoryHistory
from stelar_core.config import DEFAULT_MAX_HISTORY_ROOMS
from stelar_core.plugins.markers import hookimpl
from stelar_core.providers import BrokerFactory, BrokerPort, Delivery, ProviderContext, Register


class LocalBroker:
    """Hands every delivery straight to this process's hub: no copy, no queue. Rooms with
    history are kept in this process's memory."""

    def __init__(self, max_history_rooms: int = DEFAULT_MAX_HISTORY_ROOMS) -> None:
        self.history = MemoryHistory(max_history_rooms, time.monotonic)
        self._deliver: Callable[[Delivery], Any] = self._not_started

    async def start(self, port: BrokerPort) -> None:
        self.history.now = port.clock.now  # the server's clock: a test's fake one moves the ttl
        self._deliver = port.deliver

    def publish(self, delivery: Delivery) -> None:
        if delivery.history is not None:
            delivery = self.history.publish(delivery)
        self._deliver(delivery)

    async def stop(self) -> None:
        self._deliver = self._not_started

    @staticmethod
    def _not_started(delivery: Delivery) -> None:
        raise RuntimeError("broker not started: start the server before emitting")


class MemoryBus:
    """Joins the hubs of one process: a delivery published by one reaches all.

    ``StelarServer(broker=bus.broker())`` for each server that should act as one.
    """

    def __init__(self, max_history_rooms: int = DEFAULT_MAX_HISTORY_ROOMS) -> None:
        self._subscribers: list[Callable[[Delivery], Any]] = []
        # One store for every hub on the bus, as Redis is one for every node.
        self.history = MemoryHistory(max_history_rooms, time.monotonic)

    def broker(self) -> MemoryBroker:
        return MemoryBroker(self)

    def subscribe(self, deliver: Callable[[Delivery], Any]) -> None:
        self._subscribers.append(deliver)

    def unsubscribe(self, deliver: Callable[[Delivery], Any]) -> None:
        self._subscribers.remove(deliver)

    def publish(self, delivery: Delivery) -> None:
        if delivery.history is not None:
            delivery = self.history.publish(delivery)
        for deliver in tuple(self._subscribers):
            deliver(delivery)


class MemoryBroker:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self.history = bus.history
        self._deliver: Callable[[Delivery], Any] | None = None

    async def start(self, port: BrokerPort) -> None:
        self._deliver = port.deliver
        self._bus.subscribe(port.deliver)

    def publish(self, delivery: Delivery) -> None:
        self._bus.publish(delivery)

    async def stop(self) -> None:
        if self._deliver is not None:
            self._bus.unsubscribe(self._deliver)
            self._deliver = None


def _local_broker(context: ProviderContext) -> LocalBroker:
    return LocalBroker(context.config.max_history_rooms)


@hookimpl(trylast=True)
def stelar_register_brokers(register: Register[BrokerFactory]) -> None:
    register("local", _local_broker)
