/**
 * What a closing pool waits for before `poolClosed`: the opens it aborted
 * and the closes it started, each wait bounded. Apart from the opener
 * because it runs once, as the pool closes, and only waits on what the
 * opener and the roster have in progress.
 *
 * @module
 */

import { type Clock, wait } from "../clock.ts";
import { clockFailed } from "../config/clock_failure.ts";
import { ConnectionLostError } from "../errors.ts";
import { endpointOf } from "./endpoint.ts";
import type { Roster } from "./roster.ts";
import type { PoolableConnection } from "./types.ts";

/**
 * How long `close()` waits for the opens it aborted to settle. A factory
 * that heeds its signal tears its socket down within a few ticks, so
 * `close()` resolves with every socket released; one deaf to the signal
 * holds it this long at most, not until its create timeout.
 */
const ABORTED_OPEN_GRACE_MS = 500;

/**
 * Waits until the opens `close` aborted (`openings`, the opener's factory
 * calls in progress, each with the promise that settles once the pool has
 * handled its outcome) have settled, for at most
 * {@linkcode ABORTED_OPEN_GRACE_MS}, then until every close in progress
 * has. An open still going after that is forgotten (`openings` is
 * emptied): what it delivers is closed unannounced, as no event may follow
 * `poolClosed`. A close is waited for while its connection has requests
 * in flight (each has a timeout of its own), and then `limitMs`
 * (`createTimeoutMs`) more at most (as long as an open may take; the
 * client's pools: its `timeoutMs` + 1 s): one still going is given up,
 * its connection destroyed with a `ConnectionLostError` naming `address`
 * and saying so (a custom connection's `close()` may never settle). The
 * connections are looked at only when a close is due, so one seen busy
 * then gets the whole bound again.
 */
export async function drainPool<C extends PoolableConnection>(
  openings: Set<{ readonly settled: Promise<void> }>,
  roster: Roster<C>,
  clock: Clock,
  limitMs: number,
  address: string,
): Promise<void> {
  if (openings.size > 0) {
    const opens = [...openings].map((opening) => opening.settled);
    // A timer the clock would not arm: the opens are not waited for.
    await within(clock, ABORTED_OPEN_GRACE_MS, Promise.all(opens)).catch(
      ignore,
    );
    openings.clear();
  }
  const overdue = () => overdueClose(address, limitMs);
  while (roster.closing > 0) {
    let now: number;
    try {
      now = clock.now();
    } catch (thrown) {
      // Its now() threw: no wait can be bounded. Let out, the throw left
      // those connections open for good, and close() rejected with the
      // clock's raw error.
      return giveUpCloses(roster, clockFailed(clock, thrown));
    }
    const next = roster.overdueCloses(now, limitMs, overdue);
    if (roster.closing > 0) {
      try {
        await within(clock, next - now, Promise.all(roster.closes()));
      } catch (thrown) {
        // Its setTimeout() threw: each wait ended at once, and this loop
        // spun for good, starving the event loop.
        return giveUpCloses(roster, clockFailed(clock, thrown, "setTimeout"));
      }
    }
  }
}

/**
 * Gives up every close `roster` still waits for, its connection destroyed
 * with `error`, the ConfigError naming a custom clock that cannot bound a
 * wait (its `now()` or its `setTimeout()` threw): what is in flight on
 * them fails with it as cause, and the pool's close goes on.
 */
function giveUpCloses<C extends PoolableConnection>(
  roster: Roster<C>,
  error: Error,
): void {
  roster.overdueCloses(Infinity, 0, () => error);
}

/**
 * The error a connection of the pool for `address` is destroyed with when
 * its `close()` has not settled `limitMs` after it last had requests in
 * flight: by `drainPool` as the pool closes, and by the housekeeper while
 * it runs.
 */
export function overdueClose(address: string, limitMs: number): Error {
  return new ConnectionLostError(
    endpointOf(address),
    `its close() did not settle within ${limitMs} ms with nothing in ` +
      `flight; destroyed`,
  );
}

/**
 * Waits for `promise` to settle, or `ms` on the pool's clock, whichever
 * comes first. On the system clock the timer keeps the process alive, as
 * `wait`'s does: the caller of `close()` awaits this, and Node ended the
 * program under it when nothing else was left (an open deaf to its abort
 * that held no socket), the close never settled and the code after it
 * never ran. Rejects with what the clock's `setTimeout()` threw, if it
 * did: without that timer there is nothing to wait for.
 */
async function within(
  clock: Clock,
  ms: number,
  promise: Promise<unknown>,
): Promise<void> {
  const over = new AbortController();
  // What the clock's setTimeout() threw, if it did: the wait fails at
  // once, before the race is decided.
  let unarmed: [unknown] | undefined;
  const timer = wait(clock, ms, over.signal).catch((error) => {
    if (!over.signal.aborted) unarmed = [error];
  });
  await Promise.race([promise.then(ignore, ignore), timer]);
  // Clears the timer when the promise came first.
  over.abort();
  if (unarmed !== undefined) throw unarmed[0];
}

function ignore(): void {}
