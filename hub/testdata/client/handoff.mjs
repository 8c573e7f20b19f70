// Hand-off cases, run by TestHandoffClient (handoff_client_test.go) with
// the real @microsoft/signalr client and withStatefulReconnect(), JSON and
// MessagePack. Each case prints one JSON line: {"name", "ok", "detail"}.
// HUB_URL is a TCP proxy in front of two instances sharing a session store
// and a log (a 2 s stateful window); CTL_URL/ctl/switch?to=N&hold=ms points
// the proxy at instance N and cuts every connection (new ones held for hold
// ms); /ctl/publish?n=N[&lead=id] appends N entries (ReceiveLeadUpdate
// {position, group}) for everyone or one lead's group and publishes them on
// both instances, answering the last position; /ctl/where?id= answers
// "a,b", each instance's copy of a connection: 1 live, d detached, 0 none;
// /ctl/owner?id= the instance owning its session ("none" once deleted);
// /ctl/disconnects?id= "a,b", the OnDisconnected runs on each instance.
import { assert, check as checkWithin, sleep, withTimeout } from "./cases.mjs";
import { State, build as buildClient, ctl as ctlAt, position, stillTheSame, untilEvent as untilEventWithin, untilPosition, variants } from "./hubclient.mjs";

const HUB = process.env.HUB_URL;
const CTL = process.env.CTL_URL;

const check = (name, fn) => checkWithin(name, fn, 60000);

const build = (v, { reconnect = [0, 200, 500, 1000] } = {}) =>
  buildClient(v, { base: HUB, stateful: true, reconnect, record: position });

// start starts c, again if it fails: the cut that points the proxy at an
// instance may break the socket the client's fetch keeps alive for its
// negotiate (which must reach the instance its WebSocket does).
async function start(c) {
  for (let i = 0; ; i++) {
    try {
      return await c.start();
    } catch (e) {
      if (i >= 3) throw e;
      await sleep(100);
    }
  }
}

const until = (c, pos, ms = 20000) => untilPosition(c, pos, ms, 5);

// saved waits until instance 1 has saved c's session: saves are batched
// every 100 ms, and a re-attach elsewhere before the first is refused (a
// new connection, by design), which is not what these cases are about.
const saved = (id) => untilCtl(`/ctl/owner?id=${id}`, (o) => o === "1", "instance 1 to save the session");

async function untilCtl(path, pred, what, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await ctl(path, "GET");
    if (pred(got)) return got;
    if (Date.now() > deadline) throw new Error(`${what}: ${path} answers ${got}`);
    await sleep(50);
  }
}

const untilEvent = (c, ev, ms = 20000) => untilEventWithin(c, ev, ms);

const ctl = (path, method = "POST") => ctlAt(CTL, path, method);

// publish publishes n entries and returns their positions.
async function publish(n, lead = 0) {
  const last = Number(await ctl(`/ctl/publish?n=${n}&lead=${lead}`));
  return Array.from({ length: n }, (_, i) => last - n + 1 + i);
}

// onceInOrder checks that, duplicates dropped by position (the documented
// client pattern), the client received exactly want, in increasing order.
function onceInOrder(c, want) {
  const seen = new Set();
  const got = c.received.filter((p) => (seen.has(p) ? false : seen.add(p)));
  const w = [...want].sort((a, b) => a - b);
  const show = (a) => `${a.length}: ${a.slice(0, 10).join(",")} … ${a.slice(-10).join(",")}`;
  assert(got.length === w.length, `received ${show(got)}; want ${show(w)}`);
  got.forEach((p, i) => assert(p === w[i], `position ${i} is ${p}, want ${w[i]}: received ${show(got)}`));
}

let nextLead = 5000;

