import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  backoffDelay,
  executeWithRetry,
  type ExecuteWithRetryOptions,
  isRetryable,
  type RetryInfo,
} from "../src/client/retry.ts";
import type { RetryConfig } from "../src/config/shapes.ts";
import { DEFAULT_RETRY_CONFIG } from "../src/config/defaults.ts";
import {
  AbortedError,
  ClientClosedError,
  ConfigError,
  ConnectionClosedError,
  ConnectionError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  HostNotFoundError,
  InvalidArgumentError,
  NodewireError,
  NoHealthyNodesError,
  PoolClosedError,
  PoolTimeoutError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { RetryWaits, waitToRetry } from "../src/client/waits.ts";
import { countedSignal } from "./support/fault_checks.ts";

const NODE = { hostname: "127.0.0.1", port: 7000 };

function retryConfig(overrides: Partial<RetryConfig> = {}): RetryConfig {
  return { ...DEFAULT_RETRY_CONFIG, ...overrides };
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Settles `promise` on a virtual clock, firing its timers one by one until the
 * promise settles, so backoff waits take no real time.
 */
async function drive<T>(
  clock: VirtualClock,
  promise: Promise<T>,
): Promise<Outcome<T>> {
  const box: { outcome?: Outcome<T> } = {};
  promise.then(
    (value) => (box.outcome = { ok: true, value }),
    (error) => (box.outcome = { ok: false, error }),
  );
  for (let step = 0; box.outcome === undefined; step++) {
    if (step > 100_000) throw new Error("the retry loop never settled");
    if (!(await clock.runNext())) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  return box.outcome;
}

/** Checks that the loop rejected with exactly `error`, the same object. */
function assertRejectedWith(outcome: Outcome<unknown>, error: unknown): void {
  assert.equal(outcome.ok, false, "expected a rejection");
  assert.equal((outcome as { error: unknown }).error, error);
}

/** Runs an operation that fails with `errors` in turn, then succeeds. */
async function runScripted(
  errors: readonly unknown[],
  config: RetryConfig,
  options: ExecuteWithRetryOptions = {},
) {
  const clock = new VirtualClock(1_000);
  const times: number[] = [];
  const outcome = await drive(
    clock,
    executeWithRetry(
      (attempt) => {
        assert.equal(attempt, times.length);
        times.push(clock.now());
        if (attempt < errors.length) return Promise.reject(errors[attempt]);
        return Promise.resolve(`ok after ${attempt}`);
      },
      config,
      { clock, ...options },
    ),
  );
  const delays = times.slice(1).map((t, i) => t - times[i]);
  return { outcome, times, delays, clock };
}

function close(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected));
}

function assertDelaysFollowSchedule(
  delays: readonly number[],
  config: RetryConfig,
): void {
  for (let n = 0; n < delays.length; n++) {
    const expected = n === 0
      ? Math.min(config.initialBackoffMs, config.maxBackoffMs)
      : Math.min(delays[n - 1] * config.backoffMultiplier, config.maxBackoffMs);
    assert.ok(
      close(delays[n], expected),
      `delay ${n}: expected ${expected}, got ${delays[n]} (all: ${delays})`,
    );
  }
}

const arbRetryConfig: fc.Arbitrary<RetryConfig> = fc
  .record({
    maxRetries: fc.integer({ min: 0, max: 12 }),
    initialBackoffMs: fc.oneof(
      fc.integer({ min: 0, max: 10_000 }),
      fc.double({ min: 0, max: 10_000, noNaN: true }),
    ),
    extraMaxMs: fc.integer({ min: 0, max: 100_000 }),
    backoffMultiplier: fc.oneof(
      fc.constantFrom(1, 1.5, 2, 3, 10),
      fc.double({ min: 1, max: 20, noNaN: true }),
    ),
  })
  .map(({ extraMaxMs, ...rest }) => ({
    ...rest,
    maxBackoffMs: rest.initialBackoffMs + extraMaxMs,
    jitter: false,
  }));

// --- backoffDelay ----------------------------------------------------------

test("backoffDelay follows the default schedule 100, 200, 400 ... capped at 5000", () => {
  const config = retryConfig();
  const delays = Array.from({ length: 9 }, (_, n) => backoffDelay(n, config));
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
});

test("backoffDelay stays finite and capped for huge attempt numbers", () => {
  const config = retryConfig({ backoffMultiplier: 10 });
  for (
    const attempt of [1023, 1024, 1e6, Number.MAX_SAFE_INTEGER, Infinity]
  ) {
    assert.equal(backoffDelay(attempt, config), 5000);
    assert.equal(
      backoffDelay(attempt, { ...config, jitter: true }, () => 0),
      2500,
    );
  }
  // 0 × ∞ and 1 ** ∞ are NaN in IEEE arithmetic; the schedule must not be.
  const zero = retryConfig({ initialBackoffMs: 0, maxBackoffMs: 0 });
  assert.equal(backoffDelay(Infinity, zero), 0);
  assert.equal(backoffDelay(1e9, retryConfig({ initialBackoffMs: 0 })), 0);
  const flat = retryConfig({ backoffMultiplier: 1 });
  assert.equal(backoffDelay(Infinity, flat), 100);
});

test("backoffDelay refuses a bad attempt, schedule or random with InvalidArgumentError naming it", () => {
  const refused = (argument: string, call: () => unknown) =>
    assert.throws(
      call,
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.argument === argument &&
        error.message.startsWith("backoffDelay: "),
    );
  const config = retryConfig();
  refused("attempt", () => backoffDelay(-1, config));
  refused("attempt", () => backoffDelay(NaN, config));
  refused("attempt", () => backoffDelay("1" as never, config));
  // It answered undefined, promised "always a finite number".
  refused("config.maxRetries", () => backoffDelay(0, {} as never));
  refused("config", () => backoffDelay(0, null as never));
  refused(
    "config.backoffMultiplier",
    () => backoffDelay(0, { ...config, backoffMultiplier: "2" as never }),
  );
  refused(
    "config.jitter",
    () => backoffDelay(0, { ...config, jitter: 1 as never }),
  );
  refused("random", () => backoffDelay(0, config, 0.5 as never));
  assert.equal(backoffDelay(Infinity, config), config.maxBackoffMs);
});

test("backoffDelay with jitter stays within [delay/2, delay]", () => {
  fc.assert(
    fc.property(
      arbRetryConfig,
      fc.nat({ max: 2000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (config, attempt, r) => {
        const plain = backoffDelay(attempt, config);
        const jittered = backoffDelay(
          attempt,
          { ...config, jitter: true },
          () => r,
        );
        assert.ok(Number.isFinite(jittered));
        assert.ok(
          jittered >= plain / 2 && jittered <= plain,
          `${jittered} vs ${plain}`,
        );
      },
    ),
  );
  const config = retryConfig({ jitter: true });
  assert.equal(backoffDelay(2, config, () => 0), 200);
  assert.equal(backoffDelay(2, config, () => 0.5), 300);
  // A generator that breaks its contract still cannot leave the range.
  assert.equal(backoffDelay(2, config, () => 7), 400);
  assert.equal(backoffDelay(2, config, () => -3), 200);
});

test("backoffDelay is never NaN or Infinity for any valid config and attempt", () => {
  fc.assert(
    fc.property(
      arbRetryConfig,
      fc.oneof(fc.nat(), fc.double({ min: 0, noNaN: true })),
      fc.boolean(),
      (config, attempt, jitter) => {
        const delay = backoffDelay(attempt, { ...config, jitter });
        assert.ok(Number.isFinite(delay), `got ${delay}`);
        assert.ok(delay >= 0 && delay <= config.maxBackoffMs);
      },
    ),
  );
});

// --- isRetryable -------------------------------------------------------------

test("errors raised before the request left the client are always retryable", () => {
  const neverSent: NodewireError[] = [
    new ConnectionRefusedError(NODE),
    new ConnectTimeoutError(NODE, 5000),
    new HostNotFoundError(NODE),
    new ConnectionClosedError(NODE),
    new PoolTimeoutError("127.0.0.1:7000", 5000, {
      open: 1,
      inUse: 1,
      waiting: 1,
    }),
    new PoolClosedError("127.0.0.1:7000", "cleared"),
    new NoHealthyNodesError(["127.0.0.1:7000"]),
    new ConnectionLostError(NODE, "reset", { sent: false }),
  ];
  for (const error of neverSent) {
    assert.equal(isRetryable(error), true, error.code);
    assert.equal(isRetryable(error, { idempotent: false }), true, error.code);
    assert.equal(isRetryable(error, { idempotent: true }), true, error.code);
  }
});

test("errors after which the request may have reached the node are retried only when idempotent", () => {
  const maybeSent: NodewireError[] = [
    new ConnectionLostError(NODE, "reset", { sent: true }),
    new ConnectionLostError(NODE, "reset"),
    // As the connection builds it for an idempotent request.
    new RequestTimeoutError("127.0.0.1:7000", 250, { retryable: true }),
  ];
  for (const error of maybeSent) {
    assert.equal(isRetryable(error), false, error.code);
    assert.equal(isRetryable(error, { idempotent: false }), false, error.code);
    assert.equal(isRetryable(error, { idempotent: true }), true, error.code);
  }
});

test("a request timeout says itself whether retrying is safe: never when sent and not idempotent, always when never sent", () => {
  const sentUnsafe = new RequestTimeoutError("127.0.0.1:7000", 250);
  assert.equal(sentUnsafe.sent, true);
  assert.equal(sentUnsafe.retryable, false);
  assert.equal(isRetryable(sentUnsafe, { idempotent: true }), false);
  const neverSent = new RequestTimeoutError("127.0.0.1:7000", 250, {
    sent: false,
  });
  assert.equal(neverSent.retryable, true);
  assert.match(neverSent.message, /before it was sent/);
  assert.equal(isRetryable(neverSent), true);
  assert.equal(isRetryable(neverSent, { idempotent: false }), true);
});

test("a remote error is retried exactly when the node flagged it retryable", () => {
  assert.equal(isRetryable(new RemoteError(7, "overloaded", true, "n1")), true);
  assert.equal(
    isRetryable(new RemoteError(3, "not found", false, "n1")),
    false,
  );
  assert.equal(
    isRetryable(new RemoteError(3, "not found", false), { idempotent: true }),
    false,
  );
});

test("config, protocol, abort, closed-client, auth and exhausted errors are never retried", () => {
  const never: unknown[] = [
    new ConfigError("timeoutMs", -1, "expected a positive number"),
    new ProtocolError("bad frame"),
    new AbortedError("aborted"),
    new ClientClosedError(),
    new NodewireError("AUTH_FAILED", "bad password", { retryable: true }),
    new RetriesExhaustedError(4, new ConnectionRefusedError(NODE)),
    new PoolClosedError("127.0.0.1:7000", "closed"),
    // Even when someone forces the flag on, these codes stay final.
    new PoolClosedError("127.0.0.1:7000", "closed", { retryable: true }),
  ];
  for (const error of never) {
    assert.equal(isRetryable(error), false, String(error));
    assert.equal(
      isRetryable(error, { idempotent: true }),
      false,
      String(error),
    );
  }
});

test("values that are not SDK errors are never retried", () => {
  for (
    const value of [
      new Error("boom"),
      new TypeError("x is undefined"),
      "refused",
      undefined,
      null,
      42,
      { code: "CONNECTION_REFUSED", retryable: true },
    ]
  ) {
    assert.equal(isRetryable(value), false);
    assert.equal(isRetryable(value, { idempotent: true }), false);
  }
});

test("an error whose own retryable flag is false is not retried", () => {
  const refused = new ConnectionRefusedError(NODE, { retryable: false });
  assert.equal(isRetryable(refused, { idempotent: true }), false);
});

test("an unknown retryable SDK error is treated as maybe sent", () => {
  const unknown = new ConnectionError("LISTEN_FAILED", "failed", NODE);
  assert.equal(isRetryable(unknown), false);
  assert.equal(isRetryable(unknown, { idempotent: true }), true);
  // ... unless it says it never wrote the request.
  const unsent = Object.assign(
    new ConnectionError("LISTEN_FAILED", "failed", NODE),
    { sent: false },
  );
  assert.equal(isRetryable(unsent), true);
});

test("a connect that failed with the adapters' catch-all was never sent", () => {
  // An unreachable host: the request waited for that connection.
  const failed = new ConnectionError("CONNECTION_FAILED", "failed", NODE);
  assert.equal(isRetryable(failed), true);
  assert.equal(
    isRetryable(
      new ConnectionError("CONNECTION_FAILED", "failed", NODE, {
        retryable: false,
      }),
    ),
    false,
  );
});

// --- executeWithRetry ------------------------------------------------------

test("a first-try success returns without waiting", async () => {
  const { outcome, times, clock } = await runScripted([], retryConfig());
  assert.deepEqual(outcome, { ok: true, value: "ok after 0" });
  assert.equal(times.length, 1);
  assert.equal(clock.pendingTimers, 0);
});

test("transient failures are retried after the scheduled delays", async () => {
  const refused = new ConnectionRefusedError(NODE);
  const { outcome, delays } = await runScripted(
    [refused, refused, refused],
    retryConfig(),
  );
  assert.deepEqual(outcome, { ok: true, value: "ok after 3" });
  assert.deepEqual(delays, [100, 200, 400]);
});

test("when retries run out the error says how many attempts were made", async () => {
  const errors = Array.from(
    { length: 5 },
    () => new ConnectionRefusedError(NODE),
  );
  const { outcome, times } = await runScripted(errors, retryConfig());
  assert.equal(times.length, 4);
  assert.equal(outcome.ok, false);
  const error = (outcome as { error: unknown }).error;
  assert.ok(error instanceof RetriesExhaustedError);
  assert.equal(error.attempts, 4);
  assert.equal(error.cause, errors[3]);
  assert.equal(error.code, "RETRIES_EXHAUSTED");
});

test("maxRetries 0 makes one attempt and still reports RetriesExhaustedError", async () => {
  const refused = new ConnectionRefusedError(NODE);
  const { outcome, times, clock } = await runScripted(
    [refused],
    retryConfig({ maxRetries: 0 }),
  );
  assert.equal(times.length, 1);
  const error = (outcome as { error: unknown }).error;
  assert.ok(error instanceof RetriesExhaustedError);
  assert.equal(error.attempts, 1);
  assert.equal(error.cause, refused);
  assert.equal(clock.pendingTimers, 0);
});

test("a non-retryable error is rethrown as is, at once", async () => {
  const auth = new NodewireError("AUTH_FAILED", "bad password");
  const { outcome, times, clock } = await runScripted([auth], retryConfig());
  assertRejectedWith(outcome, auth);
  assert.equal(times.length, 1);
  assert.equal(clock.pendingTimers, 0);
});

test("a plain Error thrown synchronously by the operation is rethrown, not retried", async () => {
  const clock = new VirtualClock();
  let calls = 0;
  const bug = new TypeError("undefined is not a function");
  const outcome = await drive(
    clock,
    executeWithRetry(
      () => {
        calls++;
        throw bug;
      },
      retryConfig(),
      { clock },
    ),
  );
  assertRejectedWith(outcome, bug);
  assert.equal(calls, 1);
});

test("a request that may have been sent is retried only when idempotent", async () => {
  const lost = new ConnectionLostError(NODE, "reset", { sent: true });
  const once = await runScripted([lost], retryConfig());
  assertRejectedWith(once.outcome, lost);
  assert.equal(once.times.length, 1);

  const again = await runScripted([lost], retryConfig(), { idempotent: true });
  assert.deepEqual(again.outcome, { ok: true, value: "ok after 1" });
  assert.deepEqual(again.delays, [100]);
});

test("a custom predicate replaces the default and sees the attempt number", async () => {
  const seen: number[] = [];
  const plain = new Error("flaky");
  const { outcome, times } = await runScripted(
    [plain, plain, plain],
    retryConfig(),
    {
      isRetryable: (error, attempt) => {
        assert.equal(error, plain);
        seen.push(attempt);
        return attempt < 1;
      },
    },
  );
  assert.deepEqual(seen, [0, 1]);
  assert.equal(times.length, 2);
  assertRejectedWith(outcome, plain);
});

test("onRetry reports the coming attempt, its delay and the error before waiting", async () => {
  const errors = [
    new ConnectionRefusedError(NODE),
    new HostNotFoundError(NODE),
  ];
  const infos: RetryInfo[] = [];
  const { outcome } = await runScripted(errors, retryConfig(), {
    onRetry: (info) => infos.push(info),
  });
  assert.equal(outcome.ok, true);
  assert.deepEqual(infos, [
    { attempt: 1, delayMs: 100, error: errors[0] },
    { attempt: 2, delayMs: 200, error: errors[1] },
  ]);
});

test("an exception from onRetry ends the loop with that exception", async () => {
  const veto = new Error("stop retrying");
  const { outcome, times, clock } = await runScripted(
    [new ConnectionRefusedError(NODE)],
    retryConfig(),
    {
      onRetry: () => {
        throw veto;
      },
    },
  );
  assertRejectedWith(outcome, veto);
  assert.equal(times.length, 1);
  assert.equal(clock.pendingTimers, 0);
});

test("jitter draws each delay from the injected random source", async () => {
  const refused = new ConnectionRefusedError(NODE);
  const draws = [0, 1 - Number.EPSILON, 0.5];
  const { delays } = await runScripted(
    [refused, refused, refused],
    retryConfig({ jitter: true }),
    { random: () => draws.shift()! },
  );
  assert.equal(delays[0], 50);
  assert.ok(close(delays[1], 200));
  assert.equal(delays[2], 300);
});

test("a signal aborted during a backoff wait rejects at once and cancels the timer", async () => {
  const clock = new VirtualClock();
  const controller = new AbortController();
  let calls = 0;
  const promise = executeWithRetry(
    () => {
      calls++;
      return Promise.reject(new ConnectionRefusedError(NODE));
    },
    retryConfig({ initialBackoffMs: 1000 }),
    { clock, signal: controller.signal },
  );
  const settled = promise.then(
    () => assert.fail("should reject"),
    (error) => error,
  );
  await clock.advance(500);
  assert.equal(clock.pendingTimers, 1);
  controller.abort("user gave up");
  const error = await settled;
  assert.ok(error instanceof AbortedError);
  assert.equal(error.cause, "user gave up");
  assert.equal(clock.pendingTimers, 0);
  assert.equal(clock.now(), 500);
  assert.equal(calls, 1);
});

test("an already aborted signal never runs the operation", async () => {
  const controller = new AbortController();
  controller.abort();
  let calls = 0;
  await assert.rejects(
    executeWithRetry(
      () => {
        calls++;
        return Promise.resolve(1);
      },
      retryConfig(),
      { signal: controller.signal, clock: new VirtualClock() },
    ),
    (e: unknown) =>
      e instanceof AbortedError && e.code === "ABORTED" &&
      /the operation was aborted/.test(e.message),
  );
  assert.equal(calls, 0);
});

test("an abort while the operation runs is reported as AbortedError, not retried", async () => {
  const clock = new VirtualClock();
  const controller = new AbortController();
  let calls = 0;
  const outcome = await drive(
    clock,
    executeWithRetry(
      (_attempt, signal) => {
        calls++;
        assert.equal(signal, controller.signal);
        controller.abort(new Error("deadline"));
        return Promise.reject(new ConnectionRefusedError(NODE));
      },
      retryConfig(),
      { clock, signal: controller.signal },
    ),
  );
  assert.equal(outcome.ok, false);
  const error = (outcome as { error: unknown }).error;
  assert.ok(error instanceof AbortedError);
  assert.equal(calls, 1);
  assert.equal(clock.pendingTimers, 0);
});

test("an AbortedError from the operation passes through unchanged", async () => {
  const own = new AbortedError("request aborted", "mine");
  const { outcome, times } = await runScripted([own], retryConfig(), {
    isRetryable: () => true,
  });
  assertRejectedWith(outcome, own);
  assert.equal(times.length, 1);
});

test("a backoff longer than a runtime timer can hold is capped, not fired at once", async () => {
  const refused = new ConnectionRefusedError(NODE);
  const { delays } = await runScripted(
    [refused],
    retryConfig({ initialBackoffMs: 1e12, maxBackoffMs: 1e13 }),
  );
  assert.deepEqual(delays, [2_147_483_647]);
});

// --- properties --------------------------------------------------------------

test("Property 2: Exponential Backoff on Retry", async () => {
  await fc.assert(
    fc.asyncProperty(
      arbRetryConfig,
      fc.nat({ max: 12 }),
      async (config, failures) => {
        // Enough budget for every failure, so each one is followed by a wait.
        const budget = {
          ...config,
          maxRetries: Math.max(config.maxRetries, failures),
        };
        const errors = Array.from(
          { length: failures },
          () => new ConnectionRefusedError(NODE),
        );
        const { outcome, delays } = await runScripted(errors, budget);
        assert.deepEqual(outcome, { ok: true, value: `ok after ${failures}` });
        assert.equal(delays.length, failures);
        assertDelaysFollowSchedule(delays, budget);
      },
    ),
  );
});

type ErrorKind =
  | "refused"
  | "connectTimeout"
  | "hostNotFound"
  | "closed"
  | "poolTimeout"
  | "poolCleared"
  | "noHealthyNodes"
  | "lostUnsent"
  | "lostSent"
  | "requestTimeout"
  | "remoteRetryable"
  | "remoteFinal"
  | "auth"
  | "protocol"
  | "config"
  | "clientClosed"
  | "plain";

/** The model: what the specification says about each kind. */
const KIND_RETRYABLE: Record<ErrorKind, "always" | "idempotent" | "never"> = {
  refused: "always",
  connectTimeout: "always",
  hostNotFound: "always",
  closed: "always",
  poolTimeout: "always",
  poolCleared: "always",
  noHealthyNodes: "always",
  lostUnsent: "always",
  remoteRetryable: "always",
  lostSent: "idempotent",
  requestTimeout: "idempotent",
  remoteFinal: "never",
  auth: "never",
  protocol: "never",
  config: "never",
  clientClosed: "never",
  plain: "never",
};

function makeError(kind: ErrorKind): unknown {
  switch (kind) {
    case "refused":
      return new ConnectionRefusedError(NODE);
    case "connectTimeout":
      return new ConnectTimeoutError(NODE, 100);
    case "hostNotFound":
      return new HostNotFoundError(NODE);
    case "closed":
      return new ConnectionClosedError(NODE);
    case "poolTimeout":
      return new PoolTimeoutError("a:1", 1, { open: 0, inUse: 0, waiting: 0 });
    case "poolCleared":
      return new PoolClosedError("a:1", "cleared");
    case "noHealthyNodes":
      return new NoHealthyNodesError(["a:1"]);
    case "lostUnsent":
      return new ConnectionLostError(NODE, "reset", { sent: false });
    case "lostSent":
      return new ConnectionLostError(NODE, "reset", { sent: true });
    case "requestTimeout":
      return new RequestTimeoutError("a:1", 100, { retryable: true });
    case "remoteRetryable":
      return new RemoteError(1, "busy", true);
    case "remoteFinal":
      return new RemoteError(2, "bad key", false);
    case "auth":
      return new NodewireError("AUTH_FAILED", "denied");
    case "protocol":
      return new ProtocolError("garbage");
    case "config":
      return new ConfigError("hosts", [], "at least one host");
    case "clientClosed":
      return new ClientClosedError();
    case "plain":
      return new Error("bug");
  }
}

const ALL_KINDS = Object.keys(KIND_RETRYABLE) as ErrorKind[];
const RETRYABLE_KINDS = ALL_KINDS.filter((k) => KIND_RETRYABLE[k] === "always");

test("Property 27: Retry with Exponential Backoff", async () => {
  // Retryable failures only: attempts = min(failures + 1, maxRetries + 1).
  await fc.assert(
    fc.asyncProperty(
      arbRetryConfig,
      fc.array(fc.constantFrom(...RETRYABLE_KINDS), { maxLength: 15 }),
      async (config, kinds) => {
        const errors = kinds.map(makeError);
        const { outcome, times, delays } = await runScripted(errors, config);
        const expectedAttempts = Math.min(
          errors.length + 1,
          config.maxRetries + 1,
        );
        assert.equal(times.length, expectedAttempts);
        assertDelaysFollowSchedule(delays, config);
        if (errors.length <= config.maxRetries) {
          assert.deepEqual(outcome, {
            ok: true,
            value: `ok after ${errors.length}`,
          });
        } else {
          assert.equal(outcome.ok, false);
          const error = (outcome as { error: unknown }).error;
          assert.ok(error instanceof RetriesExhaustedError);
          assert.equal(error.attempts, expectedAttempts);
          assert.equal(error.cause, errors[expectedAttempts - 1]);
        }
      },
    ),
  );

  // Any mix of kinds, idempotent or not, against a model of the rules.
  await fc.assert(
    fc.asyncProperty(
      arbRetryConfig,
      fc.array(fc.constantFrom(...ALL_KINDS), { maxLength: 15 }),
      fc.boolean(),
      async (config, kinds, idempotent) => {
        const errors = kinds.map(makeError);
        const { outcome, times, delays } = await runScripted(errors, config, {
          idempotent,
        });
        let expected: Outcome<string> & { attempts: number };
        for (let i = 0;; i++) {
          if (i === errors.length) {
            expected = { ok: true, value: `ok after ${i}`, attempts: i + 1 };
            break;
          }
          const rule = KIND_RETRYABLE[kinds[i]];
          if (rule === "never" || (rule === "idempotent" && !idempotent)) {
            expected = { ok: false, error: errors[i], attempts: i + 1 };
            break;
          }
          if (i === config.maxRetries) {
            expected = { ok: false, error: undefined, attempts: i + 1 };
            break;
          }
        }
        assert.equal(times.length, expected.attempts);
        assertDelaysFollowSchedule(delays, config);
        if (expected.ok) {
          assert.deepEqual(outcome, { ok: true, value: expected.value });
        } else if (expected.error !== undefined) {
          // A non-retryable error stops the loop and is rethrown unchanged.
          assertRejectedWith(outcome, expected.error);
        } else {
          const error = (outcome as { error: unknown }).error;
          assert.ok(error instanceof RetriesExhaustedError);
          assert.equal(error.attempts, expected.attempts);
          assert.equal(error.cause, errors[expected.attempts - 1]);
        }
      },
    ),
  );

  // A request that may have reached the node is not retried unless idempotent.
  await fc.assert(
    fc.asyncProperty(
      arbRetryConfig.filter((c) => c.maxRetries > 0),
      fc.constantFrom<ErrorKind>("lostSent", "requestTimeout"),
      async (config, kind) => {
        const error = makeError(kind);
        const plain = await runScripted([error], config);
        assertRejectedWith(plain.outcome, error);
        assert.equal(plain.times.length, 1);
        const idem = await runScripted([error], config, { idempotent: true });
        assert.equal(idem.outcome.ok, true);
        assert.equal(idem.times.length, 2);
      },
    ),
  );
});

test("the waits between retries listen to a shared signal once, however many wait on it: it wakes them all, and the shutdown wakes the rest", async () => {
  const clock = new VirtualClock();
  const waits = new RetryWaits();
  const controller = new AbortController();
  const { signal, live } = countedSignal(controller);
  const woken: string[] = [];
  const wait = (name: string, on: AbortSignal | undefined, ms = 1000) =>
    waitToRetry(clock, ms, on, waits).then(() => woken.push(name));
  const shared = Array.from({ length: 50 }, (_, i) => wait(`s${i}`, signal));
  const own = wait("own", undefined);
  // One that ends on its own first: the listener stays for the others.
  const short = wait("short", signal, 10);
  assert.equal(live(), 1, "one listener for 51 waits");
  assert.equal(waits.listening, 1);
  await clock.advance(10);
  await short;
  assert.deepEqual(woken, ["short"]);
  assert.equal(live(), 1);
  controller.abort();
  await Promise.all(shared);
  assert.equal(woken.length, 51, "the abort woke every wait on it");
  assert.equal(live(), 0);
  assert.equal(waits.listening, 0);
  waits.wakeAll();
  await own;
  assert.equal(woken.at(-1), "own");
  assert.equal(clock.now(), 10, "nobody waited out the delay");
  // The last wait on a signal ending removes the listener.
  const other = countedSignal();
  const alone = wait("alone", other.signal, 5);
  assert.equal(other.live(), 1);
  await clock.advance(5);
  await alone;
  assert.equal(other.live(), 0);
});

test("executeWithRetry whose operation fails with a revoked proxy fails with that value, not retried, never with a TypeError of its own", async () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  let attempts = 0;
  const outcome = await executeWithRetry(
    () => {
      attempts++;
      return Promise.reject(revoked.proxy);
    },
    { ...DEFAULT_RETRY_CONFIG, initialBackoffMs: 1 },
    { clock: new VirtualClock() },
  ).then(() => "succeeded", (e: unknown) => [e]);
  // Before: a TypeError ("Cannot perform 'getPrototypeOf' on a proxy that
  // has been revoked") from the loop's own instanceof check.
  assert.ok(
    Array.isArray(outcome) && outcome[0] === revoked.proxy,
    "failed with the operation's own value",
  );
  assert.equal(attempts, 1);
});
