// Two hub instances joined by a backplane, driven by the real
// @microsoft/signalr client: run by TestBackplaneNodeClients
// (backplane_redis_test.go). It connects clients of every variant to each of
// HUB_URLS (comma-separated), prints {"ready":true}, waits until each client
// has N*SENDERS ReceiveLeadUpdate messages (or 30 s), and prints one line per
// client: {"client", "got": [messages in arrival order]}.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const T = signalR.HttpTransportType;
const urls = process.env.HUB_URLS.split(",");
const want = Number(process.env.N) * Number(process.env.SENDERS);
const variants = [
  { name: "ws/json", transport: T.WebSockets, msgpack: false },
  { name: "ws/msgpack", transport: T.WebSockets, msgpack: true },
  { name: "sse/json", transport: T.ServerSentEvents, msgpack: false },
  { name: "lp/msgpack", transport: T.LongPolling, msgpack: true },
];

const clients = [];
for (const [i, url] of urls.entries()) {
  for (const v of variants) {
    let b = new signalR.HubConnectionBuilder()
      .withUrl(url + "/leadupdates", { transport: v.transport })
      .configureLogging(signalR.LogLevel.None);
    if (v.msgpack) b = b.withHubProtocol(new MessagePackHubProtocol());
    const conn = b.build();
    const got = [];
    let resolve;
    const done = new Promise((r) => (resolve = r));
    conn.on("ReceiveLeadUpdate", (m) => {
      got.push(m);
      if (got.length === want) resolve();
    });
    await conn.start();
    clients.push({ name: `instance${i} ${v.name}`, conn, got, done });
  }
}
console.log(JSON.stringify({ ready: true }));
let timer;
await Promise.race([
  Promise.all(clients.map((c) => c.done)),
  new Promise((r) => (timer = setTimeout(r, 30000))),
]);
clearTimeout(timer);
// A moment for anything extra (a duplicate) to arrive.
await new Promise((r) => setTimeout(r, 200));
for (const c of clients) {
  console.log(JSON.stringify({ client: c.name, got: c.got }));
  await c.conn.stop();
}
