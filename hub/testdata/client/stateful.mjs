// Stateful reconnect cases, run by TestStatefulReconnectClient
// (stateful_client_test.go) with the real @microsoft/signalr client and
// withStatefulReconnect(). Each case prints one JSON line: {"name", "ok",
// "detail"}. HUB_URL is a hub with the default window and buffer behind a
// TCP proxy that CTL_URL/ctl/cut?hold=ms cuts (every connection dropped
// without a close frame, new ones held for hold ms); SHORT_HUB_URL and
// SHORT_CTL_URL the same with a 1 s window and a 4,000-byte buffer. Tokens
// are "alice" and "bob"; /ctl/joins?key=user/lead counts the times
// JoinLeadGroup ran.
import { assert, check as checkWithin, sleep, withTimeout } from "./cases.mjs";
import { State, build as buildClient, ctl as ctlAt, stillTheSame, untilEvent as untilEventWithin, untilReceived, variants } from "./hubclient.mjs";

const HUB = process.env.HUB_URL;
const CTL = process.env.CTL_URL;
const SHORT = process.env.SHORT_HUB_URL;
const SHORT_CTL = process.env.SHORT_CTL_URL;

const check = (name, fn) => checkWithin(name, fn, 30000);

const build = (v, { base = HUB, stateful = true, reconnect = [0, 200, 500, 1000] } = {}) =>
  buildClient(v, { base, stateful, reconnect, record: (m) => m });

const until = (c, pred, ms = 15000, what = "messages") =>
  untilReceived(c, pred, ms, () => `timed out waiting for ${what}; got ${c.received.length}: ${JSON.stringify(c.received.slice(-3)).slice(0, 300)}`);

const untilEvent = (c, ev, ms = 15000) => untilEventWithin(c, ev, ms);

const ctl = (base, path) => ctlAt(base, path, path.startsWith("/ctl/joins") || path.startsWith("/ctl/count") ? "GET" : "POST");

// exactlyOnce checks that the messages tagged tag are seq 0..n-1, each
// once, in order.
function exactlyOnce(c, tag, n) {
  const seqs = c.received.filter((m) => m.tag === tag).map((m) => m.seq);
  assert(seqs.length === n, `${tag}: ${seqs.length} messages, want ${n}: ${seqs.join(",").slice(0, 400)}`);
  seqs.forEach((s, i) => assert(s === i, `${tag}: message ${i} is seq ${s}: ${seqs.join(",").slice(0, 400)}`));
}

let nextLead = 1000;

