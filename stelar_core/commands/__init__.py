"""The ``stelar`` command's subcommands beyond ``serve`` and ``plugins`` (``stelar_core.cli``):
each module adds its parser with ``add_parser(commands, ...)`` and runs it."""
