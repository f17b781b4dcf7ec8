// A program on the memory network awaiting a reply that comes late: a test
// node's SLEEP, on the system clock. Prints the reply as JSON, then ends by
// itself once the client and node are closed (no process.exit).
import { Client } from "../../../mod.ts";
import { createMemoryNetwork } from "../../../runtime.ts";
import { startTestNode } from "../../../testing/mod.ts";
import { decodeReply, ops } from "../../../testing/ops.ts";

const network = createMemoryNetwork();
const node = await startTestNode({ runtime: network });
const client = await Client.connect({
  hosts: [node.address],
  runtime: network,
  healthConfig: { intervalMs: 0 },
});
// Nothing but the network holds the process during this await: the
// node's timer and the request's deadline are unreferenced.
const reply = await client.request(ops.sleep(50, "late"));
await client.disconnect();
await node.close();
console.log(JSON.stringify({
  reply: new TextDecoder().decode(decodeReply(reply).data),
  openChannels: network.openChannels,
}));
