import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
const base = process.argv[2];
for (const [name, transport, msgpack] of [["ws", signalR.HttpTransportType.WebSockets, false], ["ws-msgpack", signalR.HttpTransportType.WebSockets, true], ["sse", signalR.HttpTransportType.ServerSentEvents, false], ["lp", signalR.HttpTransportType.LongPolling, false], ["lp-msgpack", signalR.HttpTransportType.LongPolling, true]]) {
  let b = new signalR.HubConnectionBuilder().withUrl(base + "/leadupdates", { transport }).configureLogging(signalR.LogLevel.Warning);
  if (msgpack) b = b.withHubProtocol(new MessagePackHubProtocol());
  const c = b.build();
  const got = [];
  c.on("ReceiveLeadUpdate", (m) => { got.push(m); });
  const t0 = Date.now();
  await c.start();
  console.log(name, "connected", c.connectionId, Date.now() - t0, "ms");
  await c.invoke("JoinLeadGroup", 7);
  try { await c.invoke("JoinLeadGroup", -1); } catch (e) { console.log(name, "neg join:", e.message); }
  try { await c.invoke("Nope"); } catch (e) { console.log(name, "unknown:", e.message); }
  try { await c.invoke("OnConnected", "x"); } catch (e) { console.log(name, "base:", e.message); }
  try { await c.invoke("JoinLeadGroup", "abc"); } catch (e) { console.log(name, "badarg:", e.message); }
  await c.send("Nope");
  await fetch(base + "/send");
  await new Promise((r) => setTimeout(r, 300));
  console.log(name, "got", JSON.stringify(got), c.state);
  const t1 = Date.now();
  await c.stop();
  console.log(name, "stopped", Date.now() - t1, "ms");
}
