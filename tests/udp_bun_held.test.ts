/**
 * The Bun datagram socket's hold queue (datagrams sent under backpressure,
 * sent again on Bun's `drain`), driven through a stand-in for
 * `Bun.udpSocket` so that backpressure and a refusal come exactly when the
 * test says: it runs on every runtime, on no real socket.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { openBunDatagram } from "../src/runtime/bun/datagram.ts";

interface Handlers {
  drain(socket: unknown): void;
}

/** Puts `udpSocket` in place of Bun's for the length of `run`. */
async function withUdpSocket(
  udpSocket: (options: { socket: Handlers }) => Promise<unknown>,
  run: () => Promise<void>,
): Promise<void> {
  const g = globalThis as { Bun?: { udpSocket: unknown } };
  const real = g.Bun;
  const saved = real?.udpSocket;
  if (real) real.udpSocket = udpSocket;
  else g.Bun = { udpSocket };
  try {
    await run();
  } finally {
    if (real) real.udpSocket = saved;
    else delete g.Bun;
  }
}

test("a held datagram the socket refuses when sent again is dropped, not kept at the head of the queue for ever", async () => {
  let full = true;
  const sent: number[] = [];
  const socket = {
    hostname: "127.0.0.1",
    port: 40000,
    closed: false,
    send(data: Uint8Array): boolean {
      if (full) return false;
      // The first datagram is refused once there is room (EMSGSIZE, no
      // route any more): lost, as send() treats a refusal.
      if (data[0] === 1) throw new Error("EHOSTUNREACH");
      sent.push(data[0]);
      return true;
    },
    close() {
      socket.closed = true;
    },
  };
  let handlers: Handlers | undefined;
  await withUdpSocket(
    (options) => {
      handlers = options.socket;
      return Promise.resolve(socket);
    },
    async () => {
      const channel = await openBunDatagram({ hostname: "127.0.0.1" });
      try {
        assert.equal(channel.send(new Uint8Array([1]), "127.0.0.1", 7), true);
        assert.equal(channel.send(new Uint8Array([2]), "127.0.0.1", 7), true);
        assert.deepEqual(sent, [], "both held under backpressure");
        full = false;
        handlers!.drain(socket);
        assert.deepEqual(sent, [2], "the refused one dropped, the next sent");
        assert.equal(channel.send(new Uint8Array([3]), "127.0.0.1", 7), true);
        assert.deepEqual(sent, [2, 3], "nothing held any more");
      } finally {
        channel.close();
      }
    },
  );
});
