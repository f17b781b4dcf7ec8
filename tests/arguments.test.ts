// Per-call arguments are checked at the door (issue 12, defect 7 and
// Deliver 2, 3 and 5): an unknown option is an error with a "did you mean",
// a duration follows the config's one rule, a signal is an AbortSignal and
// a flag a boolean; every refusal is an InvalidArgumentError naming the
// option, and changes nothing. The test kit's entry points refuse unknown
// options too, and a username needs a password.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import {
  backoffDelay,
  executeWithRetry,
  isRetryable,
} from "../src/client/retry.ts";
import { DEFAULT_RETRY_CONFIG } from "../src/config/defaults.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import {
  ConfigError,
  ConnectionRefusedError,
  InvalidArgumentError,
  NEVER_RETRIED_CODES,
  NOT_THE_NODES_FAULT,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { Secret } from "../src/secret.ts";
import { CredentialStore, ScramServer } from "../testing/auth.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { startFaultProxy } from "../testing/proxy.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import {
  assertNothingInFlight,
  guardedScene as scene,
  readOnce,
  settle,
  settledWithin,
} from "./support/fault_checks.ts";

const echo = ops.echo("ok");

async function withClient(
  body: (client: Client, node: TestNode) => Promise<void>,
): Promise<void> {
  const node = await startTestNode();
  const client = await Client.connect({
    hosts: [node.address],
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1 },
  });
  try {
    await body(client, node);
  } finally {
    await client.disconnect();
    await node.close();
  }
}

/** Checks an InvalidArgumentError: its argument and message. */
function invalid(argument: string, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.argument, argument, error.message);
    assert.equal(error.retryable, false);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

/** Runs `call`, which must be refused with `check`, and changes nothing. */
async function refusedCleanly(
  client: Client,
  call: () => Promise<unknown>,
  check: (error: unknown) => boolean,
): Promise<void> {
  const before = client.stats();
  await assert.rejects(call, check);
  const after = client.stats();
  assert.equal(after.inFlight, 0);
  assert.equal(after.failed, before.failed);
  assert.equal(after.retries, before.retries);
  assert.equal(after.nodes[0].healthy, true);
  assert.equal(after.nodes[0].consecutiveFailures, 0);
  assert.equal(replyText(await client.request(echo)), "ok");
}

test("the error class: code INVALID_ARGUMENT, never retried, not the node's fault", () => {
  const error = new InvalidArgumentError(
    "options.timeoutMs",
    NaN,
    "expected x",
    {
      method: "Client.request",
    },
  );
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.equal(error.name, "InvalidArgumentError");
  assert.equal(
    error.message,
    "Client.request: invalid options.timeoutMs: expected x, got NaN",
  );
  assert.ok(NEVER_RETRIED_CODES.has("INVALID_ARGUMENT"));
  assert.ok(NOT_THE_NODES_FAULT.has("INVALID_ARGUMENT"));
  assert.equal(isRetryable(error, { idempotent: true }), false);
});

test("{ idempotnet: true } is refused with a did-you-mean, not ignored", async () => {
  await withClient(async (client) => {
    await refusedCleanly(
      client,
      () => client.request(echo, { idempotnet: true } as never),
      invalid(
        "options.idempotnet",
        /^Client\.request: invalid options\.idempotnet: unknown option \(did you mean "idempotent"\?\)/,
      ),
    );
  });
});

test("{ timeoutMS: 5 } is refused with a did-you-mean, not ignored", async () => {
  await withClient(async (client) => {
    await refusedCleanly(
      client,
      () => client.request(echo, { timeoutMS: 5 } as never),
      invalid("options.timeoutMS", /did you mean "timeoutMs"\?/),
    );
  });
});

test("other unknown request options: a swap, a stranger, an inherited name", async () => {
  await withClient(async (client) => {
    await refusedCleanly(
      client,
      () => client.request(echo, { retyr: false } as never),
      invalid("options.retyr", /did you mean "retry"\?/),
    );
    await refusedCleanly(
      client,
      () => client.request(echo, { flavour: "x" } as never),
      (error) =>
        invalid("options.flavour")(error) &&
        !/did you mean/.test((error as Error).message) &&
        /known: timeoutMs, signal, idempotent, retry/.test(
          (error as Error).message,
        ),
    );
    // Inherited names are read like own ones, so they are checked too.
    await refusedCleanly(
      client,
      () => client.request(echo, Object.create({ idempotnet: true })),
      invalid("options.idempotnet"),
    );
  });
});

