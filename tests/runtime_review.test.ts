/**
 * The `./runtime` entry fed what a careless or hostile caller would:
 * getAdapter, connect, listen and datagram with wrong types, out-of-range
 * ports, bad hosts, unknown keys and broken TLS options; receivers that
 * are not functions. Each gets an `InvalidArgumentError` naming the
 * argument (or the `ConfigError` getAdapter documents) before any socket
 * exists: never a runtime's TypeError, a socket bound to a port nobody
 * asked for, or a listener that throws on its first connection. Tests
 * named "held:" pin behaviour that was already right. Loopback only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { ConfigError, InvalidArgumentError } from "../src/errors.ts";
import { detectRuntime, getAdapter } from "../src/runtime/detect.ts";
import type {
  ByteChannel,
  Listener,
  RuntimeAdapter,
  RuntimeName,
} from "../src/runtime/types.ts";

const native = detectRuntime();
const names: RuntimeName[] = native === "node"
  ? ["node", "memory"]
  : [native, "node", "memory"];

/** A PEM-looking string: enough for the checks, never used for TLS here. */
const PEM = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";

/** Asserts `promise` rejects with an InvalidArgumentError about `argument`. */
async function refused(
  promise: Promise<unknown>,
  argument: string,
  what: string,
): Promise<void> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if ("value" in outcome) {
    // Accepted: release what was opened before failing.
    const opened = outcome.value as Partial<ByteChannel & Listener>;
    opened.destroy?.();
    await opened.close?.();
    assert.fail(`${what}: accepted`);
  }
  const error = outcome.error;
  assert.ok(
    error instanceof InvalidArgumentError,
    `${what}: ${error instanceof Error ? error.constructor.name : ""} ${
      String(error)
    }`,
  );
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.equal(error.argument, argument, what);
}

