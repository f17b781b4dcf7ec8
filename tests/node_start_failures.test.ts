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