test("request timeoutMs follows the duration rule: finite, > 0, ≤ 2^31-1", async () => {
  await withClient(async (client) => {
    for (
      const bad of [
        NaN,
        "5",
        "abc",
        -1,
        0,
        -0,
        Infinity,
        -Infinity,
        3e9,
        2 ** 31,
        null,
        true,
        10n,
      ]
    ) {
      await refusedCleanly(
        client,
        () => client.request(echo, { timeoutMs: bad as number }),
        invalid("options.timeoutMs", /timeoutMs: expected/),
      );
    }
    for (const good of [1000, 2500.5, 2 ** 31 - 1]) {
      assert.equal(
        replyText(await client.request(echo, { timeoutMs: good })),
        "ok",
      );
    }
    // Tiny ones are valid too; on a real clock they may expire first.
    for (const tiny of [0.5, 1]) {
      const outcome = await client.request(echo, { timeoutMs: tiny }).then(
        replyText,
        (error) => error,
      );
      assert.ok(
        outcome === "ok" || outcome instanceof RequestTimeoutError,
        String(outcome),
      );
    }
  });
});

test("request signal must be an AbortSignal, idempotent and retry booleans, options an object", async () => {
  await withClient(async (client) => {
    const fakeSignal = Object.create(AbortSignal.prototype);
    for (const bad of [{}, "signal", true, fakeSignal, new AbortController()]) {
      await refusedCleanly(
        client,
        () => client.request(echo, { signal: bad as AbortSignal }),
        invalid("options.signal", /expected an AbortSignal/),
      );
    }
    for (const bad of ["yes", 1, 0, null, {}]) {
      await refusedCleanly(
        client,
        () => client.request(echo, { idempotent: bad as boolean }),
        invalid("options.idempotent", /expected true or false/),
      );
      await refusedCleanly(
        client,
        () => client.request(echo, { retry: bad as boolean }),
        invalid("options.retry", /expected true or false/),
      );
    }
    for (const bad of [null, "fast", 5, [], [1], true, () => {}]) {
      await refusedCleanly(
        client,
        () => client.request(echo, bad as never),
        invalid("options", /expected an object of options/),
      );
    }
    // Valid ones, and undefined for the defaults.
    const signal = new AbortController().signal;
    for (
      const good of [
        undefined,
        {},
        { idempotent: true },
        { retry: false, idempotent: false },
        { signal, timeoutMs: 1000, idempotent: true, retry: true },
        { timeoutMs: undefined, signal: undefined },
        Object.freeze({ idempotent: true }),
        Object.assign(Object.create(null), { idempotent: true }),
      ]
    ) {
      assert.equal(replyText(await client.request(echo, good)), "ok");
    }
  });
});

test("an option whose getter throws is refused, with what it threw as the cause", async () => {
  await withClient(async (client) => {
    const boom = new Error("boom");
    const options = {
      get timeoutMs(): number {
        throw boom;
      },
    };
    await refusedCleanly(
      client,
      () => client.request(echo, options),
      (error) =>
        invalid("options.timeoutMs", /could not be read \(boom\)/)(error) &&
        (error as Error).cause === boom,
    );
    const trap = new Proxy({}, {
      ownKeys() {
        throw boom;
      },
    });
    await refusedCleanly(
      client,
      () => client.request(echo, trap),
      invalid("options", /could not be read/),
    );
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    await refusedCleanly(
      client,
      () => client.request(echo, proxy),
      invalid("options", /could not be read/),
    );
  });
});

test("a frozen options object whose one option is a non-enumerable getter is checked on every call, not taken for the empty default", async () => {
  await withClient(async (client) => {
    // The empty default is known by identity once found valid; an object
    // that only looks empty to for...in must not become it.
    let reads = 0;
    const options = Object.freeze(
      Object.defineProperty({}, "timeoutMs", {
        get: () => ++reads === 1 ? 5_000 : Number.NaN,
        enumerable: false,
      }),
    );
    assert.equal(replyText(await client.request(echo, options)), "ok");
    await refusedCleanly(
      client,
      () => client.request(echo, options),
      (error) =>
        invalid("options.timeoutMs")(error) &&
        /Client\.request/.test((error as Error).message),
    );
    // A frozen object with no own property at all still passes.
    const empty = Object.freeze({});
    for (let i = 0; i < 2; i++) {
      assert.equal(replyText(await client.request(echo, empty)), "ok");
    }
  });
});

