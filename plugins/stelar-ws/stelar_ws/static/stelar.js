// stelar.js: the stelar.v1 client for browsers and Node.js 20+. One dependency-free ES module,
// built like the Python client: the codec, a sans-I/O ClientSession (bytes in, events out,
// commands produce frames; no sockets, no timers) and StelarClient, the WebSocket glue around it
// (reconnection, the offline queue, promises, listeners). The session plays the same scripted
// exchanges as the Python ClientSession (tests/fixtures/client_exchanges.json).

export const PROTOCOL = "stelar.v1";

export const FrameType = Object.freeze({
  JSON: 0, BINARY: 1, PING: 2, PONG: 3, ACK_REQUEST: 4, ACK_RESPONSE: 5,
  CONNECT: 6, DISCONNECT: 7, JOIN: 8, LEAVE: 9, ERROR: 10, PUBLICATION: 11, DROPPED: 12, PRESENCE: 13,
});

const HEADER_SIZE = 3;
const MAX_EVENT_LENGTH = 0xffff;
const MAX_ACK_ID = 0xffffffff;
const WITH_ACK_ID = new Set([FrameType.ACK_REQUEST, FrameType.ACK_RESPONSE]);
// The type byte's flag for an event or request that carries a trace context (a W3C traceparent,
// after the event and the ack id, with a one-byte length).
export const TRACED = 0x80;
const MAX_TRACE_LENGTH = 0xff;
const TRACEABLE = new Set([FrameType.JSON, FrameType.BINARY, FrameType.ACK_REQUEST]);
const TYPE_NAMES = Object.fromEntries(Object.entries(FrameType).map(([name, value]) => [value, name]));
const HEARTBEAT_FACTOR = 2.5; // silent for 2.5 announced intervals: the connection is dead
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

// ------------------------------------------------------------------------------- errors

export class StelarError extends Error {
  constructor(message) { super(message); this.name = this.constructor.name; }
}
/** A frame that breaks the protocol; `code` is from docs/protocol.md's table. */
export class ProtocolError extends StelarError {
  constructor(code, message) { super(message); this.code = code; }
}
/** The other side answered a request with an error. */
export class AckError extends StelarError {
  constructor(code, message) { super(`${code}: ${message}`); this.code = code; this.reason = message; }
}
export class AckTimeout extends StelarError {}
export class NotConnected extends StelarError {}

// ------------------------------------------------------------------------------- codec

/** One frame: type (1 byte), event length (2 bytes, big-endian), event (UTF-8), the ack id
 * (4 bytes, big-endian) for ACK frames, the trace context `trace` if given (events and requests
 * only: length (1 byte) then ASCII, and the type's TRACED bit set), then the payload. */
export function encodeFrame(type, event = "", payload = new Uint8Array(0), ackId = null, trace = null) {
  const eventBytes = encoder.encode(event);
  if (eventBytes.length > MAX_EVENT_LENGTH) {
    throw new RangeError(`event name is ${eventBytes.length} bytes, at most ${MAX_EVENT_LENGTH}`);
  }
  const withAck = WITH_ACK_ID.has(type);
  if (withAck && (ackId === null || !Number.isInteger(ackId) || ackId < 0 || ackId > MAX_ACK_ID)) {
    throw new RangeError(`frame type ${type} needs an ack id in 0..${MAX_ACK_ID}`);
  }
  if (!withAck && ackId !== null) throw new RangeError(`frame type ${type} carries no ack id`);
  let traceBytes = null;
  if (trace !== null) {
    if (!TRACEABLE.has(type)) throw new RangeError(`frame type ${type} carries no trace context`);
    // eslint-disable-next-line no-control-regex
    if (!/^[\x00-\x7f]*$/.test(trace)) throw new RangeError("a trace context is ASCII (a W3C traceparent)");
    traceBytes = encoder.encode(trace);
    if (traceBytes.length < 1 || traceBytes.length > MAX_TRACE_LENGTH) {
      throw new RangeError(`a trace context is 1..${MAX_TRACE_LENGTH} bytes, got ${traceBytes.length}`);
    }
  }
  const body = toBytes(payload);
  const traceSize = traceBytes === null ? 0 : 1 + traceBytes.length;
  const frame = new Uint8Array(HEADER_SIZE + eventBytes.length + (withAck ? 4 : 0) + traceSize + body.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, traceBytes === null ? type : type | TRACED);
  view.setUint16(1, eventBytes.length);
  frame.set(eventBytes, HEADER_SIZE);
  let offset = HEADER_SIZE + eventBytes.length;
  if (withAck) { view.setUint32(offset, ackId); offset += 4; }
  if (traceBytes !== null) {
    view.setUint8(offset, traceBytes.length);
    frame.set(traceBytes, offset + 1);
    offset += traceSize;
  }
  frame.set(body, offset);
  return frame;
}

/** Decode one whole frame; throws ProtocolError (invalid_frame / invalid_event) naming what is
 * wrong, with the Python codec's wording. */
