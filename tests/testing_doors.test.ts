// The test kit (/testing) reads its options once, at the door, and goes on
// with what it checked: startTestNode, stop, startFaultProxy, setFaults,
// CredentialStore and ScramServer checked their options and then read the
// caller's object again, so a getter could hand them a value no check had
// seen (a NaN latency that re-arms a timer forever). Arguments that are not
// options are InvalidArgumentErrors naming the method: a ScramServer took
// any store and failed at the first exchange with a TypeError.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CredentialStore,
  decodeReply,
  encodeReply,
  FaultProxy,
  type FaultProxyOptions,
  Op,
  ops,
  replyText,
  ScramServer,
  startFaultProxy,
  startTestNode,
  TestNode,
  VirtualClock,
} from "../testing/mod.ts";
import { Client, ConnectFailedError } from "../mod.ts";
import { pem } from "./helpers.ts";
import { ScramClient } from "../auth.ts";
import { Secret } from "../src/secret.ts";
import { MAX_TIMER_DELAY_MS } from "../src/config/validate.ts";
import { ConfigError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { invalid, revoked } from "./support/doors.ts";
import { readOnce } from "./support/fault_checks.ts";

/** Checks a ConfigError about `field` that does not show `secret`. */
function configError(field: string, secret = "hunter2") {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.field, field, error.message);
    assert.ok(!error.message.includes(secret), error.message);
    return true;
  };
}

/** A getter that answers `first`, then `later` on every read after. */
function flips(first: unknown, later: unknown): PropertyDescriptor {
  let reads = 0;
  return { enumerable: true, get: () => reads++ === 0 ? first : later };
}

test("startTestNode and stop read their options once, nested ones too", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode(Object.defineProperties({}, {
    runtime: readOnce(network),
    nodeId: readOnce("n1"),
    port: readOnce(7000),
    protocols: readOnce(["tcp"]),
    credentials: readOnce(Object.defineProperties({}, {
      app: readOnce("hunter2"),
    })),
    // A real pair: since 87c628c a start refuses one that does not match.
    tls: readOnce(Object.defineProperties({}, {
      cert: readOnce(pem("server.pem")),
      key: readOnce(pem("server-key.pem")),
    })),
  }));
  try {
    assert.equal(node.address, "127.0.0.1:7000");
    assert.equal(node.nodeId, "n1");
    assert.equal(node.requiresAuth, true);
    await node.stop(Object.defineProperties({}, { graceful: readOnce(true) }));
    assert.equal(node.running, false);
  } finally {
    await node.close();
  }
});

test("startFaultProxy and setFaults read their options once, and a target's hostname and port", async () => {
  const network = createMemoryNetwork();
  const target = Object.defineProperties({ other: 1 }, {
    hostname: readOnce("node"),
    port: readOnce(7000),
  });
  const proxy = await startFaultProxy(Object.defineProperties({}, {
    target: readOnce(target),
    runtime: readOnce(network),
    faults: readOnce(Object.defineProperties({}, { latencyMs: readOnce(5) })),
  }) as never);
  try {
    assert.deepEqual(proxy.target, { hostname: "node", port: 7000 });
    assert.deepEqual(proxy.faults, { latencyMs: 5 });
    // A second read would have been NaN: a timer re-armed forever.
    await proxy.setFaults(
      Object.defineProperties({}, { latencyMs: flips(10, NaN) }),
    );
    assert.deepEqual(proxy.faults, { latencyMs: 10 });
    await proxy.setFaults({ latencyMs: undefined });
    assert.deepEqual(proxy.faults, { latencyMs: undefined });
  } finally {
    await proxy.close();
  }
  for (const bad of [null, 5, revoked(), { hostname: "node" }]) {
    await assert.rejects(
      startFaultProxy({ target: bad as never, runtime: network }),
      configError("startFaultProxy options.target"),
    );
  }
  await assert.rejects(
    startFaultProxy({ target: null as never, runtime: network }),
    /expected \{ hostname, port \} with a port in 1–65535, got null/,
  );
});