test("Client.request reads its options once, at the door: getters that would throw later change nothing, retries and hedges included", async () => {
  // The request path read them again (hedging, the connection, the retry
  // decision): a getter that threw then failed the request with its raw
  // Error, and one that answered differently was refused by isRetryable.
  for (const hedged of [false, true]) {
    await scene(2, {
      retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
      retryBudget: false,
      ...(hedged ? { hedging: { delayMs: 5 } } : {}),
    }, async ({ client, clock, nodes }) => {
      const controller = new AbortController();
      const options = () =>
        Object.defineProperties({}, {
          idempotent: readOnce(true),
          timeoutMs: readOnce(5000),
          retry: readOnce(true),
          hedge: readOnce(hedged),
          signal: readOnce(controller.signal),
        });
      const calls = [0, 1, 2, 3].map(() =>
        client.request(ops.sleep(50, "late"), options())
      );
      await settle(clock);
      // The attempts on n0 fail, and are retried (or hedged) on n1.
      await nodes[0].stop();
      for (const call of calls) {
        assert.ok(await settledWithin(clock, call, 500), "never settled");
        assert.equal(replyText(await call), "late");
      }
      assert.ok(client.stats().retries + client.stats().hedges > 0);
      assertNothingInFlight(client);
    });
  }
});

/**
 * An object whose `names` are getters answering `first` on the first read
 * and `later` after it, and a count of every read.
 */
function twoFaced(
  names: Record<string, [first: unknown, later: () => unknown]>,
): { options: object; reads: () => number } {
  let reads = 0;
  const options = {};
  for (const [name, [first, later]] of Object.entries(names)) {
    let read = false;
    Object.defineProperty(options, name, {
      enumerable: true,
      get() {
        reads++;
        if (read) return later();
        read = true;
        return first;
      },
    });
  }
  return { options, reads: () => reads };
}

test("Client.ping, withConnection and healthCheckAllNodes read their options once, at the door, and go on with the copy", async () => {
  // They were checked at the door and read again after it (and
  // withConnection's again by a lazy client's wait): a getter that threw
  // on the second read failed the call with its raw Error.
  const throws = () => assert.fail("read a second time");
  await scene(1, {}, async ({ client, clock }) => {
    const signal = new AbortController().signal;
    const ping = twoFaced({
      timeoutMs: [5000, throws],
      signal: [signal, throws],
    });
    const pinged = client.ping(ping.options);
    assert.ok(await settledWithin(clock, pinged, 100), "never settled");
    assert.equal((await pinged).nodeId, "n0");
    const lend = twoFaced({
      timeoutMs: [5000, () => NaN],
      signal: [signal, () => "stop"],
    });
    const lent = client.withConnection(
      (connection) => connection.sendRequest(ops.echo("lent")),
      lend.options,
    );
    assert.ok(await settledWithin(clock, lent, 100), "never settled");
    assert.equal(replyText(await lent), "lent");
    const check = twoFaced({ signal: [signal, throws] });
    const checked = client.healthCheckAllNodes(check.options);
    assert.ok(await settledWithin(clock, checked, 100), "never settled");
    assert.equal((await checked)[0].ok, true);
    assert.deepEqual([ping.reads(), lend.reads(), check.reads()], [2, 2, 1]);
  }, { lazy: true });
});

test("Client.addEventListener and removeEventListener read their options once: the event target goes on with the copy", async () => {
  // The event target read the options again: a getter that threw on the
  // second read was the add's raw Error, a signal that turned into
  // something else its TypeError, and a remove whose `capture` getter
  // threw then removed nothing, without a word.
  await withClient((client) => {
    const type = "checkedIn";
    const throws = () => assert.fail("read a second time");
    let heard = 0;
    const listener = () => heard++;
    const controller = new AbortController();
    const add = twoFaced({
      once: [true, throws],
      capture: [true, throws],
      passive: [false, throws],
      signal: [controller.signal, () => "not a signal"],
    });
    client.addEventListener(type, listener, add.options);
    assert.equal(add.reads(), 4);
    assert.equal(client.hasListeners(type), true);
    client.dispatchEvent(new Event(type) as never);
    client.dispatchEvent(new Event(type) as never);
    assert.equal(heard, 1, "once");
    assert.equal(client.hasListeners(type), false);
    client.addEventListener(type, listener, { capture: true });
    const remove = twoFaced({ capture: [true, throws] });
    client.removeEventListener(type, listener, remove.options);
    assert.equal(remove.reads(), 1);
    assert.equal(client.hasListeners(type), false, "removed");
    return Promise.resolve();
  });
});

