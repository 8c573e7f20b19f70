// CatchUp cases, run by TestCatchUpClient (catchup_client_test.go) with the
// real @microsoft/signalr client over WebSockets, JSON and MessagePack. Each
// case prints one JSON line: {"name", "ok", "detail"}. HUB_URL is a hub with
// a log in memory, static tokens "alice" and "bob" and the "owner" filter;
// /ctl/publish?n=N[&owner=user] appends N entries (ReceiveLeadUpdate
// {position, owner}) and publishes them, answering the last position;
// /ctl/head answers the last position; /ctl/prune?upto=P prunes the log.
// SMALL_URL is the same with a send queue of 4 messages (16 KB for Long
// Polling).
import * as signalR from "@microsoft/signalr";
import { assert, check as checkWithin } from "./cases.mjs";
import { build as buildClient, ctl as ctlAt, position, untilPosition, variants } from "./hubclient.mjs";

const HUB = process.env.HUB_URL;
const SMALL = process.env.SMALL_URL;
const T = signalR.HttpTransportType;

const check = (name, fn) => checkWithin(name, fn, 60000);

// build also records into c.reloads the position of each Reload.
function build(v, { token = "alice", stateful = false, base = HUB, transport = T.WebSockets } = {}) {
  const c = buildClient(v, { base, token, transport, stateful, record: position });
  c.reloads = [];
  c.on("Reload", (after) => c.reloads.push(Number(after)));
  return c;
}

const until = (c, pos, ms = 30000) => untilPosition(c, pos, ms, 3);

const ctl = async (path, method = "POST", base = HUB) => Number(await ctlAt(base, path, method));

const head = () => ctl("/ctl/head", "GET");
const publish = (n, owner = "") => ctl(`/ctl/publish?n=${n}&owner=${owner}`);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function sameList(got, want, what) {
  assert(got.length === want.length && got.every((p, i) => p === want[i]),
    `${what}: got ${got.length} positions [${got.slice(0, 8)}...${got.slice(-3)}], want ${want.length} [${want.slice(0, 8)}...${want.slice(-3)}]`);
}

// exactlyOnce checks that got holds each of want once, in order but for
// live messages that may come before the replay (one descent at most).
function exactlyOnce(got, want, what) {
  sameList([...got].sort((a, b) => a - b), want, what);
  const descents = got.filter((p, i) => i > 0 && p < got[i - 1]).length;
  assert(descents <= 1, `${what}: ${descents} descents in ${got.join(",").slice(0, 400)}`);
}

