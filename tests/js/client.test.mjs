// StelarClient byte by byte over a fake WebSocket: the same frames as the Python client's
// session for the same commands (tests/test_protocol_client.py is the reference).
import { test } from "node:test";
import assert from "node:assert/strict";

import { AckError, NotConnected, StelarClient, encodeFrame, FrameType } from "../../plugins/stelar-ws/stelar_ws/static/stelar.js";

const text = new TextEncoder();
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const frame = (type, event, payload = "", ackId = null) => encodeFrame(type, event, text.encode(payload), ackId);

/** A WebSocket the test drives: `sent` holds what the client wrote, `receive` plays the server. */
class FakeSocket {
  static last = null;
  static waiting = [];
  /** Resolves with the next socket the client opens, once it is open. */
  static next() { return new Promise((resolve) => FakeSocket.waiting.push(resolve)); }
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.last = this;
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.();
      for (const resolve of FakeSocket.waiting.splice(0)) resolve(this);
    });
  }
  send(data) { this.sent.push(hex(data)); }
  close(code = 1000, reason = "") { this.readyState = 3; this.closed = [code, reason]; }
  receive(bytes) { this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }); }
  drop(code = 1006, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
  take() { const sent = this.sent; this.sent = []; return sent; }
}

async function connected(options = {}) {
  const client = new StelarClient("ws://test/", { WebSocket: FakeSocket, auth: { token: "t" }, reconnection: false, ...options });
  const ready = client.connect();
  await new Promise((resolve) => queueMicrotask(resolve));
  const socket = FakeSocket.last;
  assert.deepEqual(socket.protocols, ["stelar.v1"]);
  assert.deepEqual(socket.take(), [hex(frame(FrameType.CONNECT, "", '{"auth":{"token":"t"}}'))]);
  socket.receive(frame(FrameType.CONNECT, "", '{"id":"c1","v":1,"heartbeat":30,"max_payload":64}'));
  await ready;
  return { client, socket };
}

test("the handshake and the welcome", async () => {
  const { client, socket } = await connected();
  assert.equal(client.id, "c1");
  assert.equal(client.state, "connected");
  assert.equal(client.maxPayload, 64);
  client.disconnect();
  assert.deepEqual(socket.closed, [1000, "client disconnected"]);
});

test("commands become the same frames as the Python session's", async () => {
  const { client, socket } = await connected();
  client.emit("chat", { t: "hi" });
  client.emitBinary("blob", new Uint8Array([0, 1]));
  client.joinRoom("room");
  client.leaveRoom("room");
  socket.receive(frame(FrameType.PING, "", "p"));
  assert.deepEqual(socket.take(), [
    hex(text.encode('\x00\x00\x04chat{"t":"hi"}')),
    "0100046" + "26c6f620001",
    hex(text.encode("\x08\x00\x04room")),
    hex(text.encode("\x09\x00\x04room")),
    hex(text.encode("\x03\x00\x00p")), // the pong, answered at once
  ]);
  client.disconnect();
});

test("trace context goes with emits and requests only to a server whose welcome says it traces", async () => {
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const plain = await connected({ traceContext: () => traceparent });
  plain.client.emit("chat", 1);
  assert.deepEqual(plain.socket.take(), [hex(frame(FrameType.JSON, "chat", "1"))]);
  plain.client.disconnect();

  const client = new StelarClient("ws://test/", { WebSocket: FakeSocket, reconnection: false, traceContext: () => traceparent });
  const ready = client.connect();
  await new Promise((resolve) => queueMicrotask(resolve));
  const socket = FakeSocket.last;
  socket.take();
  socket.receive(frame(FrameType.CONNECT, "", '{"id":"c2","v":1,"trace":true}'));
  await ready;
  client.emit("chat", 1);
  client.request("ask", null).catch(() => {});
  assert.deepEqual(socket.take(), [
    hex(encodeFrame(FrameType.JSON, "chat", text.encode("1"), null, traceparent)),
    hex(encodeFrame(FrameType.ACK_REQUEST, "ask", text.encode("null"), 0, traceparent)),
  ]);
  assert.equal(socket.take().length, 0);
  client.disconnect();
});

test("requests carry ack ids counting up; answers are matched to them", async () => {
  const { client, socket } = await connected();
  const first = client.request("add", [1, 2]);
  const second = client.request("add", [3, 4]);
  assert.deepEqual(socket.take(), [
    hex(Buffer.concat([Buffer.from("\x04\x00\x03add"), Buffer.from([0, 0, 0, 0]), Buffer.from("[1,2]")])),
    hex(Buffer.concat([Buffer.from("\x04\x00\x03add"), Buffer.from([0, 0, 0, 1]), Buffer.from("[3,4]")])),
  ]);
  socket.receive(frame(FrameType.ACK_RESPONSE, "add", '{"ok":7}', 1));
  socket.receive(frame(FrameType.ACK_RESPONSE, "add", '{"error":{"code":"boom","message":"no"}}', 0));
  assert.equal(await second, 7);
  await assert.rejects(first, (error) => error instanceof AckError && error.code === "boom" && error.reason === "no");
  client.disconnect();
});