test("CredentialStore and ScramServer read their options once", async () => {
  const store = new CredentialStore(
    Object.defineProperties({}, { iterations: flips(4096, NaN) }),
  );
  assert.equal(store.defaultIterations, 4096);
  const salt = new Uint8Array(16);
  const added = await store.add(
    "app",
    "hunter2",
    Object.defineProperties({}, {
      salt: readOnce(salt),
      iterations: flips(4096, -1),
    }),
  );
  assert.equal(added.iterations, 4096);
  const server = new ScramServer(
    store,
    Object.defineProperties({}, { nonce: readOnce("servernonce") }),
  );
  const first = await server.serverFirstMessage("n,,n=app,r=abc");
  assert.match(first, /^r=abcservernonce,/);
});

test("CredentialStore.create and startTestNode refuse users that cannot be read, never showing a password", async () => {
  const throwing = Object.defineProperty({}, "app", {
    enumerable: true,
    get() {
      throw new Error("boom");
    },
  });
  for (const users of [revoked(), throwing, null, { app: 5 }]) {
    await assert.rejects(
      CredentialStore.create(users as never),
      configError("CredentialStore users"),
    );
    await assert.rejects(
      startTestNode({
        runtime: createMemoryNetwork(),
        credentials: users as never,
      }),
      configError("startTestNode options.credentials"),
    );
  }
  // Read once: the store is made of the names and passwords read first.
  const store = await CredentialStore.create(
    Object.defineProperties({}, { app: flips("hunter2", 5) }) as never,
  );
  assert.equal(store.has("app"), true);
});

test("a ScramServer refuses a store that is none and a nonce the message cannot carry, at once", () => {
  for (const store of [5, null, {}, revoked()]) {
    assert.throws(
      () => new ScramServer(store as never),
      invalid("new ScramServer()", "store"),
    );
  }
  const store = new CredentialStore();
  for (const nonce of [5, "", "a,b", "é", { toString: () => "x" }]) {
    assert.throws(
      () => new ScramServer(store, { nonce: nonce as never }),
      configError("ScramServer options.nonce"),
    );
  }
});

test("a ScramServer refuses messages that are no strings, and the exchange goes on", async () => {
  const store = await CredentialStore.create({ user: "hunter2" });
  const server = new ScramServer(store);
  const client = new ScramClient({
    username: "user",
    password: new Secret("hunter2"),
  });
  await assert.rejects(
    server.serverFirstMessage(5 as never),
    invalid("ScramServer.serverFirstMessage", "clientFirst"),
  );
  const serverFirst = await server.serverFirstMessage(
    client.clientFirstMessage(),
  );
  // It threw a TypeError from inside, and the exchange was back at step 1.
  for (const message of [5, null, revoked()]) {
    await assert.rejects(
      server.serverFinalMessage(message as never),
      invalid("ScramServer.serverFinalMessage", "clientFinal"),
    );
  }
  const serverFinal = await server.serverFinalMessage(
    await client.clientFinalMessage(serverFirst),
  );
  await client.verifyServerFinal(serverFinal);
  assert.equal(server.authenticated, true);
});

test("a CredentialStore refuses a user name or password that is no string, naming its own method", async () => {
  const store = new CredentialStore();
  await assert.rejects(
    store.add(5 as never, "hunter2"),
    invalid("CredentialStore.add", "username"),
  );
  await assert.rejects(store.add("app", 5 as never), (error: unknown) => {
    invalid("CredentialStore.add", "password")(error);
    assert.ok(!(error as Error).message.includes("5"));
    return true;
  });
  for (const method of ["has", "get", "delete"] as const) {
    assert.throws(
      () => store[method](5 as never),
      invalid(`CredentialStore.${method}`, "username"),
    );
  }
  assert.equal(store.size, 0);
});

