import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  type DeadlineEntry,
  DeadlineTracker,
} from "../src/connection/deadlines.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

interface Entry extends DeadlineEntry {
  id: number;
  added: number;
}

function entry(id: number, timeoutMs = 0, added = 0): Entry {
  return { id, timeoutMs, added, deadline: 0 };
}

/**
 * A tracker over a set of entries, as a connection's table holds them:
 * `remove` takes an entry out of the set, so the tracker no longer sees it.
 */
class Tracked {
  readonly held = new Set<Entry>();
  readonly tracker: DeadlineTracker<Entry>;

  constructor(clock: VirtualClock, onExpire: (e: Entry) => void) {
    this.tracker = new DeadlineTracker<Entry>(
      clock,
      (visit) => this.held.forEach(visit),
      (e) => {
        this.held.delete(e);
        onExpire(e);
      },
      () => assert.fail("every deadline can be armed"),
    );
  }

  add(e: Entry, timeoutMs: number): void {
    this.held.add(e);
    this.tracker.add(e, timeoutMs);
  }

  remove(e: Entry): void {
    this.held.delete(e);
  }

  stop(): void {
    this.tracker.stop();
  }
}

test("entries expire at their deadline, each exactly once", async () => {
  const clock = new VirtualClock();
  const expired: number[] = [];
  const tracker = new Tracked(clock, (e) => expired.push(e.id));
  tracker.add(entry(1), 100);
  tracker.add(entry(2), 50);
  tracker.add(entry(3), 100);
  await clock.advance(49);
  assert.deepEqual(expired, []);
  await clock.advance(1);
  assert.deepEqual(expired, [2]);
  await clock.advance(50);
  assert.deepEqual(expired, [2, 1, 3]);
  await clock.advance(1000);
  assert.deepEqual(expired, [2, 1, 3]);
  assert.equal(clock.pendingTimers, 0);
});

test("entries stamped with deadlineFor expire with the others, in deadline order", async () => {
  const clock = new VirtualClock();
  const expired: number[] = [];
  const tracker = new Tracked(clock, (e) => expired.push(e.id));
  tracker.add(entry(1), 100);
  // A run of three sharing one deadline, earlier than the entry above:
  // the timer moves up for it.
  const deadline = tracker.tracker.deadlineFor(40);
  assert.equal(deadline, clock.now() + 40);
  for (const id of [2, 3, 4]) {
    tracker.held.add({ id, added: 0, deadline, timeoutMs: 40 });
  }
  await clock.advance(39);
  assert.deepEqual(expired, []);
  await clock.advance(1);
  assert.deepEqual(expired, [2, 3, 4]);
  // One later than the armed timer leaves it where it is.
  tracker.add(entry(5), 10);
  const later = tracker.tracker.deadlineFor(500);
  tracker.held.add({ id: 6, added: 0, deadline: later, timeoutMs: 500 });
  await clock.advance(10);
  assert.deepEqual(expired, [2, 3, 4, 5]);
  await clock.advance(50);
  assert.deepEqual(expired, [2, 3, 4, 5, 1]);
  await clock.advance(440);
  assert.deepEqual(expired, [2, 3, 4, 5, 1, 6]);
  assert.equal(clock.pendingTimers, 0);
});

test("removed entries never expire", async () => {
  const clock = new VirtualClock();
  const expired: number[] = [];
  const tracker = new Tracked(clock, (e) => expired.push(e.id));
  const a = entry(1);
  tracker.add(a, 10);
  tracker.add(entry(2), 10);
  tracker.remove(a);
  tracker.remove(a); // twice is harmless
  await clock.advance(20);
  assert.deepEqual(expired, [2]);
});

test("one timer serves any number of entries", () => {
  const clock = new VirtualClock();
  const tracker = new Tracked(clock, () => {});
  for (let i = 0; i < 10_000; i++) tracker.add(entry(i), 5000);
  assert.equal(clock.pendingTimers, 1);
  tracker.stop();
  assert.equal(clock.pendingTimers, 0);
});

test("any mix of timeouts and removals expires exactly the live entries, on time", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          at: fc.integer({ min: 0, max: 200 }),
          timeoutMs: fc.constantFrom(5, 10, 50, 100),
          removeAfter: fc.option(fc.integer({ min: 0, max: 150 }), {
            nil: undefined,
          }),
        }),
        { maxLength: 30 },
      ),
      async (plan) => {
        const clock = new VirtualClock();
        const expiredAt = new Map<number, number>();
        const tracker = new Tracked(clock, (e) => {
          assert.ok(!expiredAt.has(e.id), "expired twice");
          expiredAt.set(e.id, clock.now());
        });
        const entries = plan.map((p, i) => ({
          ...p,
          e: entry(i, p.timeoutMs, p.at),
        }));
        for (const p of entries) {
          clock.setTimeout(() => tracker.add(p.e, p.timeoutMs), p.at);
          if (p.removeAfter !== undefined) {
            clock.setTimeout(() => tracker.remove(p.e), p.at + p.removeAfter);
          }
        }
        await clock.advance(1000);
        for (const p of entries) {
          const removedFirst = p.removeAfter !== undefined &&
            p.removeAfter < p.timeoutMs;
          if (removedFirst) assert.ok(!expiredAt.has(p.e.id));
          else if (p.removeAfter === undefined || p.removeAfter > p.timeoutMs) {
            assert.equal(expiredAt.get(p.e.id), p.at + p.timeoutMs);
          }
        }
      },
    ),
    { numRuns: 100 },
  );
});

