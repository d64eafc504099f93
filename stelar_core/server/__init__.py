"""The server facade: ``StelarServer`` (built by ``assembly`` from options, plugins and
providers), the ``ServerView`` that hooks receive, and the built-in relay app of ``stelar serve``."""

from stelar_core.server.server import StelarServer
from stelar_core.server.view import ServerView

__all__ = ["ServerView", "StelarServer"]