test("CredentialStore.add refuses a password SASLprep refuses without a piece of it: no character, no position", async () => {
  const store = new CredentialStore({ iterations: 4096 });
  for (const password of ["hunter\u0007x", "zq\uE000zq", "\u05D0xyz"]) {
    await assert.rejects(store.add("app", password), (error: unknown) => {
      invalid("CredentialStore.add", "password")(error);
      const message = (error as Error).message;
      // SaslprepError said "prohibited character U+0007 at position 6".
      assert.doesNotMatch(message, /U\+|position|hunter|zq|xyz/, message);
      return true;
    });
  }
  assert.equal(store.size, 0);
});

test("the ops builders and the reply helpers refuse a revoked proxy or a fake Uint8Array, naming their method", () => {
  const fake = Object.create(Uint8Array.prototype);
  const bytes = new Uint8Array(1);
  const bad: [() => unknown, string, string][] = [
    [() => ops.echo(revoked() as never), "ops.echo", "data"],
    [() => ops.echo(fake), "ops.echo", "data"],
    [() => ops.put("k", revoked() as never), "ops.put", "value"],
    [() => ops.sleep(1, fake), "ops.sleep", "data"],
    [() => encodeReply(revoked() as never, bytes), "encodeReply", "nodeId"],
    [() => encodeReply("n1", revoked() as never), "encodeReply", "data"],
    [() => encodeReply("n1", fake), "encodeReply", "data"],
    [() => decodeReply(revoked() as never), "decodeReply", "payload"],
    [() => replyText(fake), "decodeReply", "payload"],
    // What was refused before, now with the method's name.
    [() => ops.get(5 as never), "ops.get", "key"],
    [() => ops.delete(5 as never), "ops.delete", "key"],
    [() => ops.put("k".repeat(65536), "v"), "ops.put", "key's length"],
    [() => ops.sleep(-1), "ops.sleep", "ms"],
    [() => ops.fail(4, "yes" as never), "ops.fail", "retryable"],
    [() => ops.fail(70000, true), "ops.fail", "code"],
    [() => ops.fail(4, true, 5 as never), "ops.fail", "message"],
  ];
  for (const [call, method, argument] of bad) {
    assert.throws(call, invalid(method, argument), `${method} ${argument}`);
  }
});

test("a VirtualClock names its method when it refuses an argument", async () => {
  assert.throws(
    () => new VirtualClock(NaN),
    invalid("new VirtualClock()", "start"),
  );
  const clock = new VirtualClock();
  assert.throws(
    () => clock.setTimeout(5 as never, 1),
    invalid("VirtualClock.setTimeout", "fn"),
  );
  assert.throws(
    () => clock.setTimeout(() => {}, NaN),
    invalid("VirtualClock.setTimeout", "ms"),
  );
  for (const ms of [-1, NaN, Infinity, "5"]) {
    await assert.rejects(
      clock.advance(ms as never),
      invalid("VirtualClock.advance", "ms"),
    );
  }
  assert.equal(clock.now(), 0);
});

/**
 * A fault proxy on the memory network in front of a node that reads
 * nothing, on a VirtualClock that records every delay it is asked for and
 * takes one that is no number ≥ 0 as a runtime does (1 ms), and a client
 * connected to it. `now` stands in for the clock's.
 */
async function proxyScene(
  options: Pick<FaultProxyOptions, "random" | "faults">,
  now?: () => number,
) {
  const virtual = new VirtualClock();
  const delays: number[] = [];
  const network = createMemoryNetwork();
  const node = await network.listen({ port: 7000 }, () => {});
  const proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: 7000 },
    runtime: network,
    clock: {
      now: now ?? (() => virtual.now()),
      setTimeout: (fn, ms) => {
        delays.push(ms);
        return virtual.setTimeout(fn, ms >= 0 ? ms : 1);
      },
      clearTimeout: (handle) => virtual.clearTimeout(handle),
    },
    ...options,
  });
  const channel = await network.connect({
    hostname: "127.0.0.1",
    port: proxy.port,
  });
  const received: number[] = [];
  const closes: (Error | undefined)[] = [];
  channel.onData((chunk) => received.push(...chunk));
  channel.onClose((error) => closes.push(error));
  await virtual.advance(0);
  return {
    virtual,
    delays,
    proxy,
    channel,
    received,
    closes,
    /** Closes all but the proxy. */
    async closeRest(): Promise<void> {
      channel.destroy();
      await node.close();
      await virtual.advance(0);
    },
  };
}

