// Node socket.io doing the reference work of bench/servers/socketio_relay.py.
// node bench/node/socketio_relay.js   -> prints "PORT <n>", serves until SIGTERM
const http = require("http");
const { Server } = require("socket.io");

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  pingInterval: 300000, // no Engine.IO pings while measuring
  pingTimeout: 600000,
  perMessageDeflate: false,
  maxHttpBufferSize: 1 << 24,
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack(true);
  });
  socket.on("echo", (data, ack) => ack(data));
  socket.on("fan", (data) => io.to("room").emit("fan", data));
});
httpServer.listen(0, "127.0.0.1", 4096, () => console.log(`PORT ${httpServer.address().port}`));
process.on("SIGTERM", () => process.exit(0));