for (const v of variants) {
  const n = (s) => `${v.name}/${s}`;

  await check(n("negotiated: version 2 and the message buffer"), async () => {
    const c = build(v);
    await c.start();
    try {
      assert(c.connection.features.reconnect === true, "features.reconnect is not true");
      assert(c._messageBuffer, "the client has no message buffer");
    } finally {
      await c.stop();
    }
  });

  await check(n("a burst crosses the cut: every message once, in order, same id and groups"), async () => {
    const c = build(v);
    await c.start();
    try {
      const id = c.connectionId;
      const lead = nextLead++;
      await c.invoke("JoinLeadGroup", lead);
      await ctl(CTL, `/ctl/send?to=conn:${id}&n=200&tag=before`);
      await ctl(CTL, `/ctl/cut?hold=300`);
      await ctl(CTL, `/ctl/send?to=conn:${id}&n=200&tag=during`);
      await until(c, (r) => r.filter((m) => m.tag === "during").length >= 200, 15000, "the burst");
      await sleep(300); // duplicates would come now
      exactlyOnce(c, "before", 200);
      exactlyOnce(c, "during", 200);
      const firstDuring = c.received.findIndex((m) => m.tag === "during");
      assert(c.received.slice(firstDuring).every((m) => m.tag === "during"), "order across the cut");
      stillTheSame(c, id);
      await ctl(CTL, `/ctl/send?to=group:Lead_${lead}&tag=group`);
      await until(c, (r) => r.some((m) => m.tag === "group"), 10000, "the lead group");
      // A second cut, after the first resume, works the same.
      await ctl(CTL, `/ctl/cut?hold=100`);
      await ctl(CTL, `/ctl/send?to=conn:${id}&n=50&tag=again`);
      await until(c, (r) => r.filter((m) => m.tag === "again").length >= 50, 15000, "the second burst");
      await sleep(300);
      exactlyOnce(c, "again", 50);
      stillTheSame(c, id);
    } finally {
      await c.stop();
    }
  });

  await check(n("what the client sends across the cut runs once"), async () => {
    const c = build(v);
    await c.start();
    try {
      const id = c.connectionId;
      const [a, b, d] = [nextLead++, nextLead++, nextLead++];
      // Received by the hub but not yet acknowledged: the client resends it.
      await c.invoke("JoinLeadGroup", a);
      await ctl(CTL, `/ctl/cut?hold=400`);
      await sleep(50);
      assert(c.state === State.Connected, `state ${c.state} during the cut`);
      const pb = c.invoke("JoinLeadGroup", b);
      await c.send("JoinLeadGroup", d);
      await withTimeout(pb, 10000, "the invoke sent during the cut did not complete");
      await c.invoke("LeaveLeadGroup", 1); // after everything before it
      await sleep(1500); // an Ack round, and any duplicate
      for (const lead of [a, b, d]) {
        const runs = await ctl(CTL, `/ctl/joins?key=alice/${lead}`);
        assert(runs === "1", `JoinLeadGroup(${lead}) ran ${runs} times`);
      }
      for (const lead of [a, b, d]) await ctl(CTL, `/ctl/send?to=group:Lead_${lead}&tag=g${lead}`);
      await until(c, (r) => [a, b, d].every((l) => r.some((m) => m.tag === `g${l}`)), 10000, "the three groups");
      stillTheSame(c, id);
    } finally {
      await c.stop();
    }
  });

  await check(n("the window expires: a normal reconnect with a new id"), async () => {
    const c = build(v, { base: SHORT });
    await c.start();
    try {
      const id = c.connectionId;
      await ctl(SHORT_CTL, `/ctl/cut?hold=3000`);
      const e = await untilEvent(c, "reconnected", 20000);
      assert(e.id && e.id !== id, `reconnected as ${e.id}, was ${id}`);
      assert(c.state === State.Connected, `state ${c.state}`);
      assert(c.connection.features.reconnect === true, "the new connection is not stateful");
    } finally {
      await c.stop();
    }
  });

  await check(n("the buffer overflows: a Close with allowReconnect, then a new id"), async () => {
    const c = build(v, { base: SHORT });
    await c.start();
    try {
      const id = c.connectionId;
      await ctl(SHORT_CTL, `/ctl/send?to=conn:${id}&n=60&pad=100&tag=big`);
      const r = await untilEvent(c, "reconnecting");
      assert(/did not acknowledge/.test(r.error), `reconnecting with ${JSON.stringify(r.error)}`);
      const e = await untilEvent(c, "reconnected");
      assert(e.id && e.id !== id, `reconnected as ${e.id}, was ${id}`);
      assert(!c.events.some((e) => e.ev === "close"), `events ${JSON.stringify(c.events)}`);
    } finally {
      await c.stop();
    }
  });

  await check(n("without withStatefulReconnect nothing changes: a cut is a reconnect"), async () => {
    const c = build(v, { stateful: false });
    await c.start();
    try {
      assert(!c.connection.features.reconnect, "features.reconnect is set");
      const id = c.connectionId;
      await ctl(CTL, `/ctl/cut?hold=0`);
      const e = await untilEvent(c, "reconnected");
      assert(e.id && e.id !== id, `reconnected as ${e.id}, was ${id}`);
    } finally {
      await c.stop();
    }
  });
}
