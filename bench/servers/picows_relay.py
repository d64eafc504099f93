"""A peer for issue 18: picows (a Cython WebSocket library for asyncio) doing the same work as
stelar_relay.py with nothing else: answers connect and join, echoes ACK requests, relays an
event to the room with one send per member.

    python bench/servers/picows_relay.py [uvloop]   # prints "PORT <n>", serves until SIGTERM
"""

from picows import WSListener, WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener, ws_create_server
from serving import announce_and_serve, run

WELCOME = b'\x06\x00\x00{"id":"raw","v":1}'
JOINED = b'{"ok":true}'
room: set["Relay"] = set()


class Relay(WSListener):
    def on_ws_connected(self, transport):
        self.transport = transport

    def on_ws_disconnected(self, transport):
        room.discard(self)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.BINARY:
            return
        data = frame.get_payload_as_bytes()
        kind = data[0]
        if kind == 6:
            transport.send(WSMsgType.BINARY, WELCOME)
        elif kind == 8:
            room.add(self)
            transport.send(WSMsgType.BINARY, data + JOINED)
        elif kind == 4:
            event_end = 3 + int.from_bytes(data[1:3], "big")
            answer = b"\x05" + data[1 : event_end + 4] + b'{"ok":' + data[event_end + 4 :] + b"}"
            transport.send(WSMsgType.BINARY, answer)
        elif kind == 0:
            for member in room:
                member.transport.send(WSMsgType.BINARY, data)


def upgrade(request):
    response = WSUpgradeResponse.create_101_response(extra_headers={"Sec-WebSocket-Protocol": "stelar.v1"})
    return WSUpgradeResponseWithListener(response, Relay())


async def main():
    server = await ws_create_server(upgrade, "127.0.0.1", 0, backlog=4096, max_frame_size=10 * 1024 * 1024)
    await announce_and_serve(server.sockets[0].getsockname()[1])
    server.close()


if __name__ == "__main__":
    run(main())
