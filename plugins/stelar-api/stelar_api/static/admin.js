// The stelar admin page: everything it shows and does goes through the server API with the
// session token its login returned (kept in sessionStorage: gone with the tab). Values from
// clients (IDs, rooms, metadata, event names) are written as text, never as HTML.

const API = document.querySelector('meta[name="stelar-api"]').content;
const ADMIN = document.querySelector('meta[name="stelar-admin"]').content;
const STORAGE = "stelar-admin-session";
const REFRESH_MS = 2000;
const TAIL_MS = 1000;
const TAIL_LINES = 500;

const $ = (id) => document.getElementById(id);
let session = JSON.parse(sessionStorage.getItem(STORAGE) || "null");
let selectedRoom = null;
let selectedClient = null;
let previous = null; // the last stats read, for rates
let refreshTimer = null;
let tailTimer = null;
let tailAfter = 0;

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}

async function post(path, body, token = session && session.token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && token) {
    loggedOut("Your session has ended: log in again.");
  }
  if (!response.ok) throw new ApiError(response.status, data.error || {});
  return data;
}

async function command(name, params) {
  return (await post(`${API}/${name}`, params)).result;
}

function text(tag, content, attributes = {}) {
  const element = document.createElement(tag);
  element.textContent = content;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

function notice(message, isError = false) {
  const line = $("notice");
  line.textContent = message;
  line.className = isError ? "error" : "";
}

function parseData(raw) {
  if (!raw.trim()) return undefined;
  return JSON.parse(raw); // a SyntaxError is shown to the operator
}

// ------------------------------------------------------------------ login

function loggedIn() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("key-name").textContent = session.name;
  $("read-only-badge").hidden = !session.read_only;
  document.body.classList.toggle("read-only", session.read_only);
  refresh();
  refreshTimer = setInterval(refresh, REFRESH_MS);
}

function loggedOut(message = "") {
  session = null;
  sessionStorage.removeItem(STORAGE);
  clearInterval(refreshTimer);
  stopTail();
  $("app").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    session = await post(`${ADMIN}/login`, { key: $("key").value }, null);
    sessionStorage.setItem(STORAGE, JSON.stringify(session));
    $("key").value = "";
    loggedIn();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await post(`${ADMIN}/logout`, {});
  } finally {
    loggedOut();
  }
});

// ------------------------------------------------------------------ nodes and rooms

async function refresh() {
  try {
    const [stats, rooms] = await Promise.all([command("stats"), command("rooms")]);
    showNodes(stats);
    showRooms(rooms.rooms);
    if (selectedRoom !== null) await showRoom(selectedRoom);
  } catch (error) {
    if (session) notice(error.message, true);
  }
}

function showNodes(stats) {
  const now = performance.now();
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const [node, figures] of Object.entries(stats.nodes).sort()) {
    const before = previous && previous.stats.nodes[node];
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    const rate = (name) =>
      before && seconds > 0 ? Math.max(0, (figures[name] - before[name]) / seconds).toFixed(1) : "–";
    const row = document.createElement("tr");
    row.dataset.node = node;
    for (const value of [
      node,
      figures.active_connections,
      figures.total_rooms,
      rate("total_messages_received"),
      rate("total_messages_sent"),
      `${Math.round(figures.uptime_seconds)} s`,
    ]) {
      row.append(text("td", String(value)));
    }
    body.append(row);
  }
  $("total-connections").textContent = String(stats.totals.active_connections);
  $("total-rooms").textContent = String(stats.total_rooms);
  previous = { stats, at: now };
}

function showRooms(rooms) {
  const list = $("rooms");
  list.replaceChildren(
    ...rooms.map((room) => {
      const item = text("li", room, { "data-room": room });
      if (room === selectedRoom) item.classList.add("selected");
      item.addEventListener("click", () => showRoom(room));
      return item;
    }),
  );
}

async function showRoom(room) {
  selectedRoom = room;
  const { members } = await command("members", { room });
  $("room-section").hidden = false;
  $("room-name").textContent = room;
  $("member-count").textContent = String(members.length);
  $("members").replaceChildren(
    ...members.map((id) => {
      const item = text("li", id, { "data-client": id });
      item.addEventListener("click", () => showClient(id));
      return item;
    }),
  );
  await optional("presence-block", () => command("presence", { room }), (result) => {
    $("presence").replaceChildren(
      ...Object.entries(result.members).map(([key, state]) => text("li", `${key} ${JSON.stringify(state)}`)),
    );
  });
  await optional("history-block", () => command("history", { room, limit: 20 }), (page) => {
    $("history-position").textContent = `(offset ${page.position.offset})`;
    $("history").replaceChildren(
      ...page.publications.map((p) => text("li", `#${p.offset} ${p.event} ${JSON.stringify(p.data ?? p.binary)}`)),
    );
  });
}

