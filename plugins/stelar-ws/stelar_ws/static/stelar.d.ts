// Types of stelar.js, the stelar.v1 client (docs/browser.md).

export declare const PROTOCOL: "stelar.v1";

export declare const FrameType: Readonly<{
  JSON: 0; BINARY: 1; PING: 2; PONG: 3; ACK_REQUEST: 4; ACK_RESPONSE: 5;
  CONNECT: 6; DISCONNECT: 7; JOIN: 8; LEAVE: 9; ERROR: 10; PUBLICATION: 11; DROPPED: 12; PRESENCE: 13;
}>;
/** The type byte's flag of an event or request that carries a trace context. */
export declare const TRACED: 0x80;

export interface Frame {
  type: number;
  event: string;
  ackId: number | null;
  payload: Uint8Array;
  /** The trace context (the bytes of a W3C traceparent) of a traced frame, else null. */
  trace: Uint8Array | null;
}

export declare function encodeFrame(
  type: number, event?: string, payload?: Uint8Array | ArrayBuffer, ackId?: number | null, trace?: string | null,
): Uint8Array;
export declare function decodeFrame(data: Uint8Array | ArrayBuffer): Frame;
/** Where a message is in its room's stream; offsets are consecutive within one epoch. */
export interface Position { epoch: string; offset: number; }

/** A publication (frame type 11): a message of a room with history, and its position. */
export interface Publication { room: string; epoch: string; offset: number; frame: Frame; }

export declare function decodePublication(frame: Frame): Publication;
export declare function dumpJson(data: unknown): Uint8Array;
export declare function loadJson(payload: Uint8Array): unknown;
export declare function fullJitterDelay(attempt: number, base: number, max: number, random?: () => number): number;

export declare class StelarError extends Error {}
export declare class ProtocolError extends StelarError { code: string; constructor(code: string, message: string); }
export declare class AckError extends StelarError { code: string; reason: string; constructor(code: string, message: string); }
export declare class AckTimeout extends StelarError {}
export declare class NotConnected extends StelarError {}

export declare const ClientState: Readonly<{
  DISCONNECTED: "disconnected"; CONNECTING: "connecting"; CONNECTED: "connected"; RECONNECTING: "reconnecting";
}>;
export type ClientStateValue = (typeof ClientState)[keyof typeof ClientState];

export interface ClientHooks {
  onBeforeEmit?(event: string, data: unknown): boolean | void;
  onMessage?(event: string, data: unknown, binary: boolean): void;
  onStateChange?(from: ClientStateValue, to: ClientStateValue): void;
  onReconnectDelay?(attempt: number, delayMs: number): number | void;
  onMessageQueued?(event: string, queueSize: number): void;
  onQueueDrained?(count: number): void;
  onError?(error: Error, context: string): void;
}

export interface ClientOptions {
  auth?: Record<string, unknown>;
  protocols?: string[];
  reconnection?: boolean;
  /** null: retry forever. */
  reconnectionAttempts?: number | null;
  /** Milliseconds: the first backoff ceiling, doubled per attempt up to maxReconnectionDelay. */
  reconnectionDelay?: number;
  maxReconnectionDelay?: number;
  customReconnectDelay?: ((attempt: number, baseMs: number, maxMs: number) => number) | null;
  connectTimeout?: number;
  ackTimeout?: number;
  /** null: 2.5 x the heartbeat interval the server announces. */
  heartbeatTimeout?: number | null;
  messageQueueSize?: number;
  maxPendingRequests?: number;
  hooks?: ClientHooks;
  /** Called for each emit and request: a W3C traceparent to attach (sent only to servers that
   * trace), e.g. from OpenTelemetry JS's propagation.inject. */
  traceContext?: (() => string | null) | null;
  /** A WebSocket class, e.g. the `ws` package on Node.js without a global WebSocket. */
  WebSocket?: unknown;
  random?: () => number;
}

export interface ClientMetrics {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  reconnects: number;
  droppedMessages: number;
}

export interface DisconnectInfo { code: number; reason: string; }

/** What a ClientSession makes of the frames it receives. */
export type SessionEvent =
  | { type: "welcome"; id: string; v: number | null; heartbeat: number | null; maxPayload: number | null; body: Record<string, unknown>; resumed: boolean; rooms: string[]; lost: number[] }
  | { type: "event"; event: string; data: any; binary: boolean; room?: string; position?: Position }
  | { type: "request"; event: string; data: any; ackId: number }
  | { type: "response"; ackId: number; event: string; value: any; error: AckError | null }
  | { type: "room"; kind: "join" | "leave"; room: string; error: AckError | null; position?: Position; recovered?: boolean; reason?: string | null; replayed?: number }
  | { type: "ping" | "pong"; payload: Uint8Array }
  | { type: "error"; code: string; message: string; body: unknown }
  | { type: "disconnect"; code: number; reason: string }
  | { type: "dropped"; room: string; count: number; policy: string }
  | { type: "presence"; room: string; count: number; joins: Record<string, any>; leaves: string[]; updates: Record<string, any>; snapshot: boolean }
  | { type: "invalid"; error: ProtocolError };

