// Typed events: the typed EventTarget behaves as EventTarget does (order,
// once, signal, capture, handleEvent) and knows exactly who listens; pool,
// manager and client events carry their payload and the time they happened
// on the emitter's clock; and the types reject what would be a bug (the
// `@ts-expect-error` lines below fail `deno check` if they ever type-check).
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Client } from "../src/client/client.ts";
import type { ClientEventMap, RetryEvent } from "../src/client/events.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConnectionManager } from "../src/cluster/manager.ts";
import type {
  NodeHealthEvent,
  ProtocolSelectedEvent,
} from "../src/cluster/events.ts";
import { RetriesExhaustedError } from "../src/errors.ts";
import { TypedEventTarget } from "../src/events.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { PoolEvent, type PoolEventMap } from "../src/pool/events.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

class TickEvent extends Event {
  readonly n: number;
  constructor(type: "tick" | "tock", n: number) {
    super(type);
    this.n = n;
  }
}

interface TickEvents {
  tick: TickEvent;
  tock: TickEvent;
}

class Ticker extends TypedEventTarget<TickEvents> {
  tick(n = 0): boolean {
    return this.dispatchEvent(new TickEvent("tick", n));
  }
}

// ------------------------------------------------------ the typed target

test("a typed target is an EventTarget: listeners run in the order added, functions with the target as this, objects through handleEvent", () => {
  const ticker = new Ticker();
  assert.ok(ticker instanceof EventTarget);
  const calls: string[] = [];
  ticker.addEventListener("tick", function (this: unknown, e) {
    assert.equal(this, ticker);
    assert.equal(e.currentTarget, ticker);
    calls.push(`fn:${e.n}`);
  });
  const object = {
    handleEvent(e: TickEvent) {
      assert.equal(this, object);
      calls.push(`object:${e.n}`);
    },
  };
  ticker.addEventListener("tick", object);
  ticker.addEventListener("tick", () => calls.push("last"));
  ticker.tick(7);
  assert.deepEqual(calls, ["fn:7", "object:7", "last"]);
});

test("a once listener runs once, and stops counting for hasListeners when it runs", () => {
  const ticker = new Ticker();
  const seen: number[] = [];
  ticker.addEventListener("tick", (e) => {
    // Already forgotten while it runs, as EventTarget removes it first.
    assert.equal(ticker.hasListeners("tick"), false);
    seen.push(e.n);
  }, { once: true });
  assert.equal(ticker.hasListeners("tick"), true);
  ticker.tick(1);
  ticker.tick(2);
  assert.deepEqual(seen, [1]);
  assert.equal(ticker.hasListeners("tick"), false);
});

test("a once listener removed before it ran never runs, and can be added again", () => {
  const ticker = new Ticker();
  let calls = 0;
  const listener = () => calls++;
  ticker.addEventListener("tick", listener, { once: true });
  ticker.removeEventListener("tick", listener);
  assert.equal(ticker.hasListeners("tick"), false);
  ticker.tick();
  assert.equal(calls, 0);
  ticker.addEventListener("tick", listener, { once: true });
  ticker.tick();
  ticker.tick();
  assert.equal(calls, 1);
});

test("a signal removes its listener when it aborts, and hasListeners follows", () => {
  const ticker = new Ticker();
  const controller = new AbortController();
  let calls = 0;
  ticker.addEventListener("tick", () => calls++, {
    signal: controller.signal,
  });
  ticker.tick();
  controller.abort();
  assert.equal(ticker.hasListeners("tick"), false);
  ticker.tick();
  assert.equal(calls, 1);

  // An aborted signal adds nothing, as with EventTarget.
  ticker.addEventListener("tick", () => calls++, {
    signal: controller.signal,
  });
  assert.equal(ticker.hasListeners("tick"), false);
  ticker.tick();
  assert.equal(calls, 1);
});

test("a stale signal does not remove a later registration of the same listener", () => {
  const ticker = new Ticker();
  const first = new AbortController();
  let calls = 0;
  const listener = () => calls++;
  ticker.addEventListener("tick", listener, { signal: first.signal });
  ticker.removeEventListener("tick", listener);
  ticker.addEventListener("tick", listener);
  first.abort();
  assert.equal(ticker.hasListeners("tick"), true);
  ticker.tick();
  assert.equal(calls, 1);
});

