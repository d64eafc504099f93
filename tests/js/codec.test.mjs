// The JavaScript codec of stelar.js against the shared frame vectors (node --test tests/js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { AckError, ProtocolError, decodeFrame, decodePublication, encodeFrame, fullJitterDelay, loadJson, dumpJson } from "../../plugins/stelar-ws/stelar_ws/static/stelar.js";

const vectors = JSON.parse(readFileSync(new URL("../fixtures/frame_vectors.json", import.meta.url)));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const bytes = (text) => new Uint8Array(Buffer.from(text, "hex"));

for (const v of vectors.valid) {
  test(`encodes and decodes type ${v.type} ${JSON.stringify(v.event.slice(0, 10))}`, () => {
    assert.equal(hex(encodeFrame(v.type, v.event, bytes(v.payload), v.ack_id)), v.bytes);
    const frame = decodeFrame(bytes(v.bytes));
    assert.deepEqual([frame.type, frame.event, hex(frame.payload), frame.ackId], [v.type, v.event, v.payload, v.ack_id]);
  });
}

for (const v of vectors.invalid) {
  test(`refuses ${v.bytes || "empty"} with ${v.code}`, () => {
    assert.throws(() => decodeFrame(bytes(v.bytes)), (error) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, v.code);
      assert.ok(error.message.startsWith(v.reason_start), error.message);
      return true;
    });
  });
}

for (const v of vectors.traced.valid) {
  test(`encodes and decodes traced type ${v.type}`, () => {
    assert.equal(hex(encodeFrame(v.type, v.event, bytes(v.payload), v.ack_id, v.trace)), v.bytes);
    const frame = decodeFrame(bytes(v.bytes));
    assert.deepEqual(
      [frame.type, frame.event, hex(frame.payload), frame.ackId, Buffer.from(frame.trace).toString("latin1")],
      [v.type, v.event, v.payload, v.ack_id, v.trace],
    );
  });
}

for (const v of vectors.traced.invalid) {
  test(`refuses the traced ${v.bytes} with ${v.code}`, () => {
    assert.throws(() => decodeFrame(bytes(v.bytes)), (error) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, v.code);
      assert.ok(error.message.startsWith(v.reason_start), error.message);
      return true;
    });
  });
}

for (const v of vectors.publications.valid) {
  test(`reads the publication of ${v.room} at ${v.epoch}/${v.offset}`, () => {
    const publication = decodePublication(decodeFrame(bytes(v.bytes)));
    assert.deepEqual([publication.room, publication.epoch, publication.offset], [v.room, v.epoch, v.offset]);
    const inner = publication.frame;
    assert.equal(hex(encodeFrame(inner.type, inner.event, inner.payload, inner.ackId)), v.inner);
  });
}

for (const v of vectors.publications.invalid) {
  test(`refuses the publication ${v.bytes} with ${v.code}`, () => {
    assert.throws(() => decodePublication(decodeFrame(bytes(v.bytes))), (error) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, v.code);
      assert.ok(error.message.startsWith(v.reason_start), error.message);
      return true;
    });
  });
}

test("encoding refuses what no frame can carry", () => {
  assert.throws(() => encodeFrame(0, "x".repeat(70000)), /at most 65535/);
  assert.throws(() => encodeFrame(4, "ask"), /needs an ack id/);
  assert.throws(() => encodeFrame(4, "ask", new Uint8Array(0), 2 ** 32), /needs an ack id/);
  assert.throws(() => encodeFrame(0, "x", new Uint8Array(0), 1), /carries no ack id/);
  assert.throws(() => encodeFrame(2, "", new Uint8Array(0), null, "00-x"), /carries no trace context/);
  assert.throws(() => encodeFrame(0, "x", new Uint8Array(0), null, ""), /1\.\.255 bytes, got 0/);
  assert.throws(() => encodeFrame(0, "x", new Uint8Array(0), null, "x".repeat(256)), /got 256/);
  assert.throws(() => encodeFrame(0, "x", new Uint8Array(0), null, "é"), /ASCII/);
  assert.equal(decodeFrame(encodeFrame(0, "x")).trace, null);
});

test("JSON payloads: empty is null, bad ones name what is wrong", () => {
  assert.equal(loadJson(new Uint8Array(0)), null);
  assert.deepEqual(loadJson(dumpJson({ a: [1, "é"] })), { a: [1, "é"] });
  assert.throws(() => loadJson(bytes("7b")), (e) => e.code === "invalid_json" && /not valid JSON/.test(e.message));
  assert.throws(() => loadJson(bytes("c328")), (e) => e.code === "invalid_json" && /not valid UTF-8/.test(e.message));
  assert.throws(() => dumpJson(() => 1), TypeError);
});

test("backoff: full jitter under an exponential ceiling", () => {
  assert.equal(fullJitterDelay(1, 1000, 30000, () => 1), 1000);
  assert.equal(fullJitterDelay(4, 1000, 30000, () => 1), 8000);
  assert.equal(fullJitterDelay(10, 1000, 30000, () => 1), 30000);
  assert.equal(fullJitterDelay(3, 1000, 30000, () => 0.5), 2000);
  assert.ok(new AckError("x", "y").message === "x: y");
});
