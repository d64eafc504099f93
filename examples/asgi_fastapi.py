"""stelar mounted in a FastAPI application: WebSocket clients through the app's own server
(uvicorn), services over stelar's native TCP, one set of rooms. The app's session cookie tells
stelar's middleware who connects.

    uvicorn examples.asgi_fastapi:app --port 8000     # ws://127.0.0.1:8000/realtime/, tcp://127.0.0.1:3001
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from fastapi import FastAPI

from stelar_asgi import stelar_asgi
from stelar_core import StelarServer

# The application's sessions (a real one keeps them in its database or signs the cookie).
SESSIONS = {"s3cret": "ann", "t0ken": "bob"}


class SessionUser:
    """The application's own ASGI middleware: the user of the session cookie, in the scope, for
    its HTTP routes and for the WebSockets stelar receives alike."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            cookie = SimpleCookie(dict(scope["headers"]).get(b"cookie", b"").decode())
            session = cookie.get("session")
            scope["user"] = SESSIONS.get(session.value) if session else None
        await self.app(scope, receive, send)


def create_app(tcp_port: int = 3001) -> tuple[FastAPI, StelarServer]:
    stelar = StelarServer(port=None, tcp_port=tcp_port)  # TCP stays native; WebSocket goes through ASGI
    realtime = stelar_asgi(stelar)
    app = FastAPI(lifespan=realtime.lifespan)  # stelar starts and stops with the application
    app.add_middleware(SessionUser)
    app.mount("/realtime", realtime)  # its WebSocket endpoint, /realtime/health, /realtime/stelar.js

    @stelar.use
    def signed_in(ctx, next):
        user = ctx.req.scope.get("user") if ctx.req is not None and ctx.req.scope else None
        if user is None and ctx.protocol == "tcp":
            user = ctx.auth.get("service")  # services over TCP name themselves
        if user is not None:
            ctx.set_metadata("user", user)
            next()  # not calling next() refuses the connection

    @stelar.on("chat")
    def chat(ctx):
        ctx.to("general", "chat", {"from": ctx.get_metadata("user"), "text": ctx.data}, exclude=ctx.id)

    @app.get("/api/online")
    def online() -> dict[str, list[str]]:
        return {"online": sorted(info.metadata["user"] for info in stelar.get_clients())}

    return app, stelar


app, stelar = create_app()
