// A reference node stopped gracefully keeps UDP up for the sessions still
// holding a token; a start that then fails (its TCP port taken) must leave
// UDP as the stop left it: up for those sessions, closed once they are gone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { ConnectionError } from "../src/errors.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { connectUdp, waitFor } from "./support/udp_scene.ts";

test("a start that fails while UDP drains leaves it draining: the socket closes once the last session holding a token has (it stayed bound until close())", async () => {
  const nodeClock = new VirtualClock();
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    clock: nodeClock,
  });
  const connection = await connectUdp(node);
  const busy = createServer();
  try {
    const inFlight = connection.sendRequest(ops.sleep(500, "finished"));
    await waitFor(() => nodeClock.pendingTimers === 1, "the request");
    await node.stop({ graceful: true });
    await new Promise<void>((resolve) =>
      busy.listen(node.port, "127.0.0.1", resolve)
    );
    const error = await node.start().then(() => "started", (e: unknown) => e);
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.code, "LISTEN_FAILED");
    assert.equal(node.running, false);
    assert.notEqual(node.udpPort, undefined, "UDP stays up for the reply");
    await nodeClock.advance(500);
    assert.equal(replyText(await inFlight), "finished");
    await connection.closed;
    await waitFor(() => node.udpPort === undefined, "the UDP socket closing");
    assert.equal(node.udpSessions, 0);
  } finally {
    connection.destroy();
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    await node.close();
  }
});
