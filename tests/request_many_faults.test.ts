// Client.requestMany under faults and hostile arguments: every batch
// settles exactly once, every item gets one result, the counts add up and
// nothing is left behind (listeners, requests in flight, escaped errors),
// whatever happens to its nodes, connections, signal or arguments while it
// runs. Every test runs on the virtual clock over the in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CHUNK_ITEMS } from "../src/client/batch.ts";
import { Client } from "../src/client/client.ts";
import {
  AbortedError,
  ClientClosedError,
  ConnectionLostError,
  InvalidArgumentError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { HEADER_SIZE, MessageType } from "../src/protocol/frame.ts";
import { encodeError } from "../src/protocol/messages.ts";
import { startTestNode } from "../testing/node.ts";
import { decodeReply, ops, replyText } from "../testing/ops.ts";
import {
  assertNothingInFlight,
  countedSignal,
  errorOf,
  guardedScene as scene,
  readOnce,
  settle,
  settledWithin,
  textOf,
} from "./support/fault_checks.ts";
import { startScene } from "./support/fault_scene.ts";

/** The client's counts once a batch of `items` settled: nothing left over. */
function assertBooked(client: Client, items: number, before = 0): void {
  assertNothingInFlight(client);
  const stats = client.stats();
  assert.equal(stats.succeeded + stats.failed - before, items);
}

test("payloads over the node's frame limit fail alone with InvalidArgumentError and are not the node's fault: no ejection, single or batched", async () => {
  // As a ProtocolError, a refused payload counted as a node failure: five
  // in a row ejected a healthy node, and its pool was cleared.
  await scene(2, {}, async ({ client, clock }) => {
    let ejected = 0;
    client.addEventListener("nodeHealthChanged", (e) => {
      if (!e.detail.healthy) ejected++;
    });
    const big = ops.echo(new Uint8Array(4096));
    for (let i = 0; i < 10; i++) {
      const refused = assert.rejects(
        client.request(big),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === "payload" &&
          /at most 1024 bytes .*got 4\d{3}/.test(e.message),
      );
      await settle(clock);
      await refused;
    }
    const batch = client.requestMany(new Array(10).fill(big));
    await settle(clock);
    for (const r of await batch) {
      assert.ok(errorOf(r) instanceof InvalidArgumentError, String(r));
    }
    assert.equal(ejected, 0);
    assert.equal(replyText(await client.request(ops.echo("ok"))), "ok");
    assertBooked(client, 21);
  }, { maxFrameSize: 1024 });
});

test("a chunk whose first items are refused (oversized payloads) still sends and settles the rest", async () => {
  // Refusals are reported once the whole run is in flight. When an
  // oversized payload still counted as a node failure, five in a row
  // ejected the node while the chunk was being sent; ejection cleared its
  // pool and closed the chunk's idle connection, and the items after them
  // went into a closed connection and never settled.
  await scene(2, {}, async ({ client, clock }) => {
    let ejected = 0;
    client.addEventListener("nodeHealthChanged", (e) => {
      if (!e.detail.healthy) ejected++;
    });
    const big = ops.echo(new Uint8Array(4096));
    const call = client.requestMany([
      big,
      big,
      big,
      big,
      big,
      ops.echo("small"),
      ops.echo("last"),
    ]);
    assert.ok(await settledWithin(clock, call, 100), "the batch never settled");
    const results = await call;
    for (const r of results.slice(0, 5)) {
      assert.ok(errorOf(r) instanceof InvalidArgumentError, String(r));
    }
    assert.equal(textOf(results[5]), "small");
    assert.equal(textOf(results[6]), "last");
    assert.equal(ejected, 0);
    assertBooked(client, 7);
  }, { maxFrameSize: 1024 });
});

test("a signal that aborts after the pool hands a waiting chunk its connection, before the chunk is sent, stops the chunk", async () => {
  // Items sent after the abort were never cancelled: the batch waited for
  // their replies (here a second) and reported them as successes.
  await scene(1, {}, async ({ client, clock }) => {
    client.manager.nodes[0].pool.clear();
    await settle(clock);
    const controller = new AbortController();
    client.addEventListener("checkedOut", () => {
      controller.abort(new Error("stop"));
    });
    const call = client.requestMany(
      [ops.sleep(1000, "a"), ops.sleep(1000, "b")],
      { signal: controller.signal },
    );
    assert.ok(await settledWithin(clock, call, 10), "the abort was ignored");
    for (const r of await call) {
      const error = errorOf(r);
      assert.ok(error instanceof AbortedError, String(error));
      assert.equal((error.cause as Error).message, "stop");
    }
    assertBooked(client, 2);
  });
});

test("a signal that aborts while the batch is being handed out stops the chunks handed out after it", async () => {
  // The first chunk that has to wait for a connection starts a checkout
  // (its event runs at once); the abort there reached the chunks sent
  // before it, but the chunks after it went out regardless.
  await scene(2, {}, async ({ client, clock }) => {
    client.manager.nodes[0].pool.clear();
    await settle(clock);
    const controller = new AbortController();
    client.addEventListener("checkoutStarted", () => {
      controller.abort(new Error("stop"));
    });
    const count = 4 * CHUNK_ITEMS;
    const call = client.requestMany(
      Array.from({ length: count }, () => ops.sleep(1000)),
      { signal: controller.signal },
    );
    assert.ok(await settledWithin(clock, call, 10), "the abort was ignored");
    for (const r of await call) {
      assert.ok(errorOf(r) instanceof AbortedError, String(r));
    }
    assertBooked(client, count);
  });
});

test("options are read once, at the door: getters that would throw later change nothing, retries included", async () => {
  // The batch read its options again (the signal when it started, the
  // others per chunk and per failure): a getter that threw then rejected
  // the call with a raw Error and left the batch counted in flight.
  await scene(2, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
    retryBudget: false,
  }, async ({ client, clock, nodes }) => {
    const controller = new AbortController();
    const options = Object.defineProperties({}, {
      idempotent: readOnce(true),
      timeoutMs: readOnce(5000),
      retry: readOnce(true),
      hedge: readOnce(false),
      signal: readOnce(controller.signal),
    });
    const payloads = Array.from(
      { length: 2 * CHUNK_ITEMS },
      (_, i) => ops.sleep(50, `${i}`),
    );
    const call = client.requestMany(payloads, options);
    await settle(clock);
    // Half the batch fails on n0 and is retried on n1.
    await nodes[0].stop();
    assert.ok(await settledWithin(clock, call, 500), "the batch never settled");
    const results = await call;
    results.forEach((r, i) => assert.equal(textOf(r), `${i}`));
    assert.ok(client.stats().retries > 0);
    assertBooked(client, payloads.length);
  });
});