/** The client side of stelar.v1, sans-I/O: frames in, events out; commands produce frames. */
export declare class ClientSession {
  constructor(options?: { autoPong?: boolean; maxInFlight?: number; maxUnconfirmed?: number });
  autoPong: boolean;
  readonly maxInFlight: number;
  state: "connecting" | "open" | "closed";
  id: string | null;
  readonly requestsInFlight: number;
  /** The last position seen in each room with history, kept across connections. */
  readonly positions: Map<string, Position>;
  /** Publications dropped because they were seen already. */
  readonly duplicates: number;
  /** Messages lossy send queues dropped, by room. */
  readonly lost: Map<string, number>;
  /** Presence rooms: the members by key with their state, and the counts. */
  readonly presence: Map<string, Record<string, any>>;
  readonly presenceCounts: Map<string, number>;
  updatePresence(room: string, state: unknown): void;
  askPresence(room: string): void;
  /** The secret the server gave to resume this session (null: not resumable). */
  resumeToken: string | null;
  /** Events and requests sent in this session. */
  readonly sentCount: number;
  /** The welcome said the server reads trace context. */
  readonly serverTraces: boolean;
  dataToSend(): Uint8Array[];
  connect(auth?: Record<string, unknown>): void;
  emit(event: string, data?: unknown, trace?: string | null): void;
  emitBinary(event: string, data: Uint8Array | ArrayBuffer | ArrayBufferView, trace?: string | null): void;
  emitPayload(type: number, event: string, payload: Uint8Array, trace?: string | null): void;
  request(event: string, data?: unknown, trace?: string | null): number;
  openRequest(): number;
  sendRequest(ackId: number, event: string, payload: Uint8Array, trace?: string | null): void;
  forgetRequest(ackId: number): void;
  answer(request: { event: string; ackId: number }, value: unknown): void;
  answerError(request: { event: string; ackId: number }, code: string, message: string): void;
  join(room: string, since?: Position | null): void;
  rejoin(room: string): void;
  leave(room: string): void;
  ping(payload?: Uint8Array): void;
  pong(payload?: Uint8Array): void;
  disconnect(code: number, reason?: string): number[];
  connectionLost(): number[];
  eventsReceived(): SessionEvent[];
  receiveFrame(data: Uint8Array | ArrayBuffer): void;
}

/** Why a recovery replayed nothing (docs/delivery.md). */
export type NotRecoveredReason =
  | "no_history" | "epoch_changed" | "history_lost" | "too_many" | "invalid_position" | "overflow" | "unavailable";

/** The answer to an accepted joinRoom. */
export interface RoomJoin {
  room: string;
  /** The room's position, for a room with history (else null). */
  position: Position | null;
  /** null for a first join; else whether every missed publication was replayed. */
  recovered: boolean | null;
  reason: NotRecoveredReason | string | null;
  replayed: number;
}

export declare class StelarClient {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  readonly options: Required<ClientOptions>;
  id: string | null;
  state: ClientStateValue;
  lastError: Error | null;
  /** The largest payload the server accepts, from its welcome (null until connected). */
  maxPayload: number | null;
  /** Whether this connection resumed the previous one's session (same id, rooms; nothing sent lost or handled twice). */
  resumed: boolean;
  readonly metrics: ClientMetrics;
  readonly connected: boolean;
  readonly queueSize: number;
  readonly rooms: Set<string>;
  /** The last position seen in each joined room that keeps history. */
  readonly positions: Map<string, Position>;
  /** Messages a room's lossy send queue dropped for this client, by room. */
  readonly lostMessages: Map<string, number>;
  /** The members of a presence room by presence key, with their state. */
  presence(room: string): Record<string, any>;
  presenceCount(room: string): number;
  updatePresence(room: string, state: unknown): void;

  connect(): Promise<void>;
  disconnect(): void;

  on(event: "connect", listener: () => void): this;
  on(event: "disconnect", listener: (info: DisconnectInfo) => void): this;
  on(event: "reconnecting", listener: (attempt: number) => void): this;
  on(event: "reconnect_failed", listener: () => void): this;
  on(event: "error", listener: (error: Error, context: string) => void): this;
  on(event: "presence", listener: (change: { room: string; count: number; joins: Record<string, any>; leaves: string[]; updates: Record<string, any>; snapshot: boolean }) => void): this;
  on(event: "messages_lost", listener: (info: { room: string; count: number; policy: string }) => void): this;
  on(event: "recovered", listener: (info: { room: string; position: Position | null; replayed: number }) => void): this;
  on(event: "not_recovered", listener: (info: { room: string; position: Position | null; reason: NotRecoveredReason | string | null }) => void): this;
  on(event: string, listener: (data: any) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  off(event: string, listener?: (...args: any[]) => void): this;
  onAny(listener: (event: string, data: any) => void): this;
  offAny(listener?: (event: string, data: any) => void): this;
  removeAllListeners(event?: string): this;
  onAck(name: string, handler: (data: any) => unknown | Promise<unknown>): this;

  emit(event: string, data?: unknown): boolean;
  emitBinary(event: string, data: Uint8Array | ArrayBuffer | ArrayBufferView): boolean;
  request<T = any>(event: string, data?: unknown, options?: { timeout?: number }): Promise<T>;
  /** A page of a room's history: the publications after offset `since`, at most `limit`. */
  history(room: string, options?: { since?: number | null; limit?: number; timeout?: number }): Promise<{
    position: Position;
    publications: { offset: number; event: string; data: any; binary: boolean }[];
  }>;
  /** The join's answer when accepted, false when refused. */
  joinRoom(room: string): Promise<RoomJoin | false>;
  leaveRoom(room: string): Promise<boolean>;
}

export default StelarClient;
