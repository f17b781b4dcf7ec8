// The API contract (issue 12, Deliver 5): every public method and
// constructor of the root export, given arbitrary values for every argument
// and option (fast-check's anything, and near misses: wrong types, NaN,
// huge, negative, empty, unknown keys, getters that throw, proxies), ends in
// success or a typed NodewireError: never a raw TypeError from inside, an
// unhandled rejection or a hang. Afterwards a valid request on the same
// client still succeeds at once. The only other outcome allowed is the
// caller's own exception (a UserError thrown by a getter or callback the
// test handed in) passed through unchanged.
//
// Runs per runtime: RUNS below (about 4,000 calls in all). Every call is
// bounded by CALL_LIMIT_MS of real time, which only catches a hang: the
// calls themselves settle in microseconds to milliseconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { fc } from "./support/fc.ts";
import * as root from "../mod.ts";
import {
  Client,
  DEFAULT_RETRY_CONFIG,
  executeWithRetry,
  isRetryable,
  NodewireError,
  ProtocolError,
  Secret,
} from "../mod.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

/** Property runs per method. */
const RUNS = {
  request: 1000,
  ping: 200,
  withConnection: 200,
  listeners: 400,
  plain: 100,
  membership: 150,
  disconnect: 60,
  connect: 200,
  isRetryable: 500,
  executeWithRetry: 400,
  secret: 300,
  constructors: 600,
};

const CALL_LIMIT_MS = 3000;
const AFTER_LIMIT_MS = 1000;

/** The caller's own exception, which may pass through unchanged. */
class UserError extends Error {}

function thrower(): never {
  throw new UserError("thrown by the caller's getter");
}

// --- values ------------------------------------------------------------------

/**
 * How to make a value, and its name. fast-check handles recipes, never the
 * values: it would itself trip over a revoked proxy or a throwing getter
 * while cloning or printing one. Each run makes its values fresh.
 */
class Recipe {
  constructor(readonly label: string, readonly make: () => unknown) {}
  [fc.toStringMethod](): string {
    return this.label;
  }
}

/** Recipes for the values of `arb`, which fast-check may handle itself. */
function value<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<Recipe> {
  return arb.map((v) => new Recipe(fc.stringify(v), () => v));
}

/** A recipe per fresh value `make` returns. */
function made(label: string, make: () => unknown): fc.Arbitrary<Recipe> {
  return fc.constant(new Recipe(label, make));
}

/** Near misses fc.anything does not make: views, fakes, proxies, callables. */
const weird: fc.Arbitrary<Recipe> = fc.oneof(
  made("Uint16Array", () => new Uint16Array([1, 2])),
  made("Int8Array", () => new Int8Array(3)),
  made("Uint8ClampedArray", () => new Uint8ClampedArray(2)),
  made("ArrayBuffer", () => new ArrayBuffer(4)),
  made("DataView", () => new DataView(new ArrayBuffer(4))),
  made("fake Uint8Array", () => Object.create(Uint8Array.prototype)),
  made("fake AbortSignal", () => Object.create(AbortSignal.prototype)),
  made("null-prototype object", () => Object.create(null)),
  made("AbortController", () => new AbortController()),
  made("live signal", () => new AbortController().signal),
  made("aborted signal", () => AbortSignal.abort(new UserError("aborted"))),
  made("proxy", () => new Proxy({}, {})),
  made("proxy throwing on get", () => new Proxy({}, { get: thrower })),
  made("proxy throwing on keys", () => new Proxy({}, { ownKeys: thrower })),
  made(
    "proxy throwing on prototype",
    () => new Proxy({}, { getPrototypeOf: thrower }),
  ),
  made(
    "proxy throwing on has and descriptors",
    () => new Proxy({}, { has: thrower, getOwnPropertyDescriptor: thrower }),
  ),
  made("proxy of a Uint8Array", () => new Proxy(new Uint8Array([1, 2]), {})),
  made("proxy of an array", () => new Proxy([], {})),
  made("revoked proxy", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  }),
  made("revoked array proxy", () => {
    const { proxy, revoke } = Proxy.revocable([], {});
    revoke();
    return proxy;
  }),
  made("thenable", () => ({ then: () => {} })),
  made("function", () => () => {}),
  made("async function", () => async () => {}),
  made("class", () => class {}),
  made("symbol", () => Symbol("s")),
  made("bigint", () => 10n),
  made("invalid Date", () => new Date(NaN)),
  made("Map", () => new Map()),
  made("RegExp", () => /x/),
  made("Error", () => new Error("e")),
  made("Promise", () => Promise.resolve()),
  made("100k string", () => "x".repeat(100_000)),
  made("frozen object", () => Object.freeze({})),
  made("frozen array", () => Object.freeze([1])),
);