test("capture makes a second registration; the same listener added twice otherwise runs once", () => {
  const ticker = new Ticker();
  let calls = 0;
  const listener = () => calls++;
  ticker.addEventListener("tick", listener);
  ticker.addEventListener("tick", listener, { once: true }); // ignored: already there
  ticker.addEventListener("tick", listener, true);
  ticker.tick();
  ticker.tick();
  assert.equal(calls, 4);
  ticker.removeEventListener("tick", listener);
  assert.equal(ticker.hasListeners("tick"), true, "the capture one is left");
  ticker.tick();
  assert.equal(calls, 5);
  // `true` for capture, which Node 20's own EventTarget ignores on removal.
  ticker.removeEventListener("tick", listener, true);
  assert.equal(ticker.hasListeners("tick"), false);
  ticker.tick();
  assert.equal(calls, 5);
});

test("hasListeners is per type, and false again once the last listener is removed", () => {
  const ticker = new Ticker();
  const a = () => {};
  const b = { handleEvent() {} };
  assert.equal(ticker.hasListeners("tick"), false);
  ticker.addEventListener("tick", a);
  ticker.addEventListener("tick", b);
  ticker.addEventListener("tock", a);
  assert.equal(ticker.hasListeners("tick"), true);
  ticker.removeEventListener("tick", a);
  ticker.removeEventListener("tick", a); // twice: a no-op
  ticker.removeEventListener("tick", null);
  ticker.addEventListener("tick", null);
  assert.equal(ticker.hasListeners("tick"), true);
  ticker.removeEventListener("tick", b);
  assert.equal(ticker.hasListeners("tick"), false);
  assert.equal(ticker.hasListeners("tock"), true);
});

test("removeEventListener refuses a symbol type and a non-listener as addEventListener does (the pool and the manager are such targets)", () => {
  const ticker = new Ticker();
  const add = ticker.addEventListener.bind(ticker) as (...a: unknown[]) => void;
  const remove = ticker.removeEventListener.bind(ticker) as (
    ...a: unknown[]
  ) => void;
  const outcome = (call: () => void) => {
    try {
      call();
      return "accepted";
    } catch (error) {
      return (error as Error).name;
    }
  };
  assert.equal(outcome(() => add(Symbol("tick"), () => {})), "TypeError");
  assert.equal(outcome(() => remove(Symbol("tick"), () => {})), "TypeError");
  // EventTarget's own answer, which differs by runtime (Deno accepts it).
  for (const listener of [42, "listener", true]) {
    assert.equal(
      outcome(() => remove("tick", listener)),
      outcome(() => add("tick", listener)),
      String(listener),
    );
  }
  assert.equal(ticker.hasListeners("tick"), false);
});

test("a listener removed by an earlier one in the same dispatch does not run", () => {
  const ticker = new Ticker();
  const calls: string[] = [];
  const second = () => calls.push("second");
  ticker.addEventListener("tick", () => {
    calls.push("first");
    ticker.removeEventListener("tick", second);
  });
  ticker.addEventListener("tick", second, { once: true });
  ticker.tick();
  assert.deepEqual(calls, ["first"]);
  assert.equal(ticker.hasListeners("tick"), true, "first is still there");
});

test("a second add of the same listener is ignored with its signal: aborting that signal keeps the first registration", () => {
  // As the DOM spec, Deno and Bun have it; Node 20's own EventTarget
  // removes the first registration on that abort.
  const ticker = new Ticker();
  const controller = new AbortController();
  let calls = 0;
  const listener = { handleEvent: () => calls++ };
  ticker.addEventListener("tick", listener);
  ticker.addEventListener("tick", listener, { signal: controller.signal });
  controller.abort();
  assert.equal(ticker.hasListeners("tick"), true);
  ticker.tick();
  assert.equal(calls, 1);
});

type Listener = ((event: Event) => void) | { handleEvent(event: Event): void };

/**
 * EventTarget as the DOM spec defines it for a target with no parent, as
 * the reference: a runtime's own may stray (Node 20 drops a registration on
 * the abort of an ignored second add's signal, and ignores `capture` given
 * as `true` on removal). The one point where runtimes rightly differ,
 * whether capture listeners run before the others at the target, is read
 * from the runtime's EventTarget.
 */
