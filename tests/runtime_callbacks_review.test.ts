/**
 * The runtime layer read line by line for what a receiver handed to it
 * (onData, a listener's onConnection) or a runtime's socket can do at the
 * wrong moment: throw what is not an Error, throw at all, refuse a send
 * it took before. Each case fails the way the contract says, never with
 * an uncaught exception, an unhandled rejection or a stuck socket.
 * Loopback and the in-memory network only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ConfigError,
  ConnectionError,
  InvalidArgumentError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { detectRuntime, getAdapter } from "../src/runtime/detect.ts";
import type {
  ByteChannel,
  ListenOptions,
  RuntimeName,
} from "../src/runtime/types.ts";
import { acceptTlsOver } from "../src/runtime/node/tls_stream.ts";
import { pem } from "./helpers.ts";
import { within } from "./support/within.ts";

const native = detectRuntime();
const names: RuntimeName[] = native === "node"
  ? ["node", "memory"]
  : [native, "node", "memory"];

/** Lets every queued microtask run (delivery is one hop per step). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

test("a data receiver that throws what cannot be made text still destroys its channel, nothing uncaught", async () => {
  const network = createMemoryNetwork();
  const listener = await network.listen({ port: 0 }, (server) => {
    server.onData(() => {});
    server.onClose(() => {});
    server.write(new Uint8Array([1, 2, 3]));
  });
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  const closes: (Error | undefined)[] = [];
  client.onClose((error) => closes.push(error));
  // No prototype, so String() throws: the channel's own report of the
  // throw threw, out of the delivery, into the event loop.
  client.onData(() => {
    throw Object.create(null);
  });
  await flush();
  assert.equal(closes.length, 1, "the channel closed once");
  assert.ok(closes[0] instanceof Error);
  assert.match(closes[0].message, /object/);
  assert.equal(network.openChannels, 0);
  await listener.close();
});

for (const name of names) {
  for (const tls of name === "memory" ? [false] : [false, true]) {
    const kind = tls ? "a TLS listener" : "a listener";
    test(`${name}: ${kind} whose onConnection throws destroys that channel; the client sees it close, nothing uncaught, the listener serves on`, async () => {
      const adapter = await getAdapter(name);
      const bug = new Error("listener bug");
      const accepted: ByteChannel[] = [];
      const serverCloses: (Error | undefined)[] = [];
      const options: ListenOptions = { hostname: "127.0.0.1", port: 0 };
      if (tls) {
        options.tls = {
          cert: pem("server.pem"),
          key: pem("server-key.pem"),
        };
      }
      let calls = 0;
      const listener = await adapter.listen(options, (channel) => {
        calls++;
        accepted.push(channel);
        channel.onClose((error) => serverCloses.push(error));
        throw bug;
      });
      const opened: ByteChannel[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          // The reset may come before the connect completes: then the
          // connect fails, as an SDK error.
          const client = await within(
            5000,
            `connect ${i}`,
            adapter.connect({
              hostname: "127.0.0.1",
              port: listener.port,
              tls: tls
                ? { serverName: "localhost", ca: [pem("ca.pem")] }
                : undefined,
            }).catch((error: unknown) => {
              assert.ok(error instanceof ConnectionError, String(error));
              return undefined;
            }),
          );
          if (client === undefined) continue;
          opened.push(client);
          const closed = new Promise<Error | undefined>((resolve) =>
            client.onClose(resolve)
          );
          client.onData(() => {});
          await within(5000, `client ${i}'s close`, closed);
        }
        assert.equal(calls, 2, "the listener kept serving");
        await within(
          5000,
          "the accepted channels' closes",
          (async () => {
            while (serverCloses.length < 2) {
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
          })(),
        );
        assert.deepEqual(serverCloses, [bug, bug]);
      } finally {
        for (const channel of [...opened, ...accepted]) channel.destroy();
        await listener.close();
      }
    });
  }
}

test("memory: ports stay in 49152-65535 however many connections were made; port 0 finds a free one after wrapping round", async () => {
  const network = createMemoryNetwork();
  const listener = await network.listen({ port: 0 }, (server) => {
    server.onData(() => {});
    server.onClose(() => {});
  });
  const seen: number[] = [];
  const probe = await network.listen({ port: 0 }, (server) => {
    seen.push(server.remoteAddress!.port);
    server.onClose(() => {});
  });
  // Every connect takes a client port from the same range; 16384 of them
  // used it up once.
  for (let i = 0; i < 65536 - 49152; i++) {
    const client = await network.connect({
      hostname: "127.0.0.1",
      port: listener.port,
    });
    client.destroy();
  }
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: probe.port,
  });
  client.destroy();
  const next = await network.listen({ port: 0 }, () => {});
  try {
    for (const port of [...seen, next.port]) {
      assert.ok(port >= 49152 && port <= 65535, `port ${port}`);
    }
    assert.notEqual(next.port, listener.port, "a port in use is skipped");
    assert.notEqual(next.port, probe.port, "a port in use is skipped");
  } finally {
    await next.close();
    await probe.close();
    await listener.close();
  }
  assert.equal(network.openChannels, 0);
});

for (const name of names.filter((n) => n !== "memory")) {
  test(`${name}: connect({ signal, tls: { signal } }) gives up the handshake when the connect's signal aborts, not only the TLS one's`, async () => {
    const adapter = await getAdapter(name);
    const accepted: ByteChannel[] = [];
    let hello: () => void = () => {};
    const helloCame = new Promise<void>((resolve) => hello = resolve);
    // Plain TCP that takes the ClientHello and answers nothing.
    const listener = await adapter.listen(
      { hostname: "127.0.0.1", port: 0 },
      (channel) => {
        accepted.push(channel);
        channel.onData(() => hello());
        channel.onClose(() => {});
      },
    );
    const connect = new AbortController();
    const handshake = new AbortController();
    const reason = new Error("the caller gave up");
    try {
      const outcome = adapter.connect({
        hostname: "127.0.0.1",
        port: listener.port,
        signal: connect.signal,
        tls: {
          serverName: "localhost",
          ca: [pem("ca.pem")],
          signal: handshake.signal,
        },
      }).then(
        (channel) => {
          channel.destroy();
          return "connected";
        },
        (error: unknown) => error,
      );
      await within(5000, "the ClientHello", helloCame);
      connect.abort(reason);
      assert.equal(await within(2000, "the abort", outcome), reason);
    } finally {
      handshake.abort();
      for (const channel of accepted) channel.destroy();
      await listener.close();
    }
  });
}

test('getAdapter("deno") where Deno cannot connect is a ConfigError, not an adapter whose connects fail with a ReferenceError', async () => {
  const deno = globalThis as { Deno?: { connect?: unknown } };
  if (typeof deno.Deno?.connect === "function") {
    // On Deno: the adapter is there, and connects.
    assert.equal((await getAdapter("deno")).name, "deno");
    return;
  }
  await assert.rejects(
    getAdapter("deno"),
    (error: unknown) =>
      error instanceof ConfigError && error.code === "CONFIG_INVALID" &&
      error.field === "runtime" && /"deno" needs Deno/.test(error.message),
  );
});

test("getAdapter(object) whose methods cannot be read (a throwing getter, a revoked proxy) is a ConfigError saying so, not the getter's throw", async () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const boom = new Error("getter bug");
  const cases: [unknown, RegExp][] = [
    [revoked.proxy, /connect could not be read/],
    [{
      get connect(): never {
        throw boom;
      },
      listen() {},
    }, /connect could not be read/],
    [{
      connect() {},
      get listen(): never {
        throw boom;
      },
    }, /listen could not be read/],
    [{ connect() {} }, /no listen\(\) method/],
  ];
  for (const [value, message] of cases) {
    await assert.rejects(
      getAdapter(value as never),
      (error: unknown) =>
        error instanceof ConfigError && error.code === "CONFIG_INVALID" &&
        error.field === "runtime" && message.test(error.message),
      String(message),
    );
  }
});

for (const name of names.filter((n) => n !== "memory")) {
  test(`${name}: a TLS listener whose tls.signal had aborted serves no handshake, as one that aborts later`, async () => {
    const adapter = await getAdapter(name);
    let accepted = 0;
    const listener = await adapter.listen({
      hostname: "127.0.0.1",
      port: 0,
      tls: {
        cert: pem("server.pem"),
        key: pem("server-key.pem"),
        signal: AbortSignal.abort(new Error("stop serving TLS")),
      },
    }, (channel) => {
      accepted++;
      channel.destroy();
    });
    try {
      const outcome = await within(
        5000,
        "the TLS connect",
        adapter.connect({
          hostname: "127.0.0.1",
          port: listener.port,
          tls: { serverName: "localhost", ca: [pem("ca.pem")] },
        }).then((channel) => {
          channel.destroy();
          return "connected";
        }, (error: unknown) => error),
      );
      assert.ok(outcome instanceof ConnectionError, String(outcome));
      assert.equal(accepted, 0, "no channel handed over");
    } finally {
      await listener.close();
    }
  });
}

test(`${native}: datagram() reads its options once and binds what it checked, as connect and listen do`, async () => {
  const adapter = await getAdapter(native);
  const reads: Record<string, number> = {};
  // Checked as 0; asked again, an out-of-range port node:dgram would
  // take or throw a raw RangeError for.
  const options = {
    get hostname() {
      reads.hostname = (reads.hostname ?? 0) + 1;
      return "127.0.0.1";
    },
    get port() {
      reads.port = (reads.port ?? 0) + 1;
      return reads.port === 1 ? 0 : -1;
    },
  };
  const socket = await adapter.datagram!(options);
  try {
    assert.deepEqual(reads, { hostname: 1, port: 1 });
    assert.equal(socket.hostname, "127.0.0.1");
    assert.ok(socket.port > 0 && socket.port < 65536, `port ${socket.port}`);
  } finally {
    socket.close();
  }
});

for (const name of names.filter((n) => n !== "memory")) {
  test(`${name}: a client that closes its TLS session cleanly closes the server's channel too when the server's TLS runs over a channel (acceptTlsOver: Deno's and Bun's TLS listeners)`, async () => {
    const adapter = await getAdapter(name);
    const plain = await getAdapter("node");
    const raws: ByteChannel[] = [];
    let secure: (channel: ByteChannel) => void = () => {};
    const accepted = new Promise<ByteChannel>((resolve) => secure = resolve);
    const listener = await plain.listen(
      { hostname: "127.0.0.1", port: 0 },
      (raw) => {
        raws.push(raw);
        acceptTlsOver(raw, { hostname: "127.0.0.1", port: 0 }, {
          cert: pem("server.pem"),
          key: pem("server-key.pem"),
        }).then(secure, () => {});
      },
    );
    let client: ByteChannel | undefined;
    try {
      client = await within(
        5000,
        "the TLS connect",
        adapter.connect({
          hostname: "127.0.0.1",
          port: listener.port,
          tls: { serverName: "localhost", ca: [pem("ca.pem")] },
        }),
      );
      const clientClosed = new Promise((resolve) => client!.onClose(resolve));
      client.onData(() => {});
      const server = await within(5000, "the server's channel", accepted);
      const serverClosed = new Promise<Error | undefined>((resolve) =>
        server.onClose(resolve)
      );
      let heard: () => void = () => {};
      const heardFrom = new Promise<void>((resolve) => heard = resolve);
      server.onData(() => heard());
      client.write(new Uint8Array([1, 2, 3]));
      await within(5000, "the client's bytes", heardFrom);
      client.close();
      await within(5000, "the client's close", clientClosed);
      // Before: Deno's TLS socket over the bridge took the peer's end for
      // a half-close and kept its side, and the channel, open for good.
      await within(2000, "the server's close", serverClosed);
    } finally {
      client?.destroy();
      for (const raw of raws) raw.destroy();
      await listener.close();
    }
  });
}

for (const name of names.filter((n) => n !== "memory")) {
  test(`${name}: tls.ca is read once, item by item, and a list that cannot be read is an InvalidArgumentError, not the trap's throw`, async () => {
    const adapter = await getAdapter(name);
    const trap = new Proxy([pem("ca.pem")], {
      get(target, key) {
        if (key === "length") throw new Error("trap");
        return Reflect.get(target, key);
      },
    });
    await assert.rejects(
      adapter.connect({
        hostname: "127.0.0.1",
        port: 1,
        tls: { serverName: "localhost", ca: trap },
      }),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.argument === "options.tls.ca" &&
        /could not be read/.test(error.message),
    );
    // Read again, the item would be what was never checked.
    let reads = 0;
    const ca: string[] = [];
    Object.defineProperty(ca, 0, {
      enumerable: true,
      get() {
        reads++;
        return reads === 1 ? pem("ca.pem") : 42;
      },
    });
    const accepted: ByteChannel[] = [];
    let hello: () => void = () => {};
    const helloCame = new Promise<void>((resolve) => hello = resolve);
    const listener = await adapter.listen(
      { hostname: "127.0.0.1", port: 0 },
      (channel) => {
        accepted.push(channel);
        channel.onData(() => hello());
        channel.onClose(() => {});
      },
    );
    const stop = new AbortController();
    try {
      const outcome = adapter.connect({
        hostname: "127.0.0.1",
        port: listener.port,
        signal: stop.signal,
        tls: { serverName: "localhost", ca },
      }).then((channel) => channel.destroy(), (error: unknown) => error);
      await within(5000, "the ClientHello", Promise.race([helloCame, outcome]));
      stop.abort(new Error("done"));
      const error = await within(5000, "the abort", outcome);
      assert.equal(reads, 1, `read ${reads} times; ended with ${error}`);
    } finally {
      for (const channel of accepted) channel.destroy();
      await listener.close();
    }
  });
}

test("a signal option whose prototype cannot be read (a proxy's trap throws) is an InvalidArgumentError, not the trap's throw", async () => {
  const trap = new Proxy({}, {
    getPrototypeOf() {
      throw new Error("trap");
    },
  });
  for (const name of names) {
    const adapter = await getAdapter(name);
    const cases: [() => Promise<unknown>, string][] = [
      [
        () =>
          adapter.connect(
            { hostname: "127.0.0.1", port: 1, signal: trap } as never,
          ),
        "options.signal",
      ],
      [
        () =>
          adapter.connect({
            hostname: "127.0.0.1",
            port: 1,
            tls: { serverName: "localhost", signal: trap },
          } as never),
        "options.tls.signal",
      ],
    ];
    for (const [attempt, argument] of cases) {
      await assert.rejects(
        attempt(),
        (error: unknown) =>
          error instanceof InvalidArgumentError && error.argument === argument,
        `${name}: ${argument}`,
      );
    }
  }
});

// Deno only: a fresh process, since which adapter is loaded first is the
// point, and this file has loaded both long since.
if (native === "deno") {
  test("deno: the Deno adapter's datagrams are Deno's own (--unstable-net) even when the node adapter was asked for first", async () => {
    const { spawn } = await import("node:child_process");
    const { fileURLToPath } = await import("node:url");
    const child = spawn(
      (globalThis as unknown as { process: { execPath: string } }).process
        .execPath,
      [
        "run",
        "-A",
        "--unstable-net",
        fileURLToPath(
          new URL("./fixtures/deno_datagram_order.ts", import.meta.url),
        ),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout!.on("data", (d) => output += d);
    child.stderr!.on("data", (d) => output += d);
    const code = await within(
      20_000,
      "the child",
      new Promise((resolve) => child.on("exit", resolve)),
    ).finally(() => child.kill("SIGKILL"));
    assert.equal(code, 0, output);
    // Before: NodeDatagram, node:dgram's, from the node adapter's own.
    assert.equal(output.trim(), "DenoDatagram");
  });
}