const nearMiss: fc.Arbitrary<Recipe> = value(fc.constantFrom<unknown>(
  NaN,
  0,
  -0,
  -1,
  0.5,
  1,
  Infinity,
  -Infinity,
  3e9,
  2 ** 31,
  2 ** 31 - 1,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.MAX_SAFE_INTEGER + 2,
  "",
  " ",
  "5",
  "abc",
  "true",
  "undefined",
  true,
  false,
  null,
  undefined,
  [],
  [1],
  {},
));

const anything: fc.Arbitrary<Recipe> = fc.oneof(
  value(fc.anything({
    maxDepth: 2,
    maxKeys: 4,
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withNullPrototype: true,
    withObjectString: true,
    withSet: true,
    withSparseArray: true,
    withTypedArray: true,
  })),
  nearMiss,
  weird,
);

/**
 * Options built from `valid` per known name (each maybe left out, maybe
 * replaced by anything), maybe with a misspelt or unknown name, a getter
 * that throws, or behind a proxy. Not here: a getter or proxy that answers
 * one thing when the options are checked and another when they are used.
 * The doors read each option once and the calls go on with a copy, which
 * tests/arguments.test.ts checks by counting reads.
 */
function optionsOf(
  valid: Record<string, fc.Arbitrary<Recipe>>,
  other: fc.Arbitrary<Recipe> = anything,
) {
  const names = Object.keys(valid);
  const fields = Object.fromEntries(
    names.map((name) => [
      name,
      fc.oneof({ weight: 3, arbitrary: valid[name] }, {
        weight: 1,
        arbitrary: other,
      }),
    ]),
  );
  const record = fc.record(fields, { requiredKeys: [] }).map((recipes) => {
    const entries = Object.entries(recipes as Record<string, Recipe>);
    return new Recipe(
      `{${entries.map(([k, r]) => `${k}: ${r.label}`).join(", ")}}`,
      () => Object.fromEntries(entries.map(([k, r]) => [k, r.make()])),
    );
  });
  const typo = fc.constantFrom(
    ...names.flatMap((n) => [
      n.toUpperCase(),
      n.slice(0, -1),
      n + "s",
      n[1] + n[0] + n.slice(2),
    ]),
    "__proto__",
    "constructor",
    "toString",
    "then",
  );
  const name = fc.constantFrom(...names);
  return fc.oneof(
    { weight: 1, arbitrary: anything },
    { weight: 4, arbitrary: record },
    {
      weight: 1,
      arbitrary: fc.tuple(record, typo, anything).map(([o, key, v]) =>
        new Recipe(
          `${o.label} + ${key}: ${v.label}`,
          () =>
            Object.defineProperty(o.make(), key, {
              value: v.make(),
              enumerable: true,
            }),
        )
      ),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(record, name).map(([o, key]) =>
        new Recipe(
          `${o.label} + ${key} getter that throws`,
          () =>
            Object.defineProperty(o.make(), key, {
              get: thrower,
              enumerable: true,
            }),
        )
      ),
    },
    {
      weight: 1,
      arbitrary: record.map((o) =>
        new Recipe(
          `proxy of ${o.label}`,
          () => new Proxy(o.make() as object, {}),
        )
      ),
    },
    { weight: 1, arbitrary: value(fc.constant(undefined)) },
  );
}

const duration = value(fc.oneof(
  fc.integer({ min: 200, max: 2 ** 31 - 1 }),
  fc.double({ min: 200, max: 1e6, noNaN: true }),
));
const flag = value(fc.boolean());
const signalArb = fc.oneof(
  {
    weight: 4,
    arbitrary: made("live signal", () => new AbortController().signal),
  },
  {
    weight: 1,
    arbitrary: made(
      "aborted signal",
      () => AbortSignal.abort(new UserError("aborted")),
    ),
  },
);

const requestOptions = optionsOf({
  timeoutMs: duration,
  signal: signalArb,
  idempotent: flag,
  retry: flag,
  hedge: flag,
});
const callOptions = optionsOf({ timeoutMs: duration, signal: signalArb });

