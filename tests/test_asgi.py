"""stelar-asgi behind real ASGI servers: the transport conformance suite under uvicorn and
under hypercorn, and stelar mounted in FastAPI and Starlette applications."""

from __future__ import annotations

import pytest

from stelar_core.testing.conformance import TransportConformance
from tests.asgi_support import AsgiTransportPlugin


class TestAsgiUnderUvicorn(TransportConformance):
    transport = "asgi"
    server_options = {"plugins": [AsgiTransportPlugin("uvicorn")], "port": None}


class TestAsgiUnderHypercorn(TransportConformance):
    transport = "asgi"
    server_options = {"plugins": [AsgiTransportPlugin("hypercorn")], "port": None}


pytestmark = pytest.mark.one_loop