// A block shown only where the room has it (the API answers 404 otherwise).
async function optional(blockId, read, show) {
  try {
    show(await read());
    $(blockId).hidden = false;
  } catch (error) {
    if (error.status !== 404) throw error;
    $(blockId).hidden = true;
  }
}

// ------------------------------------------------------------------ one client

async function showClient(id) {
  selectedClient = id;
  let info;
  try {
    info = await command("info", { client: id });
  } catch (error) {
    notice(error.message, true);
    $("client-section").hidden = true;
    return;
  }
  $("client-section").hidden = false;
  $("client-id").textContent = id;
  const fields = [
    ["transport", info.transport],
    ["address", info.address],
    ["connected", info.connected_at ? new Date(info.connected_at * 1000).toLocaleString() : "unknown"],
    ["metadata", JSON.stringify(info.metadata)],
  ];
  const list = $("client-info");
  list.replaceChildren();
  for (const [name, value] of fields) list.append(text("dt", name), text("dd", value));
  list.append(text("dt", "rooms"));
  const rooms = document.createElement("dd");
  rooms.id = "client-rooms";
  for (const room of info.rooms) {
    const entry = text("span", room + " ", { "data-room": room });
    if (!session.read_only) {
      const leave = text("button", "leave", { type: "button", class: "leave" });
      leave.addEventListener("click", () => act(`${id} left ${room}`, () => command("leave", { client: id, room })));
      entry.append(leave, document.createTextNode(" "));
    }
    rooms.append(entry);
  }
  list.append(rooms);
}

async function act(done, action) {
  try {
    await action();
    notice(done);
    await refresh();
    if (selectedClient !== null) await showClient(selectedClient);
  } catch (error) {
    notice(error.message, true);
  }
}

$("kick").addEventListener("click", () => {
  const id = selectedClient;
  act(`${id} disconnected`, () => command("disconnect", { client: id, code: 4000, reason: "kicked by an operator" }));
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = selectedClient;
  const room = $("join-room").value;
  act(`${id} joined ${room}`, () => command("join", { client: id, room }));
});

$("client-send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = selectedClient;
  act(`sent to ${id}`, () =>
    command("send", { client: id, event: $("client-event").value, data: parseData($("client-data").value) }),
  );
});

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("send-room").value;
  act(`sent to room ${room}`, () =>
    command("publish", { room, event: $("send-event").value, data: parseData($("send-data").value) }),
  );
});

// ------------------------------------------------------------------ live tail

function stopTail() {
  clearInterval(tailTimer);
  tailTimer = null;
  $("tail-state").textContent = "stopped";
  $("tail-toggle").textContent = "Start";
}

async function readTail() {
  const filters = {};
  for (const name of ["room", "event", "client"]) {
    const value = $(`tail-${name}`).value.trim();
    if (value) filters[name] = value;
  }
  try {
    const page = await post(`${ADMIN}/tail`, { after: tailAfter, ...filters });
    tailAfter = page.last;
    $("tail-state").textContent = `on node ${page.node}, sampling ${Math.round(page.sample * 100)}%`;
    const lines = $("tail-lines");
    for (const record of page.events) {
      const time = new Date(record.at * 1000).toLocaleTimeString();
      const parts = [time, record.kind, record.event, record.room && `room=${record.room}`, record.client && `client=${record.client}`];
      lines.append(text("li", parts.filter(Boolean).join(" "), { "data-kind": record.kind }));
    }
    while (lines.children.length > TAIL_LINES) lines.firstChild.remove();
  } catch (error) {
    notice(error.message, true);
  }
}

$("tail-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (tailTimer !== null) {
    stopTail();
    return;
  }
  $("tail-lines").replaceChildren();
  tailAfter = 0;
  await readTail(); // the first read starts the node's tail; what came before is not shown
  $("tail-lines").replaceChildren();
  $("tail-toggle").textContent = "Pause";
  tailTimer = setInterval(readTail, TAIL_MS);
});

if (session) loggedIn();
