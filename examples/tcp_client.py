"""Talks to examples/tcp_server.py: ``python examples/tcp_client.py [tcp://127.0.0.1:3001]``.

It uses the test kit's protocol-level client; ``StelarClient`` (reconnection, offline queue)
will do the same with more care.
"""

import asyncio
import sys

from stelar_core.testing import connect_url


async def main(url: str) -> None:
    client = await connect_url(url, auth={"service": "pricing-consumer"})  # tcps://... with ca_file=
    print("connected as", client.id)
    print("price:", await client.request("price", "ACME"))
    print("joined:", await client.join("prices"))
    client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:3001"))
