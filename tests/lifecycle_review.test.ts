// The client's entry points and its life as a careless or hostile caller
// and a broken peer exercise them: configurations with holes, nulls and
// second spellings; a client built by hand; a lazy client whose first
// connect hangs, is aborted or is interrupted by a disconnect; a second,
// more urgent disconnect; a ping caught by a disconnect; options that
// answer differently when read again. Every test checks the typed outcome
// and that nothing is left behind (timers, escaped errors). Virtual clock,
// in-memory network, and one real loopback listener that never answers.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { Client } from "../src/client/client.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import {
  AbortedError,
  ClientClosedError,
  ConfigError,
  InvalidArgumentError,
  PoolTimeoutError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { drive, eventually, watchEscapes } from "./support/fault_harness.ts";
import {
  closeDriven,
  guardedScene as scene,
  settle,
} from "./support/fault_checks.ts";

/** The ConfigError `config` is refused with; fails the test otherwise. */
function refusal(config: unknown): ConfigError {
  try {
    resolveConfig(config as ConnectionConfig);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${error}`);
    return error;
  }
  assert.fail(`accepted: ${String(config)}`);
}

/** Whether `promise` has settled, without waiting for it. */
function tracked(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  return () => settled;
}

// ---- configuration ----

test("a hosts array with holes, or with a length that is not one, is refused at the first missing entry", () => {
  const holes = [new Array(3), [, "a"], ["a", , "b"]];
  for (const hosts of holes) {
    const error = refusal({ hosts });
    assert.match(error.field, /^hosts\[\d\]$/);
    assert.match(error.message, /expected a string host, got undefined/);
  }
  // A proxy of an array may claim any length: none is walked blindly,
  // and none turns into a client with no node.
  for (const length of [NaN, -1, 1.5, "2", 2 ** 53 - 1]) {
    const hosts = new Proxy(["127.0.0.1"], {
      get: (target, key) =>
        key === "length" ? length : Reflect.get(target, key),
    });
    const error = refusal({ hosts });
    assert.ok(error.field.startsWith("hosts"), error.message);
  }
});

test("hosts are read once: a proxy answering a URL the second time never becomes a node", () => {
  let reads = 0;
  const hosts = new Proxy(["127.0.0.1:7000"], {
    get: (target, key) => {
      if (key !== "0") return Reflect.get(target, key);
      return reads++ === 0 ? "127.0.0.1:7000" : "nodewire://u:pw@evil:1";
    },
  });
  const resolved = resolveConfig({ hosts });
  assert.equal(reads, 1);
  assert.deepEqual(resolved.hosts.map((h) => h.address), ["127.0.0.1:7000"]);
});

test("every field of a config is read once: an enableTls that answers true, then false, still means TLS", () => {
  // enableTls and whenNoHealthyNodes were read twice: a getter that threw
  // the second time refused a valid config ("could not be read"), and an
  // enableTls of true, then false, resolved to enableTls: true with a
  // tlsPolicy of "disable" (TLS said on, and off).
  const fields: Record<string, unknown> = {
    hosts: ["127.0.0.1:7000"],
    username: "app",
    password: "pw",
    enableTls: true,
    timeoutMs: 1000,
    requestTimeoutMs: 500,
    maxFrameSize: 65536,
    maxDatagramSize: 1200,
    poolConfig: { maxConnections: 6 },
    retryConfig: { maxRetries: 1 },
    retryBudget: true,
    hedging: false,
    healthConfig: { intervalMs: 0 },
    outlierEjection: false,
    panicThreshold: 0.5,
    loadBalancing: "round-robin",
    whenNoHealthyNodes: "tryAll",
    runtime: createMemoryNetwork(),
    clock: new VirtualClock(),
    clientName: "once",
    logger: () => {},
  };
  const reads = new Map<string, number>();
  const config = {};
  for (const [name, value] of Object.entries(fields)) {
    Object.defineProperty(config, name, {
      enumerable: true,
      get() {
        const n = reads.get(name) ?? 0;
        reads.set(name, n + 1);
        // The second read answers what would change the outcome.
        return n === 0 ? value : name === "enableTls" ? false : "fail";
      },
    });
  }
  const resolved = resolveConfig(config as ConnectionConfig);
  for (const name of Object.keys(fields)) {
    assert.equal(reads.get(name), 1, name);
  }
  assert.equal(resolved.enableTls, true);
  assert.equal(resolved.tlsPolicy, "require");
  assert.equal(resolved.whenNoHealthyNodes, "tryAll");
});

test("the same node spelt twice is a duplicate host; the address stays as written", () => {
  const twice = [
    ["DB1:7000", "db1"],
    ["db.example", "db.example."],
    ["[::1]", "[0:0:0:0:0:0:0:1]:7000"],
    ["[::ffff]:7001", "[::FFFF]:7001"],
    ["[::ffff:1.2.3.4]", "::ffff:102:304"],
    ["[2001:db8::1]", "[2001:0DB8:0:0:0:0:0:0001]"],
  ];
  for (const hosts of twice) {
    const error = refusal({ hosts });
    assert.equal(error.field, "hosts[1]", hosts.join(" "));
    assert.match(error.message, /duplicate host/);
  }
  // Different nodes: another port, another zone, another name.
  const resolved = resolveConfig({
    hosts: ["DB1", "db1:7001", "fe80::1%eth0", "fe80::1%eth1", "db2"],
  });
  assert.deepEqual(resolved.hosts.map((h) => h.address), [
    "DB1:7000",
    "db1:7001",
    "[fe80::1%eth0]:7000",
    "[fe80::1%eth1]:7000",
    "db2:7000",
  ]);
});

test("null is not 'not given': every option refuses it, naming the option", () => {
  const options = [
    "username",
    "password",
    "enableTls",
    "tlsPolicy",
    "protocols",
    "tls",
    "timeoutMs",
    "requestTimeoutMs",
    "maxFrameSize",
    "maxDatagramSize",
    "poolConfig",
    "retryConfig",
    "retryBudget",
    "hedging",
    "healthConfig",
    "outlierEjection",
    "panicThreshold",
    "loadBalancing",
    "whenNoHealthyNodes",
    "runtime",
    "clock",
    "clientName",
    "logger",
  ];
  for (const option of options) {
    const error = refusal({ hosts: ["127.0.0.1"], [option]: null });
    assert.equal(error.field, option);
  }
});

test("null in the overrides of a connection string is refused too", async () => {
  await assert.rejects(
    Client.connect("nodewire://127.0.0.1", {
      timeoutMs: null as unknown as number,
    }, { lazy: true }),
    (error: unknown) =>
      error instanceof ConfigError && error.field === "timeoutMs",
  );
});

test('runtime "deno" is refused where there is no Deno, not failed at every connect', async () => {
  const onDeno =
    typeof (globalThis as { Deno?: { connect?: unknown } }).Deno?.connect ===
      "function";
  const config: ConnectionConfig = { hosts: ["127.0.0.1:1"], runtime: "deno" };
  if (onDeno) {
    assert.equal(resolveConfig(config).runtime, "deno");
    return;
  }
  const error = refusal(config);
  assert.equal(error.field, "runtime");
  assert.match(error.message, /"deno" needs Deno/);
  await assert.rejects(
    Client.connect(config, { lazy: true }),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "CONFIG_INVALID" &&
      e.field === "runtime" && /"deno" needs Deno/.test(e.message),
  );
});

// ---- Client.connect and new Client ----

test("new Client(config) from JavaScript is an InvalidArgumentError pointing to Client.connect", () => {
  const NewClient = Client as unknown as new (...args: unknown[]) => Client;
  for (const args of [[{ hosts: ["127.0.0.1"] }], [], [{}, {}]]) {
    assert.throws(() => new NewClient(...args), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.match(error.message, /Client\.connect\(config/);
      return true;
    });
  }
});

test("Client.connect with a signal aborted before the call rejects with AbortedError, lazy or not", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const controller = new AbortController();
  controller.abort(new Error("shutting down"));
  for (const lazy of [false, true]) {
    const call = Client.connect({
      hosts: ["127.0.0.1:7000"],
      runtime: network,
      clock,
    }, { signal: controller.signal, lazy });
    await assert.rejects(call, (error: unknown) => {
      assert.ok(error instanceof AbortedError, String(error));
      assert.equal(error.cause, controller.signal.reason);
      return true;
    });
  }
  assert.equal(clock.pendingTimers, 0);
  assert.equal(network.openChannels, 0);
});

test("Client.connect reads its options once: a getter that throws the second time is an InvalidArgumentError", async () => {
  const network = createMemoryNetwork();
  let reads = 0;
  const options = {
    get lazy(): boolean {
      if (reads++ > 0) throw new Error("read twice");
      return true;
    },
  };
  const escapes = watchEscapes();
  const outcome = await Client.connect(
    { hosts: ["127.0.0.1:7000"], runtime: network },
    options,
  ).then(
    async (client) => {
      await client.disconnect();
      return client;
    },
    (error: unknown) => error,
  );
  // Either read once and used, or refused with a typed error: never the
  // getter's own error.
  assert.ok(
    outcome instanceof Client || outcome instanceof InvalidArgumentError,
    String(outcome),
  );
  assert.deepEqual(await escapes.stop(), []);
});

// ---- a lazy client's first connect ----

/**
 * A lazy client of one node that accepts connections and never answers
 * (on the memory network), and the channels it accepted.
 */
async function silentLazyClient(clock: VirtualClock) {
  const network = createMemoryNetwork();
  const accepted: ByteChannel[] = [];
  const listener = await network.listen(
    { hostname: "127.0.0.1", port: 7000 },
    (channel) => {
      accepted.push(channel);
      channel.onData(() => {});
    },
  );
  const client = await Client.connect({
    hosts: ["127.0.0.1:7000"],
    runtime: network,
    clock,
    timeoutMs: 5000,
    healthConfig: { intervalMs: 0 },
  }, { lazy: true });
  return { client, network, accepted, listener };
}

test("a lazy client's first calls wait for its connect within their own timeoutMs", async () => {
  const clock = new VirtualClock();
  const escapes = watchEscapes();
  const { client, network, listener } = await silentLazyClient(clock);
  const started = clock.now();
  const when = (p: Promise<unknown>) =>
    p.then(() => assert.fail("succeeded"), (error) => ({
      error,
      at: clock.now() - started,
    }));
  const request = when(client.request(ops.echo("x"), { timeoutMs: 100 }));
  const ping = when(client.ping({ timeoutMs: 150 }));
  const lent = when(
    client.withConnection(() => Promise.resolve(1), { timeoutMs: 200 }),
  );
  const batch = client.requestMany([ops.echo("a"), ops.echo("b")], {
    timeoutMs: 250,
  });
  const r = await drive(clock, request);
  assert.ok(r.error instanceof RequestTimeoutError, String(r.error));
  assert.equal(r.at, 100);
  assert.equal(r.error.sent, false);
  assert.equal(r.error.retryable, true);
  assert.equal(r.error.address, "127.0.0.1:7000");
  const p = await drive(clock, ping);
  assert.ok(p.error instanceof RequestTimeoutError, String(p.error));
  assert.equal(p.at, 150);
  const l = await drive(clock, lent);
  assert.ok(l.error instanceof PoolTimeoutError, String(l.error));
  assert.equal(l.error.limit, "timeoutMs");
  assert.equal(l.at, 200);
  for (const result of await drive(clock, batch)) {
    assert.ok(!result.ok && result.error instanceof RequestTimeoutError);
  }
  assert.equal(clock.now() - started, 250);
  assert.equal(client.stats().inFlight, 0);
  await closeDriven(client, clock);
  await listener.close();
  assert.equal(clock.pendingTimers, 0);
  assert.equal(network.openChannels, 0);
  assert.deepEqual(await escapes.stop(), []);
});

test("a lazy client's calls waiting for the first connect are in flight: a disconnect gives them its grace", async () => {
  await scene(1, {}, async ({ client, clock }) => {
    const request = client.request(ops.echo("r"));
    const ping = client.ping();
    const lent = client.withConnection(() => Promise.resolve("lent"));
    const batch = client.requestMany([ops.echo("b")]);
    assert.equal(client.stats().inFlight, 4);
    const closing = client.disconnect({ timeoutMs: 1000 });
    await drive(clock, closing);
    assert.equal(replyText(await request), "r");
    assert.equal((await ping).nodeId, "n0");
    assert.equal(await lent, "lent");
    const [item] = await batch;
    assert.ok(item.ok, item.ok ? "" : String(item.error));
    assert.equal(client.stats().inFlight, 0);
  }, { lazy: true });
});

test("a lazy client's empty requestMany waiting for the first connect does not hold a disconnect for its whole grace", async () => {
  await scene(1, {}, async ({ client, clock }) => {
    const started = clock.now();
    const batch = client.requestMany([]);
    assert.equal(client.stats().inFlight, 1);
    const closing = client.disconnect({ timeoutMs: 1000 });
    await drive(clock, closing);
    assert.deepEqual(await batch, []);
    assert.equal(client.stats().inFlight, 0);
    // Before: the batch left the in-flight count at zero without saying
    // so, and the disconnect waited out its grace (1000 ms).
    assert.ok(clock.now() - started < 1000, `${clock.now() - started} ms`);
  }, { lazy: true });
});

test("a lazy client's calls still waiting when the grace ends fail with ClientClosedError", async () => {
  const clock = new VirtualClock();
  const escapes = watchEscapes();
  const { client, network, listener } = await silentLazyClient(clock);
  const outcomes = [
    client.request(ops.echo("x")),
    client.ping(),
    client.withConnection(() => Promise.resolve(1)),
    client.requestMany([ops.echo("y")]).then(([r]) => {
      if (!r.ok) throw r.error;
    }),
  ].map((p) => p.then(() => "ok", (error) => error));
  const closing = client.disconnect({ timeoutMs: 30 });
  await drive(clock, closing);
  for (const outcome of await Promise.all(outcomes)) {
    assert.ok(outcome instanceof ClientClosedError, String(outcome));
  }
  assert.equal(client.stats().inFlight, 0);
  await listener.close();
  assert.equal(clock.pendingTimers, 0);
  assert.equal(network.openChannels, 0);
  assert.deepEqual(await escapes.stop(), []);
});

// ---- disconnect ----

test("a second disconnect with a shorter timeoutMs ends the grace sooner, with the same promise", async () => {
  await scene(1, { timeoutMs: 5000 }, async ({ client, clock }) => {
    const slow = client.request(ops.sleep(60_000)).then(() => "ok", (e) => e);
    await settle(clock);
    const started = clock.now();
    const first = client.disconnect();
    const done = tracked(first);
    await clock.advance(100);
    assert.equal(done(), false, "the first call's grace runs");
    const second = client.disconnect({ timeoutMs: 10 });
    assert.equal(second, first);
    // A longer one never pushes the end back.
    client.disconnect({ timeoutMs: 60_000 });
    await clock.advance(10);
    await settle(clock);
    assert.equal(done(), true, "ended 10 ms after the second call");
    assert.equal(clock.now() - started, 110);
    const error = await slow;
    assert.ok(error instanceof ClientClosedError, String(error));
    assert.match(error.message, /after waiting 110 ms/);
  });
});

test("disconnect reads timeoutMs once: a getter that throws is refused and the client stays open; one that changes is not asked again", async () => {
  await scene(1, {}, async ({ client, clock }) => {
    const escapes = watchEscapes();
    const throwing = {
      get timeoutMs(): number {
        throw new Error("no grace today");
      },
    };
    let outcome: Promise<void> | undefined;
    assert.doesNotThrow(() => outcome = client.disconnect(throwing));
    await assert.rejects(
      outcome!,
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        /Client\.disconnect: invalid options\.timeoutMs: could not be read \(no grace today\)/
          .test(e.message),
    );
    assert.equal(client.closed, false);
    assert.equal(
      replyText(await drive(clock, client.request(ops.echo("still")))),
      "still",
    );
    // Asked once: its first answer is the grace, whatever it says later.
    let reads = 0;
    const changing = {
      get timeoutMs(): number {
        return reads++ === 0 ? 10 : assert.fail("read twice");
      },
    };
    const slow = client.request(ops.sleep(60_000)).then(() => "ok", (e) => e);
    await settle(clock);
    const started = clock.now();
    const done = tracked(client.disconnect(changing));
    await clock.advance(10);
    await settle(clock);
    assert.equal(done(), true, "ended after the 10 ms grace first read");
    assert.equal(clock.now() - started, 10);
    assert.equal(reads, 1);
    assert.ok((await slow) instanceof ClientClosedError);
    assert.deepEqual(await escapes.stop(), []);
  });
});

test("a ping caught by a disconnect is in flight: it finishes within the grace, or fails with ClientClosedError", async () => {
  await scene(1, {
    poolConfig: { minConnections: 0, maxConnections: 1 },
  }, async ({ client, clock }) => {
    // In flight on the shared connection when the disconnect comes.
    const answered = client.ping();
    const closing = client.disconnect({ timeoutMs: 50 });
    const pong = await drive(clock, answered);
    assert.equal(pong.nodeId, "n0");
    await drive(clock, closing);
  });
  await scene(1, {
    poolConfig: { minConnections: 0, maxConnections: 1 },
  }, async ({ client, clock }) => {
    // Waiting for the only connection, lent and never given back.
    let release!: () => void;
    const lent = client.withConnection(
      () => new Promise<void>((resolve) => release = resolve),
    );
    await settle(clock);
    const waiting = client.ping().then(() => "ok", (error) => error);
    await settle(clock);
    const closing = client.disconnect({ timeoutMs: 50 });
    const error = await drive(clock, waiting);
    assert.ok(error instanceof ClientClosedError, String(error));
    await drive(clock, closing);
    release();
    await lent;
    assert.equal(client.stats().inFlight, 0);
  });
});

// ---- held: listeners that disconnect, a node that never answers ----

test("listeners that disconnect mid-connect or mid-request leave the calls typed and nothing behind", async () => {
  for (
    const type of ["protocolSelected", "connectionCreated", "checkoutStarted"]
  ) {
    await scene(1, {}, async ({ client, clock }) => {
      client.addEventListener(
        type as "protocolSelected",
        () => void client.disconnect(),
      );
      const outcome = await drive(
        clock,
        client.request(ops.echo("x")).then(replyText, (error) => error),
      );
      assert.ok(
        outcome === "x" || outcome instanceof ClientClosedError,
        `${type}: ${outcome}`,
      );
      assert.equal(client.closed, true, type);
    }, { lazy: true });
  }
});

test("Client.connect to a loopback listener that accepts and never answers: aborted mid-way, it rejects at once and closes its socket", async () => {
  const open = new Set<net.Socket>();
  let accepted!: () => void;
  const acceptedOnce = new Promise<void>((resolve) => accepted = resolve);
  const server = net.createServer((socket) => {
    open.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => open.delete(socket));
    socket.resume();
    accepted();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const escapes = watchEscapes();
  const clock = new VirtualClock();
  try {
    const controller = new AbortController();
    const connecting = Client.connect({
      hosts: [`127.0.0.1:${port}`],
      clock,
      healthConfig: { intervalMs: 0 },
    }, { signal: controller.signal });
    const settled = tracked(connecting);
    connecting.catch(() => {});
    await acceptedOnce;
    assert.equal(settled(), false);
    controller.abort(new Error("gave up"));
    await assert.rejects(connecting, (error: unknown) => {
      assert.ok(error instanceof AbortedError, String(error));
      return true;
    });
    assert.ok(await eventually(() => open.size === 0), "the socket closed");
    assert.equal(clock.pendingTimers, 0);
  } finally {
    for (const socket of open) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
  assert.deepEqual(await escapes.stop(), []);
});

test("a node that closes right after HELLO_OK: Client.connect fails typed at once, nothing left", async () => {
  const clock = new VirtualClock();
  const network = createMemoryNetwork();
  const escapes = watchEscapes();
  const listener = await network.listen(
    { hostname: "127.0.0.1", port: 7000 },
    (channel) => {
      const codec = new MessageCodec();
      channel.onData((chunk) =>
        codec.decode(chunk, (message) => {
          if (message.type !== MessageType.Hello) return;
          channel.write(codec.encode({
            type: MessageType.HelloOk,
            flags: 0,
            sequence: message.sequence,
            payload: encodeJson({
              nodeId: "brief",
              maxFrameSize: 1 << 20,
              auth: "none",
              protocols: ["tcp"],
            }),
          }));
          channel.close();
        })
      );
    },
  );
  for (const lazy of [false, true]) {
    const started = clock.now();
    const outcome = (async () => {
      const client = await Client.connect({
        hosts: ["127.0.0.1:7000"],
        runtime: network,
        clock,
        healthConfig: { intervalMs: 0 },
      }, { lazy });
      try {
        await client.request(ops.echo("x"), { idempotent: true });
      } finally {
        await client.disconnect();
      }
    })().then(() => null, (error) => error);
    const error = await drive(clock, outcome);
    assert.ok(error?.code === "CONNECT_FAILED", `lazy ${lazy}: ${error}`);
    assert.equal(clock.now(), started, "at once, no timer waited out");
  }
  await listener.close();
  assert.equal(clock.pendingTimers, 0);
  assert.equal(network.openChannels, 0);
  assert.deepEqual(await escapes.stop(), []);
});