class SpecTarget {
  #registrations: {
    type: string;
    listener: Listener;
    capture: boolean;
    once: boolean;
    removed: boolean;
  }[] = [];
  readonly #captureFirst = captureRunsFirst();

  add(
    type: string,
    listener: Listener,
    options: { once?: boolean; capture?: boolean; signal?: AbortSignal },
  ): void {
    const capture = options.capture === true;
    if (options.signal?.aborted || this.#find(type, listener, capture)) return;
    const registration = {
      type,
      listener,
      capture,
      once: options.once === true,
      removed: false,
    };
    this.#registrations.push(registration);
    options.signal?.addEventListener("abort", () => this.#drop(registration));
  }

  remove(type: string, listener: Listener, capture = false): void {
    const registration = this.#find(type, listener, capture);
    if (registration) this.#drop(registration);
  }

  dispatch(event: Event): void {
    const matching = this.#registrations.filter((r) => r.type === event.type);
    const ordered = this.#captureFirst
      ? [
        ...matching.filter((r) => r.capture),
        ...matching.filter((r) => !r.capture),
      ]
      : matching;
    for (const r of ordered) {
      if (r.removed) continue;
      if (r.once) this.#drop(r);
      if (typeof r.listener === "function") r.listener(event);
      else r.listener.handleEvent(event);
    }
  }

  listening(type: string): boolean {
    return this.#registrations.some((r) => r.type === type);
  }

  #find(type: string, listener: Listener, capture: boolean) {
    return this.#registrations.find((r) =>
      r.type === type && r.listener === listener && r.capture === capture
    );
  }

  #drop(registration: { removed: boolean }): void {
    registration.removed = true;
    this.#registrations = this.#registrations.filter((r) => r !== registration);
  }
}

/** Whether this runtime's EventTarget runs capture listeners first at the target (Bun: yes; Deno, Node: in the order added). */
function captureRunsFirst(): boolean {
  const target = new EventTarget();
  const order: string[] = [];
  target.addEventListener("probe", () => order.push("bubble"));
  target.addEventListener("probe", () => order.push("capture"), true);
  target.dispatchEvent(new Event("probe"));
  return order[0] === "capture";
}

type Op =
  | { op: "add"; type: "tick" | "tock"; listener: number; options: Options }
  | { op: "remove"; type: "tick" | "tock"; listener: number; capture: boolean }
  | { op: "abort"; signal: number }
  | { op: "dispatch"; type: "tick" | "tock" };
type Options = {
  once?: boolean;
  capture?: boolean;
  signal?: number;
};

const type = fc.constantFrom<"tick" | "tock">("tick", "tock");
const operation: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("add" as const),
    type,
    listener: fc.nat(3),
    options: fc.record({
      once: fc.boolean(),
      capture: fc.boolean(),
      signal: fc.nat(2),
    }, { requiredKeys: [] }),
  }),
  fc.record({
    op: fc.constant("remove" as const),
    type,
    listener: fc.nat(3),
    capture: fc.boolean(),
  }),
  fc.record({ op: fc.constant("abort" as const), signal: fc.nat(2) }),
  fc.record({ op: fc.constant("dispatch" as const), type }),
);

/** Four listeners that log; number 2 removes number 0 mid-dispatch; number 3 is an object. */
function listeners(log: string[], removeFirst: (type: string) => void) {
  const all: Listener[] = [
    (e) => log.push(`0:${e.type}`),
    (e) => log.push(`1:${e.type}`),
    (e) => {
      log.push(`2:${e.type}`);
      removeFirst(e.type);
    },
    { handleEvent: (e) => log.push(`3:${e.type}`) },
  ];
  return all;
}