test("ping and withConnection check timeoutMs and signal, and withConnection its callback", async () => {
  await withClient(async (client) => {
    for (const method of ["ping", "withConnection"] as const) {
      const call = (options: unknown) =>
        method === "ping"
          ? client.ping(options as never)
          : client.withConnection(() => Promise.resolve(1), options as never);
      const name = method === "ping" ? "Client.ping" : "Client.withConnection";
      for (const bad of [NaN, "5", -1, 0, Infinity, 3e9]) {
        await refusedCleanly(
          client,
          () => call({ timeoutMs: bad }),
          invalid("options.timeoutMs", new RegExp(`^${name}: `)),
        );
      }
      await refusedCleanly(
        client,
        () => call({ signal: "stop" }),
        invalid("options.signal"),
      );
      await refusedCleanly(
        client,
        () => call({ idempotent: true }),
        invalid("options.idempotent", /unknown option/),
      );
      await refusedCleanly(
        client,
        () => call({ timeotMs: 5 }),
        invalid("options.timeotMs", /did you mean "timeoutMs"/),
      );
      await refusedCleanly(client, () => call(null), invalid("options"));
      await call(undefined);
      await call({ timeoutMs: 1000, signal: new AbortController().signal });
    }
    for (const bad of [undefined, null, "fn", {}, { handleEvent() {} }]) {
      await refusedCleanly(
        client,
        () => client.withConnection(bad as never),
        invalid("fn", /expected a function/),
      );
    }
  });
});

test("unknown or bad disconnect options are refused and leave the client open", async () => {
  await withClient(async (client) => {
    for (
      const [bad, argument] of [
        [{ timeoutMS: 5 }, "options.timeoutMS"],
        [{ grace: 5 }, "options.grace"],
        [{ timeoutMs: NaN }, "options.timeoutMs"],
        [{ timeoutMs: -1 }, "options.timeoutMs"],
        [{ timeoutMs: 3e9 }, "options.timeoutMs"],
        [{ timeoutMs: "5" }, "options.timeoutMs"],
        ["now", "options"],
        [null, "options"],
      ] as const
    ) {
      await assert.rejects(
        client.disconnect(bad as never),
        invalid(argument, /^Client\.disconnect: /),
      );
      assert.equal(client.closed, false);
      assert.equal(replyText(await client.request(echo)), "ok");
    }
    // 0 is a grace period: cancel what is in flight at once.
    await client.disconnect({ timeoutMs: 0 });
    assert.equal(client.closed, true);
  });
});

test("Client.connect's second argument: signal and connection, nothing else", async () => {
  const node = await startTestNode();
  const config = { hosts: [node.address], healthConfig: { intervalMs: 0 } };
  try {
    const cases: [unknown, string, RegExp?][] = [
      [
        { sgnal: new AbortController().signal },
        "options.sgnal",
        /did you mean "signal"/,
      ],
      [{ signal: "abort" }, "options.signal"],
      [{ connection: "x" }, "options.connection", /expected an object/],
      [{ connection: { timeoutMs: NaN } }, "options.connection.timeoutMs"],
      [
        { connection: { hostnme: "x" } },
        "options.connection.hostnme",
        /did you mean "hostname"/,
      ],
      [{ connection: { port: 70000 } }, "options.connection.port"],
      [
        { connection: { signal: new AbortController().signal } },
        "options.connection.signal",
        /use options\.signal/,
      ],
      [{ connection: { handshake: "none" } }, "options.connection.handshake"],
      [
        { connection: { tls: { serverNme: "a" } } },
        "options.connection.tls.serverNme",
      ],
      [{ connection: { tls: { ca: "pem" } } }, "options.connection.tls.ca"],
      ["fast", "options"],
      [null, "options"],
    ];
    for (const [options, argument, pattern] of cases) {
      await assert.rejects(
        Client.connect(config, options as never),
        invalid(argument, pattern),
      );
    }
    assert.equal(node.stats.accepted, 0, "refused before connecting");
    const client = await Client.connect(config, {
      signal: new AbortController().signal,
      connection: { clientName: "contract" },
    });
    await client.disconnect();
  } finally {
    await node.close();
  }
});