for (const v of variants) {
  const n = (s) => `${v.name}/${s}`;

  await check(n("resumes on the other instance and back: every entry once after de-dup by position, in order, same id and groups"), async () => {
    await ctl("/ctl/switch?to=1&hold=0");
    const c = build(v);
    await start(c);
    try {
      const id = c.connectionId;
      const lead = nextLead++;
      await c.invoke("JoinLeadGroup", lead);
      assert((await ctl(`/ctl/where?id=${id}`, "GET")) === "1,0", "not on instance 1");
      const want = await publish(30);
      await until(c, want.at(-1));
      // Cut; the client comes back through the proxy to instance 2, which
      // never saw it. What is published meanwhile, instance 1 buffers in
      // vain; instance 2 must replay it from the log.
      await saved(id);
      await ctl("/ctl/switch?to=2&hold=400");
      want.push(...(await publish(200)), ...(await publish(5, lead)), ...(await publish(20)));
      await until(c, want.at(-1));
      await untilCtl(`/ctl/where?id=${id}`, (w) => w.endsWith(",1"), "live on instance 2");
      want.push(...(await publish(10, lead)));
      await until(c, want.at(-1));
      await sleep(300); // duplicates beyond de-dup would come now
      onceInOrder(c, want);
      stillTheSame(c, id);
      assert((await ctl(`/ctl/owner?id=${id}`, "GET")) === "2", "instance 2 does not own the session");

      // What the client calls now runs on instance 2.
      const lead2 = nextLead++;
      await c.invoke("JoinLeadGroup", lead2);
      want.push(...(await publish(3, lead2)));
      await until(c, want.at(-1));

      // Instance 1's copy expires: it neither deletes the session nor
      // runs OnDisconnected, since instance 2 holds the connection.
      await untilCtl(`/ctl/where?id=${id}`, (w) => w.startsWith("0"), "instance 1's copy expired");
      assert((await ctl(`/ctl/owner?id=${id}`, "GET")) === "2", "the session is no longer instance 2's");
      assert((await ctl(`/ctl/disconnects?id=${id}`, "GET")) === "0,0", "OnDisconnected ran");

      // And back to instance 1, which forgot it: resumed from the store.
      await ctl("/ctl/switch?to=1&hold=200");
      want.push(...(await publish(50)));
      await until(c, want.at(-1));
      await untilCtl(`/ctl/where?id=${id}`, (w) => w.startsWith("1"), "live on instance 1 again");
      want.push(...(await publish(2, lead)), ...(await publish(2, lead2)));
      await until(c, want.at(-1));
      await sleep(300);
      onceInOrder(c, want);
      stillTheSame(c, id);
      assert((await ctl(`/ctl/owner?id=${id}`, "GET")) === "1", "instance 1 does not own the session");
      await c.stop();
      // The connection ends once: OnDisconnected on instance 1 alone, and
      // instance 2's copy expires quietly.
      await untilCtl(`/ctl/where?id=${id}`, (w) => w === "0,0", "both copies gone");
      await untilCtl(`/ctl/disconnects?id=${id}`, (d) => d === "1,0", "OnDisconnected once, on instance 1");
      assert((await ctl(`/ctl/owner?id=${id}`, "GET")) === "none", "the session was not deleted");
    } finally {
      await c.stop();
    }
  });

  await check(n("there and straight back, while the first instance still holds its copy: it resumes from the store, never from its copy"), async () => {
    await ctl("/ctl/switch?to=1&hold=0");
    const c = build(v);
    await start(c);
    try {
      const id = c.connectionId;
      const want = await publish(20);
      await until(c, want.at(-1));
      await saved(id);
      await ctl("/ctl/switch?to=2&hold=100");
      want.push(...(await publish(40)));
      await until(c, want.at(-1));
      await untilCtl(`/ctl/where?id=${id}`, (w) => w.endsWith(",1"), "live on instance 2");
      // Instance 1's copy (detached, 2 s window) is stale now: what it
      // buffered and its sequence ids must not reach the client.
      await ctl("/ctl/switch?to=1&hold=100");
      want.push(...(await publish(40)));
      await until(c, want.at(-1));
      await untilCtl(`/ctl/where?id=${id}`, (w) => w.startsWith("1"), "live on instance 1");
      want.push(...(await publish(5)));
      await until(c, want.at(-1));
      await sleep(300);
      onceInOrder(c, want);
      stillTheSame(c, id);
    } finally {
      await c.stop();
    }
  });

  await check(n("what the client sends across the hand-off runs on the new instance"), async () => {
    await ctl("/ctl/switch?to=1&hold=0");
    const c = build(v);
    await start(c);
    try {
      const id = c.connectionId;
      const [a, b, d] = [nextLead++, nextLead++, nextLead++];
      await c.invoke("JoinLeadGroup", a);
      await saved(id);
      await ctl("/ctl/switch?to=2&hold=400");
      await sleep(50);
      assert(c.state === State.Connected, `state ${c.state} during the cut`);
      const pb = c.invoke("JoinLeadGroup", b);
      await c.send("JoinLeadGroup", d);
      await withTimeout(pb, 10000, "the invoke sent during the cut did not complete");
      await c.invoke("LeaveLeadGroup", 1); // after everything before it
      const want = [...(await publish(1, a)), ...(await publish(1, b)), ...(await publish(1, d))];
      await until(c, want.at(-1));
      for (const p of want) await until(c, p);
      stillTheSame(c, id);
      assert((await ctl(`/ctl/where?id=${id}`, "GET")).endsWith(",1"), "not live on instance 2");
    } finally {
      await c.stop();
    }
  });

  await check(n("a re-attach with another user's token is refused: a new connection"), async () => {
    await ctl("/ctl/switch?to=1&hold=0");
    const c = build(v);
    await start(c);
    try {
      const id = c.connectionId;
      await sleep(300); // its session is saved
      c.auth.token = "bob";
      await ctl("/ctl/switch?to=2&hold=200");
      const e = await untilEvent(c, "reconnected");
      assert(e.id && e.id !== id, `reconnected as ${e.id}, was ${id}`);
      assert((await ctl(`/ctl/owner?id=${id}`, "GET")) !== "2", "instance 2 claimed another user's session");
    } finally {
      await c.stop();
    }
  });
}