/** A loopback listener that counts the connections it accepted. */
async function counting(adapter: RuntimeAdapter) {
  const accepted: ByteChannel[] = [];
  const listener = await adapter.listen(
    { hostname: "127.0.0.1", port: 0 },
    (channel) => {
      accepted.push(channel);
      channel.onData(() => {});
      channel.onClose(() => {});
    },
  );
  return {
    listener,
    accepted,
    async close() {
      for (const channel of accepted) channel.destroy();
      await listener.close();
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

for (const name of names) {
  test(`${name}: connect() refuses bad ports and hosts with an InvalidArgumentError, before any socket`, async () => {
    const adapter = await getAdapter(name);
    const server = await counting(adapter);
    const hostname = "127.0.0.1";
    const port = server.listener.port;
    try {
      const cases: [unknown, string][] = [
        [undefined, "options"],
        [null, "options"],
        [{ hostname, port: Number.NaN }, "options.port"],
        [{ hostname, port: -1 }, "options.port"],
        [{ hostname, port: 65536 }, "options.port"],
        [{ hostname, port: 1.5 }, "options.port"],
        [{ hostname, port: String(port) }, "options.port"],
        [{ hostname }, "options.port"],
        [{ hostname: "", port }, "options.hostname"],
        [{ hostname: "127.0.0.1\0evil", port }, "options.hostname"],
        [{ hostname: "a".repeat(100_000), port }, "options.hostname"],
        [{ hostname: 42, port }, "options.hostname"],
        [{ hostname: "[::1]", port }, "options.hostname"],
        [{ port }, "options.hostname"],
        [{ hostname, port, timeoutMs: Number.NaN }, "options.timeoutMs"],
        [{ hostname, port, signal: {} }, "options.signal"],
        [{ hostname, port, signal: "abort" }, "options.signal"],
      ];
      for (const [options, argument] of cases) {
        await refused(
          adapter.connect(options as never),
          argument,
          `${name} connect(${JSON.stringify(options)?.slice(0, 60)})`,
        );
      }
      await settle();
      assert.equal(server.accepted.length, 0, "no connection was opened");
    } finally {
      await server.close();
    }
  });

  test(`${name}: connect() refuses TLS options of the wrong shape before connecting`, async () => {
    const adapter = await getAdapter(name);
    const server = await counting(adapter);
    const base = { hostname: "127.0.0.1", port: server.listener.port };
    try {
      const cases: [unknown, string][] = [
        [42, "options.tls"],
        [{}, "options.tls.serverName"],
        [{ serverName: 42 }, "options.tls.serverName"],
        [{ serverName: "" }, "options.tls.serverName"],
        [{ serverName: "db", ca: PEM }, "options.tls.ca"],
        [{ serverName: "db", ca: [42] }, "options.tls.ca"],
        [{ serverName: "db", ca: ["not a certificate"] }, "options.tls.ca"],
        [
          { serverName: "db", dangerouslySkipVerify: "yes" },
          "options.tls.dangerouslySkipVerify",
        ],
        [{ serverName: "db", signal: 1 }, "options.tls.signal"],
        [{ serverName: "db", servername: "db" }, "options.tls.servername"],
      ];
      for (const [tls, argument] of cases) {
        await refused(
          adapter.connect({ ...base, tls: tls as never }),
          argument,
          `${name} connect({ tls: ${JSON.stringify(tls)} })`,
        );
      }
      await settle();
      // Before: the TCP connection was opened, then the TLS layer threw a
      // TypeError (wrapped as a TlsError), or Bun waited on a handshake.
      assert.equal(server.accepted.length, 0, "no connection was opened");
    } finally {
      await server.close();
    }
  });

  test(`${name}: listen() refuses bad options and a receiver that is not a function`, async () => {
    const adapter = await getAdapter(name);
    const ok = () => {};
    const cases: [unknown, unknown, string][] = [
      [undefined, ok, "options"],
      [{ port: Number.NaN }, ok, "options.port"],
      [{ port: -1 }, ok, "options.port"],
      [{ port: 65536 }, ok, "options.port"],
      [{ port: "0" }, ok, "options.port"],
      [{}, ok, "options.port"],
      [{ hostname: "", port: 0 }, ok, "options.hostname"],
      [{ hostname: 42, port: 0 }, ok, "options.hostname"],
      [{ hostname: "127.0.0.1\0", port: 0 }, ok, "options.hostname"],
      [{ hostname: "[::1]", port: 0 }, ok, "options.hostname"],
      [{ port: 0, backlog: 5 }, ok, "options.backlog"],
      [{ port: 0, tls: { cert: 42, key: PEM } }, ok, "options.tls.cert"],
      [{ port: 0, tls: { cert: "nope", key: "nope" } }, ok, "options.tls.cert"],
      [{ port: 0, tls: { cert: PEM } }, ok, "options.tls.key"],
      // Before: bound, then threw a TypeError on the first connection.
      [{ hostname: "127.0.0.1", port: 0 }, 42, "fn"],
      [{ hostname: "127.0.0.1", port: 0 }, undefined, "fn"],
    ];
    for (const [options, onConnection, argument] of cases) {
      await refused(
        adapter.listen(options as never, onConnection as never),
        argument,
        `${name} listen(${JSON.stringify(options)})`,
      );
    }
  });

  test(`${name}: onData/onClose refuse a receiver that is not a function`, async () => {
    const adapter = await getAdapter(name);
    const server = await counting(adapter);
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: server.listener.port,
    });
    try {
      for (const bad of [42, "x", null, undefined, {}]) {
        // Before: onClose("x") threw a TypeError from a microtask once the
        // channel closed, an uncaught error that ends the process.
        assert.throws(
          () => channel.onClose(bad as never),
          (e: unknown) =>
            e instanceof InvalidArgumentError &&
            e.code === "INVALID_ARGUMENT" && e.argument === "fn" &&
            /onClose\(\): invalid fn: expected a function/.test(e.message),
        );
        assert.throws(
          () => channel.onData(bad as never),
          (e: unknown) =>
            e instanceof InvalidArgumentError &&
            e.code === "INVALID_ARGUMENT" && e.argument === "fn" &&
            /onData\(\): invalid fn: expected a function/.test(e.message),
        );
      }
      const closed = new Promise<Error | undefined>((resolve) =>
        channel.onClose(resolve)
      );
      channel.onData(() => {});
      channel.close();
      assert.equal(await closed, undefined, "a clean close, still delivered");
    } finally {
      channel.destroy();
      await server.close();
    }
  });

  test(`${name}: held: write after close returns false, close and listener.close twice are harmless`, async () => {
    const adapter = await getAdapter(name);
    const server = await counting(adapter);
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: server.listener.port,
    });
    const closes: (Error | undefined)[] = [];
    channel.onData(() => {});
    channel.onClose((error) => closes.push(error));
    channel.close();
    channel.close();
    channel.destroy();
    assert.equal(channel.write(new Uint8Array([1, 2, 3])), false);
    await channel.drained();
    await settle();
    assert.deepEqual(closes, [undefined], "onClose once, clean");
    await server.close();
    await server.listener.close();
  });

  test(`${name}: held: an already-aborted signal rejects with its reason and opens nothing`, async () => {
    const adapter = await getAdapter(name);
    const server = await counting(adapter);
    try {
      const reason = new Error("gave up");
      await assert.rejects(
        adapter.connect({
          hostname: "127.0.0.1",
          port: server.listener.port,
          signal: AbortSignal.abort(reason),
        }),
        (error) => error === reason,
      );
      await settle();
      assert.equal(server.accepted.length, 0);
    } finally {
      await server.close();
    }
  });
}