test("Client.addEventListener refuses unknown event names, non-listeners and bad options", async () => {
  await withClient((client) => {
    const add = (...args: unknown[]) =>
      (client.addEventListener as (...a: unknown[]) => void)(...args);
    assert.throws(() => add("retyr", () => {}), invalid("type", /retry/));
    assert.throws(() => add(42, () => {}), invalid("type"));
    assert.throws(() => add("retry", "listener"), invalid("listener"));
    assert.throws(() => add("retry", {}), invalid("listener"));
    assert.throws(
      () => add("retry", () => {}, { once: "yes" }),
      invalid("options.once"),
    );
    assert.throws(
      () => add("retry", () => {}, { onse: true }),
      invalid("options.onse", /did you mean "once"/),
    );
    assert.throws(
      () => add("retry", () => {}, { signal: {} }),
      invalid("options.signal"),
    );
    add("retry", null);
    add("checkedOut", { handleEvent() {} }, true);
    add("retry", () => {}, {
      once: true,
      signal: new AbortController().signal,
    });
    return Promise.resolve();
  });
});

test("Client.removeEventListener refuses what addEventListener refuses, and still removes", async () => {
  await withClient((client) => {
    const remove = (...args: unknown[]) =>
      (client.removeEventListener as (...a: unknown[]) => void)(...args);
    const method = /^Client\.removeEventListener: /;
    assert.throws(() => remove("retyr", () => {}), invalid("type", /retry/));
    assert.throws(() => remove(Symbol("retry"), () => {}), invalid("type"));
    assert.throws(() => remove("retry", "listener"), invalid("listener"));
    assert.throws(() => remove("retry", {}), invalid("listener", method));
    assert.throws(
      () => remove("retry", () => {}, { capture: "yes" }),
      invalid("options.capture"),
    );
    assert.throws(
      () => remove("retry", () => {}, { captrue: true }),
      invalid("options.captrue", /did you mean "capture"/),
    );
    let heard = 0;
    const listener = () => heard++;
    const options = { capture: true, once: true };
    client.addEventListener("checkedOut", listener, options);
    remove("checkedOut", listener, options);
    remove("retry", null);
    assert.equal(client.hasListeners("checkedOut"), false);
    assert.equal(heard, 0);
    return Promise.resolve();
  });
});

test("the retry helpers check their arguments", async () => {
  await assert.rejects(
    executeWithRetry("op" as never, DEFAULT_RETRY_CONFIG),
    invalid("operation", /^executeWithRetry: /),
  );
  const op = () => Promise.resolve(1);
  for (
    const [config, argument] of [
      [undefined, "config"],
      [{}, "config.maxRetries"],
      [{ ...DEFAULT_RETRY_CONFIG, maxRetries: NaN }, "config.maxRetries"],
      [{ ...DEFAULT_RETRY_CONFIG, maxRetries: undefined }, "config.maxRetries"],
      [
        { ...DEFAULT_RETRY_CONFIG, initialBackoffMs: -1 },
        "config.initialBackoffMs",
      ],
      [
        { ...DEFAULT_RETRY_CONFIG, backoffMultiplier: 0.5 },
        "config.backoffMultiplier",
      ],
      [{ ...DEFAULT_RETRY_CONFIG, jitter: "no" }, "config.jitter"],
      [{ ...DEFAULT_RETRY_CONFIG, maxRetry: 3 }, "config.maxRetry"],
    ] as const
  ) {
    await assert.rejects(
      executeWithRetry(op, config as never),
      invalid(argument),
    );
  }
  await assert.rejects(
    executeWithRetry(op, DEFAULT_RETRY_CONFIG, { idempotnet: true } as never),
    invalid("options.idempotnet", /did you mean "idempotent"/),
  );
  await assert.rejects(
    executeWithRetry(op, DEFAULT_RETRY_CONFIG, { onRetry: 5 } as never),
    invalid("options.onRetry"),
  );
  assert.equal(await executeWithRetry(op, DEFAULT_RETRY_CONFIG), 1);
  const refused = new ConnectionRefusedError({ hostname: "h", port: 1 });
  assert.throws(
    () => isRetryable(refused, { idempotent: "yes" } as never),
    invalid("options.idempotent"),
  );
  assert.throws(() => isRetryable(refused, null as never), invalid("options"));
  assert.equal(isRetryable(refused), true);
  assert.equal(isRetryable("not an error"), false);
});