test("runs stamped by deadlineFor mixed with single entries, removals and re-adds from expiry callbacks expire exactly the live entries, on time", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          at: fc.integer({ min: 0, max: 200 }),
          // 0 entries: a run whose every item was refused.
          size: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 5 })),
          run: fc.boolean(),
          timeoutMs: fc.constantFrom(0, 1, 5, 10, 50, 100, Infinity),
          removeAfter: fc.option(fc.integer({ min: 0, max: 150 }), {
            nil: undefined,
          }),
          // On expiry of its first entry, a run of this timeout is added.
          chained: fc.option(fc.constantFrom(0, 3, 40), { nil: undefined }),
        }),
        { maxLength: 25 },
      ),
      async (plan) => {
        const clock = new VirtualClock();
        const due = new Map<number, number>(); // id -> expected expiry
        const expiredAt = new Map<number, number>();
        let nextId = 0;
        const addGroup = (
          timeoutMs: number,
          size: number,
          run: boolean,
          removeAfter: number | undefined,
          chained: number | undefined,
        ) => {
          const ids: Entry[] = [];
          const deadline = run
            ? tracker.tracker.deadlineFor(timeoutMs)
            : undefined;
          for (let k = 0; k < size; k++) {
            const e = entry(nextId++, timeoutMs, clock.now());
            ids.push(e);
            if (deadline === undefined) tracker.add(e, timeoutMs);
            else {
              e.deadline = deadline;
              e.timeoutMs = timeoutMs;
              tracker.held.add(e);
            }
            if (removeAfter === undefined || removeAfter >= timeoutMs) {
              due.set(e.id, clock.now() + timeoutMs);
            }
          }
          if (removeAfter !== undefined) {
            clock.setTimeout(
              () => ids.forEach((e) => tracker.remove(e)),
              removeAfter,
            );
          }
          if (chained !== undefined && ids.length > 0) {
            chains.set(ids[0].id, chained);
          }
        };
        const chains = new Map<number, number>();
        const tracker = new Tracked(clock, (e) => {
          assert.ok(!expiredAt.has(e.id), "expired twice");
          assert.ok(due.has(e.id), `entry ${e.id} should not expire`);
          expiredAt.set(e.id, clock.now());
          const chained = chains.get(e.id);
          if (chained !== undefined) {
            addGroup(chained, 3, true, undefined, undefined);
          }
        });
        for (const p of plan) {
          clock.setTimeout(
            () =>
              addGroup(p.timeoutMs, p.size, p.run, p.removeAfter, p.chained),
            p.at,
          );
        }
        await clock.advance(1000);
        // A removal at the very deadline may come first or second.
        for (const [id, at] of due) {
          if (Number.isFinite(at) && !expiredAt.has(id)) {
            const removedAtDeadline = plan.some((p) =>
              p.removeAfter === p.timeoutMs
            );
            assert.ok(removedAtDeadline, `entry ${id} never expired`);
          } else if (expiredAt.has(id)) {
            assert.equal(
              expiredAt.get(id),
              at,
              `entry ${id} expired late or early`,
            );
          }
        }
        tracker.stop();
        assert.equal(clock.pendingTimers, 0);
      },
    ),
    { numRuns: 60 },
  );
});

test("with one timeout for every entry, the timer fires about once per timeout period, whatever the rate", async () => {
  const clock = new VirtualClock();
  const t = new Tracked(clock, () => {});
  let fired = 0;
  const setTimeout = clock.setTimeout.bind(clock);
  clock.setTimeout = (fn: () => void, ms: number) =>
    setTimeout(() => {
      fired++;
      fn();
    }, ms);
  // 100 entries every 10 ms for 10 s, each answered 10 ms later: the
  // steady state of a busy connection with a 1000 ms timeout.
  let live: Entry[] = [];
  for (let step = 0; step < 1000; step++) {
    for (const e of live) t.remove(e);
    live = [];
    for (let i = 0; i < 100; i++) {
      const e = entry(step * 100 + i);
      t.add(e, 1000);
      live.push(e);
    }
    await clock.advance(10);
  }
  assert.ok(fired <= 11, `fired ${fired} times in 10 s`);
  assert.ok(fired >= 9, `fired ${fired} times in 10 s`);
  t.stop();
});