/**
 * Anything for a callback's place, bar a class: calling one throws a
 * TypeError, which is then the callback's own failure, as a UserError
 * thrown by a callback is, and passes through unchanged.
 */
const anyCallback = anything.filter((r) => r.label !== "class");

/** Payloads: echo requests the node answers at once, or anything. */
const payload = fc.oneof(
  { weight: 2, arbitrary: value(fc.string().map((s) => ops.echo(s))) },
  {
    weight: 1,
    arbitrary: value(
      fc.uint8Array({ maxLength: 64 }).map((bytes) => ops.echo(bytes)),
    ),
  },
  { weight: 3, arbitrary: anything },
);

// --- the harness -------------------------------------------------------------

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Runs `call`, bounded by CALL_LIMIT_MS; a hang is a failure of its own. */
async function run(call: () => unknown): Promise<Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const value = call();
    if (
      value !== null && typeof value === "object" &&
      typeof (value as Promise<unknown>).then === "function"
    ) {
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Hang(`no outcome within ${CALL_LIMIT_MS} ms`)),
          CALL_LIMIT_MS,
        );
      });
      return { ok: true, value: await Promise.race([value, hang]) };
    }
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

class Hang extends Error {}

/** Success, a NodewireError, or the caller's own UserError. */
function assertContract(outcome: Outcome, what: string): void {
  if (outcome.ok) return;
  const { error } = outcome;
  if (error instanceof NodewireError || error instanceof UserError) return;
  const detail = error instanceof Error
    ? `${error.name}: ${error.message}\n${error.stack}`
    : String(error);
  assert.fail(`${what} ended with a raw error: ${detail}`);
}

/** Records unhandled rejections while `body` runs; there must be none. */
async function noUnhandledRejections(body: () => Promise<void>): Promise<void> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    await body();
    // One more turn for rejections of the last run to surface.
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
  assert.deepEqual(unhandled, [], "no unhandled rejection");
}

function describe(...recipes: Recipe[]): string {
  return recipes.map((r) => r.label).join(", ");
}

/** A client of `node` that a caller's timeouts cannot take out of rotation. */
function connectClient(node: TestNode): Promise<Client> {
  return Client.connect({
    hosts: [node.address],
    healthConfig: { intervalMs: 0, unhealthyThreshold: 1000 },
    poolConfig: { minConnections: 1, maxConnections: 4 },
  });
}

/** A valid request on `client` succeeds at once. */
async function assertStillWorks(client: Client, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await run(() =>
    Promise.race([
      client.request(ops.echo("still works")),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Hang("slow")), AFTER_LIMIT_MS);
      }),
    ])
  );
  clearTimeout(timer);
  assert.ok(
    outcome.ok && replyText(outcome.value as Uint8Array) === "still works",
    `after ${what}, a valid request failed: ${
      outcome.ok ? "wrong reply" : String((outcome as { error: unknown }).error)
    }`,
  );
}

/** A node and a client for `body`, torn down after. */
async function withClient(
  body: (client: Client, node: TestNode) => Promise<void>,
): Promise<void> {
  const node = await startTestNode();
  const client = await connectClient(node);
  try {
    await noUnhandledRejections(() => body(client, node));
  } finally {
    await client.disconnect({ timeoutMs: 100 });
    await node.close();
  }
}

// --- the client's methods ----------------------------------------------------

test(`Contract: client.request(payload, options) (${RUNS.request} runs)`, async () => {
  await withClient(async (client) => {
    await fc.assert(
      fc.asyncProperty(payload, requestOptions, async (p, o) => {
        const what = `request(${describe(p, o)})`;
        assertContract(
          await run(() => client.request(p.make() as never, o.make() as never)),
          what,
        );
        await assertStillWorks(client, what);
      }),
      { numRuns: RUNS.request, endOnFailure: true },
    );
  });
});