test("the server's requests are answered with {ok} or {error}", async () => {
  const { client, socket } = await connected();
  client.onAck("double", (n) => n * 2);
  client.onAck("fail", () => { throw new Error("nope"); });
  socket.receive(frame(FrameType.ACK_REQUEST, "double", "21", 5));
  socket.receive(frame(FrameType.ACK_REQUEST, "fail", "null", 6));
  socket.receive(frame(FrameType.ACK_REQUEST, "missing", "null", 7));
  await new Promise((resolve) => setTimeout(resolve, 0)); // the handlers' promises settle
  // Each answer goes when its handler is done: in no particular order.
  assert.deepEqual(socket.take().sort(), [
    hex(frame(FrameType.ACK_RESPONSE, "double", '{"ok":42}', 5)),
    hex(frame(FrameType.ACK_RESPONSE, "fail", '{"error":{"code":"handler_error","message":"nope"}}', 6)),
    hex(frame(FrameType.ACK_RESPONSE, "missing", '{"error":{"code":"no_handler","message":"no handler for request \\"missing\\""}}', 7)),
  ].sort());
  client.disconnect();
});

test("a lost connection fails the requests sent on it; the offline queue keeps the rest", async () => {
  const { client, socket } = await connected({ reconnection: true, reconnectionDelay: 1, reconnectionAttempts: 1 });
  const sent = client.request("slow", 1, { timeout: 60000 });
  socket.drop(1006, "gone");
  await assert.rejects(sent, (error) => error instanceof NotConnected && /connection lost before the answer/.test(error.message));
  client.emit("later", 1);
  assert.equal(client.queueSize, 1);
  client.disconnect();
  assert.equal(client.queueSize, 0);
});

test("rooms are joined again, in sorted order, after a reconnect", async () => {
  const { client, socket } = await connected({ reconnection: true, reconnectionDelay: 1 });
  client.joinRoom("b");
  client.joinRoom("a");
  socket.receive(frame(FrameType.JOIN, "b", '{"ok":true}'));
  socket.receive(frame(FrameType.JOIN, "a", '{"ok":true}'));
  const reopened = FakeSocket.next();
  socket.drop();
  const again = await reopened;
  assert.notEqual(again, socket);
  again.take(); // the connect frame
  again.receive(frame(FrameType.CONNECT, "", '{"id":"c2"}'));
  assert.deepEqual(again.take(), [hex(frame(FrameType.JOIN, "a")), hex(frame(FrameType.JOIN, "b"))]);
  client.disconnect();
});

test("a join made offline is sent on connect and answered then, as the Python client's", async () => {
  const client = new StelarClient("ws://test/", { WebSocket: FakeSocket, reconnection: false });
  const joined = client.joinRoom("lobby");
  const ready = client.connect();
  const socket = await FakeSocket.next();
  socket.take(); // the connect frame
  socket.receive(frame(FrameType.CONNECT, "", '{"id":"c3"}'));
  await ready;
  assert.deepEqual(socket.take(), [hex(frame(FrameType.JOIN, "lobby"))]);
  socket.receive(frame(FrameType.JOIN, "lobby", '{"error":{"code":"max_rooms","message":"full"}}'));
  assert.equal(await joined, false);
  assert.deepEqual([...client.rooms], []);
  client.disconnect();
});

test("bad frames from the server are reported and the connection carries on", async () => {
  const { client, socket } = await connected();
  const errors = [];
  client.on("error", (error, context) => errors.push([context, error.code]));
  socket.receive(new Uint8Array([0x0e, 0, 0]));
  socket.receive(frame(FrameType.ACK_RESPONSE, "x", '{"ok":1}', 99));
  socket.receive(frame(FrameType.JSON, "x", "{"));
  assert.deepEqual(errors, [["receive", "invalid_frame"], ["receive", "unknown_ack"], ["receive", "invalid_json"]]);
  assert.equal(client.state, "connected");
  client.disconnect();
});

test("an error listener that throws does not loop", async () => {
  const { client, socket } = await connected();
  let calls = 0;
  const original = console.error;
  console.error = () => {};
  try {
    client.on("error", () => { calls += 1; throw new Error("listener bug"); });
    socket.receive(new Uint8Array([0x0e, 0, 0]));
  } finally {
    console.error = original;
  }
  assert.equal(calls, 1);
  client.disconnect();
});

test("unknown options and hooks are refused at once", () => {
  assert.throws(() => new StelarClient("ws://x/", { reconection: true }), /unknown option "reconection"/);
  assert.throws(() => new StelarClient("ws://x/", { hooks: { onMesage() {} } }), /unknown hook "onMesage"/);
});

test("history() asks $history and decodes the page; binary payloads come back as bytes", async () => {
  const { client, socket } = await connected();
  const page = client.history("feed", { since: 4, limit: 2 });
  assert.deepEqual(socket.take(), [hex(frame(FrameType.ACK_REQUEST, "$history", '{"room":"feed","limit":2,"since":4}', 0))]);
  const answer = '{"ok":{"position":{"epoch":"e","offset":6},"publications":[{"offset":5,"event":"n","data":4},{"offset":6,"event":"blob","binary":"AP8="}]}}';
  socket.receive(frame(FrameType.ACK_RESPONSE, "$history", answer, 0));
  const got = await page;
  assert.deepEqual(got.position, { epoch: "e", offset: 6 });
  assert.deepEqual(got.publications[0], { offset: 5, event: "n", data: 4, binary: false });
  assert.deepEqual([...got.publications[1].data], [0, 255]);
  client.disconnect();
});

test("a lossy room's notice is told as messages_lost and counted per room", async () => {
  const { client, socket } = await connected();
  const lost = [];
  client.on("messages_lost", (info) => lost.push(info));
  socket.receive(frame(FrameType.DROPPED, "ticker", '{"count":3,"policy":"conflate"}'));
  assert.deepEqual(lost, [{ room: "ticker", count: 3, policy: "conflate" }]);
  assert.deepEqual([...client.lostMessages], [["ticker", 3]]);
  client.disconnect();
});
