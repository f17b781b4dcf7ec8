/**
 * The Bun adapter connects through node:net (whose connect can be
 * abandoned, unlike Bun.connect's) and then takes Bun's native socket over
 * from it. If a Bun release changed node:net so that the takeover no
 * longer applies, the adapter falls back to the node:net socket: still
 * correct, but slower; this file says so loudly. Runs on Bun only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getAdapter } from "../src/runtime/detect.ts";
import { NodeChannel } from "../src/runtime/node/adapter.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { ConnectionLostError } from "../src/errors.ts";

const onBun = typeof (globalThis as { Bun?: unknown }).Bun === "object";

// Registered on Bun only (not skipped elsewhere): the takeover is the Bun
// adapter's, and the other runtimes never load it.
if (onBun) {
  test("Bun: a connected channel runs on Bun's native socket, not node:net's", async () => {
    const adapter = await getAdapter("bun");
    const accepted: ByteChannel[] = [];
    const listener = await adapter.listen({ port: 0 }, (channel) => {
      accepted.push(channel);
      channel.onData((chunk) => channel.write(chunk));
    });
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: listener.port,
    });
    try {
      assert.ok(
        !(channel instanceof NodeChannel),
        "the takeover of node:net's native socket did not apply",
      );
      const echoed = new Promise<string>((resolve) =>
        channel.onData((chunk) => resolve(new TextDecoder().decode(chunk)))
      );
      channel.write(new TextEncoder().encode("ping"));
      assert.equal(await echoed, "ping");
      // The peer's FIN closes the channel (node:net connects half-open).
      const closed = new Promise<Error | undefined>((resolve) =>
        channel.onClose(resolve)
      );
      accepted[0].close();
      assert.equal(await closed, undefined);
    } finally {
      channel.destroy();
      for (const a of accepted) a.destroy();
      await listener.close();
    }
  });

  test("Bun: a queued payload whose buffer is detached ends the channel with ConnectionLostError saying so, and the event loop goes on", async () => {
    // Before: the queue handed the empty chunk out for ever, Bun wrote
    // nothing each time, and the process spun at full CPU, no timer firing.
    const adapter = await getAdapter("bun");
    const accepted: ByteChannel[] = [];
    const listener = await adapter.listen({ port: 0 }, (channel) => {
      accepted.push(channel);
      channel.pause?.(); // reads nothing: the client's writes queue up
      channel.onData(() => {});
    });
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: listener.port,
    });
    try {
      const big = new Uint8Array(32 * 1024 * 1024);
      channel.write(big);
      assert.ok(channel.bufferedAmount > 0, "the payload is queued");
      structuredClone(big.buffer, { transfer: [big.buffer as ArrayBuffer] });
      assert.equal(big.length, 0);
      const closed = new Promise<Error | undefined>((resolve) =>
        channel.onClose(resolve)
      );
      while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
      accepted[0].resume?.();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const error = await Promise.race([
        closed,
        new Promise((resolve) => timer = setTimeout(resolve, 5000, "timer")),
      ]);
      clearTimeout(timer);
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.match(error.message, /detached \(transferred\) while queued/);
    } finally {
      channel.destroy();
      for (const a of accepted) a.destroy();
      await listener.close();
    }
  });
}
