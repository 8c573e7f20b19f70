// Security cases for the hub, run by security_test.go with the real
// @microsoft/signalr client. CASE picks one; each prints one JSON line per
// variant: {"name", "ok", "detail"}. HUB_URL serves the hub; tokens are
// "user.expiresAtUnixMs" (security_test.go's expiringTokens), and
// POST /ctl/send?to=user:ID&tag=T sends {"tag": T} to a user.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { report, sleep, withTimeout } from "./cases.mjs";

const HUB = process.env.HUB_URL;
const T = signalR.HttpTransportType;
const variants = [
  { name: "ws/json", transport: T.WebSockets, msgpack: false },
  { name: "ws/json/stateful", transport: T.WebSockets, msgpack: false, stateful: true },
  { name: "sse/json", transport: T.ServerSentEvents, msgpack: false },
  { name: "lp/msgpack", transport: T.LongPolling, msgpack: true },
];


function build(v, tokenFactory) {
  let b = new signalR.HubConnectionBuilder()
    .withUrl(HUB + "/leadupdates", { transport: v.transport, accessTokenFactory: tokenFactory })
    .withAutomaticReconnect([0, 200, 500, 1000, 1000, 1000])
    .configureLogging(signalR.LogLevel.None);
  if (v.msgpack) b = b.withHubProtocol(new MessagePackHubProtocol());
  if (v.stateful) b = b.withStatefulReconnect();
  const c = b.build();
  c.received = [];
  c.on("ReceiveLeadUpdate", (m) => c.received.push(m));
  return c;
}

async function send(user, tag) {
  const r = await fetch(`${HUB}/ctl/send?to=user:${user}&tag=${tag}`, { method: "POST" });
  if (r.status >= 300) throw new Error(`send: ${r.status}`);
}

async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await sleep(50);
  }
}

// expiry: a token valid for 2 s. The hub must close the connection at
// expiry with allowReconnect; the client fetches a fresh token and
// reconnects, and receives what is sent after.
async function expiry(v, i) {
  const user = "u" + i;
  let calls = 0;
  const c = build(v, () => {
    calls++;
    return `${user}.${Date.now() + 2000}`;
  });
  let reconnecting = 0, reconnected = 0, closed = false;
  c.onreconnecting(() => reconnecting++);
  c.onreconnected(() => reconnected++);
  c.onclose(() => (closed = true));
  await c.start();
  const firstId = c.connectionId;
  await waitFor(() => reconnected > 0 || closed, 10000, "a reconnect after the token expired");
  if (closed) throw new Error("closed for good instead of reconnecting");
  if (c.connectionId === firstId) throw new Error("the same connection was re-attached after its token expired");
  if (calls < 2) throw new Error(`accessTokenFactory called ${calls} times`);
  await send(user, "after");
  await waitFor(() => c.received.some((m) => m.tag === "after"), 5000, "a message after the reconnect");
  await c.stop();
}

// connect: while another user floods negotiate, this user connects within
// 5 s and receives an event.
async function connect(v, i) {
  const user = "c" + i;
  const c = build(v, () => `${user}.${Date.now() + 3600000}`);
  await withTimeout(c.start(), 5000, "not connected within 5 s");
  await send(user, "hello");
  await waitFor(() => c.received.some((m) => m.tag === "hello"), 5000, "an event");
  await c.stop();
}

// burst: 3,000 messages sent at once all arrive, in order, and the
// connection stays.
async function burst(v, i) {
  const user = "b" + i;
  const c = build(v, () => `${user}.${Date.now() + 3600000}`);
  let reconnecting = false;
  c.onreconnecting(() => (reconnecting = true));
  await c.start();
  const n = 3000;
  const r = await fetch(`${HUB}/ctl/send?to=user:${user}&tag=burst&n=${n}`, { method: "POST" });
  if (r.status >= 300) throw new Error(`send: ${r.status}`);
  await waitFor(() => c.received.length >= n || reconnecting, 20000, `${n} messages (got ${c.received.length})`);
  if (reconnecting) throw new Error(`closed after ${c.received.length} of ${n} messages`);
  for (const [k, m] of c.received.entries()) if (m.seq !== k) throw new Error(`message ${k} is seq ${m.seq}`);
  await c.stop();
}

const cases = { expiry, connect, burst };
const fn = cases[process.env.CASE];
if (!fn) throw new Error("unknown CASE " + process.env.CASE);
// burst is for Long Polling, whose queue is bounded in bytes because it holds
// a burst until the next poll. WebSockets and Server-Sent Events keep
// WithSendQueue messages while their writer drains: whether a burst sent
// faster than the socket drains fits depends on the machine's speed, so it
// is no test; a stateful connection is bounded by its replay buffer.
const only = { burst: (v) => v.transport === T.LongPolling };
await Promise.all(
  variants.filter(only[process.env.CASE] || (() => true)).map(async (v, i) => {
    const name = `${process.env.CASE} ${v.name}`;
    try {
      await withTimeout(fn(v, i), 30000, "case timed out");
      report(name, true);
    } catch (e) {
      report(name, false, e && e.stack ? e.stack : e);
    }
  }),
);
// Connections of a failed case may still be open: do not wait for them.
process.exit(0);