test("a fault proxy never asks its clock for a timer longer than a runtime's timers take, whatever latency and jitter add up to", async () => {
  // Each is at most 2^31-1 ms, their sum is not: a real timer fired at
  // once, found nothing due and re-armed, every millisecond for 24 days.
  const { virtual, delays, proxy, received, closeRest } = await proxyScene({
    random: () => 0.5,
    faults: { latencyMs: MAX_TIMER_DELAY_MS, jitterMs: MAX_TIMER_DELAY_MS },
  });
  try {
    proxy.inject(new Uint8Array([7]));
    await virtual.advance(MAX_TIMER_DELAY_MS);
    assert.deepEqual(received, []);
    await virtual.advance(MAX_TIMER_DELAY_MS / 2 + 1);
    assert.deepEqual(received, [7]);
    assert.ok(delays.length > 0);
    for (const ms of delays) assert.ok(ms <= MAX_TIMER_DELAY_MS, String(ms));
  } finally {
    await proxy.close();
    await closeRest();
  }
});

test("a fault proxy whose random() or clock gives no usable number resets that connection, arms no timer, and close() rejects naming the option", async () => {
  // A NaN due time was never due: its timer (NaN is 1 ms to a runtime)
  // found nothing to deliver and re-armed, every millisecond, forever.
  const bad: [string, () => number, (() => number)?][] = [
    ["options.random", () => NaN],
    ["options.random", () => 1],
    ["options.random", () => {
      throw new Error("no entropy");
    }],
    ["options.clock", () => 0.5, () => NaN],
    ["options.clock", () => 0.5, () => Infinity],
  ];
  for (const [argument, random, now] of bad) {
    const { virtual, delays, proxy, channel, closes, closeRest } =
      await proxyScene({ random, faults: { latencyMs: 5, jitterMs: 5 } }, now);
    channel.write(new Uint8Array([1]));
    for (let ms = 0; ms < 50; ms++) await virtual.advance(1);
    assert.ok(delays.length <= 1, `${argument}: ${delays.length} timers`);
    assert.ok(closes[0] instanceof Error, `${argument}: reset, ${closes}`);
    await assert.rejects(proxy.close(), invalid("FaultProxy", argument));
    await proxy.close(); // once
    await closeRest();
    assert.equal(virtual.pendingTimers, 0);
  }
});

test("new TestNode and new FaultProxy refuse options their entry point did not check: exported for instanceof, they were doors past every check", async () => {
  // A NaN port, a NaN latency: taken as they were.
  const network = createMemoryNetwork();
  const target = { hostname: "127.0.0.1", port: 7000 };
  for (const options of [{}, { port: NaN }, { runtime: network }]) {
    assert.throws(
      () => new TestNode(network, options),
      invalid("new TestNode", "options"),
    );
  }
  for (const options of [{ target }, { target, faults: { latencyMs: NaN } }]) {
    assert.throws(
      () => new FaultProxy(network, options),
      invalid("new FaultProxy", "options"),
    );
  }
  assert.throws(
    () => new TestNode(network, { port: NaN }),
    /startTestNode\(options\)/,
  );
  // The entry points build them as before.
  const node = await startTestNode({ runtime: network });
  const proxy = await startFaultProxy({ target: node, runtime: network });
  assert.ok(node instanceof TestNode && proxy instanceof FaultProxy);
  await proxy.close();
  await node.close();
});

