// A reference node that cannot start (a port it is given is taken) says
// so with a typed error, and leaves nothing bound behind it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { ConnectionError } from "../src/errors.ts";
import { startTestNode } from "../testing/node.ts";
import { within } from "./support/within.ts";

/** A UDP socket bound on 127.0.0.1 (a free port when `port` is 0). */
async function udpSocket(port = 0) {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, "127.0.0.1", () => resolve());
  });
  return socket;
}

test("startTestNode given a UDP port that is taken rejects with LISTEN_FAILED (it never settled)", async () => {
  const taken = await udpSocket();
  try {
    const error = await within(
      5000,
      "startTestNode",
      startTestNode({
        protocols: ["udp", "tcp"],
        udpPort: taken.address().port,
      })
        .then(async (node) => {
          await node.close();
          return "started";
        }, (error: unknown) => error),
    );
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.code, "LISTEN_FAILED");
  } finally {
    taken.close();
  }
});

test("startTestNode whose TCP port is taken closes the UDP socket it had bound for it (it stayed bound, and the process never exited)", async () => {
  const { createServer } = await import("node:net");
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const port = (busy.address() as { port: number }).port;
  // A free UDP port, given so that the node binds it first.
  const probe = await udpSocket();
  const udpPort = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  try {
    const error = await within(
      5000,
      "startTestNode",
      startTestNode({ port, protocols: ["udp", "tcp"], udpPort }).then(
        async (node) => {
          await node.close();
          return "started";
        },
        (error: unknown) => error,
      ),
    );
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.code, "LISTEN_FAILED");
    // Free again: bound by the failed start, it refused this.
    const again = await udpSocket(udpPort);
    again.close();
  } finally {
    busy.close();
  }
});
