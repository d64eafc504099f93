"""The pluggy markers of the ``stelar`` project; plugins use ``from stelar_core import hookimpl``."""

import pluggy

PROJECT_NAME = "stelar"
ENTRY_POINT_GROUP = "stelar"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