test("memory: connect() refuses any port that is not an integer in 0-65535 (property)", async () => {
  const adapter = await getAdapter("memory");
  const bad = fc.oneof(
    fc.double().filter((n) => !Number.isInteger(n) || n < 0 || n > 65535),
    fc.integer({ min: 65536 }),
    fc.integer({ max: -1 }),
    fc.string(),
    fc.constant(null),
    fc.boolean(),
  );
  await fc.assert(
    fc.asyncProperty(bad, async (port) => {
      await refused(
        adapter.connect({ hostname: "127.0.0.1", port: port as number }),
        "options.port",
        `port ${String(port)}`,
      );
    }),
    { numRuns: 100 },
  );
});

test("getAdapter refuses null and objects that are not adapters with a ConfigError", async () => {
  for (const bad of [null, {}, { connect() {} }, 42, "DENO", ""]) {
    await assert.rejects(
      getAdapter(bad as never),
      (error) =>
        error instanceof ConfigError && error.code === "CONFIG_INVALID",
      String(bad),
    );
  }
  const memory = await getAdapter("memory");
  assert.equal(await getAdapter(memory), memory, "a real adapter passes");
});

test(`${native}: datagram() refuses bad options with an InvalidArgumentError, binding nothing`, async () => {
  const adapter = await getAdapter(native);
  const cases: [unknown, string][] = [
    [undefined, "options"],
    // Before: node:dgram bound a random port for NaN and 65535 for -1.
    [{ hostname: "127.0.0.1", port: Number.NaN }, "options.port"],
    [{ hostname: "127.0.0.1", port: -1 }, "options.port"],
    [{ hostname: "127.0.0.1", port: 65536 }, "options.port"],
    [{ hostname: "127.0.0.1", port: "0" }, "options.port"],
    [{ hostname: 42 }, "options.hostname"],
    [{ hostname: "" }, "options.hostname"],
    [{ hostname: "127.0.0.1", reuseAddr: true }, "options.reuseAddr"],
  ];
  for (const [options, argument] of cases) {
    await refused(
      adapter.datagram!(options as never),
      argument,
      `datagram(${JSON.stringify(options)})`,
    );
  }
});

test(`${native}: datagram receivers must be functions; held: send never throws`, async () => {
  const adapter = await getAdapter(native);
  const socket = await adapter.datagram!({ hostname: "127.0.0.1" });
  try {
    for (const bad of [42, "x", null, undefined]) {
      assert.throws(
        () => socket.onMessage(bad as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.code === "INVALID_ARGUMENT" &&
          e.argument === "fn" &&
          /onMessage\(\): invalid fn: expected a function/.test(e.message),
      );
      assert.throws(
        () => socket.onClose(bad as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.code === "INVALID_ARGUMENT" &&
          e.argument === "fn" &&
          /onClose\(\): invalid fn: expected a function/.test(e.message),
      );
    }
    socket.onMessage(() => {});
    const closed = new Promise<Error | undefined>((resolve) =>
      socket.onClose(resolve)
    );
    // Oversize, wrong types, bad addresses: lost like a dropped datagram.
    const sends: [unknown, unknown, unknown][] = [
      [new Uint8Array(70_000), "127.0.0.1", socket.port],
      [new Uint8Array(1), "127.0.0.1", Number.NaN],
      [new Uint8Array(1), "127.0.0.1", -1],
      [new Uint8Array(1), 42, socket.port],
      [new Uint8Array(1), "", socket.port],
    ];
    for (const [bytes, hostname, port] of sends) {
      assert.equal(
        typeof socket.send(bytes as never, hostname as never, port as never),
        "boolean",
      );
    }
    await settle();
    assert.equal(socket.closed, false, "a refused datagram keeps the socket");
    socket.close();
    socket.close();
    assert.equal(await closed, undefined);
  } finally {
    socket.close();
  }
});

for (const name of names.filter((n) => n !== "memory")) {
  test(`${name}: startTls() and acceptTls() refuse options of the wrong shape with an InvalidArgumentError, leaving the channel as it was`, async () => {
    // They went into the TLS layer as given: a TlsError around a runtime's
    // TypeError, after the channel had been handed over to TLS.
    const adapter = await getAdapter(name);
    const server = await counting(adapter);
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: server.listener.port,
    });
    let closed = false;
    channel.onData(() => {});
    channel.onClose(() => closed = true);
    try {
      const client: [unknown, string][] = [
        [undefined, "options"],
        [{}, "options.serverName"],
        [{ serverName: 42 }, "options.serverName"],
        [{ serverName: "localhost", ca: PEM }, "options.ca"],
        [
          { serverName: "localhost", dangerouslySkipVerify: 1 },
          "options.dangerouslySkipVerify",
        ],
        [{ serverName: "localhost", signal: {} }, "options.signal"],
        [{ serverName: "localhost", bogus: true }, "options.bogus"],
      ];
      for (const [options, argument] of client) {
        await refused(
          channel.startTls!(options as never),
          argument,
          `${name} startTls(${JSON.stringify(options)})`,
        );
      }
      await settle();
      assert.equal(server.accepted.length, 1);
      const accepted = server.accepted[0];
      const serverCases: [unknown, string][] = [
        [{}, "options.cert"],
        [{ cert: PEM }, "options.key"],
        [{ cert: "nope", key: PEM }, "options.cert"],
        [{ cert: PEM, key: PEM, extra: 1 }, "options.extra"],
      ];
      for (const [options, argument] of serverCases) {
        await refused(
          accepted.acceptTls!(options as never),
          argument,
          `${name} acceptTls(${JSON.stringify(options)})`,
        );
      }
      // Still the plain channel it was: bytes go through.
      const got = new Promise<number>((resolve) =>
        accepted.onData((chunk) => resolve(chunk.length))
      );
      assert.equal(channel.write(new Uint8Array(3)), true);
      assert.equal(await got, 3);
      assert.equal(closed, false);
    } finally {
      channel.destroy();
      await server.close();
    }
  });
}

