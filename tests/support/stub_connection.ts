import { Connection } from "../../src/connection/connection.ts";
import type { ByteChannel } from "../../src/runtime/types.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";

/**
 * A Connection over `channel` (a stub a test scripts by hand) to
 * `fake:1`, on `clock`, its requests timed out after 1 s of that clock.
 */
export function connectionOver(
  channel: ByteChannel,
  clock: VirtualClock = new VirtualClock(),
): Connection {
  return new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 1000,
  });
}

/**
 * Resolves once every microtask queued so far has run (a tick's end, where
 * the frame writer flushes): a zero-delay task, which measures no time.
 */
export const tickEnds = (): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, 0));