test("for any sequence of adds, removes, aborts and dispatches it calls what the DOM spec's EventTarget calls, and hasListeners tells whether a dispatch would reach anyone", () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 40 }), (ops) => {
      const spec = new SpecTarget();
      const specLog: string[] = [];
      const specListeners = listeners(
        specLog,
        (t) => spec.remove(t, specListeners[0]),
      );
      const ticker = new Ticker();
      const target = ticker as unknown as EventTarget; // untyped, to drive it by index
      const log: string[] = [];
      const typedListeners = listeners(
        log,
        (t) => target.removeEventListener(t, typedListeners[0]),
      );
      const specSignals = [0, 1, 2].map(() => new AbortController());
      const signals = [0, 1, 2].map(() => new AbortController());
      for (const op of ops) {
        if (op.op === "add") {
          const { signal, ...rest } = op.options;
          spec.add(op.type, specListeners[op.listener], {
            ...rest,
            signal: signal === undefined
              ? undefined
              : specSignals[signal].signal,
          });
          target.addEventListener(op.type, typedListeners[op.listener], {
            ...rest,
            signal: signal === undefined ? undefined : signals[signal].signal,
          });
        } else if (op.op === "remove") {
          spec.remove(op.type, specListeners[op.listener], op.capture);
          target.removeEventListener(op.type, typedListeners[op.listener], {
            capture: op.capture,
          });
        } else if (op.op === "abort") {
          specSignals[op.signal].abort();
          signals[op.signal].abort();
        } else {
          spec.dispatch(new Event(op.type));
          ticker.dispatchEvent(new TickEvent(op.type, 0));
        }
        assert.deepEqual(log, specLog);
        for (const t of ["tick", "tock"] as const) {
          assert.equal(ticker.hasListeners(t), spec.listening(t), t);
        }
      }
    }),
    { numRuns: 1000 },
  );
});

// ------------------------------------------------------------ pool events

test("pool events are typed by name and carry the time they happened on the pool's clock", async () => {
  const clock = new VirtualClock();
  const pool = new ConnectionPool<FakeConnection>({
    address: "10.0.0.1:7000",
    config: { minConnections: 0, maxConnections: 2 },
    factory: () => Promise.resolve(new FakeConnection()),
    clock,
  });
  const seen: string[] = [];
  pool.addEventListener("connectionReady", (e) => {
    assert.ok(e instanceof PoolEvent);
    seen.push(`ready #${e.detail.connectionId} at ${e.at}`);
  });
  pool.addEventListener("checkedOut", (e) => {
    seen.push(`${e.detail.mode} checkout at ${e.at}`);
  });
  pool.addEventListener("checkedIn", {
    handleEvent: (e: PoolEventMap["checkedIn"]) =>
      seen.push(`checked in #${e.detail.connectionId} at ${e.at}`),
  });
  await clock.advance(1000);
  const conn = await pool.getConnection();
  await clock.advance(250);
  pool.returnConnection(conn);
  assert.deepEqual(seen, [
    `ready #${conn.id} at 1000`,
    "exclusive checkout at 1000",
    `checked in #${conn.id} at 1250`,
  ]);
  await pool.close();
});

test("a pool builds no event after its only listener, a once one, has run", async () => {
  const clock = new VirtualClock();
  const pool = new ConnectionPool<FakeConnection>({
    address: "10.0.0.1:7000",
    config: { minConnections: 0, maxConnections: 2 },
    factory: () => Promise.resolve(new FakeConnection()),
    clock,
  });
  let built = 0;
  const dispatch = pool.dispatchEvent.bind(pool);
  pool.dispatchEvent = (event) => {
    built++;
    return dispatch(event);
  };
  let heard = 0;
  pool.addEventListener("checkedOut", () => heard++, { once: true });
  await pool.acquireShared();
  await pool.acquireShared();
  await pool.acquireShared();
  assert.equal(heard, 1);
  assert.equal(built, 1, "only the event somebody heard was built");
  assert.equal(pool.hasListeners("checkedOut"), false);
  await pool.close();
});

// ---------------------------------------------------- manager and client

test("manager events carry detail and the time on the manager's clock", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ nodeId: "n0", runtime: network, clock });
  const manager = new ConnectionManager(
    resolveConfig({
      hosts: [node.address],
      runtime: network,
      clock,
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 1 },
    }),
    network,
  );
  const protocols: ProtocolSelectedEvent[] = [];
  const health: NodeHealthEvent[] = [];
  manager.addEventListener("protocolSelected", (e) => protocols.push(e));
  manager.addEventListener("nodeHealthChanged", (e) => health.push(e));
  try {
    await clock.advance(500);
    await manager.connect();
    assert.deepEqual(
      protocols.map((e) => [e.detail.address, e.detail.protocol, e.at]),
      [[node.address, "tcp", 500]],
    );
    await clock.advance(250);
    manager.markNodeUnhealthy(node.address, "maintenance");
    assert.deepEqual(
      health.map((e) => [e.detail.healthy, e.detail.reason, e.at]),
      [[false, "maintenance", 750]],
    );
  } finally {
    await manager.close();
    await node.close();
  }
});