export function decodeFrame(data) {
  const bytes = toBytes(data);
  const size = bytes.length;
  if (size < HEADER_SIZE) {
    throw new ProtocolError("invalid_frame", `frame is ${size} bytes, shorter than the ${HEADER_SIZE}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const typeByte = view.getUint8(0);
  const traced = typeByte >= TRACED && typeByte - TRACED <= FrameType.PRESENCE;
  const type = traced ? typeByte - TRACED : typeByte;
  if (type > FrameType.PRESENCE) throw new ProtocolError("invalid_frame", `unknown frame type ${typeByte}`);
  if (traced && !TRACEABLE.has(type)) {
    throw new ProtocolError("invalid_frame", `frame type ${TYPE_NAMES[type]} carries no trace context`);
  }
  const eventLength = view.getUint16(1);
  const eventEnd = HEADER_SIZE + eventLength;
  if (eventEnd > size) {
    throw new ProtocolError("invalid_frame", `event length ${eventLength} runs past the end of a ${size}-byte frame`);
  }
  let event;
  try {
    event = strictDecoder.decode(bytes.subarray(HEADER_SIZE, eventEnd));
  } catch (error) {
    throw new ProtocolError("invalid_event", `event name is not valid UTF-8: ${error.message}`);
  }
  let at = eventEnd;
  let ackId = null;
  if (WITH_ACK_ID.has(type)) {
    if (eventEnd + 4 > size) {
      throw new ProtocolError("invalid_frame", `${TYPE_NAMES[type]} frame ends before its 4-byte ack id`);
    }
    ackId = view.getUint32(eventEnd);
    at += 4;
  }
  let trace = null;
  if (traced) {
    if (at >= size) throw new ProtocolError("invalid_frame", "traced frame ends before its trace context length");
    const traceEnd = at + 1 + bytes[at];
    if (traceEnd > size) {
      throw new ProtocolError("invalid_frame", `trace context length ${bytes[at]} runs past the end of a ${size}-byte frame`);
    }
    trace = bytes.slice(at + 1, traceEnd);
    at = traceEnd;
  }
  return { type, event, ackId, payload: bytes.slice(at), trace };
}

/** Read a publication (type 11): `{room, epoch, offset, frame}`, the event frame inside decoded.
 * Layout: offset (8 bytes, big-endian) | epoch length (1) | epoch (ASCII) | inner frame. */
export function decodePublication(frame) {
  const payload = frame.payload;
  if (payload.length < 9) {
    throw new ProtocolError("invalid_frame", "publication ends before its offset and epoch length");
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const offset = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
  const start = 9 + view.getUint8(8);
  if (start > payload.length) throw new ProtocolError("invalid_frame", "publication ends inside its epoch");
  const epochBytes = payload.subarray(9, start);
  if (epochBytes.some((byte) => byte > 0x7f)) {
    throw new ProtocolError("invalid_frame", "publication epoch is not ASCII");
  }
  const inner = decodeFrame(payload.subarray(start));
  if (inner.type !== FrameType.JSON && inner.type !== FrameType.BINARY) {
    const name = Object.keys(FrameType).find((key) => FrameType[key] === inner.type);
    throw new ProtocolError("invalid_frame", `a publication carries an event frame, not ${name}`);
  }
  return { room: frame.event, epoch: String.fromCharCode(...epochBytes), offset, frame: inner };
}

export function dumpJson(data) {
  const text = JSON.stringify(data === undefined ? null : data);
  if (text === undefined) throw new TypeError("value cannot be carried as JSON");
  return encoder.encode(text);
}

export function loadJson(payload) {
  if (payload.length === 0) return null;
  let text;
  try { text = strictDecoder.decode(payload); } catch (error) {
    throw new ProtocolError("invalid_json", `payload is not valid UTF-8: ${error.message}`);
  }
  try { return JSON.parse(text); } catch (error) {
    throw new ProtocolError("invalid_json", `payload is not valid JSON: ${error.message}`);
  }
}

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected bytes (Uint8Array, ArrayBuffer or a typed array)");
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** `{"ok": value}` -> [value, null]; `{"error": {code, message}}` (or anything else) -> [null, AckError]. */
function readAnswer(answer) {
  if (isObject(answer) && "ok" in answer && !("error" in answer)) return [answer.ok, null];
  if (isObject(answer) && isObject(answer.error)) {
    return [null, new AckError(String(answer.error.code ?? "handler_error"), String(answer.error.message ?? ""))];
  }
  return [null, new AckError("invalid_frame", "ACK answer is neither {ok} nor {error}")];
}

// ------------------------------------------------------------------------------- the session

/** Whether `position` is past `seen`: a later offset, or another epoch (a new stream). */
const advances = (seen, position) => !seen || seen.epoch !== position.epoch || position.offset > seen.offset;

/** The `position` of a join answer, or null when absent or malformed. */
function readPosition(value) {
  if (!isObject(value) || typeof value.epoch !== "string" || !/^[\x20-\x7e]{1,64}$/.test(value.epoch)) return null;
  if (!Number.isSafeInteger(value.offset) || value.offset < 0) return null;
  return { epoch: value.epoch, offset: value.offset };
}

const DEFAULT_MAX_IN_FLIGHT = 1024;
const DEFAULT_MAX_UNCONFIRMED = 1024;

/**
 * One connection's protocol state from the client's side, sans-I/O. The glue feeds it whole
 * frames (`receiveFrame`), reads `eventsReceived()` and sends what `dataToSend()` returns.
 * Events are plain objects: {type: "welcome", id, v, heartbeat, maxPayload, body},
 * {type: "event", event, data, binary}, {type: "request", event, data, ackId},
 * {type: "response", ackId, event, value, error}, {type: "room", kind: "join" | "leave", room, error},
 * {type: "ping" | "pong", payload}, {type: "error", code, message, body},
 * {type: "disconnect", code, reason}, {type: "dropped", room, count, policy}, {type: "invalid", error}.
 */
export class ClientSession {
  constructor({ autoPong = true, maxInFlight = DEFAULT_MAX_IN_FLIGHT, maxUnconfirmed = DEFAULT_MAX_UNCONFIRMED } = {}) {
    this.autoPong = autoPong;
    this.maxUnconfirmed = maxUnconfirmed;
    this.maxInFlight = maxInFlight;
    this.state = "connecting";
    this.id = null;
    this._inFlight = new Set(); // ack ids taken and not yet answered or forgotten
    this._sent = new Set(); // those of them sent on the current connection
    this._nextAckId = 0;
    this._events = [];
    this._out = [];
    // The last position seen in each room with history ({epoch, offset}), kept across
    // connections so that a rejoin asks for exactly what was missed.
    this.positions = new Map();
    this.duplicates = 0; // publications received twice (at or before a position seen) and dropped
    this.lost = new Map(); // messages lossy send queues dropped, by room
    // Presence rooms: the members by key with their state, the count, the last diff number.
    this.presence = new Map();
    this.presenceCounts = new Map();
    this._presenceSeq = new Map();
    // Resumption: the secret the server gave for this session, the events and requests sent in
    // it (numbered 1, 2, ...), and the last ones of them, sent again when a resumed session's
    // server says it had not received them.
    this.resumeToken = null;
    this.sentCount = 0;
    this.serverTraces = false; // the welcome said the server reads trace context
    this._unconfirmed = [];
  }

  // ----------------------------------------------------------------------------- output

  /** The frames to send, in order, since the last call. */
  dataToSend() { const out = this._out; this._out = []; return out; }

  _send(type, event = "", payload = new Uint8Array(0), ackId = null) {
    this._out.push(encodeFrame(type, event, payload, ackId));
  }

  /** An event or request: numbered and kept, so that a resumed session can send again what the
   * server did not receive. Its trace context goes only to a server whose welcome said it traces
   * (an older server would not read it). */
  _sendMessage(type, event, payload, ackId = null, trace = null) {
    const frame = encodeFrame(type, event, payload, ackId, this.serverTraces ? trace : null);
    this._out.push(frame);
    this.sentCount += 1;
    this._unconfirmed.push([this.sentCount, frame]);
    if (this._unconfirmed.length > this.maxUnconfirmed) this._unconfirmed.shift();
  }

  /** The handshake's first frame, with the session to resume when the server offered one; a
   * session serves one connection after another, each starting here. */
  connect(auth = {}) {
    this.state = "connecting";
    const body = { auth: auth ?? {} };
    if (this.resumeToken !== null && this.id !== null) {
      body.resume = { id: this.id, token: this.resumeToken, waiting: [...this._sent].sort((a, b) => a - b) };
    }
    this._send(FrameType.CONNECT, "", dumpJson(body));
  }
  /** `trace`: a W3C traceparent to attach (sent only to a server that traces). */
  emit(event, data = null, trace = null) { this._sendMessage(FrameType.JSON, event, dumpJson(data), null, trace); }
  emitBinary(event, data, trace = null) { this._sendMessage(FrameType.BINARY, event, toBytes(data).slice(), null, trace); }
  /** An already encoded payload (the offline queue keeps payloads as bytes). */
  emitPayload(type, event, payload, trace = null) { this._sendMessage(type, event, payload, null, trace); }

  /** Ask the server; returns the ack id its response will carry. */
  request(event, data = null, trace = null) {
    const ackId = this.openRequest();
    this.sendRequest(ackId, event, dumpJson(data), trace);
    return ackId;
  }

  /** Take an ack id without sending: ids count up and wrap at 2**32, skipping those in flight.
   * Throws AckError(too_many_pending_acks) past maxInFlight. */
  openRequest() {
    if (this._inFlight.size >= this.maxInFlight) {
      throw new AckError("too_many_pending_acks", `${this.maxInFlight} requests already wait for an answer`);
    }
    let ackId = this._nextAckId;
    while (this._inFlight.has(ackId)) ackId = (ackId + 1) % (MAX_ACK_ID + 1);
    this._nextAckId = (ackId + 1) % (MAX_ACK_ID + 1);
    this._inFlight.add(ackId);
    return ackId;
  }

  sendRequest(ackId, event, payload, trace = null) {
    this._sendMessage(FrameType.ACK_REQUEST, event, payload, ackId, trace);
    this._sent.add(ackId);
  }
  /** The glue gave up on a request (timeout, lost connection): a late answer is invalid. */
  forgetRequest(ackId) { this._inFlight.delete(ackId); this._sent.delete(ackId); }
  get requestsInFlight() { return this._inFlight.size; }

  /** Answer the server's request with {"ok": value} (an error answer when value is not JSON). */
  answer(request, value) {
    let payload;
    try { payload = dumpJson({ ok: value }); } catch (error) {
      this.answerError(request, "handler_error", `answer is not JSON-serializable: ${error.message}`);
      return;
    }
    this._send(FrameType.ACK_RESPONSE, request.event, payload, request.ackId);
  }

  answerError(request, code, message) {
    this._send(FrameType.ACK_RESPONSE, request.event, dumpJson({ error: { code, message } }), request.ackId);
  }

  /** Join `room`; with `since` ({epoch, offset}), ask for the publications after it. */
  join(room, since = null) {
    const payload = since ? dumpJson({ since: { epoch: since.epoch, offset: since.offset } }) : new Uint8Array(0);
    this._send(FrameType.JOIN, room, payload);
  }
  /** Set this client's state in presence room `room`. */
  updatePresence(room, state) { this._send(FrameType.PRESENCE, room, dumpJson({ state })); }
  /** Ask for presence room `room`'s members again (done by itself on a missed diff). */
  askPresence(room) { this._send(FrameType.PRESENCE, room, dumpJson({ snapshot: true })); }
  /** Join again after a reconnection, from the last position seen when there is one. */
  rejoin(room) { this.join(room, this.positions.get(room) ?? null); }
  leave(room) { this._send(FrameType.LEAVE, room); }
  ping(payload = new Uint8Array(0)) { this._send(FrameType.PING, "", payload); }
  pong(payload = new Uint8Array(0)) { this._send(FrameType.PONG, "", payload); }

  /** Say goodbye (the session ends: nothing is resumed); returns the ack ids of the requests
   * that will get no answer. */
  disconnect(code, reason = "") {
    this._send(FrameType.DISCONNECT, "", dumpJson({ code, reason }));
    this.resumeToken = null;
    return this.connectionLost();
  }

  /** The connection is gone: the ack ids of the requests sent on it that get no answer: all
   * of them, unless the session can be resumed (then the next welcome says); requests taken but
   * not sent yet (queued offline) keep theirs. */
  connectionLost() {
    this.state = "closed";
    return this.resumeToken !== null ? [] : this._forgetSent();
  }

  _forgetSent() {
    const lost = [...this._sent].sort((a, b) => a - b);
    for (const ackId of lost) this._inFlight.delete(ackId);
    this._sent.clear();
    this._unconfirmed = [];
    this.sentCount = 0;
    return lost;
  }

  // ----------------------------------------------------------------------------- input

  /** What the frames received since the last call meant, in order. */
  eventsReceived() { const events = this._events; this._events = []; return events; }

  /** One whole frame from the server; a frame that breaks the protocol becomes an "invalid" event. */
  receiveFrame(data) {
    let event;
    try {
      event = this._interpret(decodeFrame(data));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      event = { type: "invalid", error };
    }
    if (event !== null) this._events.push(event);
  }

  _interpret(frame) {
    switch (frame.type) {
      case FrameType.JSON: return { type: "event", event: frame.event, data: loadJson(frame.payload), binary: false };
      case FrameType.BINARY: return { type: "event", event: frame.event, data: frame.payload, binary: true };
      case FrameType.ACK_RESPONSE: return this._response(frame);
      case FrameType.ACK_REQUEST: return { type: "request", event: frame.event, data: loadJson(frame.payload), ackId: frame.ackId };
      case FrameType.JOIN: case FrameType.LEAVE: return this._roomAnswer(frame);
      case FrameType.PUBLICATION: return this._publication(frame);
      case FrameType.PRESENCE: return this._presence(frame);
      case FrameType.DROPPED: {
        const body = loadJson(frame.payload);
        const count = isObject(body) ? body.count : null;
        if (!Number.isInteger(count) || count < 1) throw new ProtocolError("invalid_frame", 'a dropped notice is {"count": n >= 1, ...}');
        this.lost.set(frame.event, (this.lost.get(frame.event) ?? 0) + count);
        return { type: "dropped", room: frame.event, count, policy: typeof body.policy === "string" ? body.policy : "" };
      }
      case FrameType.PING:
        if (this.autoPong) this.pong(frame.payload);
        return { type: "ping", payload: frame.payload };
      case FrameType.PONG: return { type: "pong", payload: frame.payload };
      case FrameType.CONNECT: return this._welcome(frame);
      case FrameType.ERROR: {
        const body = loadJson(frame.payload);
        return { type: "error", code: frame.event, message: isObject(body) ? String(body.message ?? "") : "", body };
      }
      default: return this._disconnect(frame);
    }
  }

  /** A room's publication, or null when it was seen already (a replay overlapping what arrived
   * live): positions only move forward within an epoch. */
  _publication(frame) {
    const { room, epoch, offset, frame: inner } = decodePublication(frame);
    const position = { epoch, offset };
    if (!advances(this.positions.get(room), position)) { this.duplicates += 1; return null; }
    this.positions.set(room, position);
    const binary = inner.type === FrameType.BINARY;
    return { type: "event", event: inner.event, data: binary ? inner.payload : loadJson(inner.payload), binary, room, position };
  }

  /** Apply a snapshot, or the next diff; a diff after a gap is not applied: a snapshot is asked
   * for instead (and no event is made until it comes). */
  _presence(frame) {
    const body = loadJson(frame.payload);
    const room = frame.event;
    if (!isObject(body) || !Number.isInteger(body.seq) || !Number.isInteger(body.count)) {
      throw new ProtocolError("invalid_frame", 'a presence frame is {"seq": n, "count": n, ...}');
    }
    const members = this.presence.get(room) ?? this.presence.set(room, {}).get(room);
    if (body.snapshot === true) {
      for (const key of Object.keys(members)) delete members[key];
      Object.assign(members, isObject(body.members) ? body.members : {});
      this._presenceSeq.set(room, body.seq);
      this.presenceCounts.set(room, body.count);
      return { type: "presence", room, count: body.count, joins: { ...members }, leaves: [], updates: {}, snapshot: true };
    }
    if (this._presenceSeq.get(room) !== body.seq - 1) { this.askPresence(room); return null; }
    const joins = isObject(body.joins) ? body.joins : {};
    const updates = isObject(body.updates) ? body.updates : {};
    const leaves = Array.isArray(body.leaves) ? body.leaves : [];
    Object.assign(members, joins, updates);
    for (const key of leaves) delete members[key];
    this._presenceSeq.set(room, body.seq);
    this.presenceCounts.set(room, body.count);
    return { type: "presence", room, count: body.count, joins: { ...joins }, leaves: [...leaves], updates: { ...updates }, snapshot: false };
  }

  _roomAnswer(frame) {
    const body = loadJson(frame.payload);
    const error = readAnswer(body)[1];
    const room = frame.event;
    if (frame.type === FrameType.LEAVE) {
      if (!error) {
        this.positions.delete(room);
        this.presence.delete(room);
        this.presenceCounts.delete(room);
        this._presenceSeq.delete(room);
      }
      return { type: "room", kind: "leave", room, error };
    }
    const event = { type: "room", kind: "join", room, error };
    if (error || !isObject(body)) return event;
    const position = readPosition(body.position);
    if (position) {
      event.position = position;
      if (advances(this.positions.get(room), position)) this.positions.set(room, position);
    }
    if (typeof body.recovered === "boolean") {
      event.recovered = body.recovered;
      if (body.recovered) event.replayed = Number.isInteger(body.replayed) ? body.replayed : 0;
      else event.reason = typeof body.reason === "string" ? body.reason : null;
    }
    return event;
  }

  _response(frame) {
    if (!this._inFlight.has(frame.ackId)) throw new ProtocolError("unknown_ack", `no request is waiting for ack id ${frame.ackId}`);
    this._inFlight.delete(frame.ackId);
    this._sent.delete(frame.ackId);
    const [value, error] = readAnswer(loadJson(frame.payload));
    return { type: "response", ackId: frame.ackId, event: frame.event, value, error };
  }

  _welcome(frame) {
    if (this.state !== "connecting") throw new ProtocolError("invalid_frame", "a second welcome");
    const body = loadJson(frame.payload);
    if (!isObject(body) || typeof body.id !== "string") throw new ProtocolError("invalid_frame", 'the welcome must be {"id": ..., ...}');
    this.state = "open";
    let resumed = body.resumed === true && body.id === this.id && Number.isInteger(body.received);
    let rooms = [];
    let lost = [];
    if (resumed) {
      rooms = Array.isArray(body.rooms) ? body.rooms.filter((room) => typeof room === "string") : [];
      // What the server had not received goes again, in order, before anything new.
      for (const [number, unconfirmed] of this._unconfirmed) if (number > body.received) this._out.push(unconfirmed);
    } else {
      resumed = false;
      lost = this._forgetSent();
    }
    this.id = body.id;
    this.serverTraces = body.trace === true;
    const token = isObject(body.resume) ? body.resume.token : null;
    this.resumeToken = typeof token === "string" ? token : null;
    return {
      type: "welcome",
      id: body.id,
      v: Number.isInteger(body.v) ? body.v : null,
      heartbeat: typeof body.heartbeat === "number" && body.heartbeat > 0 ? body.heartbeat : null,
      maxPayload: Number.isInteger(body.max_payload) ? body.max_payload : null,
      body,
      resumed,
      rooms,
      lost,
    };
  }

  _disconnect(frame) {
    const body = loadJson(frame.payload);
    const code = isObject(body) && Number.isInteger(body.code) ? body.code : 1006;
    this.state = "closed"; // requests in flight are lost when the connection ends
    return { type: "disconnect", code, reason: isObject(body) ? String(body.reason ?? "") : "" };
  }
}

// ------------------------------------------------------------------------------- the client

export const ClientState = Object.freeze({
  DISCONNECTED: "disconnected", CONNECTING: "connecting", CONNECTED: "connected", RECONNECTING: "reconnecting",
});

const DEFAULTS = Object.freeze({
  auth: {},
  protocols: [PROTOCOL],
  reconnection: true,
  reconnectionAttempts: 10, // null: forever
  reconnectionDelay: 1000, // ms, the first backoff ceiling
  maxReconnectionDelay: 30000, // ms
  customReconnectDelay: null, // (attempt, baseMs, maxMs) => ms
  connectTimeout: 10000, // ms
  ackTimeout: 5000, // ms
  heartbeatTimeout: null, // ms; null: 2.5 x the interval the server announces
  messageQueueSize: 100, // emits and requests kept while offline; the oldest is dropped past it
  maxPendingRequests: 1024,
  // () => a W3C traceparent (or null) to attach to each emit and request, e.g. from
  // OpenTelemetry JS: sent only to servers that trace (docs/observability.md).
  traceContext: null,
  hooks: {}, // onBeforeEmit, onMessage, onStateChange, onReconnectDelay, onMessageQueued, onQueueDrained, onError
  WebSocket: null, // a WebSocket class (the `ws` package in Node.js without a global one)
  random: Math.random,
});
const HOOKS = ["onBeforeEmit", "onMessage", "onStateChange", "onReconnectDelay", "onMessageQueued", "onQueueDrained", "onError"];

/** Exponential backoff with full jitter: a delay drawn from [0, min(max, base * 2^(attempt-1))]. */
export function fullJitterDelay(attempt, base, max, random = Math.random) {
  return random() * Math.min(max, base * 2 ** (attempt - 1));
}

export class StelarClient {
  constructor(url, options = {}) {
    for (const name of Object.keys(options)) {
      if (!(name in DEFAULTS)) throw new TypeError(`unknown option ${JSON.stringify(name)}; known: ${Object.keys(DEFAULTS).join(", ")}`);
    }
    for (const name of Object.keys(options.hooks ?? {})) {
      if (!HOOKS.includes(name)) throw new TypeError(`unknown hook ${JSON.stringify(name)}; known: ${HOOKS.join(", ")}`);
    }
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.id = null;
    this.state = ClientState.DISCONNECTED;
    this.lastError = null;
    this.maxPayload = null; // announced by the server in its welcome
    this.resumed = false; // whether this connection resumed the previous one's session
    this.metrics = { messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0, reconnects: 0, droppedMessages: 0 };
    // The protocol (frames, ack ids, pongs) is the session's; this class adds the connection's life.
    this._session = new ClientSession({ maxInFlight: this.options.maxPendingRequests });
    this._listeners = new Map();
    this._anyListeners = [];
    this._ackHandlers = new Map();
    this._rooms = new Set(); // joined; rejoined after a reconnect
    this._roomWaiters = new Map(); // "join:room" -> [resolve, ...]
    this._requests = new Map(); // ack id -> {resolve, reject, timer}
    this._queue = [];
    this._socket = null;
    this._closing = false;
    this._attempt = 0;
    this._watchdog = null;
    this._lastReceived = 0;
    this._heartbeatTimeout = null;
    this._connectWaiters = [];
    this._retryTimer = null;
    this._handshakeTimer = null;
    this._welcomed = false;
    this._pendingRefusal = null; // the server's refusal of this handshake: no retry
  }

  // ----------------------------------------------------------------------------- listeners

  on(event, listener) { (this._listeners.get(event) ?? this._listeners.set(event, []).get(event)).push(listener); return this; }
  once(event, listener) {
    const wrapper = (...args) => { this.off(event, wrapper); listener(...args); };
    wrapper.listener = listener;
    return this.on(event, wrapper);
  }
  off(event, listener) {
    if (listener === undefined) { this._listeners.delete(event); return this; }
    const list = (this._listeners.get(event) ?? []).filter((l) => l !== listener && l.listener !== listener);
    if (list.length) this._listeners.set(event, list); else this._listeners.delete(event);
    return this;
  }
  onAny(listener) { this._anyListeners.push(listener); return this; }
  offAny(listener) { this._anyListeners = listener ? this._anyListeners.filter((l) => l !== listener) : []; return this; }
  removeAllListeners(event) { if (event === undefined) { this._listeners.clear(); this._anyListeners = []; } else this._listeners.delete(event); return this; }
  /** Answer the server's requests named `name`: the (async) return value is the answer; a throw an error answer. */
  onAck(name, handler) { this._ackHandlers.set(name, handler); return this; }

  _emitLocal(event, ...args) {
    for (const listener of [...(this._listeners.get(event) ?? [])]) {
      try { listener(...args); } catch (error) {
        // An "error" listener that throws is not told of its own error (that would loop).
        if (event === "error") console.error(error); else this._recordError(error, "listener");
      }
    }
  }

  _hook(name, ...args) {
    const hook = this.options.hooks[name];
    if (!hook) return undefined;
    try { return hook(...args); } catch (error) { if (name !== "onError") this._recordError(error, "hook"); return undefined; }
  }

  _recordError(error, context) {
    this.lastError = error;
    this._hook("onError", error, context);
    if (this._listeners.has("error")) this._emitLocal("error", error, context);
  }

  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this._hook("onStateChange", previous, state);
  }

  get connected() { return this.state === ClientState.CONNECTED; }
  get queueSize() { return this._queue.length; }
  get rooms() { return new Set(this._rooms); }
  /** The members of presence room `room` by presence key, with their state (kept current by the
   * server's diffs: the "presence" event). */
  presence(room) { return { ...(this._session.presence.get(room) ?? {}) }; }
  /** How many members presence room `room` has (also past its list limit). */
  presenceCount(room) { return this._session.presenceCounts.get(room) ?? 0; }
  /** Set this client's state in presence room `room`; throws NotConnected while offline. */
  updatePresence(room, state) {
    if (this.state !== ClientState.CONNECTED) throw new NotConnected("presence state is sent only while connected");
    this._session.updatePresence(room, state);
    this._flush();
  }
  /** Messages a room's lossy send queue dropped for this client, by room (also told by "messages_lost"). */
  get lostMessages() { return new Map(this._session.lost); }
  /** The last position seen in each joined room that keeps history: Map room -> {epoch, offset}. */
  get positions() { return new Map(this._session.positions); }

  // ----------------------------------------------------------------------------- lifecycle

  /** Resolves once the server accepted the handshake; rejects (NotConnected) when it refused
   * or could not be reached and reconnection gave up. */
  connect() {
    if (this.state === ClientState.CONNECTED) return Promise.resolve();
    const promise = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (this.state === ClientState.DISCONNECTED) {
      this._closing = false;
      this._attempt = 0;
      this._open();
    }
    return promise;
  }

  /** Close and stop reconnecting; requests in flight reject with NotConnected, the queue is dropped. */
  disconnect() {
    this._closing = true;
    clearTimeout(this._retryTimer);
    clearTimeout(this._handshakeTimer);
    this._stopWatchdog();
    if (this._socket) {
      const socket = this._socket;
      this._session.disconnect(1000, "client disconnected");
      if (socket.readyState === 1) this._flush(false); else this._session.dataToSend();
      this._detach();
      socket.close(1000, "client disconnected");
      this._lost(1000, "client disconnected");
    }
    this._failRequests([...this._requests.keys()], "client disconnected");
    this._queue = [];
    this._settleRooms(false);
    this._setState(ClientState.DISCONNECTED);
    this._settleConnect(new NotConnected("client disconnected"));
  }

  _open() {
    this._setState(this._attempt === 0 ? ClientState.CONNECTING : ClientState.RECONNECTING);
    const WebSocketClass = this.options.WebSocket ?? globalThis.WebSocket;
    if (!WebSocketClass) {
      this._giveUp(new NotConnected("no WebSocket: pass {WebSocket} (the ws package) on Node.js without a global one"));
      return;
    }
    let socket;
    try {
      socket = new WebSocketClass(this.url, this.options.protocols);
    } catch (error) {
      this._recordError(error, "connect");
      this._retry(`could not open ${this.url}: ${error.message}`);
      return;
    }
    socket.binaryType = "arraybuffer";
    this._socket = socket;
    this._welcomed = false;
    this._pendingRefusal = null;
    clearTimeout(this._handshakeTimer);
    this._handshakeTimer = setTimeout(() => {
      if (this._socket === socket && !this._welcomed) socket.close(4000, "handshake timeout");
    }, this.options.connectTimeout);
    socket.onopen = () => {
      this._session.connect(this.options.auth);
      this._flush(false); // the handshake: not counted in messagesSent
    };
    socket.onmessage = (message) => {
      if (this._socket !== socket) return;
      if (typeof message.data === "string") { this._recordError(new ProtocolError("invalid_frame", "a text message: stelar.v1 frames are binary"), "receive"); return; }
      this._frameReceived(new Uint8Array(message.data));
    };
    socket.onerror = () => { this.lastError = new NotConnected(`WebSocket error on ${this.url}`); };
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      clearTimeout(this._handshakeTimer);
      this._detach();
      this._lost(event.code || 1006, event.reason || (this._welcomed ? "connection lost" : "could not connect"));
    };
  }

  _detach() {
    const socket = this._socket;
    if (socket) { socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null; }
    this._socket = null;
  }

  _lost(code, reason) {
    const wasConnected = this._welcomed;
    this._welcomed = false;
    this._stopWatchdog();
    this._failRequests(this._session.connectionLost(), `connection lost before the answer (${code} ${reason})`);
    // Joins and leaves sent on this connection get no answer now; those made offline since wait.
    if (wasConnected) this._settleRooms(false);
    if (wasConnected) this._emitLocal("disconnect", { code, reason });
    if (this._closing) return;
    if (!wasConnected && this._pendingRefusal) {
      this._giveUp(this._pendingRefusal); // refused by the server (middleware): no retry
      return;
    }
    this._retry(`${code} ${reason}`);
  }

  _retry(reason) {
    if (!this.options.reconnection) { this._giveUp(new NotConnected(`could not connect to ${this.url}: ${reason}`)); return; }
    this._attempt += 1;
    const limit = this.options.reconnectionAttempts;
    if (limit !== null && this._attempt > limit) {
      this._emitLocal("reconnect_failed");
      this._giveUp(new NotConnected(`could not connect to ${this.url} after ${limit} attempts: ${reason}`));
      return;
    }
    this._setState(ClientState.RECONNECTING);
    this.metrics.reconnects += 1;
    this._emitLocal("reconnecting", this._attempt);
    this._retryTimer = setTimeout(() => { if (!this._closing) this._open(); }, this._reconnectDelay(this._attempt));
  }

  _reconnectDelay(attempt) {
    const { reconnectionDelay: base, maxReconnectionDelay: max, customReconnectDelay } = this.options;
    const delay = customReconnectDelay ? Number(customReconnectDelay(attempt, base, max)) : fullJitterDelay(attempt, base, max, this.options.random);
    const chosen = this._hook("onReconnectDelay", attempt, delay);
    return typeof chosen === "number" ? chosen : delay;
  }

  _settleRooms(ok) {
    for (const waiters of this._roomWaiters.values()) for (const waiter of waiters) waiter.resolve(ok);
    this._roomWaiters.clear();
  }

  _giveUp(error) {
    this.lastError = error;
    this._setState(ClientState.DISCONNECTED);
    this._settleRooms(false);
    this._failRequests([...this._requests.keys()], error.message);
    this._settleConnect(error);
  }

  _settleConnect(error) {
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const waiter of waiters) { if (error) waiter.reject(error); else waiter.resolve(); }
  }

  // ----------------------------------------------------------------------------- heartbeat

  _startWatchdog() {
    this._stopWatchdog();
    if (this._heartbeatTimeout === null) return;
    this._watchdog = setTimeout(() => {
      const silent = Date.now() - this._lastReceived;
      if (silent > this._heartbeatTimeout) {
        this._recordError(new NotConnected(`server silent for ${(silent / 1000).toFixed(1)}s`), "heartbeat");
        const socket = this._socket;
        this._detach();
        if (socket) socket.close(4000, "heartbeat timeout");
        this._lost(1006, "heartbeat timeout");
      } else this._startWatchdog();
    }, this._heartbeatTimeout / 4);
  }

  _stopWatchdog() { clearTimeout(this._watchdog); this._watchdog = null; }

  // ----------------------------------------------------------------------------- frames in

  _frameReceived(bytes) {
    this._lastReceived = Date.now();
    this.metrics.messagesReceived += 1;
    this.metrics.bytesReceived += bytes.length;
    this._session.receiveFrame(bytes);
    for (const event of this._session.eventsReceived()) {
      try { this._dispatch(event); } catch (error) { this._recordError(error, "receive"); }
    }
    this._flush(false); // pongs
  }

  _dispatch(event) {
    switch (event.type) {
      case "welcome": return this._welcome(event);
      case "event": return this._event(event.event, event.data, event.binary);
      case "response": return this._response(event);
      case "request": return this._answer(event);
      case "room": return this._roomAnswered(event);
      case "presence": {
        const { room, count, joins, leaves, updates, snapshot } = event;
        return this._emitLocal("presence", { room, count, joins, leaves, updates, snapshot });
      }
      case "dropped": return this._emitLocal("messages_lost", { room: event.room, count: event.count, policy: event.policy });
      case "error": {
        if (!this._welcomed) this._pendingRefusal = new NotConnected(`refused: ${event.code}: ${event.message}`);
        return this._recordError(new ProtocolError(event.code, event.message), "server");
      }
      case "invalid": return this._recordError(event.error, "receive");
      default: return undefined; // pings are answered by the session; the close reports a goodbye
    }
  }

  _welcome(welcome) {
    this._welcomed = true;
    clearTimeout(this._handshakeTimer);
    this._pendingRefusal = null;
    this.id = welcome.id;
    this.maxPayload = welcome.maxPayload;
    const interval = welcome.heartbeat === null ? null : welcome.heartbeat * 1000;
    this._heartbeatTimeout = this.options.heartbeatTimeout ?? (interval === null ? null : interval * HEARTBEAT_FACTOR);
    this._attempt = 0;
    this.resumed = welcome.resumed;
    if (welcome.lost.length) this._failRequests(welcome.lost, "connection lost before the answer, and the session was not resumed");
    this._setState(ClientState.CONNECTED);
    this._startWatchdog();
    // A resumed session is back in its rooms without history; the others are joined again
    // (those with history from the last position seen).
    const restored = new Set(welcome.resumed ? welcome.rooms : []);
    for (const room of [...this._rooms].sort()) if (!restored.has(room)) this._session.rejoin(room);
    this._flush(false);
    this._drainQueue();
    this._settleConnect(null);
    this._emitLocal("connect");
  }

  _event(event, data, binary) {
    this._hook("onMessage", event, data, binary);
    this._emitLocal(event, data);
    for (const listener of [...this._anyListeners]) {
      try { listener(event, data); } catch (error) { this._recordError(error, "listener"); }
    }
  }

  _response(response) {
    const request = this._requests.get(response.ackId);
    if (!request) return; // the session knew it in flight; the glue gave up on it meanwhile
    this._requests.delete(response.ackId);
    clearTimeout(request.timer);
    if (response.error) request.reject(response.error); else request.resolve(response.value);
  }

  async _answer(request) {
    const handler = this._ackHandlers.get(request.event);
    if (!handler) this._session.answerError(request, "no_handler", `no handler for request ${JSON.stringify(request.event)}`);
    else {
      try { this._session.answer(request, await handler(request.data)); } catch (error) {
        this._session.answerError(request, "handler_error", String(error?.message ?? error));
      }
    }
    this._flush(false);
  }

  _roomAnswered(answer) {
    const key = `${answer.kind}:${answer.room}`;
    const waiters = this._roomWaiters.get(key);
    const { error } = answer;
    if (answer.kind === "join" && !error) this._rooms.add(answer.room);
    if (answer.kind === "join" && error) this._rooms.delete(answer.room);
    if (answer.kind === "leave" && !error) this._rooms.delete(answer.room);
    if (error) this._recordError(error, answer.kind);
    const details = { room: answer.room, position: answer.position ?? null };
    if (answer.recovered === true) this._emitLocal("recovered", { ...details, replayed: answer.replayed });
    if (answer.recovered === false) this._emitLocal("not_recovered", { ...details, reason: answer.reason });
    if (!waiters) return;
    const waiter = waiters.shift();
    if (!waiters.length) this._roomWaiters.delete(key);
    if (error) waiter.resolve(false);
    else if (answer.kind === "leave") waiter.resolve(true);
    else waiter.resolve({ ...details, recovered: answer.recovered ?? null, reason: answer.reason ?? null, replayed: answer.replayed ?? 0 });
  }

  // ----------------------------------------------------------------------------- sending

  /** Send what the session has for the server. No socket: the connection went while an answer
   * was being made; what it had to send is lost with it. */
  _flush(counted = true) {
    const frames = this._session.dataToSend();
    if (!this._socket) return;
    for (const frame of frames) {
      this._socket.send(frame);
      if (counted) { this.metrics.messagesSent += 1; this.metrics.bytesSent += frame.length; }
    }
  }

  _checkPayload(payload) {
    if (this.maxPayload !== null && payload.length > this.maxPayload) {
      throw new RangeError(`payload is ${payload.length} bytes, the server's max_payload is ${this.maxPayload}`);
    }
  }

  _sendOrQueue(entry) {
    if (this.state === ClientState.CONNECTED && this._socket) {
      if (entry.ackId !== null) {
        if (!this._requests.has(entry.ackId)) return; // timed out while queued
        this._session.sendRequest(entry.ackId, entry.event, entry.payload, entry.trace);
      } else this._session.emitPayload(entry.type, entry.event, entry.payload, entry.trace);
      this._flush();
      return;
    }
    if (this.options.messageQueueSize === 0) { this._drop(entry); return; }
    if (this._queue.length >= this.options.messageQueueSize) this._drop(this._queue.shift());
    this._queue.push(entry);
    this._hook("onMessageQueued", entry.event, this._queue.length);
  }

  _drop(entry) {
    this.metrics.droppedMessages += 1;
    if (entry.ackId !== null) this._failRequests([entry.ackId], "dropped from the full offline queue");
  }

  _drainQueue() {
    const queued = this._queue;
    this._queue = [];
    for (const entry of queued) this._sendOrQueue(entry);
    if (queued.length) this._hook("onQueueDrained", queued.length);
  }

  /** Send an event (any JSON value), or queue it while offline. False when onBeforeEmit cancelled it. */
  emit(event, data = null) {
    if (this._hook("onBeforeEmit", event, data) === false) return false;
    const payload = dumpJson(data);
    this._checkPayload(payload);
    this._sendOrQueue({ type: FrameType.JSON, event, payload, ackId: null, trace: this._traceContext() });
    return true;
  }

  emitBinary(event, data) {
    if (this._hook("onBeforeEmit", event, data) === false) return false;
    const payload = toBytes(data).slice();
    this._checkPayload(payload);
    this._sendOrQueue({ type: FrameType.BINARY, event, payload, ackId: null, trace: this._traceContext() });
    return true;
  }

  /** Ask the server (its on_ack(event) handler); resolves with the answer, rejects with AckError
   * (code, message), AckTimeout, or NotConnected when the connection is lost before the answer. */
  request(event, data = null, { timeout } = {}) {
    const payload = dumpJson(data);
    this._checkPayload(payload);
    let ackId;
    try { ackId = this._session.openRequest(); } catch (error) { return Promise.reject(error); }
    const ms = timeout ?? this.options.ackTimeout;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(ackId);
        this._session.forgetRequest(ackId);
        reject(new AckTimeout(`no answer to request ${JSON.stringify(event)} within ${ms / 1000}s`));
      }, ms);
      this._requests.set(ackId, { resolve, reject, timer });
    });
    this._sendOrQueue({ type: FrameType.ACK_REQUEST, event, payload, ackId, trace: this._traceContext() });
    return promise;
  }

  /** The trace context of a message sent now (kept with it while it is queued offline). */
  _traceContext() {
    const current = this.options.traceContext;
    return current === null ? null : current() ?? null;
  }

  _failRequests(ackIds, reason) {
    for (const ackId of ackIds) {
      const request = this._requests.get(ackId);
      this._session.forgetRequest(ackId);
      if (!request) continue;
      this._requests.delete(ackId);
      clearTimeout(request.timer);
      request.reject(new NotConnected(reason));
    }
  }

  /** Join a room: `{room, position, recovered, reason, replayed}` when the server accepted (the
   * position for a room with history), `false` when it refused. Offline, the join is sent (and
   * answered) when the connection is back; joined rooms are joined again after every
   * reconnection, from the last position seen: the server replays what was missed ("recovered")
   * or says why it could not ("not_recovered", with the reason: reload the state). */
  joinRoom(room) {
    this._rooms.add(room);
    const answered = this._roomAnswer("join", room);
    if (this.state === ClientState.CONNECTED) { this._session.rejoin(room); this._flush(); }
    return answered; // offline: the connect handshake sends it with the other rooms
  }

  /** A page of a room's history (a room with history this client is in): `{position,
   * publications: [{offset, event, data | binary (Uint8Array)}]}`, the publications after offset
   * `since` (from the oldest kept when null), at most `limit`. Rejects with AckError
   * (not_in_room, no_history, invalid_frame) otherwise. */
  async history(room, { since = null, limit = 100, timeout } = {}) {
    const request = { room, limit };
    if (since !== null) request.since = since;
    const answer = await this.request("$history", request, timeout === undefined ? {} : { timeout });
    const publications = answer.publications.map((item) => ("binary" in item
      ? { offset: item.offset, event: item.event, data: Uint8Array.from(atob(item.binary), (c) => c.charCodeAt(0)), binary: true }
      : { offset: item.offset, event: item.event, data: item.data ?? null, binary: false }));
    return { position: answer.position, publications };
  }

  /** Leave a room: true when the server accepted (offline: forgotten at once, not rejoined). */
  leaveRoom(room) {
    if (this.state !== ClientState.CONNECTED) { this._rooms.delete(room); return Promise.resolve(true); }
    const answered = this._roomAnswer("leave", room);
    this._session.leave(room);
    this._flush();
    return answered;
  }

  _roomAnswer(kind, room) {
    const key = `${kind}:${room}`;
    return new Promise((resolve) => {
      (this._roomWaiters.get(key) ?? this._roomWaiters.set(key, []).get(key)).push({ resolve });
    });
  }
}

export default StelarClient;