test(`Contract: client.ping and client.withConnection (${RUNS.ping} + ${RUNS.withConnection} runs)`, async () => {
  await withClient(async (client) => {
    await fc.assert(
      fc.asyncProperty(callOptions, async (o) => {
        const what = `ping(${describe(o)})`;
        assertContract(await run(() => client.ping(o.make() as never)), what);
        await assertStillWorks(client, what);
      }),
      { numRuns: RUNS.ping, endOnFailure: true },
    );
    const fn = fc.oneof(
      anyCallback,
      made(
        "a callback sending a request",
        () => (c: { sendRequest(p: Uint8Array): Promise<Uint8Array> }) =>
          c.sendRequest(ops.echo("lent")),
      ),
      made("a callback resolving", () => () => Promise.resolve(1)),
      made("a callback returning a value", () => () => 1),
      made(
        "a callback rejecting",
        () => () => Promise.reject(new UserError("the callback failed")),
      ),
      made("a callback throwing", () => thrower),
    );
    await fc.assert(
      fc.asyncProperty(fn, callOptions, async (f, o) => {
        const what = `withConnection(${describe(f, o)})`;
        assertContract(
          await run(() =>
            client.withConnection(f.make() as never, o.make() as never)
          ),
          what,
        );
        await assertStillWorks(client, what);
      }),
      { numRuns: RUNS.withConnection, endOnFailure: true },
    );
  });
});

const eventNames = [
  "retry",
  "nodeHealthChanged",
  "protocolSelected",
  "checkedOut",
  "checkedIn",
  "connectionCreated",
];

test(`Contract: client.addEventListener / removeEventListener (${RUNS.listeners} runs)`, async () => {
  await withClient(async (client) => {
    const type = fc.oneof(value(fc.constantFrom(...eventNames)), anything);
    const listener = fc.oneof(
      made("a function", () => () => {}),
      made("a handleEvent object", () => ({ handleEvent() {} })),
      value(fc.constant(null)),
      anything,
    );
    const options = fc.oneof(
      flag,
      optionsOf({
        once: flag,
        capture: flag,
        passive: flag,
        signal: signalArb,
      }),
    );
    const add = client.addEventListener.bind(client) as (
      ...args: unknown[]
    ) => void;
    const remove = client.removeEventListener.bind(client) as (
      ...args: unknown[]
    ) => void;
    await fc.assert(
      fc.asyncProperty(type, listener, options, async (t, l, o) => {
        const args = [t.make(), l.make(), o.make()];
        const what = `addEventListener(${describe(t, l, o)})`;
        assertContract(await run(() => add(...args)), what);
        assertContract(
          await run(() => remove(...args)),
          `removeEventListener(${describe(t, l, o)})`,
        );
        await assertStillWorks(client, what);
      }),
      { numRuns: RUNS.listeners, endOnFailure: true },
    );
  });
});

test(`Contract: healthCheckAllNodes(options) and stats(...anything) (${RUNS.plain} runs)`, async () => {
  await withClient(async (client) => {
    const stats = client.stats as (...args: unknown[]) => unknown;
    const check = client.healthCheckAllNodes as (
      ...args: unknown[]
    ) => unknown;
    await fc.assert(
      fc.asyncProperty(
        optionsOf({ signal: signalArb }),
        fc.array(anything, { maxLength: 3 }),
        async (o, args) => {
          const made = args.map((a) => a.make());
          assertContract(
            await run(() => check.call(client, o.make(), ...made)),
            `healthCheckAllNodes(${describe(o, ...args)})`,
          );
          assertContract(
            await run(() => stats.call(client, ...made)),
            `stats(${describe(...args)})`,
          );
          assert.equal(client.closed, false);
          await assertStillWorks(client, "healthCheckAllNodes and stats");
        },
      ),
      { numRuns: RUNS.plain, endOnFailure: true },
    );
  });
});

test(`Contract: client.addNode(host) and removeNode(address) (${RUNS.membership} runs)`, async () => {
  const other = await startTestNode();
  try {
    await withClient(async (client, node) => {
      const address = fc.oneof(
        value(fc.constantFrom(
          other.address,
          node.address,
          "127.0.0.1:1",
          "127.0.0.1:7000:1",
          "[:::::]:7000",
          "",
          "nodewire://127.0.0.1:7000",
        )),
        // Never a name to resolve (see the connect test).
        value(fc.string().map((s) => `${s}@`)),
        anything,
      );
      await fc.assert(
        fc.asyncProperty(address, address, async (added, removed) => {
          const before = client.stats().nodes.length;
          const adding = await run(() => client.addNode(added.make() as never));
          assertContract(adding, `addNode(${describe(added)})`);
          const removing = await run(() =>
            client.removeNode(removed.make() as never)
          );
          assertContract(removing, `removeNode(${describe(removed)})`);
          // Back to the one node the run started with (which the run may
          // have removed, when it had added another).
          const addresses = () => client.stats().nodes.map((n) => n.address);
          if (!addresses().includes(node.address)) {
            await client.addNode(node.address);
          }
          for (const address of addresses()) {
            if (address !== node.address) await client.removeNode(address);
          }
          assert.equal(client.stats().nodes.length, before);
          await assertStillWorks(client, `addNode(${describe(added)})`);
        }),
        { numRuns: RUNS.membership, endOnFailure: true },
      );
    });
  } finally {
    await other.close();
  }
});

