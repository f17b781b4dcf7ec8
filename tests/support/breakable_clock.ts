// A custom clock that a test breaks on purpose: the clock_throws_* tests
// check what the client does when a caller's clock starts throwing after
// construction.
import type { Client } from "../../src/client/client.ts";
import type { Clock } from "../../src/clock.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";

/**
 * A virtual clock whose now() throws `broke` once `state.reads` more
 * reads have been given (never while `state.reads` is Infinity).
 */
export function breakableClock() {
  const virtual = new VirtualClock();
  const broke = new Error("clock broke");
  const state = { reads: Infinity };
  const clock: Clock = {
    now: () => {
      if (state.reads <= 0) throw broke;
      state.reads--;
      return virtual.now();
    },
    setTimeout: (fn, ms) => virtual.setTimeout(fn, ms),
    clearTimeout: (id) => virtual.clearTimeout(id),
  };
  return { virtual, clock, broke, state };
}

/** Disconnects `client`, moving `virtual` on so its timeout can pass. */
export async function disconnectOn(client: Client, virtual: VirtualClock) {
  const done = client.disconnect({ timeoutMs: 1 });
  for (let i = 0; i < 5; i++) await virtual.advance(1);
  await done;
}
