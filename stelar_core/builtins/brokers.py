"""Delivery brokers: ``local`` (one process, the default) and an in-memory bus joining several
hubs in one process (the shape a Redis broker takes across processes, and its test double)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stelar_core.plugins.markers import hookimpl
from stelar_core.providers import BrokerFactory, BrokerPort, Delivery, ProviderContext, Register


class LocalBroker:
    """Hands every delivery straight to this process's hub: no copy, no queue."""

    def __init__(self) -> None:
        self.publish: Callable[[Delivery], Any] = self._not_started

    async def start(self, port: BrokerPort) -> None:
        self.publish = port.deliver

    async def stop(self) -> None:
        self.publish = self._not_started

    @staticmethod
    def _not_started(delivery: Delivery) -> None:
        raise RuntimeError("broker not started: start the server before emitting")


class MemoryBus:
    """Joins the hubs of one process: a delivery published by one reaches all.

    ``StelarServer(broker=bus.broker())`` for each server that should act as one.
    """

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Delivery], Any]] = []

    def broker(self) -> MemoryBroker:
        return MemoryBroker(self)

    def subscribe(self, deliver: Callable[[Delivery], Any]) -> None:
        self._subscribers.append(deliver)

    def unsubscribe(self, deliver: Callable[[Delivery], Any]) -> None:
        self._subscribers.remove(deliver)

    def publish(self, delivery: Delivery) -> None:
        for deliver in tuple(self._subscribers):
            deliver(delivery)


class MemoryBroker:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
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
    return LocalBroker()


@hookimpl(trylast=True)
def stelar_register_brokers(register: Register[BrokerFactory]) -> None:
    register("local", _local_broker)
