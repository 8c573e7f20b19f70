// Conformance cases for the hub, run by TestConformance (conformance_test.go)
// with the real @microsoft/signalr client. Each case prints one JSON line:
// {"name", "ok", "detail"}. HUB_URL serves the hub with static tokens
// "alice"/"bob", lead 666 denied, at most 3 lead groups, the default 32 KB
// message limit, and /ctl/* endpoints; FALLBACK_URL is the same hub behind a
// proxy that refuses WebSocket upgrades and Server-Sent Events.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { assert, check as checkWithin, failures, report, sleep, withTimeout } from "./cases.mjs";

const HUB = process.env.HUB_URL;
const FALLBACK = process.env.FALLBACK_URL;
const T = signalR.HttpTransportType;
const LIMIT = 32 * 1024;

const variants = [
  { name: "ws/json", transport: T.WebSockets, msgpack: false },
  { name: "ws/msgpack", transport: T.WebSockets, msgpack: true },
  { name: "sse/json", transport: T.ServerSentEvents, msgpack: false },
  { name: "lp/json", transport: T.LongPolling, msgpack: false },
  { name: "lp/msgpack", transport: T.LongPolling, msgpack: true },
];

const check = (name, fn) => checkWithin(name, fn, 20000);

function build(v, { base = HUB, token = "alice", reconnect, transport = v.transport } = {}) {
  const opts = { transport };
  if (token !== null) opts.accessTokenFactory = () => token;
  let b = new signalR.HubConnectionBuilder().withUrl(base + "/leadupdates", opts).configureLogging(signalR.LogLevel.None);
  if (v.msgpack) b = b.withHubProtocol(new MessagePackHubProtocol());
  if (reconnect) b = b.withAutomaticReconnect(reconnect);
  const c = b.build();
  c.received = [];
  c.waiters = [];
  c.on("ReceiveLeadUpdate", (m) => {
    c.received.push(m);
    for (const w of c.waiters.splice(0)) w();
  });
  return c;
}

