"""An application whose requests cost the server real CPU (bench/workers.py): ``echo`` hashes
for about a third of a millisecond before it answers, so that one load generator can keep
several server processes busy. ``stelar serve cpu_app:app`` (run from bench/servers)."""

import hashlib

from stelar_core import Context, StelarServer

ROUNDS = 1_000  # SHA-256 rounds per request


def work(ctx: Context) -> str:
    digest = ctx.id.encode()
    for _ in range(ROUNDS):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:8]


def app(**options: object) -> StelarServer:
    limits_off = {"rate_limit": None, "max_connections": 20_000, "max_connections_per_ip": 20_000}
    server = StelarServer(**{**limits_off, **options})
    server.on_ack("echo", work)
    return server