test(`Contract: client.disconnect(options) (${RUNS.disconnect} runs)`, async () => {
  const node = await startTestNode();
  try {
    await noUnhandledRejections(async () => {
      const options = optionsOf({
        timeoutMs: fc.oneof(value(fc.constant(0)), duration),
      });
      await fc.assert(
        fc.asyncProperty(options, async (o) => {
          const client = await connectClient(node);
          try {
            const what = `disconnect(${describe(o)})`;
            const outcome = await run(() =>
              client.disconnect(o.make() as never)
            );
            assertContract(outcome, what);
            if (outcome.ok) {
              assert.equal(client.closed, true, what);
              const after = await run(() => client.request(ops.echo("x")));
              assert.ok(
                !after.ok && after.error instanceof root.ClientClosedError,
                `after ${what}: ${String(after.ok || after.error)}`,
              );
            } else {
              assert.equal(client.closed, false, what);
              await assertStillWorks(client, what);
            }
          } finally {
            await client.disconnect({ timeoutMs: 100 });
          }
        }),
        { numRuns: RUNS.disconnect, endOnFailure: true },
      );
    });
  } finally {
    await node.close();
  }
});

test(`Contract: Client.connect(config, options) and Client.connect(url, overrides, options) (${RUNS.connect} runs)`, async () => {
  const node = await startTestNode();
  try {
    const hostEntry = fc.oneof(
      value(fc.constantFrom(
        node.address,
        "127.0.0.1:1",
        "127.0.0.1:7000:1",
        "[:::::]:7000",
        "1.2.3.4.5",
        "",
        "host:",
        ":7000",
        "[::1]x",
        "nodewire://127.0.0.1:7000",
      )),
      // Never a name to resolve: every generated string has a character
      // no host has, so no run waits on DNS.
      value(fc.string().map((s) => `${s}@`)),
      anything,
    );
    const hosts = fc.oneof(
      { weight: 4, arbitrary: value(fc.constant([node.address])) },
      {
        weight: 1,
        arbitrary: fc.array(hostEntry, { maxLength: 3 }).map((entries) =>
          new Recipe(
            `[${entries.map((e) => e.label).join(", ")}]`,
            () => entries.map((e) => e.make()),
          )
        ),
      },
      { weight: 1, arbitrary: anything },
    );
    const small = (max: number) =>
      fc.oneof(value(fc.integer({ min: 0, max })), anything);
    const config = fc.oneof(
      { weight: 1, arbitrary: anything },
      {
        weight: 6,
        arbitrary: optionsOf({
          hosts,
          timeoutMs: value(fc.integer({ min: 50, max: 2000 })),
          requestTimeoutMs: duration,
          username: value(fc.string()),
          password: fc.oneof(
            value(fc.string()),
            value(fc.string()).map((r) =>
              new Recipe(
                `Secret(${r.label})`,
                () => new Secret(r.make() as string),
              )
            ),
          ),
          enableTls: flag,
          tlsPolicy: value(fc.constantFrom("require", "prefer", "disable")),
          protocols: value(fc.subarray(["tls", "tcp", "udp"])),
          maxFrameSize: value(fc.integer({ min: 1024, max: 1 << 24 })),
          poolConfig: optionsOf({
            minConnections: small(2),
            maxConnections: small(4),
            connectionTimeoutMs: value(fc.integer({ min: 50, max: 2000 })),
            maxConnecting: small(2),
          }),
          retryConfig: optionsOf({
            maxRetries: small(2),
            initialBackoffMs: small(5),
            maxBackoffMs: small(10),
            jitter: flag,
          }),
          healthConfig: optionsOf({
            intervalMs: value(fc.constantFrom(0, 1000)),
            unhealthyThreshold: small(5),
          }),
          loadBalancing: value(
            fc.constantFrom("round-robin", "least-in-flight", "peak-ewma"),
          ),
          hedging: fc.oneof(
            flag,
            optionsOf({ maxHedges: small(2), percentile: small(99) }),
          ),
          retryBudget: fc.oneof(value(fc.constant(false)), anything),
          whenNoHealthyNodes: value(fc.constantFrom("fail", "tryAll")),
          runtime: value(fc.constantFrom("deno", "bun", "node", "memory")),
          clientName: value(fc.string()),
          logger: made("a logger", () => () => {}),
        }),
      },
    );
    const options = optionsOf({
      signal: signalArb,
      lazy: flag,
      connection: optionsOf({
        clientName: value(fc.string()),
        timeoutMs: value(fc.integer({ min: 50, max: 2000 })),
        hostname: value(fc.constant("127.0.0.1")),
        port: value(fc.constant(node.port)),
      }),
    });
    // The other form: a connection string (or none: NODEWIRE_URL, unset
    // here), overrides, then the options.
    const url = fc.oneof(
      value(fc.constantFrom(
        undefined,
        `nodewire://${node.address}`,
        `nodewire://${node.address}/?timeoutMs=500&poolMax=2`,
        `nodewire://app@${node.address}`,
        `nodewire://app:pw@${node.address}/?tls=require`,
        `nodewire://${node.address}/?timeoutMs=NaN`,
        `nodewire://${node.address}/?bogus=1`,
        "nodewire://",
        "http://127.0.0.1:7000",
        node.address,
      )),
      value(fc.string().map((s) => `nodewire://${s}@`)),
      anything,
    );
    const form = fc.oneof(
      fc.tuple(config, options).map(([c, o]) => [c, o]),
      fc.tuple(url, config, options).map(([u, c, o]) => [u, c, o]),
    );
    await noUnhandledRejections(async () => {
      await fc.assert(
        fc.asyncProperty(form, async (args) => {
          const what = `Client.connect(${describe(...args)})`;
          const connect = Client.connect as (...a: unknown[]) => unknown;
          const outcome = await run(() =>
            connect.apply(Client, args.map((a) => a.make()))
          );
          assertContract(outcome, what);
          if (outcome.ok) {
            await (outcome.value as Client).disconnect({ timeoutMs: 100 });
          }
        }),
        { numRuns: RUNS.connect, endOnFailure: true },
      );
    });
  } finally {
    await node.close();
  }
});