test("the retry helpers read their schedule and options once, at the door: the loop goes on with copies", async () => {
  // executeWithRetry read its options again after the check and its
  // schedule on every failure (and backoffDelay and isRetryable theirs
  // after the check): a getter that threw on a later read was the raw
  // Error of the call, and a maxRetries that answered NaN later retried
  // for ever (here: until the operation gave up at its tenth attempt).
  const throws = () => assert.fail("read a second time");
  const timeout = () =>
    new RequestTimeoutError("127.0.0.1:7000", 5, { retryable: true });
  for (const later of [throws, () => NaN]) {
    const clock = new VirtualClock();
    const schedule = twoFaced({
      maxRetries: [2, later],
      initialBackoffMs: [10, later],
      maxBackoffMs: [40, later],
      backoffMultiplier: [2, later],
      jitter: [false, later],
    });
    const delays: number[] = [];
    const options = twoFaced({
      idempotent: [true, later],
      clock: [clock, later],
      onRetry: [
        (info: { delayMs: number }) => delays.push(info.delayMs),
        later,
      ],
      random: [Math.random, later],
      signal: [new AbortController().signal, later],
    });
    let attempts = 0;
    const call = executeWithRetry(
      () => ++attempts < 10 ? Promise.reject(timeout()) : Promise.resolve(0),
      schedule.options as never,
      options.options as never,
    );
    assert.ok(await settledWithin(clock, call, 100), "never settled");
    const error = await call.then(String, (e: unknown) => e);
    assert.ok(error instanceof RetriesExhaustedError, String(error));
    assert.equal(error.attempts, 3);
    assert.deepEqual(delays, [10, 20]);
    assert.deepEqual([schedule.reads(), options.reads()], [5, 5]);
    const delay = twoFaced({
      maxRetries: [2, later],
      initialBackoffMs: [10, later],
      maxBackoffMs: [40, later],
      backoffMultiplier: [2, later],
      jitter: [false, later],
    });
    assert.equal(backoffDelay(2, delay.options as never), 40);
    assert.equal(delay.reads(), 5);
    const retry = twoFaced({ idempotent: [true, later] });
    assert.equal(isRetryable(timeout(), retry.options), true);
    assert.equal(retry.reads(), 1);
  }
});

test("Secret holds a string; anything else is refused without being shown", () => {
  for (const bad of [undefined, null, 1234, ["pw"], { pw: 1 }]) {
    assert.throws(
      () => new Secret(bad as never),
      (error) =>
        invalid("value", /^Secret: .*expected a string/)(error) &&
        !/1234|pw/.test((error as Error).message),
    );
  }
  assert.equal(new Secret("").reveal(), "");
});

test("a username without a password is a ConfigError", () => {
  assert.throws(
    () => resolveConfig({ hosts: ["a"], username: "alice" }),
    (error) =>
      error instanceof ConfigError && error.field === "password" &&
      /a password is required when a username is given/.test(error.message),
  );
});

test("a password without a username is a ConfigError that does not show it", () => {
  assert.throws(
    () => resolveConfig({ hosts: ["a"], password: "secret-pw" }),
    (error) =>
      error instanceof ConfigError && error.field === "username" &&
      !error.message.includes("secret-pw"),
  );
  assert.equal(
    resolveConfig({ hosts: ["a"], username: "u", password: "p" }).username,
    "u",
  );
});

/** Starts what `start` starts; a refusal is the expected outcome. */
async function refusedToStart(
  start: () => Promise<{ close(): Promise<void> }>,
  field: string,
  pattern?: RegExp,
): Promise<void> {
  const outcome = await start().then(
    async (started) => {
      await started.close();
      return undefined;
    },
    (error) => error,
  );
  assert.ok(outcome instanceof ConfigError, `${field}: ${outcome}`);
  assert.equal(outcome.field, field);
  if (pattern) assert.match(outcome.message, pattern);
}

test("startTestNode refuses an unknown option", async () => {
  await refusedToStart(
    () => startTestNode({ prot: 0 } as never),
    "startTestNode options.prot",
    /did you mean "port"/,
  );
});