test("an array whose length is not a length, or a revoked one (proxies), is refused with InvalidArgumentError", async () => {
  await scene(1, {}, async ({ client, nodes }) => {
    const lengths: unknown[] = [NaN, -1, 2.5, "2", Infinity];
    const proxies: unknown[] = lengths.map((length) =>
      new Proxy([ops.echo("a"), ops.echo("b")], {
        get: (target, key) =>
          key === "length" ? length : Reflect.get(target, key),
      })
    );
    proxies.push(
      new Proxy([ops.echo("a")], {
        get: (target, key) => {
          if (key === "length") throw new Error("no length");
          return Reflect.get(target, key);
        },
      }),
    );
    const revocable = Proxy.revocable([ops.echo("a")], {});
    revocable.revoke();
    proxies.push(revocable.proxy);
    for (const payloads of proxies) {
      await assert.rejects(
        client.requestMany(payloads as Uint8Array[]),
        (error: unknown) => {
          assert.ok(error instanceof InvalidArgumentError, String(error));
          assert.match(error.message, /Client\.requestMany/);
          return true;
        },
      );
    }
    assert.equal(nodes[0].stats.requests, 0);
    assert.equal(client.stats().inFlight, 0);
  });
});

test("a batch leaves no listener on its signal, whatever became of its items", async () => {
  await scene(3, {
    retryConfig: { maxRetries: 2, initialBackoffMs: 5, jitter: false },
    retryBudget: false,
    poolConfig: { minConnections: 1, maxConnections: 2 },
  }, async ({ client, clock, nodes }) => {
    const { signal, live } = countedSignal();
    const run = async (
      name: string,
      payloads: Uint8Array[],
      options: Record<string, unknown> = {},
    ) => {
      const call = client.requestMany(payloads, { signal, ...options });
      assert.ok(await settledWithin(clock, call, 2000), `${name}: settled`);
      await settle(clock);
      assert.equal(live(), 0, `${name}: listeners left on the signal`);
      return call;
    };
    await run("replies", Array.from({ length: 600 }, () => ops.echo("x")));
    await run("node errors, retried", [
      ops.fail(5, true, "busy"),
      ops.echo("x"),
      ops.fail(3, false, "no"),
    ], { idempotent: true });
    await run("timeouts", [ops.sleep(100), ops.echo("x")], {
      timeoutMs: 10,
      retry: false,
    });
    for (const node of client.manager.nodes) node.pool.clear();
    await run("chunks that wait for a connection", [ops.echo("x")]);
    await run("hedged, item by item", [ops.echo("x"), ops.echo("y")], {
      idempotent: true,
      hedge: true,
    });
    await nodes[0].stop();
    await nodes[1].stop();
    await run(
      "a node gone",
      Array.from({ length: 3 * CHUNK_ITEMS }, () => ops.echo("x")),
    );
    await nodes[2].stop();
    await settle(clock);
    for (const node of client.manager.nodes) {
      client.manager.markNodeUnhealthy(node.address);
    }
    await run("no healthy node", [ops.echo("x")]);
    assert.equal(client.stats().inFlight, 0);
  });
});