// --- the functions and constructors of the root ------------------------------

/** The outcome of a synchronous call. */
function runSync(call: () => unknown): Outcome {
  try {
    return { ok: true, value: call() };
  } catch (error) {
    return { ok: false, error };
  }
}

test(`Contract: isRetryable(error, options) (${RUNS.isRetryable} runs)`, () => {
  const errors = fc.oneof(
    anything,
    made(
      "ConnectionRefusedError",
      () => new root.ConnectionRefusedError({ hostname: "h", port: 1 }),
    ),
    made("RequestTimeoutError", () => new root.RequestTimeoutError("h:1", 5)),
    made(
      "InvalidArgumentError",
      () => new root.InvalidArgumentError("x", 1, "y"),
    ),
    made("ProtocolError", () => new ProtocolError("p")),
  );
  fc.assert(
    fc.property(errors, requestOptions, (e, o) => {
      const outcome = runSync(() => isRetryable(e.make(), o.make() as never));
      assertContract(outcome, `isRetryable(${describe(e, o)})`);
      if (outcome.ok) assert.equal(typeof outcome.value, "boolean");
    }),
    { numRuns: RUNS.isRetryable, endOnFailure: true },
  );
});

test(`Contract: executeWithRetry(operation, config, options) (${RUNS.executeWithRetry} runs)`, async () => {
  const operation = fc.oneof(
    anyCallback,
    made("resolves", () => () => Promise.resolve("done")),
    made("returns a value", () => () => "not a promise"),
    made(
      "rejects with the caller's error",
      () => () => Promise.reject(new UserError("the operation failed")),
    ),
    made("throws", () => thrower),
    made(
      "rejects, not retryable",
      () => () => Promise.reject(new ProtocolError("not retried")),
    ),
  );
  const config = fc.oneof(
    value(fc.constant(DEFAULT_RETRY_CONFIG)),
    optionsOf({
      maxRetries: value(fc.integer({ min: 0, max: 5 })),
      initialBackoffMs: value(fc.integer({ min: 0, max: 5 })),
      maxBackoffMs: value(fc.integer({ min: 0, max: 10 })),
      backoffMultiplier: value(fc.double({ min: 1, max: 4, noNaN: true })),
      jitter: flag,
    }),
  );
  const options = optionsOf({
    isRetryable: made("a predicate", () => () => false),
    idempotent: flag,
    signal: signalArb,
    onRetry: fc.oneof(
      made("a hook", () => () => {}),
      made("a throwing hook", () => thrower),
    ),
    random: made("a source", () => () => 0.5),
  }, anyCallback);
  await noUnhandledRejections(async () => {
    await fc.assert(
      fc.asyncProperty(operation, config, options, async (op, c, o) => {
        assertContract(
          await run(() =>
            executeWithRetry(
              op.make() as never,
              c.make() as never,
              o.make() as never,
            )
          ),
          `executeWithRetry(${describe(op, c, o)})`,
        );
      }),
      { numRuns: RUNS.executeWithRetry, endOnFailure: true },
    );
  });
});

