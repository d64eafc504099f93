"""Mount stelar in FastAPI, Starlette or any ASGI application."""

from stelar_asgi.app import AsgiEndpoint, StelarASGI, stelar_asgi

__all__ = ["AsgiEndpoint", "StelarASGI", "stelar_asgi"]
