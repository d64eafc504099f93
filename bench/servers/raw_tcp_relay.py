"""The ceiling for stelar-tcp: a bare asyncio length-prefixed server doing the same work with
nothing else (no limits, no hooks, no JSON decoding). Answers connect and join, echoes ACK
requests, and relays a JSON event to every member of the room with one write per delivery.

    python bench/servers/raw_tcp_relay.py [uvloop] [--tls CERT KEY]   # prints "PORT <n>", serves
                                                                      # until SIGTERM

``--tls`` serves through asyncio's own TLS server (``create_server(ssl=...)``): the ceiling for
stelar-tls's accept loop (bench/tls.py).
"""

import asyncio
import ssl
import struct
import sys

from serving import announce_and_serve, run

LENGTH = struct.Struct(">I")
WELCOME = b'\x06\x00\x00{"id":"raw","v":1}'
JOINED = b'{"ok":true}'
room: set["Relay"] = set()


class Relay(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = bytearray()

    def connection_lost(self, exc):
        room.discard(self)

    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= 4:
            (size,) = LENGTH.unpack_from(buffer, offset)
            if len(buffer) - offset - 4 < size:
                break
            frame = bytes(buffer[offset + 4 : offset + 4 + size])
            offset += 4 + size
            self.handle(frame)
        del buffer[:offset]

    def handle(self, frame):
        kind = frame[0]
        if kind == 6:
            self.send(WELCOME)
        elif kind == 8:
            room.add(self)
            self.send(frame + JOINED)
        elif kind == 4:
            event_end = 3 + int.from_bytes(frame[1:3], "big")
            head = b"\x05" + frame[1 : event_end + 4]
            self.send(head + b'{"ok":' + frame[event_end + 4 :] + b"}")
        elif kind == 0:
            wire = LENGTH.pack(len(frame)) + frame
            for member in room:
                member.transport.write(wire)
        elif kind == 2:
            self.send(b"\x03" + frame[1:])

    def send(self, frame):
        self.transport.write(LENGTH.pack(len(frame)) + frame)


async def main():
    loop = asyncio.get_running_loop()
    context = None
    if "--tls" in sys.argv:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*sys.argv[sys.argv.index("--tls") + 1 : sys.argv.index("--tls") + 3])
    server = await loop.create_server(Relay, "127.0.0.1", 0, backlog=4096, ssl=context)
    await announce_and_serve(server.sockets[0].getsockname()[1])
    server.close()


if __name__ == "__main__":
    run(main())