test("a node saying GOODBYE mid-chunk: its items in flight finish there; later chunks get through", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
    retryBudget: false,
  }, async ({ client, clock, nodes }) => {
    const count = 2 * CHUNK_ITEMS;
    const first = client.requestMany(
      Array.from({ length: count }, (_, i) => ops.sleep(50, `${i}`)),
    );
    await settle(clock);
    await nodes[0].stop({ graceful: true });
    // Sent while n0 drains: its pool has no connection to give any more.
    const second = client.requestMany(
      Array.from({ length: count }, (_, i) => ops.echo(`${i}`)),
    );
    assert.ok(await settledWithin(clock, first, 100), "first settled");
    assert.ok(await settledWithin(clock, second, 100), "second settled");
    const byNode = new Set<string>();
    for (const call of [first, second]) {
      (await call).forEach((r, i) => {
        assert.equal(textOf(r), `${i}`);
        if (r.ok) byNode.add(decodeReply(r.value).nodeId);
      });
    }
    assert.deepEqual([...byNode].sort(), ["n0", "n1"]);
    for (const r of await second) {
      assert.equal(r.ok && decodeReply(r.value).nodeId, "n1");
    }
    assertBooked(client, 2 * count);
  });
});

test("disconnect while chunks wait for a connection and items wait to be retried: every item settles, once", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 5, initialBackoffMs: 100, jitter: false },
    retryBudget: false,
  }, async ({ client, clock }) => {
    for (const node of client.manager.nodes) node.pool.clear();
    const call = client.requestMany([
      ...Array.from({ length: 2 * CHUNK_ITEMS }, () => ops.sleep(1000)),
      ops.fail(5, true, "busy"),
    ], { idempotent: true });
    await clock.advance(0);
    const closing = client.disconnect({ timeoutMs: 50 });
    assert.ok(await settledWithin(clock, call, 100), "the batch never settled");
    await closing;
    const results = await call;
    assert.equal(results.length, 2 * CHUNK_ITEMS + 1);
    for (const r of results) {
      const error = errorOf(r);
      assert.ok(error instanceof ClientClosedError, String(error));
    }
    assertBooked(client, results.length);
  });
});