test("the test kit's other entry points refuse unknown options", async () => {
  await refusedToStart(
    () => startTestNode({ tls: { cert: "", key: "", drect: true } } as never),
    "startTestNode options.tls.drect",
  );
  await refusedToStart(
    () => startTestNode("fast" as never),
    "startTestNode options",
  );
  const node = await startTestNode();
  try {
    await refusedToStart(
      () => startFaultProxy({ target: node, latencyMs: 5 } as never),
      "startFaultProxy options.latencyMs",
    );
    await refusedToStart(
      () => startFaultProxy({ target: node, faults: { stal: true } } as never),
      "startFaultProxy options.faults.stal",
      /did you mean "stall"/,
    );
    const proxy = await startFaultProxy({ target: node });
    try {
      await assert.rejects(
        proxy.setFaults({ latncyMs: 5 } as never),
        (error) =>
          error instanceof ConfigError &&
          error.field === "setFaults faults.latncyMs",
      );
      await assert.rejects(
        proxy.setFaults(undefined as never),
        (error) =>
          error instanceof ConfigError && error.code === "CONFIG_INVALID" &&
          error.field === "setFaults faults" &&
          /expected an object of options, got undefined/.test(error.message),
      );
      assert.deepEqual(proxy.faults, {});
    } finally {
      await proxy.close();
    }
    await assert.rejects(
      node.stop({ gracefull: true } as never),
      (error) =>
        error instanceof ConfigError &&
        /did you mean "graceful"/.test(error.message),
    );
    assert.equal(node.running, true);
  } finally {
    await node.close();
  }
  assert.throws(
    () => new CredentialStore({ iteration: 4096 } as never),
    (error) =>
      error instanceof ConfigError && error.code === "CONFIG_INVALID" &&
      error.field === "CredentialStore options.iteration" &&
      /unknown option \(did you mean "iterations"\?\)/.test(error.message),
  );
  const store = new CredentialStore();
  await assert.rejects(
    store.add("u", "p", { sallt: new Uint8Array(16) } as never),
    (error) =>
      error instanceof ConfigError && error.code === "CONFIG_INVALID" &&
      error.field === "CredentialStore.add options.sallt" &&
      /unknown option \(did you mean "salt"\?\)/.test(error.message),
  );
  assert.throws(
    () => new ScramServer(store, { nonse: "x" } as never),
    (error) =>
      error instanceof ConfigError && error.code === "CONFIG_INVALID" &&
      error.field === "ScramServer options.nonse" &&
      /unknown option \(did you mean "nonce"\?\)/.test(error.message),
  );
});

/**
 * An instance of a settings class whose prototype has a getter for each of
 * `getters` (not enumerable, not own: a read finds them all the same) and
 * a method of its own.
 */
function classOptions(getters: Record<string, unknown>): object {
  class Options {
    /** A method a settings class may have: not an option. */
    describe(): string {
      return "options";
    }
  }
  for (const [key, value] of Object.entries(getters)) {
    Object.defineProperty(Options.prototype, key, { get: () => value });
  }
  return new Options();
}

test("a misspelt option given as a class's getter is refused at every door that takes options, with a did-you-mean; a class's known getters and its methods are not", async () => {
  await withClient(async (client) => {
    const misspelt = classOptions({ timeoutMS: 5 });
    const calls: [string, () => Promise<unknown>][] = [
      ["Client.request", () => client.request(echo, misspelt as never)],
      [
        "Client.requestMany",
        () => client.requestMany([echo], misspelt as never),
      ],
      ["Client.ping", () => client.ping(misspelt as never)],
      [
        "Client.withConnection",
        () => client.withConnection(async () => {}, misspelt as never),
      ],
      [
        "getConnection",
        () => client.manager.nodes[0].pool.getConnection(misspelt as never),
      ],
    ];
    for (const [method, call] of calls) {
      await refusedCleanly(
        client,
        call,
        (error) =>
          invalid("options.timeoutMS", /did you mean "timeoutMs"\?/)(error) &&
          (error as Error).message.includes(method),
      );
    }
    await refusedCleanly(
      client,
      () => client.healthCheckAllNodes(classOptions({ signl: 1 }) as never),
      invalid("options.signl", /did you mean "signal"\?/),
    );
    await assert.rejects(
      client.disconnect(classOptions({ timeoutMS: 5 }) as never),
      invalid("options.timeoutMS", /did you mean "timeoutMs"\?/),
    );
    assert.equal(
      client.closed,
      false,
      "the refused disconnect changed nothing",
    );
    await assert.rejects(
      Client.connect(
        { hosts: ["127.0.0.1:1"] },
        classOptions({ lazzy: true }) as never,
      ),
      invalid("options.lazzy", /did you mean "lazy"\?/),
    );
    // Known getters are read, methods are the class's own business.
    const known = classOptions({ timeoutMs: 5_000, idempotent: true });
    assert.equal(replyText(await client.request(echo, known as never)), "ok");
    assert.equal(
      (await client.requestMany([echo], known as never)).length,
      1,
    );
    await client.ping(classOptions({ timeoutMs: 5_000 }) as never);
  });
});