for (const v of variants) {
  const n = (s) => `${v.name}/${s}`;

  await check(n("the replay, filtered, before the answer; then live"), async () => {
    const h0 = await head();
    await publish(100);
    await publish(50, "bob");
    const last = await publish(100);
    const c = build(v);
    await c.start();
    try {
      const r = await c.invoke("CatchUp", h0);
      assert(r.position === last && r.reload === false, `result ${JSON.stringify(r)}, want position ${last}`);
      sameList(c.received, [...range(h0 + 1, h0 + 100), ...range(h0 + 151, last)], "the replay");
      const live = await publish(50);
      await until(c, live);
      sameList(c.received.slice(200), range(last + 1, live), "live");
    } finally {
      await c.stop();
    }
  });

  await check(n("publishing during the catch-up: every position once, in order"), async () => {
    const h0 = await head();
    await publish(1000);
    const c = build(v);
    await c.start();
    try {
      const pub = publish(3000); // the hub publishes while the catch-up runs
      const r = await c.invoke("CatchUp", h0);
      const last = await pub;
      await until(c, last);
      exactlyOnce(c.received, range(h0 + 1, last), "received");
      assert(r.position >= h0 + 1000 && r.position <= last && !r.reload, `result ${JSON.stringify(r)}`);
    } finally {
      await c.stop();
    }
  });

  await check(n("withStatefulReconnect: a catch-up beyond the replay buffer waits for acks"), async () => {
    const h0 = await head();
    const last = await publish(1500); // about 120 KB, the buffer is 100 KB
    const c = build(v, { stateful: true });
    await c.start();
    try {
      assert(c.connection.features.reconnect === true, "not stateful");
      const r = await c.invoke("CatchUp", h0);
      assert(r.position === last, `result ${JSON.stringify(r)}`);
      sameList(c.received, range(h0 + 1, last), "the replay");
      const live = await publish(10);
      await until(c, live);
      sameList(c.received.slice(1500), range(last + 1, live), "live");
    } finally {
      await c.stop();
    }
  });

  await check(n("two calls at once: the second sends nothing twice"), async () => {
    const h0 = await head();
    const last = await publish(500);
    const c = build(v);
    await c.start();
    try {
      const [a, b] = await Promise.all([c.invoke("CatchUp", h0), c.invoke("CatchUp", h0)]);
      assert(a.position === last && b.position === last, `results ${JSON.stringify([a, b])}`);
      sameList(c.received, range(h0 + 1, last), "received");
    } finally {
      await c.stop();
    }
  });

  await check(n("pruned: the reload message, then live"), async () => {
    const h0 = await head();
    await publish(20);
    await ctl(`/ctl/prune?upto=${h0 + 10}`);
    const c = build(v);
    await c.start();
    try {
      const r = await c.invoke("CatchUp", h0);
      assert(r.reload === true && r.position === h0 + 20, `result ${JSON.stringify(r)}`);
      assert(c.reloads.length === 1 && c.reloads[0] === h0, `reloads ${c.reloads}`);
      assert(c.received.length === 0, `replayed ${c.received}`);
      const live = await publish(3);
      await until(c, live);
      sameList(c.received, range(h0 + 21, live), "live");
    } finally {
      await ctl("/ctl/prune?upto=0");
      await c.stop();
    }
  });

  await check(n("bad positions are refused, the connection stays"), async () => {
    const c = build(v);
    await c.start();
    try {
      for (const [arg, want] of [
        [-1, /position must be an integer of 0 or more/],
        [1.5, /Argument 1 must be an integer/],
        ["5", /Argument 1 must be an integer/],
        [null, /Argument 1 must be an integer/],
      ]) {
        const err = await c.invoke("CatchUp", arg).then(() => null, (e) => e);
        assert(err && want.test(err.message), `CatchUp(${JSON.stringify(arg)}): ${err ? err.message : "no error"}`);
      }
      const r = await c.invoke("CatchUp", await head());
      assert(r.reload === false, `result ${JSON.stringify(r)}`);
      assert(c.state === signalR.HubConnectionState.Connected, `state ${c.state}`);
    } finally {
      await c.stop();
    }
  });
}

// A catch-up far beyond the send queue waits for the client to take what is
// queued, on every transport, and never closes the connection.
for (const t of [
  { name: "ws/json", transport: T.WebSockets, msgpack: false },
  { name: "ws/msgpack", transport: T.WebSockets, msgpack: true },
  { name: "sse/json", transport: T.ServerSentEvents, msgpack: false },
  { name: "lp/json", transport: T.LongPolling, msgpack: false },
].filter((t) => !process.env.ONLY || t.name.endsWith(process.env.ONLY))) {
  await check(`${t.name}/a catch-up 500 times the send queue`, async () => {
    const h0 = await ctl("/ctl/head", "GET", SMALL);
    const last = await ctl("/ctl/publish?n=2000", "POST", SMALL);
    const c = build(t, { base: SMALL, transport: t.transport });
    let closed = null;
    c.onclose((e) => (closed = e ? e.message : "closed"));
    await c.start();
    try {
      const r = await c.invoke("CatchUp", h0);
      assert(r.position === last, `result ${JSON.stringify(r)}`);
      sameList(c.received, range(h0 + 1, last), "the replay");
      assert(closed === null && c.state === signalR.HubConnectionState.Connected, `closed: ${closed}`);
    } finally {
      await c.stop();
    }
  });
}