// until waits for pred() over c.received.
async function until(c, pred, ms = 10000, what = "messages") {
  const deadline = Date.now() + ms;
  while (!pred(c.received)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${c.received.length}: ${JSON.stringify(c.received.slice(-3)).slice(0, 300)}`);
    await withTimeout(new Promise((r) => c.waiters.push(r)), left, `timed out waiting for ${what}; got ${c.received.length}`).catch(() => {});
  }
}

async function ctl(path, base = HUB) {
  const r = await fetch(base + path, { method: path.startsWith("/ctl/count") ? "GET" : "POST" });
  if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.text();
}

// marker sends a tagged message to c's connection and waits for it: since
// each connection's messages arrive in order, everything sent to c before
// it has arrived when it does.
async function marker(c) {
  const tag = "m" + Math.random();
  await ctl(`/ctl/send?to=conn:${c.connectionId}&tag=${tag}`);
  await until(c, (r) => r.some((m) => m.tag === tag), 10000, "marker");
}

async function rejects(p, re) {
  try {
    await p;
  } catch (e) {
    assert(re.test(e.message), `error ${JSON.stringify(e.message)} does not match ${re}`);
    return e;
  }
  throw new Error(`expected a rejection matching ${re}`);
}

// Closes after stop(): the case has to prove the connection was still up.
async function stillUp(c) {
  assert(c.state === signalR.HubConnectionState.Connected, `state is ${c.state}`);
  await c.invoke("JoinLeadGroup", 1);
  await c.invoke("LeaveLeadGroup", 1);
}

for (const v of variants) {
  const n = (s) => `${v.name}/${s}`;

  await check(n("connect with a token"), async () => {
    const c = build(v);
    await c.start();
    try {
      assert(typeof c.connectionId === "string" && c.connectionId.length > 10, "no connectionId");
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });

  await check(n("401 without a token"), async () => {
    const c = build(v, { token: null });
    await rejects(c.start(), /401/);
  });

  await check(n("401 with a bad token"), async () => {
    const c = build(v, { token: "mallory" });
    await rejects(c.start(), /401/);
  });

  await check(n("receive on LeadUpdates"), async () => {
    const c = build(v);
    await c.start();
    try {
      await ctl(`/ctl/send?to=group:LeadUpdates&n=3&tag=lu-${v.name}`);
      await until(c, (r) => r.filter((m) => m.tag === `lu-${v.name}`).length === 3);
    } finally {
      await c.stop();
    }
  });

  await check(n("join and leave a lead group"), async () => {
    const c = build(v);
    await c.start();
    try {
      await c.invoke("JoinLeadGroup", 42);
      await ctl(`/ctl/send?to=group:Lead_42&tag=joined`);
      await until(c, (r) => r.some((m) => m.tag === "joined"));
      await c.invoke("LeaveLeadGroup", 42);
      await ctl(`/ctl/send?to=group:Lead_42&tag=left`);
      await marker(c);
      assert(!c.received.some((m) => m.tag === "left"), "received a group message after leaving");
    } finally {
      await c.stop();
    }
  });

  await check(n("a connection in two groups gets a message once"), async () => {
    const c = build(v);
    await c.start();
    try {
      await c.invoke("JoinLeadGroup", 5);
      await ctl(`/ctl/send?to=groups:LeadUpdates,Lead_5&tag=both`);
      await marker(c);
      const got = c.received.filter((m) => m.tag === "both").length;
      assert(got === 1, `received ${got} copies`);
    } finally {
      await c.stop();
    }
  });

  await check(n("user audience reaches every connection of the user"), async () => {
    const a = build(v, { token: "bob" });
    const b = build(v, { token: "bob" });
    const other = build(v);
    await Promise.all([a.start(), b.start(), other.start()]);
    try {
      await ctl(`/ctl/send?to=user:bob&tag=bob`);
      await until(a, (r) => r.some((m) => m.tag === "bob"));
      await until(b, (r) => r.some((m) => m.tag === "bob"));
      await marker(other);
      assert(!other.received.some((m) => m.tag === "bob"), "another user received bob's message");
    } finally {
      await Promise.all([a.stop(), b.stop(), other.stop()]);
    }
  });

  await check(n("a denied join rejects and the connection stays"), async () => {
    const c = build(v);
    await c.start();
    try {
      await rejects(c.invoke("JoinLeadGroup", 666), /not authorized/);
      await ctl(`/ctl/send?to=group:Lead_666&tag=denied`);
      await marker(c);
      assert(!c.received.some((m) => m.tag === "denied"), "received a denied group's message");
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });

  await check(n("invalid and over-the-cap joins reject"), async () => {
    const c = build(v);
    await c.start();
    try {
      await rejects(c.invoke("JoinLeadGroup", 0), /positive integer/);
      await rejects(c.invoke("JoinLeadGroup", -3), /positive integer/);
      await rejects(c.invoke("JoinLeadGroup", 1.5), /Argument 1 must be an integer/);
      await rejects(c.invoke("JoinLeadGroup", "7"), /Argument 1 must be an integer/);
      await rejects(c.invoke("JoinLeadGroup"), /expects 1/);
      for (const id of [11, 12, 13]) await c.invoke("JoinLeadGroup", id);
      await rejects(c.invoke("JoinLeadGroup", 14), /more than 3 leads/);
      await c.invoke("LeaveLeadGroup", 11);
      await c.invoke("JoinLeadGroup", 14);
      await c.invoke("LeaveLeadGroup", 14);
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });

  await check(n("1000 messages back-to-back arrive complete and in order"), async () => {
    const c = build(v);
    await c.start();
    try {
      await ctl(`/ctl/send?to=conn:${c.connectionId}&n=1000&tag=burst`);
      await until(c, (r) => r.filter((m) => m.tag === "burst").length >= 1000, 15000, "1000 messages");
      const seqs = c.received.filter((m) => m.tag === "burst").map((m) => m.seq);
      assert(seqs.length === 1000, `received ${seqs.length}`);
      seqs.forEach((s, i) => assert(s === i, `message ${i} has seq ${s}`));
    } finally {
      await c.stop();
    }
  });

  await check(n("a 1 MB server-to-client message is delivered"), async () => {
    const c = build(v);
    await c.start();
    try {
      await ctl(`/ctl/send?to=conn:${c.connectionId}&tag=big&pad=${1 << 20}`);
      await until(c, (r) => r.some((m) => m.tag === "big"));
      const m = c.received.find((m) => m.tag === "big");
      assert(m.pad.length === 1 << 20, `pad of ${m.pad.length} bytes`);
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });

  await check(n("invoke of an unknown or base method rejects; the connection stays"), async () => {
    const c = build(v);
    await c.start();
    try {
      await rejects(c.invoke("Nope"), /Method does not exist/);
      for (const m of ["OnConnected", "OnDisconnected", "Abort", "Close", "Initialize", "ConnectionID", "Groups", "Clients"]) {
        await rejects(c.invoke(m, "x"), /Method does not exist/);
      }
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });

  await check(n("send of an unknown method, a base method or bad arguments leaves it up"), async () => {
    const c = build(v);
    await c.start();
    try {
      await c.send("Nope", 1);
      await c.send("Abort");
      await c.send("JoinLeadGroup", "not a number");
      await c.send("JoinLeadGroup", 666);
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });

  await check(n("a message just under the limit passes; just over closes only that connection"), async () => {
    const c = build(v);
    const bystander = build(v);
    await Promise.all([c.start(), bystander.start()]);
    try {
      const closed = new Promise((r) => c.onclose(r));
      await rejects(c.invoke("Echo", "x".repeat(LIMIT - 200)), /Method does not exist/);
      c.invoke("Echo", "x".repeat(LIMIT + 200)).catch(() => {});
      const err = await withTimeout(closed, 10000, "the connection did not close");
      assert(/maximum message size/.test(String(err)), `close error: ${err}`);
      await stillUp(bystander);
    } finally {
      await Promise.all([c.stop(), bystander.stop()]);
    }
  });

  await check(n("messages batched in one frame, each under the limit, pass"), async () => {
    const c = build(v);
    await c.start();
    try {
      const big = "y".repeat(12 * 1024);
      const rs = await Promise.allSettled([c.invoke("Echo", big), c.invoke("Echo", big), c.invoke("Echo", big), c.invoke("JoinLeadGroup", 3)]);
      for (const r of rs.slice(0, 3)) assert(r.status === "rejected" && /Method does not exist/.test(r.reason.message), `batched invoke: ${r.reason}`);
      assert(rs[3].status === "fulfilled", `JoinLeadGroup in the batch: ${rs[3].reason}`);
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });

  await check(n("reconnect after a server-side close"), async () => {
    const c = build(v, { reconnect: [0, 200, 500] });
    await c.start();
    try {
      const firstId = c.connectionId;
      const reconnecting = new Promise((r) => c.onreconnecting(r));
      const reconnected = new Promise((r) => c.onreconnected(r));
      await ctl(`/ctl/disconnect?id=${firstId}`);
      const why = await withTimeout(reconnecting, 10000, "no onreconnecting");
      assert(/Connection closed by the server/.test(String(why)), `reconnecting because: ${why}`);
      const newId = await withTimeout(reconnected, 10000, "no onreconnected");
      assert(newId && newId !== firstId, "same connectionId after reconnect");
      await stillUp(c);
    } finally {
      await c.stop();
    }
  });
}

// Transport fallback: a proxy refuses WebSocket upgrades and Server-Sent
// Events; a client with default options ends up on long polling.
for (const msgpack of [false, true]) {
  const name = `fallback/${msgpack ? "msgpack" : "json"}/to long polling when WebSockets and SSE fail`;
  await check(name, async () => {
    const c = build({ msgpack }, { base: FALLBACK, transport: undefined });
    await c.start();
    try {
      await stillUp(c);
      await ctl(`/ctl/send?to=conn:${c.connectionId}&tag=fb`, FALLBACK);
      await until(c, (r) => r.some((m) => m.tag === "fb"));
    } finally {
      await c.stop();
    }
  });
}

await check("default options choose WebSockets", async () => {
  const c = build({ msgpack: false }, { transport: undefined });
  await c.start();
  try {
    assert(c.connection.transport && c.connection.transport.constructor.name === "WebSocketTransport", `transport ${c.connection.transport && c.connection.transport.constructor.name}`);
  } finally {
    await c.stop();
  }
});

await check("skipNegotiation over WebSockets", async () => {
  const c = new signalR.HubConnectionBuilder()
    .withUrl(HUB + "/leadupdates", { transport: T.WebSockets, skipNegotiation: true, accessTokenFactory: () => "alice" })
    .configureLogging(signalR.LogLevel.None)
    .build();
  await c.start();
  try {
    await c.invoke("JoinLeadGroup", 9);
  } finally {
    await c.stop();
  }
});

await check("withStatefulReconnect runs as a plain connection", async () => {
  const c = new signalR.HubConnectionBuilder()
    .withUrl(HUB + "/leadupdates", { accessTokenFactory: () => "alice" })
    .withStatefulReconnect()
    .configureLogging(signalR.LogLevel.None)
    .build();
  await c.start();
  try {
    await stillUp(c);
  } finally {
    await c.stop();
  }
});

// Last: every variant reconnects after the server restarts.
await check("every transport reconnects after a server restart", async () => {
  const cs = variants.map((v) => build(v, { reconnect: [0, 300, 600, 1000, 1000, 2000, 2000, 2000] }));
  await Promise.all(cs.map((c) => c.start()));
  try {
    const back = cs.map((c) => new Promise((r) => c.onreconnected(r)));
    await ctl("/ctl/restart?down=700");
    await withTimeout(Promise.all(back), 15000, "not every client reconnected");
    for (const c of cs) await stillUp(c);
    await ctl(`/ctl/send?to=group:LeadUpdates&tag=after-restart`);
    for (const c of cs) await until(c, (r) => r.some((m) => m.tag === "after-restart"));
  } finally {
    await Promise.all(cs.map((c) => c.stop()));
  }
});

process.exit(failures() ? 1 : 0);
