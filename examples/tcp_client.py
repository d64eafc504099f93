"""Talks to examples/tcp_server.py: ``python examples/tcp_client.py [tcp://127.0.0.1:3001]``."""

import asyncio
import sys

from stelar_core import StelarClient


async def main(url: str) -> None:
    # tcps://... with ca_file="ca.pem" for TLS; reconnection and an offline queue come built in.
    async with StelarClient(url, auth={"service": "pricing-consumer"}) as client:
        print("connected as", client.id)
        print("price:", await client.request("price", "ACME"))
        print("joined:", (await client.join_room("prices")).ok)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:3001"))
