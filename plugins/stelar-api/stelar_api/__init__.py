"""stelar-api: the server API over HTTP and the admin page (docs/server-api.md)."""

from stelar_api.commands import COMMANDS
from stelar_api.keys import ApiKey

__all__ = ["COMMANDS", "ApiKey"]
