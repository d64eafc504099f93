// stelar.js's sans-I/O ClientSession plays the scripted exchanges the Python ClientSession plays
// (tests/fixtures/client_exchanges.json; tests/test_protocol_client.py is the Python side).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { AckError, ClientSession, encodeFrame } from "../../plugins/stelar-ws/stelar_ws/static/stelar.js";

const exchanges = JSON.parse(readFileSync(new URL("../fixtures/client_exchanges.json", import.meta.url)));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (text) => new Uint8Array(Buffer.from(text, "hex"));
const utf8 = (text) => new TextEncoder().encode(text);
const WELCOME = encodeFrame(6, "", utf8('{"id":"c1","v":1,"heartbeat":30,"max_payload":64}'));

function frameBytes(spec) {
  if ("raw_hex" in spec) return fromHex(spec.raw_hex);
  const payload = "payload_hex" in spec ? fromHex(spec.payload_hex) : utf8(spec.payload);
  return encodeFrame(spec.type, spec.event, payload, spec.ack_id ?? null);
}

/** `{"hex": ...}` stands for bytes; anything else is JSON as is. */
const argument = (value) => (value && typeof value === "object" && Object.keys(value).join() === "hex" ? fromHex(value.hex) : value);
const error = (value) => (value ? { code: value.code, message: value.reason } : null);

/** An event in the fixture's shape. */
function normalized(event) {
  switch (event.type) {
    case "welcome": {
      const shape = { type: "welcome", id: event.id, v: event.v, heartbeat: event.heartbeat, max_payload: event.maxPayload };
      if (event.resumed) Object.assign(shape, { resumed: true, rooms: event.rooms });
      if (event.lost.length) shape.lost = event.lost;
      return shape;
    }
    case "event": {
      const shape = event.binary ? { type: "event", event: event.event, data_hex: hex(event.data) } : { type: "event", event: event.event, data: event.data };
      return event.room ? { ...shape, room: event.room, position: event.position } : shape;
    }
    case "request": return { type: "request", event: event.event, data: event.data, ack_id: event.ackId };
    case "response": return event.error
      ? { type: "response", ack_id: event.ackId, event: event.event, error: error(event.error) }
      : { type: "response", ack_id: event.ackId, event: event.event, value: event.value };
    case "room": {
      const shape = { type: "room", kind: event.kind, room: event.room, error: error(event.error) };
      if (event.position) shape.position = event.position;
      if (event.recovered === true) Object.assign(shape, { recovered: true, replayed: event.replayed });
      if (event.recovered === false) Object.assign(shape, { recovered: false, reason: event.reason });
      return shape;
    }
    case "ping": case "pong": return { type: event.type, payload_hex: hex(event.payload) };
    case "error": return { type: "error", code: event.code, message: event.message, body: event.body };
    case "disconnect": return { type: "disconnect", code: event.code, reason: event.reason };
    case "presence": return { type: "presence", room: event.room, count: event.count, joins: event.joins, leaves: event.leaves, updates: event.updates, snapshot: event.snapshot };
    case "dropped": return { type: "dropped", room: event.room, count: event.count, policy: event.policy };
    case "invalid": return { type: "invalid", code: event.error.code };
    default: throw new Error(`an event the fixture has no shape for: ${JSON.stringify(event)}`);
  }
}

const COMMANDS = {
  connect: (s, auth) => s.connect(auth),
  emit: (s, event, data) => s.emit(event, data),
  emit_binary: (s, event, data) => s.emitBinary(event, argument(data)),
  request: (s, event, data) => s.request(event, data),
  open_request: (s) => s.openRequest(),
  send_request: (s, ackId, event, payload) => s.sendRequest(ackId, event, utf8(payload)),
  forget_request: (s, ackId) => s.forgetRequest(ackId),
  answer: (s, event, ackId, value) => s.answer({ event, ackId }, value),
  answer_error: (s, event, ackId, code, message) => s.answerError({ event, ackId }, code, message),
  join: (s, room, since) => s.join(room, since),
  rejoin: (s, room) => s.rejoin(room),
  update_presence: (s, room, state) => s.updatePresence(room, state),
  ask_presence: (s, room) => s.askPresence(room),
  leave: (s, room) => s.leave(room),
  ping: (s, payload) => s.ping(argument(payload)),
  pong: (s, payload) => s.pong(argument(payload)),
  disconnect: (s, code, reason) => s.disconnect(code, reason),
  connection_lost: (s) => s.connectionLost(),
};

for (const script of exchanges.scripts) {
  test(script.name, () => {
    const options = script.options ?? {};
    const session = new ClientSession({ autoPong: options.auto_pong ?? true, maxInFlight: options.max_in_flight ?? 1024 });
    if (script.welcomed) {
      session.connect({ token: "t" });
      session.receiveFrame(WELCOME);
      session.dataToSend();
      session.eventsReceived();
    }
    script.steps.forEach((step, number) => {
      const where = `step ${number}: ${JSON.stringify(step)}`;
      if ("do" in step) {
        const run = () => COMMANDS[step.do](session, ...step.args);
        if ("raises" in step) {
          assert.throws(run, (e) => e instanceof AckError && e.code === step.raises, where);
          return;
        }
        const result = run();
        if ("returns" in step) assert.deepEqual(result, step.returns, where);
      } else if ("receive" in step) session.receiveFrame(frameBytes(step.receive));
      else if ("sent" in step) assert.deepEqual(session.dataToSend().map(hex), step.sent.map((f) => hex(frameBytes(f))), where);
      else if ("events" in step) assert.deepEqual(session.eventsReceived().map(normalized), step.events, where);
      else if ("state" in step) assert.equal(session.state, step.state, where);
      else if ("in_flight" in step) assert.equal(session.requestsInFlight, step.in_flight, where);
      else if ("positions" in step) assert.deepEqual(Object.fromEntries(session.positions), step.positions, where);
      else if ("duplicates" in step) assert.equal(session.duplicates, step.duplicates, where);
      else if ("presence" in step) assert.deepEqual(Object.fromEntries(session.presence), step.presence, where);
      else if ("lost" in step) assert.deepEqual(Object.fromEntries(session.lost), step.lost, where);
      else throw new Error(`unknown step ${where}`);
    });
  });
}

test("every command of the fixture is one the session has", () => {
  const used = new Set(exchanges.scripts.flatMap((s) => s.steps.filter((step) => "do" in step).map((step) => step.do)));
  assert.deepEqual([...used].sort(), Object.keys(COMMANDS).sort());
});

test("an answer that is not JSON becomes an error answer, never an exception", () => {
  const session = new ClientSession();
  session.answer({ event: "whoami", ackId: 9 }, 10n);
  const [sent] = session.dataToSend();
  assert.equal(hex(sent.subarray(0, 13)), hex(encodeFrame(5, "whoami", new Uint8Array(0), 9))); // the header
  assert.match(Buffer.from(sent.subarray(13)).toString(), /^\{"error":\{"code":"handler_error","message":"answer is not JSON-serializable/);
});

test("ack ids wrap at 2**32 and skip those in flight", () => {
  const session = new ClientSession({ maxInFlight: 2 });
  session._nextAckId = 0xffffffff; // as after 2**32 - 1 requests
  assert.equal(session.request("a"), 0xffffffff);
  assert.equal(session.request("b"), 0);
  session.receiveFrame(encodeFrame(5, "a", utf8('{"ok":null}'), 0xffffffff));
  session.eventsReceived();
  assert.equal(session.request("c"), 1); // 0 is still in flight
});