/** An ERROR frame for the whole connection (sequence 0). */
function connectionError(): Uint8Array {
  return new MessageCodec(1 << 20).encode({
    type: MessageType.Error,
    flags: 0,
    sequence: 0,
    payload: encodeError({ code: 5, retryable: true, message: "going away" }),
  });
}

test("a node that answers twice, or ends the connection mid-chunk (an ERROR, garbage): one result per item, in order", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 2,
    config: {
      retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
      retryBudget: false,
      outlierEjection: false,
    },
  });
  try {
    const clock = s.virtual!;
    const batch = (idempotent: boolean) =>
      s.client.requestMany(
        Array.from(
          { length: 2 * CHUNK_ITEMS },
          (_, i) => ops.sleep(20, `${i}`),
        ),
        { idempotent },
      );
    await s.proxies[0].setFaults({ duplicateFrames: true });
    await s.proxies[1].setFaults({ duplicateFrames: true });
    const call = batch(false);
    assert.ok(await settledWithin(clock, call, 100), "settled");
    (await call).forEach((r, i) => assert.equal(textOf(r), `${i}`));
    assertBooked(s.client, 2 * CHUNK_ITEMS);
    await s.proxies[0].clearFaults();
    await s.proxies[1].clearFaults();
    for (
      const fault of [
        () => s.proxies[0].inject(connectionError()),
        // A whole header's worth, so idle connections drop at once too.
        () => s.proxies[0].inject(new Uint8Array(HEADER_SIZE).fill(0xff)),
      ]
    ) {
      for (const idempotent of [true, false]) {
        const before = s.client.stats();
        const call = batch(idempotent);
        await clock.advance(5);
        fault();
        assert.ok(await settledWithin(clock, call, 200), "settled");
        const results = await call;
        let lost = 0;
        results.forEach((r, i) => {
          if (r.ok) return assert.equal(textOf(r), `${i}`);
          // Sent, so only an idempotent item may be retried.
          assert.ok(!idempotent, String(r.error));
          assert.ok(r.error instanceof ConnectionLostError, String(r.error));
          lost++;
        });
        assert.ok(idempotent || lost > 0);
        assertBooked(
          s.client,
          results.length,
          before.succeeded + before.failed,
        );
      }
    }
  } finally {
    const { escaped } = await s.finish();
    assert.deepEqual(escaped, []);
  }
});

test("a payload whose length getter lies or throws is refused at the door, named by its index", async () => {
  await scene(1, {}, async ({ client, nodes }) => {
    class Shorter extends Uint8Array {
      override get length(): number {
        return 1;
      }
    }
    class Throwing extends Uint8Array {
      override get length(): number {
        throw new Error("no length");
      }
    }
    const liars = [new Shorter(ops.echo("b")), new Throwing(ops.echo("b"))];
    for (const liar of liars) {
      await assert.rejects(
        client.requestMany([ops.echo("a"), liar, ops.echo("c")]),
        (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, String(e));
          assert.equal(e.argument, "payloads[1]");
          assert.match(
            e.message,
            /^Client\.requestMany: invalid payloads\[1\]/,
          );
          return true;
        },
      );
    }
    assert.equal(nodes[0].stats.requests, 0);
    assertNothingInFlight(client);
  });
});

/**
 * Two chunks of echoes, the second's fourth (`bad`) an array whose length
 * getter throws on its `read`-th read; `reads()` says how many there were.
 */
function flakyBatch(read: number) {
  let reads = 0;
  class Flaky extends Uint8Array {
    override get length(): number {
      if (++reads === read) throw new Error(`read ${read}`);
      return super.length;
    }
  }
  const payloads = Array.from(
    { length: 2 * CHUNK_ITEMS },
    (_, i) => ops.echo(`${i}`),
  );
  const bad = CHUNK_ITEMS + 3;
  payloads[bad] = new Flaky(ops.echo("bad"));
  return { payloads, bad, reads: () => reads };
}

