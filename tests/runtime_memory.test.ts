/**
 * What only the in-memory network promises: isolation, determinism, copies
 * of written bytes, fault injection. The shared channel contract is in
 * tests/runtime_adapter.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ConnectionLostError,
  HostNotFoundError,
  InvalidArgumentError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel } from "../src/runtime/types.ts";

/** Lets every queued microtask run (delivery is one hop per step). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

const text = (chunk: Uint8Array) => new TextDecoder().decode(chunk);
const encode = (value: string) => new TextEncoder().encode(value);

test("the same exchange produces the same events in the same order", async () => {
  async function run(): Promise<string[]> {
    const log: string[] = [];
    const network = createMemoryNetwork();
    const listener = await network.listen({ port: 0 }, (server) => {
      server.onData((chunk) => {
        log.push(`server got ${text(chunk)}`);
        server.write(encode(`re:${text(chunk)}`));
        if (text(chunk) === "b") server.close();
      });
      server.onClose((error) => log.push(`server closed ${error}`));
    });
    const client = await network.connect({
      hostname: "127.0.0.1",
      port: listener.port,
    });
    client.onData((chunk) => log.push(`client got ${text(chunk)}`));
    client.onClose((error) => log.push(`client closed ${error}`));
    client.write(encode("a"));
    client.write(encode("b"));
    log.push("written");
    await flush();
    await listener.close();
    assert.equal(network.openChannels, 0);
    return log;
  }
  const first = await run();
  assert.deepEqual(first, [
    "written",
    "server got a",
    "server got b",
    "client got re:a",
    "client got re:b",
    "server closed undefined",
    "client closed undefined",
  ]);
  assert.deepEqual(await run(), first);
});

test("written bytes are copied: the writer may reuse its buffer", async () => {
  const network = createMemoryNetwork();
  const received: Uint8Array[] = [];
  const listener = await network.listen({ port: 0 }, (server) => {
    server.onData((chunk) => received.push(chunk));
    server.onClose(() => {});
  });
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  client.onData(() => {});
  client.onClose(() => {});
  const buffer = new Uint8Array([1, 2, 3]);
  client.write(buffer);
  buffer.fill(9);
  client.write(buffer);
  await flush();
  assert.deepEqual(received, [
    new Uint8Array([1, 2, 3]),
    new Uint8Array([9, 9, 9]),
  ]);
  assert.notEqual(received[0].buffer, buffer.buffer);
  client.close();
  await flush();
  await listener.close();
  assert.equal(network.openChannels, 0);
});

test("networks are isolated and port 0 gives distinct ports", async () => {
  const a = createMemoryNetwork();
  const b = createMemoryNetwork();
  const one = await a.listen({ port: 0 }, () => {});
  const two = await a.listen({ port: 0 }, () => {});
  try {
    assert.notEqual(one.port, two.port);
    await assert.rejects(
      b.connect({ hostname: "127.0.0.1", port: one.port }),
      { code: "CONNECTION_REFUSED" },
    );
    await assert.rejects(
      a.listen({ port: one.port }, () => {}),
      { code: "LISTEN_FAILED" },
    );
  } finally {
    await one.close();
    await two.close();
  }
});

test("tls is refused, not ignored: the memory network has no TLS", async () => {
  const network = createMemoryNetwork();
  assert.equal(network.supportsTls, undefined);
  const listener = await network.listen({ port: 0 }, () => {});
  try {
    await assert.rejects(
      network.connect({
        hostname: "127.0.0.1",
        port: listener.port,
        tls: { serverName: "node.test" },
      }),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.argument === "options.tls" &&
        /connect\(\).*does not speak TLS/.test(error.message),
    );
    await assert.rejects(
      network.listen(
        { port: 0, tls: { cert: "c", key: "secret-key" } },
        () => {},
      ),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        /listen\(\)/.test(error.message) && !error.message.includes("secret"),
    );
    // Nothing was opened by either refusal.
    assert.equal(network.openChannels, 0);
  } finally {
    await listener.close();
  }
});

test("names resolve once something listens on them; localhost is 127.0.0.1", async () => {
  const network = createMemoryNetwork();
  await assert.rejects(
    network.connect({ hostname: "db.test", port: 1 }),
    (e: unknown) =>
      e instanceof HostNotFoundError && e.code === "HOST_NOT_FOUND" &&
      /host db\.test could not be resolved/.test(e.message),
  );
  const named = await network.listen(
    { hostname: "db.test", port: 7000 },
    (ch) => ch.destroy(),
  );
  const loopback = await network.listen({ port: 7001 }, (ch) => ch.destroy());
  try {
    (await network.connect({ hostname: "db.test", port: 7000 })).destroy();
    (await network.connect({ hostname: "localhost", port: 7001 })).destroy();
    assert.equal(network.openChannels, 0);
  } finally {
    await named.close();
    await loopback.close();
  }
});

test("breakAll fails both ends of every channel with ConnectionLostError", async () => {
  const network = createMemoryNetwork();
  const closes: (Error | undefined)[] = [];
  const listener = await network.listen({ port: 0 }, (server) => {
    server.onData(() => {});
    server.onClose((error) => closes.push(error));
  });
  const clients: ByteChannel[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await network.connect({
      hostname: "127.0.0.1",
      port: listener.port,
    });
    client.onData(() => {});
    client.onClose((error) => closes.push(error));
    clients.push(client);
  }
  assert.equal(network.openChannels, 6);
  network.breakAll("switch on fire");
  await flush();
  assert.equal(closes.length, 6);
  for (const error of closes) {
    assert.ok(error instanceof ConnectionLostError);
    assert.match(error.message, /switch on fire/);
  }
  assert.equal(network.openChannels, 0);
  assert.equal(clients[0].write(new Uint8Array(1)), false);
  await listener.close();
});

test("a data receiver that throws destroys its channel with what it threw", async () => {
  const network = createMemoryNetwork();
  let server: ByteChannel | undefined;
  let serverError: Error | undefined;
  const listener = await network.listen({ port: 0 }, (channel) => {
    server = channel;
    channel.onData(() => {});
    channel.onClose((error) => serverError = error);
  });
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  const bug = new Error("codec bug");
  const closes: (Error | undefined)[] = [];
  client.onData(() => {
    throw bug;
  });
  client.onClose((error) => closes.push(error));
  server!.write(encode("boom"));
  await flush();
  assert.deepEqual(closes, [bug]);
  assert.ok(serverError instanceof ConnectionLostError);
  assert.equal(network.openChannels, 0);
  await listener.close();
});

test("a close that happened before onClose was registered is still delivered", async () => {
  const network = createMemoryNetwork();
  const listener = await network.listen(
    { port: 0 },
    (server) => server.destroy(),
  );
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  await flush();
  const error = await new Promise<Error | undefined>((resolve) =>
    client.onClose(resolve)
  );
  assert.ok(error instanceof ConnectionLostError);
  await listener.close();
});

test("drained resolves at once below the low mark and when the channel closes", async () => {
  const network = createMemoryNetwork();
  const listener = await network.listen({ port: 0 }, (server) => {
    server.onClose(() => {});
  });
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  client.onData(() => {});
  client.onClose(() => {});
  await client.drained();
  assert.equal(client.write(new Uint8Array(2 * 1024 * 1024)), false);
  assert.equal(client.bufferedAmount, 2 * 1024 * 1024);
  const waiting = client.drained();
  client.destroy();
  await waiting;
  await listener.close();
  assert.equal(network.openChannels, 0);
});

test("pause() reads nothing more, as a reader that stopped reading: the other end's writes back up (write false past the mark, drained() waits) until resume() delivers them in order, and a close behind them is seen after them", async () => {
  const network = createMemoryNetwork();
  let server!: ByteChannel;
  const got: number[] = [];
  let serverClosed = false;
  const listener = await network.listen({ port: 0 }, (channel) => {
    server = channel;
    channel.onData((chunk) => got.push(chunk.length));
    channel.onClose(() => (serverClosed = true));
  });
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  client.onData(() => {});
  client.onClose(() => {});
  await flush();
  server.pause!();
  assert.equal(client.write(new Uint8Array(1)), true);
  assert.equal(client.write(new Uint8Array(1024 * 1024)), false);
  let drained = false;
  client.drained().then(() => (drained = true));
  await flush();
  assert.deepEqual(got, []);
  assert.equal(client.bufferedAmount, 1 + 1024 * 1024);
  assert.equal(drained, false);

  server.resume!();
  await flush();
  assert.deepEqual(got, [1, 1024 * 1024]);
  assert.equal(client.bufferedAmount, 0);
  assert.equal(drained, true);

  server.pause!();
  client.write(new Uint8Array(3));
  client.close();
  await flush();
  assert.deepEqual(got, [1, 1024 * 1024], "nothing read while paused");
  assert.equal(serverClosed, false, "nor the end of the stream");
  server.resume!();
  await flush();
  assert.deepEqual(got, [1, 1024 * 1024, 3]);
  assert.equal(serverClosed, true);
  await listener.close();
  assert.equal(network.openChannels, 0);
});
