"""The ``stelar`` command's subcommands, one module each (``stelar_core.cli`` assembles them):
``serve`` (with ``apps``, the server it runs, and ``workers``, the ``--workers`` supervisor),
``plugins``, ``connect``, ``bench`` and ``asyncapi``. Nothing else in the core imports them."""
