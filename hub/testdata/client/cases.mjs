// What every case script here shares: each case prints one JSON line
// {"name", "ok", "detail"}, which runClient (hub/nodeclient_test.go) turns
// into a subtest.
let failed = 0;

export function report(name, ok, detail = "") {
  if (!ok) failed++;
  console.log(JSON.stringify({ name, ok, detail: String(detail) }));
}

// failures is how many cases reported a failure so far.
export const failures = () => failed;

// check runs fn as the case name, failing it after ms.
export async function check(name, fn, ms) {
  try {
    await withTimeout(fn(), ms, "case timed out");
    report(name, true);
  } catch (e) {
    report(name, false, e && e.stack ? e.stack : e);
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(p, ms, msg) {
  let t;
  return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(msg)), ms)))]).finally(() => clearTimeout(t));
}
