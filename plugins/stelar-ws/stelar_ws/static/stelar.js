// stelar.js: the stelar.v1 client for browsers and Node.js 20+. One dependency-free ES module.
// The protocol is docs/protocol.md; where the Python client's ClientSession defines behaviour
// (handshake, ack ids, pongs, what a lost connection does to requests) this client matches it.

export const PROTOCOL = "stelar.v1";

export const FrameType = Object.freeze({
  JSON: 0, BINARY: 1, PING: 2, PONG: 3, ACK_REQUEST: 4, ACK_RESPONSE: 5,
  CONNECT: 6, DISCONNECT: 7, JOIN: 8, LEAVE: 9, ERROR: 10,
});

const HEADER_SIZE = 3;
const MAX_EVENT_LENGTH = 0xffff;
const MAX_ACK_ID = 0xffffffff;
const WITH_ACK_ID = new Set([FrameType.ACK_REQUEST, FrameType.ACK_RESPONSE]);
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
 * (4 bytes, big-endian) for ACK frames, then the payload. */
export function encodeFrame(type, event = "", payload = new Uint8Array(0), ackId = null) {
  const eventBytes = encoder.encode(event);
  if (eventBytes.length > MAX_EVENT_LENGTH) {
    throw new RangeError(`event name is ${eventBytes.length} bytes, at most ${MAX_EVENT_LENGTH}`);
  }
  const withAck = WITH_ACK_ID.has(type);
  if (withAck && (ackId === null || !Number.isInteger(ackId) || ackId < 0 || ackId > MAX_ACK_ID)) {
    throw new RangeError(`frame type ${type} needs an ack id in 0..${MAX_ACK_ID}`);
  }
  if (!withAck && ackId !== null) throw new RangeError(`frame type ${type} carries no ack id`);
  const body = toBytes(payload);
  const frame = new Uint8Array(HEADER_SIZE + eventBytes.length + (withAck ? 4 : 0) + body.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, type);
  view.setUint16(1, eventBytes.length);
  frame.set(eventBytes, HEADER_SIZE);
  let offset = HEADER_SIZE + eventBytes.length;
  if (withAck) { view.setUint32(offset, ackId); offset += 4; }
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
  const type = view.getUint8(0);
  if (type > FrameType.ERROR) throw new ProtocolError("invalid_frame", `unknown frame type ${type}`);
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
  if (WITH_ACK_ID.has(type)) {
    if (eventEnd + 4 > size) {
      const name = type === FrameType.ACK_REQUEST ? "ACK_REQUEST" : "ACK_RESPONSE";
      throw new ProtocolError("invalid_frame", `${name} frame ends before its 4-byte ack id`);
    }
    return { type, event, ackId: view.getUint32(eventEnd), payload: bytes.slice(eventEnd + 4) };
  }
  return { type, event, ackId: null, payload: bytes.slice(eventEnd) };
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

/** `{"ok": value}` -> [value, null]; `{"error": {code, message}}` (or anything else) -> [null, AckError]. */
function readAnswer(answer) {
  if (answer && typeof answer === "object" && "ok" in answer && !("error" in answer)) return [answer.ok, null];
  const error = answer && typeof answer === "object" ? answer.error : null;
  if (error && typeof error === "object") {
    return [null, new AckError(String(error.code ?? "error"), String(error.message ?? ""))];
  }
  return [null, new AckError("invalid_frame", "an answer is {\"ok\": value} or {\"error\": {...}}")];
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
    this.metrics = { messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0, reconnects: 0, droppedMessages: 0 };
    this._listeners = new Map();
    this._anyListeners = [];
    this._ackHandlers = new Map();
    this._rooms = new Set(); // joined; rejoined after a reconnect
    this._roomWaiters = new Map(); // "8:room" -> [resolve, ...]
    this._requests = new Map(); // ack id -> {resolve, reject, timer, sent}
    this._nextAckId = 0;
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
      if (socket.readyState === 1) socket.send(encodeFrame(FrameType.DISCONNECT, "", dumpJson({ code: 1000, reason: "client disconnected" })));
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
      this._sendFrame(encodeFrame(FrameType.CONNECT, "", dumpJson({ auth: this.options.auth })), false);
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
    const sent = [...this._requests].filter(([, r]) => r.sent).map(([id]) => id);
    this._failRequests(sent, `connection lost before the answer (${code} ${reason})`);
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
    let frame;
    try { frame = decodeFrame(bytes); } catch (error) { this._recordError(error, "receive"); return; }
    try { this._dispatch(frame); } catch (error) { this._recordError(error, "receive"); }
  }

  _dispatch(frame) {
    switch (frame.type) {
      case FrameType.CONNECT: return this._welcome(loadJson(frame.payload));
      case FrameType.JSON: return this._event(frame.event, loadJson(frame.payload), false);
      case FrameType.BINARY: return this._event(frame.event, frame.payload, true);
      case FrameType.PING: return this._sendFrame(encodeFrame(FrameType.PONG, "", frame.payload), false);
      case FrameType.PONG: return undefined;
      case FrameType.ACK_RESPONSE: return this._response(frame);
      case FrameType.ACK_REQUEST: return this._answer(frame.event, loadJson(frame.payload), frame.ackId);
      case FrameType.JOIN: case FrameType.LEAVE: return this._roomAnswered(frame);
      case FrameType.ERROR: {
        const body = loadJson(frame.payload);
        const message = body && typeof body === "object" ? String(body.message ?? "") : "";
        const error = new ProtocolError(frame.event, message);
        if (!this._welcomed) this._pendingRefusal = new NotConnected(`refused: ${frame.event}: ${message}`);
        return this._recordError(error, "server");
      }
      case FrameType.DISCONNECT: return undefined; // the close that follows reports it
      default: return undefined;
    }
  }

  _welcome(body) {
    if (this._welcomed) throw new ProtocolError("invalid_frame", "a second welcome");
    if (!body || typeof body !== "object" || typeof body.id !== "string") throw new ProtocolError("invalid_frame", 'the welcome must be {"id": ..., ...}');
    this._welcomed = true;
    clearTimeout(this._handshakeTimer);
    this._pendingRefusal = null;
    this.id = body.id;
    this.maxPayload = Number.isInteger(body.max_payload) ? body.max_payload : null;
    const interval = typeof body.heartbeat === "number" && body.heartbeat > 0 ? body.heartbeat * 1000 : null;
    this._heartbeatTimeout = this.options.heartbeatTimeout ?? (interval === null ? null : interval * HEARTBEAT_FACTOR);
    this._attempt = 0;
    this._setState(ClientState.CONNECTED);
    this._startWatchdog();
    for (const room of [...this._rooms].sort()) this._sendFrame(encodeFrame(FrameType.JOIN, room), false);
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

  _response(frame) {
    const request = this._requests.get(frame.ackId);
    if (!request) throw new ProtocolError("unknown_ack", `no request is waiting for ack id ${frame.ackId}`);
    this._requests.delete(frame.ackId);
    clearTimeout(request.timer);
    const [value, error] = readAnswer(loadJson(frame.payload));
    if (error) request.reject(error); else request.resolve(value);
  }

  async _answer(event, data, ackId) {
    const handler = this._ackHandlers.get(event);
    let answer;
    if (!handler) answer = { error: { code: "no_handler", message: `no handler for request ${JSON.stringify(event)}` } };
    else {
      try { answer = { ok: await handler(data) }; } catch (error) { answer = { error: { code: "handler_error", message: String(error?.message ?? error) } }; }
    }
    let payload;
    try { payload = dumpJson(answer); } catch (error) { payload = dumpJson({ error: { code: "handler_error", message: `answer is not JSON-serializable: ${error.message}` } }); }
    this._sendFrame(encodeFrame(FrameType.ACK_RESPONSE, event, payload, ackId), false);
  }

  _roomAnswered(frame) {
    const key = `${frame.type}:${frame.event}`;
    const waiters = this._roomWaiters.get(key);
    const [, error] = readAnswer(loadJson(frame.payload));
    if (frame.type === FrameType.JOIN && !error) this._rooms.add(frame.event);
    if (frame.type === FrameType.JOIN && error) this._rooms.delete(frame.event);
    if (frame.type === FrameType.LEAVE && !error) this._rooms.delete(frame.event);
    if (error) this._recordError(error, frame.type === FrameType.JOIN ? "join" : "leave");
    if (!waiters) return;
    const waiter = waiters.shift();
    if (!waiters.length) this._roomWaiters.delete(key);
    waiter.resolve(!error);
  }

  // ----------------------------------------------------------------------------- sending

  _sendFrame(frame, counted = true) {
    // No socket: the connection went while an answer was being made; it is lost with it.
    if (!this._socket) return;
    this._socket.send(frame);
    if (counted) { this.metrics.messagesSent += 1; this.metrics.bytesSent += frame.length; }
  }

  _checkPayload(payload) {
    if (this.maxPayload !== null && payload.length > this.maxPayload) {
      throw new RangeError(`payload is ${payload.length} bytes, the server's max_payload is ${this.maxPayload}`);
    }
  }

  _sendOrQueue(entry) {
    if (this.state === ClientState.CONNECTED && this._socket) {
      if (entry.ackId !== null) {
        const request = this._requests.get(entry.ackId);
        if (!request) return; // timed out while queued
        request.sent = true;
      }
      this._sendFrame(encodeFrame(entry.type, entry.event, entry.payload, entry.ackId));
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
    this._sendOrQueue({ type: FrameType.JSON, event, payload, ackId: null });
    return true;
  }

  emitBinary(event, data) {
    if (this._hook("onBeforeEmit", event, data) === false) return false;
    const payload = toBytes(data).slice();
    this._checkPayload(payload);
    this._sendOrQueue({ type: FrameType.BINARY, event, payload, ackId: null });
    return true;
  }

  /** Ask the server (its on_ack(event) handler); resolves with the answer, rejects with AckError
   * (code, message), AckTimeout, or NotConnected when the connection is lost before the answer. */
  request(event, data = null, { timeout } = {}) {
    const payload = dumpJson(data);
    this._checkPayload(payload);
    if (this._requests.size >= this.options.maxPendingRequests) {
      return Promise.reject(new AckError("too_many_pending_acks", `${this._requests.size} requests already wait for an answer`));
    }
    let ackId = this._nextAckId;
    while (this._requests.has(ackId)) ackId = (ackId + 1) % (MAX_ACK_ID + 1);
    this._nextAckId = (ackId + 1) % (MAX_ACK_ID + 1);
    const ms = timeout ?? this.options.ackTimeout;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(ackId);
        reject(new AckTimeout(`no answer to request ${JSON.stringify(event)} within ${ms / 1000}s`));
      }, ms);
      this._requests.set(ackId, { resolve, reject, timer, sent: false });
    });
    this._sendOrQueue({ type: FrameType.ACK_REQUEST, event, payload, ackId });
    return promise;
  }

  _failRequests(ackIds, reason) {
    for (const ackId of ackIds) {
      const request = this._requests.get(ackId);
      if (!request) continue;
      this._requests.delete(ackId);
      clearTimeout(request.timer);
      request.reject(new NotConnected(reason));
    }
  }

  /** Join a room: true when the server accepted. Offline, the join is sent (and answered) when
   * the connection is back; joined rooms are joined again after every reconnection. */
  joinRoom(room) {
    this._rooms.add(room);
    const answered = this._roomAnswer(FrameType.JOIN, room);
    if (this.state === ClientState.CONNECTED) this._sendFrame(encodeFrame(FrameType.JOIN, room));
    return answered; // offline: the connect handshake sends it with the other rooms
  }

  /** Leave a room: true when the server accepted (offline: forgotten at once, not rejoined). */
  leaveRoom(room) {
    if (this.state !== ClientState.CONNECTED) { this._rooms.delete(room); return Promise.resolve(true); }
    const answered = this._roomAnswer(FrameType.LEAVE, room);
    this._sendFrame(encodeFrame(FrameType.LEAVE, room));
    return answered;
  }

  _roomAnswer(type, room) {
    const key = `${type}:${room}`;
    return new Promise((resolve) => {
      (this._roomWaiters.get(key) ?? this._roomWaiters.set(key, []).get(key)).push({ resolve });
    });
  }
}

export default StelarClient;
