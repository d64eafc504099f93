"""A TCP service: ``python examples/tcp_server.py [port]`` (default 3001; 0 picks a free one)."""

import sys

from stelar_core import StelarServer

server = StelarServer(
    port=None,  # no WebSocket listener
    tcp_port=int(sys.argv[1]) if len(sys.argv) > 1 else 3001,
    hooks={"on_server_started": lambda server: print("listening on", *server.addresses["tcp"], flush=True)},
)
server.on_ack("price", lambda ctx: {"symbol": ctx.data, "price": 42.0})
server.on("tick", lambda ctx: ctx.to("prices", "tick", ctx.data, exclude=ctx.id))

if __name__ == "__main__":
    server.run()  # until Ctrl-C or SIGTERM