test("client events: retry, health and forwarded pool events carry detail and the time they happened; pools are subscribed only when someone listens", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ nodeId: "n0", runtime: network, clock });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1 },
    retryConfig: { initialBackoffMs: 10, maxRetries: 1 },
  });
  try {
    const pool = client.manager.nodes[0].pool;
    assert.equal(pool.hasListeners("checkedOut"), false, "nobody listens");
    const seen: string[] = [];
    client.addEventListener("checkedOut", (e) => {
      assert.ok(e instanceof PoolEvent);
      seen.push(`${e.detail.mode} checkout of ${e.detail.address} at ${e.at}`);
    });
    assert.equal(pool.hasListeners("checkedOut"), true, "now the client does");
    assert.equal(pool.hasListeners("checkedIn"), false);

    await clock.advance(100);
    assert.equal(replyText(await client.request(ops.echo("x"))), "x");
    assert.deepEqual(seen, [`shared checkout of ${node.address} at 100`]);

    const retries: RetryEvent[] = [];
    client.addEventListener("retry", (e) => retries.push(e));
    await clock.advance(100);
    const failing = client.request(ops.fail(RemoteErrorCode.Overloaded, true))
      .catch((e) => e);
    await clock.advance(0);
    assert.deepEqual(
      retries.map((e) => [e.detail.attempt, e.detail.delayMs, e.at]),
      [[1, 10, 200]],
    );
    assert.equal(retries[0].detail.address, node.address);
    await clock.advance(10);
    assert.ok((await failing) instanceof RetriesExhaustedError);

    const health: NodeHealthEvent[] = [];
    client.addEventListener("nodeHealthChanged", (e) => health.push(e));
    await clock.advance(40);
    client.manager.markNodeUnhealthy(node.address, "maintenance");
    assert.deepEqual(
      health.map((e) => [e.detail.address, e.detail.healthy, e.at]),
      [[node.address, false, 250]],
    );
  } finally {
    await client.disconnect();
    await node.close();
  }
});

// ------------------------------------------------------------ the types

test("misspelled event names and wrong detail properties are type errors", () => {
  // Registered on a bare target: the calls are harmless at run time; what
  // matters is that each `@ts-expect-error` below stays an error, or
  // `deno check` (and `deno test`) fail on the unused directive.
  const client = new TypedEventTarget<ClientEventMap>() as Pick<
    Client,
    "addEventListener" | "removeEventListener" | "hasListeners"
  >;
  const pool = new TypedEventTarget<PoolEventMap>();
  // The right names infer the right events.
  client.addEventListener("retry", (e) => {
    const delay: number = e.detail.delayMs;
    const at: number = e.at;
    return delay + at;
  });
  client.addEventListener("checkedOut", (e) => {
    const mode: "exclusive" | "shared" = e.detail.mode;
    return mode;
  });
  client.addEventListener("nodeHealthChanged", {
    handleEvent: (e: NodeHealthEvent) => e.detail.healthy,
  });
  pool.addEventListener("connectionClosed", (e) => e.detail.reason);

  // @ts-expect-error: no such event
  client.addEventListener("retyr", () => {});
  // @ts-expect-error: no such event on a pool
  pool.addEventListener("retry", () => {});
  // @ts-expect-error: no such event
  client.removeEventListener("nodeHealthChange", null);
  // @ts-expect-error: no such event
  client.hasListeners("checkout");
  // @ts-expect-error: a retry's detail has delayMs, not delay
  client.addEventListener("retry", (e) => e.detail.delay);
  // @ts-expect-error: a health change's detail has no delayMs
  client.addEventListener("nodeHealthChanged", (e) => e.detail.delayMs);
  client.addEventListener(
    "retry",
    // @ts-expect-error: a listener for another event does not fit
    (e: NodeHealthEvent) => e.detail.healthy,
  );
  // @ts-expect-error: an unknown option
  client.addEventListener("retry", () => {}, { onse: true });
  assert.equal(client.hasListeners("retry"), true);
});
