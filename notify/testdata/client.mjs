// Receives notifications with the real @microsoft/signalr client for
// TestNotifierThroughTheHub: alice (admin, JSON over WebSockets) and bob
// (sales, MessagePack over WebSockets). Prints {"ready":true} once both are
// connected, then one JSON line per client with everything it received up to
// and including the first METRICS_UPDATE.
import { createRequire } from "node:module";
const require = createRequire(process.env.SIGNALR_CLIENT + "/package.json");
const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

async function client(name, msgpack) {
  let b = new signalR.HubConnectionBuilder()
    .withUrl(process.env.HUB_URL + "/leadupdates", { transport: signalR.HttpTransportType.WebSockets, accessTokenFactory: () => name })
    .configureLogging(signalR.LogLevel.Warning);
  if (msgpack) b = b.withHubProtocol(new MessagePackHubProtocol());
  const c = b.build();
  const got = [];
  let done;
  const finished = new Promise((r) => (done = r));
  c.on("ReceiveLeadUpdate", (m) => { got.push({ method: "ReceiveLeadUpdate", m }); });
  c.on("ReceiveMetricsUpdate", (m) => { got.push({ method: "ReceiveMetricsUpdate", m }); done(); });
  await c.start();
  await c.invoke("JoinLeadGroup", 1); // in LeadUpdates and Lead_1: one copy each
  return { name, c, got, finished };
}

const clients = [await client("alice", false), await client("bob", true)];
console.log(JSON.stringify({ ready: true }));
let timer;
const timeout = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error("no METRICS_UPDATE within 15 s")), 15000)));
await Promise.race([Promise.all(clients.map((x) => x.finished)), timeout]);
clearTimeout(timer);
for (const x of clients) {
  console.log(JSON.stringify({ client: x.name, got: x.got.map((g) => ({ ...g, m: { ...g.m, timestamp: String(g.m.timestamp) } })) }));
  await x.c.stop();
}