test("a payload whose length getter would throw as its chunk is sent is not asked: it goes as its real bytes, and every item is answered", async () => {
  // The door reads the getter once, handing out the batch twice; sending
  // reads the array's own length (see lengthOf), never the getter again.
  await scene(2, {}, async ({ client, clock }) => {
    const { payloads, bad, reads } = flakyBatch(3);
    const call = client.requestMany(payloads);
    assert.ok(await settledWithin(clock, call, 100), "never settled");
    const results = await call;
    assert.equal(reads(), 2);
    assert.deepEqual(
      results.map(textOf),
      payloads.map((_, i) => i === bad ? "bad" : `${i}`),
    );
    assertBooked(client, payloads.length);
  });
});

test("a payload whose length getter throws after the door read it, as the batch is handed out: the batch settles, every item has a result and nothing is left in flight", async () => {
  // The throw escaped the batch: the call rejected with the raw error
  // and stayed counted in flight, so disconnect() waited out its grace.
  await scene(2, {}, async ({ client, clock }) => {
    const { payloads, bad } = flakyBatch(2);
    const call = client.requestMany(payloads);
    assert.ok(await settledWithin(clock, call, 100), "never settled");
    const results = await call;
    assert.equal(results.length, payloads.length);
    // The first chunk went out before the bad item was found; every item
    // of the second fails with it.
    for (let i = 0; i < CHUNK_ITEMS; i++) {
      assert.equal(textOf(results[i]), `${i}`);
    }
    for (let i = CHUNK_ITEMS; i < payloads.length; i++) {
      const error = errorOf(results[i]);
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, `payloads[${bad}]`);
      assert.equal((error.cause as Error).message, "read 2");
    }
    assertBooked(client, payloads.length);
    for (const node of client.stats().nodes) {
      assert.equal(node.consecutiveFailures, 0, "not the node's fault");
    }
    const closing = client.disconnect({ timeoutMs: 10_000 });
    assert.ok(await settledWithin(clock, closing, 0), "disconnect waited");
  });
});

for (const protocol of ["tcp", "udp"] as const) {
  test(`a batch aborted in the tick it was sent never reaches the node, over ${protocol}: its frames are taken back, as a single request's are`, async () => {
    const node = await startTestNode({
      nodeId: "n1",
      protocols: ["tcp", "udp"],
    });
    try {
      const client = await Client.connect({
        hosts: [node.address],
        protocols: [protocol],
        poolConfig: { minConnections: 1, maxConnections: 1 },
        healthConfig: { intervalMs: 0 },
      });
      try {
        await client.request(ops.echo("warm"), { idempotent: true });
        const before = node.stats.requests;
        // Few enough that no frame leaves during the call: a frame that
        // fills the write buffer or a datagram sends what is before it at
        // once, and what left cannot be taken back (as for single
        // requests, its item still fails with AbortedError).
        const count = 5;
        const abort = new AbortController();
        const pending = client.requestMany(
          Array.from({ length: count }, (_, i) => ops.put(`k${i}`, "v")),
          { signal: abort.signal },
        );
        abort.abort();
        const results = await pending;
        assert.equal(results.length, count);
        for (const result of results) {
          assert.ok(
            !result.ok && result.error instanceof AbortedError,
            String(result.ok || result.error),
          );
        }
        // Whatever went out would be answered by now.
        assert.equal(
          replyText(await client.request(ops.echo("after"))),
          "after",
        );
        assert.equal(node.stats.requests - before, 1, "only the echo ran");
        const found = await client.requestMany(
          [0, 4].map((i) => ops.get(`k${i}`)),
        );
        assert.deepEqual(found.map((r) => r.ok), [false, false]);
      } finally {
        await client.disconnect();
      }
    } finally {
      await node.close();
    }
  });
}