test("FaultProxy.inject takes a copy of the bytes, and refuses a revoked proxy or a fake naming its method", async () => {
  const { virtual, proxy, received, closeRest } = await proxyScene({
    faults: { latencyMs: 10 },
  });
  try {
    for (const bytes of [revoked(), Object.create(Uint8Array.prototype), "x"]) {
      assert.throws(
        () => proxy.inject(bytes as never),
        invalid("FaultProxy.inject", "bytes"),
      );
    }
    assert.throws(
      () => proxy.inject(new Uint8Array(1), "nodes" as never),
      invalid("FaultProxy.inject", "to"),
    );
    const bytes = new Uint8Array([1, 2]);
    proxy.inject(bytes);
    bytes[0] = 9; // after the call: not what was injected
    await virtual.advance(10);
    assert.deepEqual(received, [1, 2]);
  } finally {
    await proxy.close();
    await closeRest();
  }
});

test("CredentialStore.add takes a copy of a real, non-empty salt at the door", async () => {
  const store = new CredentialStore();
  const { buffer } = new Uint8Array(16);
  const detached = new Uint8Array(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  // WebCrypto threw a raw TypeError for the fake and the detached one.
  for (const salt of [Object.create(Uint8Array.prototype), detached]) {
    await assert.rejects(
      store.add("app", "hunter2", { salt }),
      configError("CredentialStore.add options.salt"),
    );
  }
  const salt = new Uint8Array(16).fill(1);
  const adding = store.add("app", "hunter2", { salt });
  salt.fill(2); // after the call: not the user's salt
  assert.deepEqual([...(await adding).salt], new Array(16).fill(1));
});

test("a list option longer than any the kit takes is refused at once, not walked four billion items long", async () => {
  const protocols = ["tcp"];
  protocols.length = 2 ** 32 - 1;
  await assert.rejects(
    startTestNode({ runtime: createMemoryNetwork(), protocols } as never),
    configError("startTestNode options.protocols"),
  );
});

test("a fault proxy's faults and target cannot be changed from outside, past setFaults' checks", async () => {
  const network = createMemoryNetwork();
  const proxy = await startFaultProxy({
    target: { hostname: "node", port: 7000 },
    runtime: network,
    faults: { latencyMs: 5 },
  });
  try {
    const write = (object: object, key: string, value: unknown) => {
      try {
        (object as Record<string, unknown>)[key] = value;
      } catch {
        // Frozen: strict code gets a TypeError, and nothing changed.
      }
    };
    write(proxy.faults, "latencyMs", NaN);
    write(proxy.target, "port", 0);
    assert.deepEqual(proxy.faults, { latencyMs: 5 });
    assert.deepEqual(proxy.target, { hostname: "node", port: 7000 });
    await proxy.setFaults({ jitterMs: 1 });
    write(proxy.faults, "jitterMs", Infinity);
    assert.deepEqual(proxy.faults, { latencyMs: 5, jitterMs: 1 });
  } finally {
    await proxy.close();
  }
});

test("an unknown runtime name is refused naming the option, before anything starts", async () => {
  await assert.rejects(
    startTestNode({ runtime: "nod" as never }),
    configError("startTestNode options.runtime"),
  );
  await assert.rejects(
    startFaultProxy({
      target: { hostname: "node", port: 7000 },
      runtime: "toString" as never,
    }),
    configError("startFaultProxy options.runtime"),
  );
});

test("Op and ops cannot be changed: every node and client of the process reads them", () => {
  for (const [object, key] of [[Op, "Echo"], [ops, "echo"]] as const) {
    const before = object[key as keyof typeof object];
    try {
      (object as Record<string, unknown>)[key] = 9;
    } catch {
      // Frozen: strict code gets a TypeError, and nothing changed.
    }
    assert.equal(object[key as keyof typeof object], before);
  }
});

test("a CredentialStore hands out copies of what it keeps: a caller cannot lock a user out by writing into them", async () => {
  const store = new CredentialStore();
  const added = await store.add("user", "hunter2");
  added.storedKey.fill(0);
  added.salt.fill(0);
  store.get("user")!.serverKey.fill(0);
  const server = new ScramServer(store);
  const client = new ScramClient({
    username: "user",
    password: new Secret("hunter2"),
  });
  const serverFirst = await server.serverFirstMessage(
    client.clientFirstMessage(),
  );
  const serverFinal = await server.serverFinalMessage(
    await client.clientFinalMessage(serverFirst),
  );
  await client.verifyServerFinal(serverFinal);
  assert.equal(server.authenticated, true);
});

test("startTestNode's tls needs both a cert and a key", async () => {
  for (
    const [tls, key] of [
      [{}, "cert"],
      [{ direct: true }, "cert"],
      [{ key: "hunter2" }, "cert"],
      [{ cert: "cert" }, "key"],
    ] as const
  ) {
    // Taken before: the node then failed every TLS handshake.
    await assert.rejects(
      startTestNode({ runtime: createMemoryNetwork(), tls: tls as never }),
      configError(`startTestNode options.tls.${key}`),
    );
  }
});

test("a VirtualClock refuses a delay that would take its time past the largest number", async () => {
  const clock = new VirtualClock(Number.MAX_VALUE / 2);
  // Taken before: a timer at Infinity never fired, and a clock at
  // Infinity made every deadline computed from it NaN.
  assert.throws(
    () => clock.setTimeout(() => {}, Number.MAX_VALUE),
    invalid("VirtualClock.setTimeout", "ms"),
  );
  await assert.rejects(
    clock.advance(Number.MAX_VALUE),
    invalid("VirtualClock.advance", "ms"),
  );
  assert.equal(clock.now(), Number.MAX_VALUE / 2);
  assert.equal(clock.pendingTimers, 0);
});

test("TestNode.start called twice at once binds one listener, which close releases", async () => {
  const node = await startTestNode();
  const port = node.port;
  await node.stop();
  // Both calls found no listener: each bound one, and the first, no longer
  // held, outlived close() (the process did not exit).
  const both = [node.start(), node.start()];
  assert.equal(both[0], both[1], "the second call waits for the first");
  await Promise.all(both);
  assert.equal(node.port, port);
  await node.close();
  const client = await Client.connect({ hosts: [node.address] }).then(
    () => assert.fail("connected to a closed node"),
    (error: unknown) => error,
  );
  assert.ok(client instanceof ConnectFailedError, String(client));
});

test("startTestNode's credentials and CredentialStore.create refuse a user nobody could log in as, naming the option, never showing the password", async () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ "": "pw" }, /a user name is empty/],
    [
      { "a\u0007": "pw" },
      /the user name "a\\u0007" is not allowed by SASLprep/,
    ],
    [{ app: "zq\u0007zq" }, /the password of "app" is not allowed by SASLprep/],
    [{ app: "" }, /the password of "app" is empty/],
  ];
  for (const [credentials, said] of bad) {
    for (
      const [start, field] of [
        [
          () => startTestNode({ credentials }),
          "startTestNode options.credentials",
        ],
        [() => CredentialStore.create(credentials), "CredentialStore users"],
      ] as const
    ) {
      const outcome: unknown = await start().then((made) => made, (e) => e);
      if (!(outcome instanceof Error)) {
        // Taken: a node started must still close, or the process hangs.
        await (outcome as { close?: () => Promise<void> }).close?.();
        assert.fail(`${field} took ${JSON.stringify(credentials)}`);
      }
      configError(field)(outcome);
      const message = outcome.message;
      assert.match(message, said);
      // SaslprepError named the character and where: not for a password.
      if (/password/.test(said.source)) {
        assert.doesNotMatch(message, /zq|U\+|position/, message);
      }
    }
  }
});
