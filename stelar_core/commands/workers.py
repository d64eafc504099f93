"""``stelar serve --workers N``: N processes of one server on one machine, sharing its ports.

Each worker is a process of its own (``python -m stelar_core.commands.workers SPEC``) listening
with SO_REUSEPORT, so the kernel spreads connections over them; the broker (``redis``) joins
them into one server. A supervisor starts them, restarts one that exits (backing off if it keeps
crashing) and, on SIGTERM or SIGINT, stops them all gracefully (each runs its own graceful
shutdown) before it exits. Without a broker shared across processes the workers would be N
unrelated servers behind one port, so that is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from typing import Any

from stelar_core.commands.apps import WORKER_ENV, build_server
from stelar_core.errors import StelarError
from stelar_core.plugins import hints
from stelar_core.providers import ClusterBroker
from stelar_core.server.signals import on_shutdown_signal

log = logging.getLogger("stelar.workers")

# A worker that ran at least this long before exiting was not crash-looping: back off from zero.
HEALTHY_RUN = 10.0
MAX_RESTART_DELAY = 5.0


def worker_command(app: str | None, options: dict[str, Any], event_loop: str) -> list[str]:
    spec = json.dumps({"app": app, "options": options, "event_loop": event_loop})
    return [sys.executable, "-m", "stelar_core.commands.workers", spec]


def check_cluster(app: str | None, options: dict[str, Any]) -> None:
    """Refuse workers that would not act as one server (built here, never started)."""
    server = build_server(app, options, worker=True)
    broker = server.hub.broker
    if not isinstance(broker, ClusterBroker):
        raise StelarError(
            f"--workers needs a broker shared across processes, and broker {server.config.broker!r} "
            "is not one: N workers would be N separate servers behind one port (rooms, to_id and "
            "counts split between them). Use --broker redis --redis-url redis://... "
            f"(pip install {hints.for_provider('broker', 'redis')})"
        )


def run_workers(app: str | None, workers: int, options: dict[str, Any], *, event_loop: str = "auto") -> int:
    """Run ``workers`` processes of ``app`` (``module:attribute``, or the relay app for ``None``)
    with ``options``, supervised, until SIGTERM/SIGINT. The Python form of ``--workers``."""
    if workers < 1:
        raise StelarError(f"--workers must be at least 1, got {workers}")
    check_cluster(app, options)
    supervisor = Supervisor(worker_command(app, options, event_loop), workers)
    return asyncio.run(supervisor.run())


class Supervisor:
    def __init__(self, command: list[str], count: int, *, stop_timeout: float = 30.0) -> None:
        self.command = command
        self.count = count
        self.stop_timeout = stop_timeout
        self.workers: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._stopping = asyncio.Event()

    async def run(self) -> int:
        unsubscribe = on_shutdown_signal(self._stopping.set)
        keepers = [asyncio.ensure_future(self._keep(index)) for index in range(self.count)]
        print(
            f"stelar: {self.count} workers share the ports below (pid {os.getpid()} supervises; "
            "a worker that exits is restarted)",
            flush=True,
        )
        try:
            await self._stopping.wait()
        finally:
            unsubscribe()
            self._stopping.set()
            await self._stop_all()
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
        return 0

    def stop(self) -> None:
        self._stopping.set()

    async def _keep(self, index: int) -> None:
        """Worker ``index``: started, and started again whenever it exits before the stop."""
        loop = asyncio.get_running_loop()
        crashes = 0
        while not self._stopping.is_set():
            env = {**os.environ, WORKER_ENV: str(index)}
            process = await asyncio.create_subprocess_exec(*self.command, env=env)
            self.workers[index] = process
            started = loop.time()
            code = await process.wait()
            if self._stopping.is_set():
                return
            crashes = crashes + 1 if loop.time() - started < HEALTHY_RUN else 1
            delay = min(MAX_RESTART_DELAY, 0.1 * 2 ** (crashes - 1))
            log.warning(
                "worker %d (pid %d) exited with %s; restarting in %.1fs", index, process.pid, code, delay
            )
            self.restarts += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _stop_all(self) -> None:
        """SIGTERM to every worker (each stops gracefully), SIGKILL to any still there after
        ``stop_timeout``."""
        running = [process for process in self.workers.values() if process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        waiting = [asyncio.ensure_future(process.wait()) for process in running]
        if not waiting:
            return
        _, late = await asyncio.wait(waiting, timeout=self.stop_timeout)
        for process in running:
            if process.returncode is None:
                log.warning(
                    "worker pid %d did not stop within %ss; killing it", process.pid, self.stop_timeout
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if late:
            await asyncio.wait(late)


def _worker_main(spec: str) -> None:
    from stelar_core.commands.serve import configure_logging  # serve imports this module

    settings = json.loads(spec)
    configure_logging()
    build_server(settings["app"], settings["options"], worker=True).run(event_loop=settings["event_loop"])


if __name__ == "__main__":
    _worker_main(sys.argv[1])
