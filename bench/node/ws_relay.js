// Node `ws` doing the reference work of bench/servers/websockets_relay.py: answers connect and
// join, echoes ACK requests, relays an event to the room (the same frame to every member).
// node bench/node/ws_relay.js   -> prints "PORT <n>", serves until SIGTERM
const { WebSocketServer } = require("ws");

const WELCOME = Buffer.from('\x06\x00\x00{"id":"raw","v":1}', "latin1");
const JOINED = Buffer.from('{"ok":true}');
const room = new Set();
const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  backlog: 4096,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has("stelar.v1") ? "stelar.v1" : false),
});

server.on("connection", (ws) => {
  ws.on("message", (frame) => {
    const kind = frame[0];
    if (kind === 6) {
      ws.send(WELCOME);
    } else if (kind === 8) {
      room.add(ws);
      ws.send(Buffer.concat([frame, JOINED]));
    } else if (kind === 4) {
      const eventEnd = 3 + frame.readUInt16BE(1);
      ws.send(Buffer.concat([Buffer.from([5]), frame.subarray(1, eventEnd + 4), Buffer.from('{"ok":'),
        frame.subarray(eventEnd + 4), Buffer.from("}")]));
    } else if (kind === 0) {
      for (const member of room) member.send(frame);
    }
  });
  ws.on("close", () => room.delete(ws));
});
server.on("listening", () => console.log(`PORT ${server.address().port}`));
process.on("SIGTERM", () => process.exit(0));