test(`Contract: new Secret(value) (${RUNS.secret} runs)`, () => {
  fc.assert(
    fc.property(fc.oneof(value(fc.string()), anything), (v) => {
      const input = v.make();
      const outcome = runSync(() => new Secret(input as string));
      assertContract(outcome, `new Secret(${describe(v)})`);
      if (outcome.ok) {
        const secret = outcome.value as Secret;
        assert.equal(secret.reveal(), input);
        assert.equal(String(secret), "[redacted]");
      }
    }),
    { numRuns: RUNS.secret, endOnFailure: true },
  );
});

// Constructors get values of their parameters' declared types, from every
// corner of those types (empty and odd strings, NaN, ±Infinity, -0, huge
// numbers, empty arrays), and anything at all where a parameter is
// declared `unknown` (a cause, a rejected value, the value a ConfigError
// quotes). Like `Error` itself, which throws a TypeError for a Symbol
// message, they do not check what their types already say.
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.constantFrom("", " ", "\u0000", "[redacted]", "x".repeat(10_000)),
);
const number = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 2 ** 53),
);
const protocol = fc.constantFrom("tls", "tcp", "udp");
const endpoint = fc.record({ hostname: text, port: number });
const errorOptions = fc.record({ cause: anything, retryable: fc.boolean() }, {
  requiredKeys: [],
});
const anError = fc.oneof(
  text.map((m) => new Error(m)),
  text.map((m) => new ProtocolError(m)),
);
const connectionCode = fc.constantFrom(
  "CONNECTION_REFUSED",
  "CONNECT_TIMEOUT",
  "HOST_NOT_FOUND",
  "CONNECTION_LOST",
  "CONNECTION_CLOSED",
  "CONNECTION_FAILED",
  "LISTEN_FAILED",
  "TLS_UNSUPPORTED",
);
const errorCode = fc.oneof(
  connectionCode,
  fc.constantFrom(
    "CONFIG_INVALID",
    "INVALID_ARGUMENT",
    "PROTOCOL_ERROR",
    "REQUEST_TIMEOUT",
    "ABORTED",
    "AUTH_FAILED",
  ),
);
const optional = <T>(arb: fc.Arbitrary<T>) =>
  fc.option(arb, { nil: undefined });

