"""The server facade: ``StelarServer`` (built by ``assembly`` from options, plugins and
providers), the ``ServerView`` that hooks receive (the Protocol; ``view.PluginView`` is the
object), and the built-in relay app of ``stelar serve``."""

from stelar_core.plugins.view import ServerView
from stelar_core.server.server import StelarServer

__all__ = ["ServerView", "StelarServer"]
