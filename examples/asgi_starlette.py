"""stelar served by a Starlette application alone: its WebSocket at /ws, the page's own routes
beside it, the hub started by the application's lifespan.

    uvicorn examples.asgi_starlette:app --port 8000      # or: hypercorn examples.asgi_starlette:app
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from stelar_asgi import stelar_asgi
from stelar_core import StelarServer


def create_app() -> tuple[Starlette, StelarServer]:
    stelar = StelarServer(transports=[])  # no native listener: everything goes through ASGI
    stelar.on_ack("echo", lambda ctx: ctx.data)
    realtime = stelar_asgi(stelar)

    async def home(request):
        return PlainTextResponse("stelar is at /ws/ (WebSocket) and /ws/stelar.js")

    app = Starlette(routes=[Route("/", home), Mount("/ws", realtime)], lifespan=realtime.lifespan)
    return app, stelar


app, stelar = create_app()
