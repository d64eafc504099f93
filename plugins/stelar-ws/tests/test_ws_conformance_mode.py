"""The conformance mode echoes text and binary messages with no hub behind the transport."""

import websockets
from websockets.asyncio.client import connect

from stelar_ws.conformance import echo_transport


async def test_the_echo_sink_echoes_text_and_binary_with_and_without_compression():
    for compression in (False, True):
        transport = echo_transport(compression=compression)
        await transport.start()
        try:
            async with connect(transport.addresses[0], compression="deflate" if compression else None) as ws:
                await ws.send("héllo")
                assert await ws.recv() == "héllo"
                await ws.send(b"\x00\xff" * 1000)
                assert await ws.recv() == b"\x00\xff" * 1000
                await ws.send(["frag", "mented"])
                assert await ws.recv() == "fragmented"
                assert ("permessage-deflate" in str(ws.response.headers)) is compression
        finally:
            await transport.stop()


async def test_invalid_utf8_text_is_refused_even_in_echo_mode():
    transport = echo_transport()
    await transport.start()
    try:
        async with connect(transport.addresses[0]) as ws:
            await ws.send(b"\xff\xfe", text=True)
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd.code == 1007
            else:
                raise AssertionError("invalid UTF-8 was echoed")
    finally:
        await transport.stop()
