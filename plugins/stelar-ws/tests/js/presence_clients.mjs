// N stelar.js clients under Node.js in one presence room (not a test file of `node --test`:
// plugins/stelar-redis/tests/test_redis_presence.py runs it against live nodes). Node 20 needs
// --experimental-websocket. Prints "joined" once all are in; on any line from stdin, prints each
// client's member map and how many presence events it received, as JSON, and leaves.
import { createInterface } from "node:readline";
import { StelarClient } from "../../stelar_ws/static/stelar.js";

const [count, ...urls] = process.argv.slice(2);
const clients = [];
for (let n = 0; n < Number(count); n += 1) {
  const client = new StelarClient(urls[n % urls.length], { auth: { user: `js${n}` }, reconnection: false });
  client.events = 0;
  client.on("presence", () => { client.events += 1; });
  clients.push(client);
}
await Promise.all(clients.map((client) => client.connect()));
await Promise.all(clients.map((client) => client.joinRoom("doc")));
console.log("joined");
const lines = createInterface({ input: process.stdin });
for await (const _ of lines) break;
const report = JSON.stringify(clients.map((client) => ({ members: client.presence("doc"), events: client.events })));
for (const client of clients) client.disconnect();
// Exit once the whole report is written: a pipe takes it in pieces.
process.stdout.write(`${report}\n`, () => process.exit(0));
