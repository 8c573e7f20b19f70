// A dashboard stand-in for the end-to-end tests: the real @microsoft/signalr
// client connects to HUB_URL with TOKEN (MessagePack when PROTOCOL is
// "messagepack"), reconnects automatically, and prints one JSON line per
// event: {"state": ...} for connection changes, {"method", "m"} for every
// message received. Commands arrive as JSON lines on stdin:
// {"join": id} / {"leave": id} answer {"joined"|"left": id} or
// {"joinError"|"leaveError": message}; {"catchup": position} invokes
// CatchUp and answers {"caughtUp": {position, reload}} or
// {"catchUpError": message}.
import { createRequire } from "node:module";
import readline from "node:readline";
const require = createRequire(process.env.SIGNALR_CLIENT + "/package.json");
const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

const out = (v) => process.stdout.write(JSON.stringify(v) + "\n");
// STATEFUL=1: WebSockets with withStatefulReconnect(), so that a broken
// socket re-attaches to the same connection (a {"connectionId"} line
// follows "connected").
const stateful = process.env.STATEFUL === "1";
let b = new signalR.HubConnectionBuilder()
  .withUrl(process.env.HUB_URL, stateful
    ? { transport: signalR.HttpTransportType.WebSockets, accessTokenFactory: () => process.env.TOKEN }
    : { accessTokenFactory: () => process.env.TOKEN })
  .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (ctx) => (ctx.elapsedMilliseconds < 60000 ? 250 : null) })
  .configureLogging(signalR.LogLevel.None);
if (process.env.PROTOCOL === "messagepack") b = b.withHubProtocol(new MessagePackHubProtocol());
if (stateful) b = b.withStatefulReconnect();
const c = b.build();
for (const method of ["ReceiveLeadUpdate", "ReceiveMetricsUpdate", "ReceiveReload"]) {
  c.on(method, (m) => out({ method, m: { ...m, timestamp: String(m.timestamp) } }));
}
c.onreconnecting(() => out({ state: "reconnecting" }));
c.onreconnected(() => out({ state: "reconnected" }));
c.onclose((e) => { out({ state: "closed", error: e ? String(e) : "" }); process.exit(0); });
await c.start();
out({ state: "connected" });
if (stateful) out({ connectionId: c.connectionId });

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const cmd = JSON.parse(line);
  if ("catchup" in cmd) {
    try {
      out({ caughtUp: await c.invoke("CatchUp", cmd.catchup) });
    } catch (e) {
      out({ catchUpError: String(e.message || e) });
    }
  }
  for (const [verb, method] of [["join", "JoinLeadGroup"], ["leave", "LeaveLeadGroup"]]) {
    if (!(verb in cmd)) continue;
    try {
      await c.invoke(method, cmd[verb]);
      out({ [verb === "join" ? "joined" : "left"]: cmd[verb] });
    } catch (e) {
      out({ [verb + "Error"]: String(e.message || e) });
    }
  }
});
rl.on("close", async () => { await c.stop(); });
