"""What stelar-ws compiles with mypyc when it is installed where a C compiler is (its build hook,
hatch_build.py, and scripts/build_accelerator.py read this list): the inbound fast path and the
upgrade read. ``STELAR_NO_EXTENSIONS=1`` makes their source load, as for stelar-core's
(``stelar_core.compiled``, docs/install.md)."""

ACCELERATED = (
    "stelar_ws.frames",
    "stelar_ws.upgrade",
)