/** Each constructor's parameters; Recipe where a value is `unknown`. */
const signatures: Record<string, fc.Arbitrary<unknown[]>> = {
  AbortedError: fc.tuple(text, anything),
  AuthenticationError: fc.tuple(
    text,
    fc.record({
      reason: fc.constantFrom(
        "credentials-required",
        "rejected",
        "server-signature",
        "node-unauthenticated",
        "bad-challenge",
        "invalid-credentials",
      ),
      address: optional(text),
      cause: anything,
    }, { requiredKeys: ["reason"] }),
  ),
  ClientClosedError: fc.tuple(optional(text), optional(errorOptions)),
  ConfigError: fc.tuple(text, anything, text),
  ConnectFailedError: fc.tuple(
    fc.array(fc.record({ address: text, error: anError }), { maxLength: 3 }),
    optional(errorOptions),
  ),
  ConnectTimeoutError: fc.tuple(endpoint, number, optional(errorOptions)),
  ConnectionClosedError: fc.tuple(endpoint, optional(errorOptions)),
  ConnectionError: fc.tuple(
    connectionCode,
    text,
    endpoint,
    optional(errorOptions),
  ),
  ConnectionLostError: fc.tuple(
    endpoint,
    text,
    optional(
      fc.record({
        cause: anything,
        retryable: fc.boolean(),
        sent: fc.boolean(),
      }, {
        requiredKeys: [],
      }),
    ),
  ),
  ConnectionRefusedError: fc.tuple(endpoint, optional(errorOptions)),
  DatagramTooLargeError: fc.tuple(text, number, number, number),
  HostNotFoundError: fc.tuple(endpoint, optional(errorOptions)),
  InvalidArgumentError: fc.tuple(
    text,
    anything,
    text,
    optional(
      fc.record({ method: text, cause: anything }, { requiredKeys: [] }),
    ),
  ),
  NegotiationError: fc.tuple(
    fc.record({
      address: text,
      detail: text,
      clientProtocols: fc.array(protocol),
      allowedProtocols: fc.array(protocol),
      nodeProtocols: fc.array(protocol),
    }),
    optional(fc.record({ cause: anything }, { requiredKeys: [] })),
  ),
  NoHealthyNodesError: fc.tuple(fc.array(text), optional(errorOptions)),
  NodeUnhealthyError: fc.tuple(text, text),
  NodewireError: fc.tuple(errorCode, text, optional(errorOptions)),
  PoolClosedError: fc.tuple(
    text,
    fc.constantFrom("closed", "cleared"),
    optional(errorOptions),
  ),
  PoolMisuseError: fc.tuple(text, text),
  PoolTimeoutError: fc.tuple(
    text,
    number,
    fc.record({ open: number, inUse: number, waiting: number }),
  ),
  ProtocolError: fc.tuple(text, optional(errorOptions)),
  RemoteError: fc.tuple(number, text, fc.boolean(), optional(text)),
  RequestTimeoutError: fc.tuple(text, number),
  RetriesExhaustedError: fc.tuple(number, anything),
  SaslprepError: fc.tuple(text),
  TlsError: fc.tuple(
    text,
    fc.record({
      reason: fc.constantFrom(
        "certificate",
        "hostname",
        "expired",
        "handshake-timeout",
        "handshake",
      ),
      address: text,
      serverName: optional(text),
      cause: anything,
    }, { requiredKeys: ["reason", "address"] }),
  ),
  // Events carry their detail as given.
  NodeHealthEvent: fc.tuple(anything, number),
  ProtocolSelectedEvent: fc.tuple(anything, number),
  RetryEvent: fc.tuple(anything, number),
  PoolEvent: fc.tuple(
    fc.constantFrom("poolCreated", "checkedOut", "connectionClosed"),
    anything,
    number,
  ),
};

/** Makes the values a signature's recipes stand for, at any depth. */
function build(value: unknown): unknown {
  if (value instanceof Recipe) return value.make();
  if (Array.isArray(value)) return value.map(build);
  if (
    value !== null && typeof value === "object" &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, build(v)]),
    );
  }
  return value;
}

test(`Contract: the root's error and event constructors (${RUNS.constructors} runs)`, () => {
  // Every class the root exports has a signature here, bar Client (made
  // by Client.connect) and Secret (its own test).
  const classes = Object.entries(root).filter(([name, v]) =>
    typeof v === "function" && /^[A-Z]/.test(name) && name !== "Client" &&
    name !== "Secret"
  ).map(([name]) => name).sort();
  assert.deepEqual(classes, Object.keys(signatures).sort());
  const call = fc.oneof(
    ...Object.entries(signatures).map(([name, args]) =>
      args.map((a) => ({ name, args: a }))
    ),
  );
  fc.assert(
    fc.property(call, ({ name, args }) => {
      const Class = (root as Record<string, unknown>)[name] as new (
        ...a: unknown[]
      ) => unknown;
      const outcome = runSync(() => {
        const made = new Class(...(build(args) as unknown[]));
        // What a caller does with an error: read and print it.
        if (made instanceof Error) {
          return `${made.message} ${made.stack} ${String(made)}`;
        }
        return made;
      });
      assertContract(outcome, `new ${name}(${fc.stringify(args)})`);
    }),
    { numRuns: RUNS.constructors },
  );
});
