// stelar.js under Node.js (not a test file of `node --test`: plugins/stelar-ws/tests/test_browser_package.py runs
// it against a live server). Node 20 has a global WebSocket behind --experimental-websocket.
import { StelarClient, AckError } from "../../stelar_ws/static/stelar.js";

const [url] = process.argv.slice(2);
const client = new StelarClient(url, { auth: { from: "node" }, reconnection: false });
client.onAck("whoami", () => "node");
await client.connect();
const joined = await client.joinRoom("r");
const doubled = await client.request("double", 21);
let refused = null;
try { await client.request("missing"); } catch (error) { refused = error instanceof AckError ? error.code : String(error); }
console.log(JSON.stringify({ id: client.id, joined, doubled, refused }));
// Stay until the server has asked us something, then leave.
await new Promise((resolve) => client.on("bye", resolve));
client.disconnect();
