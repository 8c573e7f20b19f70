// What the catch-up, stateful and hand-off scripts share: a real
// @microsoft/signalr connection that records what it receives and what
// happens to it, the waits on those records, and the control endpoint of
// the Go test. Defaults that differ between the scripts (timeouts, the hub,
// reconnect delays) are the callers', so each script keeps its own.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { assert, sleep, withTimeout } from "./cases.mjs";

export const State = signalR.HubConnectionState;

// variants are the hub protocols every case runs with; ONLY=json or
// ONLY=msgpack keeps one.
export const variants = [
  { name: "json", msgpack: false },
  { name: "msgpack", msgpack: true },
].filter((v) => !process.env.ONLY || v.name === process.env.ONLY);

// build builds a connection to base for variant v (v.msgpack picks the
// protocol) that records into c.received what record makes of each
// ReceiveLeadUpdate, and into c.events its reconnecting, reconnected and
// close events. c.auth.token is the token of every negotiate, so a case
// may change it between connections. reconnect, when given, turns on
// withAutomaticReconnect with those delays; stateful, withStatefulReconnect.
export function build(v, { base, token = "alice", transport = signalR.HttpTransportType.WebSockets, stateful, reconnect, record }) {
  const auth = { token };
  let b = new signalR.HubConnectionBuilder()
    .withUrl(base + "/leadupdates", { transport, accessTokenFactory: () => auth.token })
    .configureLogging(process.env.CLIENT_DEBUG ? signalR.LogLevel.Trace : signalR.LogLevel.None);
  if (reconnect) b = b.withAutomaticReconnect(reconnect);
  if (stateful) b = b.withStatefulReconnect();
  if (v.msgpack) b = b.withHubProtocol(new MessagePackHubProtocol());
  const c = b.build();
  c.auth = auth;
  c.received = [];
  c.waiters = [];
  c.events = [];
  c.on("ReceiveLeadUpdate", (m) => {
    c.received.push(record(m));
    for (const w of c.waiters.splice(0)) w();
  });
  c.onreconnecting((e) => c.events.push({ ev: "reconnecting", error: e ? e.message : "" }));
  c.onreconnected((id) => c.events.push({ ev: "reconnected", id }));
  c.onclose((e) => c.events.push({ ev: "close", error: e ? e.message : "" }));
  return c;
}

// position is the record of a ReceiveLeadUpdate carrying a log position.
export const position = (m) => Number(m.position);

// untilReceived waits, woken by each message, until pred(c.received)
// holds, failing with failure() after ms.
export async function untilReceived(c, pred, ms, failure) {
  const deadline = Date.now() + ms;
  while (!pred(c.received)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(failure());
    await withTimeout(new Promise((r) => c.waiters.push(r)), left, "").catch(() => {});
  }
}

// untilPosition waits until c received position pos; the failure shows the
// last positions received.
export const untilPosition = (c, pos, ms, last) =>
  untilReceived(c, (r) => r.includes(pos), ms,
    () => `timed out waiting for position ${pos}; got ${c.received.length}, last ${c.received.slice(-last)}`);

// untilEvent waits until c recorded an event ev and returns it.
export async function untilEvent(c, ev, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const e = c.events.find((e) => e.ev === ev);
    if (e) return e;
    if (Date.now() > deadline) throw new Error(`no ${ev} event; events ${JSON.stringify(c.events)}`);
    await sleep(20);
  }
}

// ctl calls the Go test's control endpoint base+path and returns its
// answer; a status of 300 or more fails.
export async function ctl(base, path, method) {
  const r = await fetch(base + path, { method });
  if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.text();
}

// stillTheSame checks that the client never noticed the cut: same
// connection id, Connected throughout, no reconnect or close events.
export function stillTheSame(c, id) {
  assert(c.connectionId === id, `connectionId ${c.connectionId}, was ${id}`);
  assert(c.state === State.Connected, `state ${c.state}`);
  assert(c.events.length === 0, `events ${JSON.stringify(c.events)}`);
}