test("a signal whose reason or aborted was replaced (a getter that throws), or whose prototype was swapped, is refused at the door, not thrown raw from inside the call", async () => {
  await withClient(async (client) => {
    const thrower = () => {
      throw new Error("replaced");
    };
    const replaced = (member: string, aborted: boolean) => {
      const signal = aborted
        ? AbortSignal.abort()
        : new AbortController().signal;
      const as = member === "reason" || member === "aborted" ? "get" : "value";
      return Object.defineProperty(signal, member, { [as]: thrower });
    };
    const signals = [
      ["reason", true],
      ["aborted", false],
    ].map(([member, aborted]) =>
      replaced(member as string, aborted as boolean)
    );
    // Its prototype swapped for one that replaces a method.
    const swapped = new AbortController().signal;
    Object.setPrototypeOf(
      swapped,
      Object.create(AbortSignal.prototype, {
        addEventListener: { value: thrower },
      }),
    );
    signals.push(swapped);
    for (const signal of signals) {
      const calls: (() => Promise<unknown>)[] = [
        () => client.request(echo, { signal }),
        () => client.requestMany([echo], { signal }),
        () => client.ping({ signal }),
        () => client.withConnection(async () => {}, { signal }),
        () => client.healthCheckAllNodes({ signal }),
        () => client.manager.nodes[0].pool.getConnection({ signal }),
        () =>
          new Promise<void>((resolve) =>
            resolve(client.addEventListener("retry", () => {}, { signal }))
          ),
      ];
      for (const call of calls) {
        await refusedCleanly(
          client,
          call,
          invalid("options.signal", /expected an AbortSignal/),
        );
      }
    }
  });
});

test("a revoked proxy of a function (typeof says function, every call throws a TypeError) is refused where a function is taken, before anything is lent or registered", async () => {
  const revokedFn = () => {
    const { proxy, revoke } = Proxy.revocable(() => {}, {});
    revoke();
    return proxy;
  };
  await withClient(async (client) => {
    await refusedCleanly(
      client,
      () => client.withConnection(revokedFn() as never),
      invalid("fn", /Client\.withConnection: .*could not be read/),
    );
    assert.equal(client.stats().nodes[0].pool.inUse, 0);
    assert.throws(
      () => client.addEventListener("retry", revokedFn() as never),
      invalid("listener", /Client\.addEventListener/),
    );
    assert.equal(client.hasListeners("retry"), false);
  });
  assert.throws(
    () => resolveConfig({ hosts: ["a"], logger: revokedFn() as never }),
    (error) => error instanceof ConfigError && error.field === "logger",
  );
  await assert.rejects(
    executeWithRetry(() => Promise.resolve(1), DEFAULT_RETRY_CONFIG, {
      isRetryable: revokedFn() as never,
    }),
    invalid("options.isRetryable"),
  );
});

test("a clock whose now() throws (a method taken off its object) or reads as no finite number is refused at every door that takes one, naming it", async () => {
  const timers = {
    setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
    clearTimeout: (handle: unknown) =>
      clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
  const clocks: [unknown, RegExp][] = [
    [
      // A method taken off its object (as `performance.now` is on Node):
      // called unbound, it throws.
      { now: new VirtualClock().now, ...timers },
      /expected a clock whose now\(\) can be called \(it threw /,
    ],
    [
      {
        now: () => {
          throw new Error("clock broke");
        },
        ...timers,
      },
      /it threw clock broke\)/,
    ],
    [
      { now: () => Number.NaN, ...timers },
      /whose now\(\) returns a finite number of ms \(it returned NaN\)/,
    ],
    [
      { now: () => "12", ...timers },
      /whose now\(\) returns a finite number of ms \(it returned 12\)/,
    ],
  ];
  const { ConnectionPool } = await import("../src/pool/pool.ts");
  const { Connection } = await import("../src/connection/connection.ts");
  for (const [clock, message] of clocks) {
    assert.throws(
      () =>
        new ConnectionPool({
          address: "127.0.0.1:7000",
          factory: () => new Promise<never>(() => {}),
          clock: clock as VirtualClock,
        }),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.argument === "options.clock" && message.test(e.message),
    );
    await assert.rejects(
      Connection.connect({
        adapter: {
          name: "memory",
          connect: () => Promise.reject(new Error("unused")),
          listen: () => Promise.reject(new Error("unused")),
        },
        hostname: "127.0.0.1",
        port: 7000,
        clock: clock as VirtualClock,
      }),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.argument === "options.clock" && message.test(e.message),
    );
    assert.throws(
      () => resolveConfig({ hosts: ["127.0.0.1:7000"], clock: clock as never }),
      (e: unknown) =>
        e instanceof ConfigError && e.field === "clock" &&
        message.test(e.message),
    );
  }
});