for (const name of names.filter((n) => n !== "memory")) {
  test(`${name}: startTls() with a signal already aborted rejects with its reason and closes the socket`, async () => {
    // The channel had handed its socket to the TLS layer before the check
    // of the signal threw, so nothing closed it: the node held a socket
    // that no one owned, and the process could not exit.
    const adapter = await getAdapter(name);
    const closedAt: number[] = [];
    const listener = await adapter.listen(
      { hostname: "127.0.0.1", port: 0 },
      (accepted) => {
        accepted.onData(() => {});
        accepted.onClose(() => closedAt.push(performance.now()));
      },
    );
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: listener.port,
    });
    channel.onData(() => {});
    channel.onClose(() => {});
    const reason = new Error("given up");
    try {
      await assert.rejects(
        channel.startTls!({
          serverName: "localhost",
          signal: AbortSignal.abort(reason),
        }),
        (error) => error === reason,
      );
      for (let i = 0; i < 200 && closedAt.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(closedAt.length, 1, `${name}: the node saw no close`);
    } finally {
      channel.destroy();
      await listener.close();
    }
  });
}

test("connect and listen read their options once, and go on with the copy; a getter or proxy that throws is an InvalidArgumentError", async () => {
  // The checks read the options (the required ones twice) and the
  // adapters read them again: a getter that threw on a later read was
  // listen's or connect's raw Error, and one that threw on the first read,
  // or a revoked proxy, a raw Error or TypeError too.
  let reads = 0;
  const once = (value: unknown): PropertyDescriptor => {
    let read = false;
    return {
      enumerable: true,
      get() {
        reads++;
        if (read) throw new Error("read a second time");
        read = true;
        return value;
      },
    };
  };
  for (const name of names) {
    const adapter = await getAdapter(name);
    reads = 0;
    const listener = await adapter.listen(
      Object.defineProperties({}, {
        hostname: once("127.0.0.1"),
        port: once(0),
      }) as never,
      (channel) => channel.close(),
    );
    try {
      const channel = await adapter.connect(
        Object.defineProperties({}, {
          hostname: once("127.0.0.1"),
          port: once(listener.port),
          signal: once(new AbortController().signal),
          startsTls: once(false),
        }) as never,
      );
      await channel.close();
      assert.equal(reads, 6, name);
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      const trap = new Proxy({}, {
        get() {
          throw new Error("trap");
        },
      });
      for (
        const [bad, argument] of [
          [proxy, "options"],
          [trap, "options.hostname"],
        ] as const
      ) {
        await refused(adapter.connect(bad as never), argument, name);
        await refused(adapter.listen(bad as never, () => {}), argument, name);
      }
    } finally {
      await listener.close();
    }
  }
});
