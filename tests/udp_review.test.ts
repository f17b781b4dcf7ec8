// An adversarial review of the client's UDP route: datagrams from the
// wrong place, malformed, duplicated, reordered, oversized, lost, and a
// close with datagrams in flight. The reference node does the handshake
// over TCP; a bare socket plays its UDP side, so each test decides what
// comes back, and from where.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Client } from "../src/client/client.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  ConnectionError,
  DatagramTooLargeError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { createHandshake } from "../src/handshake/handshake.ts";
import { udpStats, udpTransport } from "../src/handshake/udp.ts";
import {
  type DatagramFrame,
  decodeDatagramFrames,
  encodeDatagram,
  encodeDatagramFrames,
  parseUdpToken,
} from "../src/protocol/datagram.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { spawnScript } from "./support/exit/spawn.ts";
import { connectUdp, rawSocket, waitFor } from "./support/udp_scene.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytesOf = (s: string) => new TextEncoder().encode(s);

/**
 * A UDP connection whose datagrams go to a bare socket (`fake`), which
 * answers as the test says; `batch` chooses whether HELLO_OK agreed
 * "udp-batch".
 */
async function scene(batch: boolean, clock?: VirtualClock) {
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    udpBatch: batch,
  });
  const fake = await rawSocket();
  const requests: { token: Uint8Array; message: Message }[] = [];
  fake.socket.onMessage((bytes) => {
    const { token, messages } = decodeDatagramFrames(bytes);
    for (const m of messages) {
      requests.push({ token: token.slice(), message: m });
    }
  });
  const connection = await connectUdp(node, {
    protocols: ["udp"],
    udpPort: fake.socket.port,
    clock,
  });
  const stats = udpStats(connection)!;
  assert.equal(stats.batching, batch);
  const token = () => requests[0].token;
  /** Sends raw bytes to the client, from the fake node's port. */
  const send = (bytes: Uint8Array) =>
    fake.socket.send(bytes, "127.0.0.1", stats.localPort);
  const frame = (
    sequence: number,
    payload: Uint8Array,
    type: number = MessageType.Response,
  ): DatagramFrame => ({ type, flags: 0, sequence, payload });
  /** One reply frame in its own datagram, with the session's token. */
  const reply = (sequence: number, body: string) =>
    send(
      encodeDatagram(token(), MessageType.Response, 0, sequence, bytesOf(body)),
    );
  /** Sends `n` requests and waits until the fake node has them all. */
  const ask = async (n: number, options?: { idempotent?: boolean }) => {
    const before = requests.length;
    const settled: (string | Error | undefined)[] = [];
    const raw: Uint8Array[] = [];
    const promises = Array.from(
      { length: n },
      (_, i) =>
        connection.sendRequest(ops.echo(`q${i}`), options).then(
          (r) => settled[i] = text(raw[i] = r),
          (e) => settled[i] = e,
        ),
    );
    await waitFor(() => requests.length === before + n, "the requests");
    // Submission order: without udp-batch, datagrams may land in any order.
    const sequences = requests.slice(before).map((r) => r.message.sequence)
      .sort((x, y) => x - y);
    return { sequences, settled, raw, promises };
  };
  const close = async () => {
    fake.socket.close();
    connection.destroy();
    await node.close();
  };
  return {
    node,
    connection,
    stats,
    fake,
    requests,
    send,
    reply,
    frame,
    ask,
    token,
    close,
  };
}

for (const batch of [false, true]) {
  const mode = batch ? "with udp-batch" : "without udp-batch";

  test(`${mode}: a datagram with the session's token from another port is never taken as a reply`, async () => {
    const s = await scene(batch);
    const other = await rawSocket();
    try {
      const { sequences: [seq], settled } = await s.ask(1);
      // A second local socket that knows the token (say, it read one
      // datagram) answers first.
      other.socket.send(
        encodeDatagram(
          s.token(),
          MessageType.Response,
          0,
          seq,
          bytesOf("forged"),
        ),
        "127.0.0.1",
        s.stats.localPort,
      );
      await waitFor(
        () => s.stats.rejected === 1 || settled[0] !== undefined,
        "the forged datagram",
      );
      assert.equal(settled[0], undefined, "the forged reply was not taken");
      assert.equal(s.stats.rejected, 1);
      s.reply(seq, "real");
      await waitFor(() => settled[0] !== undefined, "the real reply");
      assert.equal(settled[0], "real");
      assert.equal(s.stats.received, 1);
    } finally {
      other.socket.close();
      await s.close();
    }
  });

  test(`${mode}: malformed datagrams are dropped whole, and the connection and its requests carry on`, async () => {
    const s = await scene(batch);
    try {
      const { sequences: [a, b], settled } = await s.ask(2);
      const token = s.token();
      const good = encodeDatagram(
        token,
        MessageType.Response,
        0,
        a,
        bytesOf("A"),
      );
      const withToken = (...rest: number[]) =>
        new Uint8Array([...token, ...rest]);
      const overrun = good.slice();
      overrun[16 + 15] = 200; // a length past the datagram's end
      const unknownType = encodeDatagramFrames(token, [
        s.frame(a, bytesOf("A")),
        s.frame(b, bytesOf("B"), 0x7f),
      ]);
      const garbage = [
        new Uint8Array(0), // zero-length
        new Uint8Array(5), // shorter than a token
        token.slice(), // a token and nothing else
        withToken(1, 0x11, 0, 0), // a header cut short
        good.subarray(0, good.byteLength - 1), // a payload cut short
        overrun,
        new Uint8Array([...good, 0xde, 0xad]), // a frame, then junk
        new Uint8Array([...good, ...new Uint8Array(16).fill(0xee)]),
        encodeDatagram(token, 0x7f, 0, a, bytesOf("A")), // unknown type
        unknownType, // a good frame, then one of an unknown type
        // Two good replies packed, where HELLO_OK agreed no "udp-batch".
        ...(batch ? [] : [
          encodeDatagramFrames(token, [
            s.frame(a, bytesOf("A")),
            s.frame(b, bytesOf("B")),
          ]),
        ]),
      ];
      for (const bytes of garbage) s.send(bytes);
      await waitFor(
        () => s.stats.rejected === garbage.length,
        `${garbage.length} drops (${s.stats.rejected} so far)`,
      );
      assert.equal(settled.length, 0, "nothing was delivered");
      assert.equal(s.connection.isOpen, true);
      assert.equal(s.stats.received, 0);
      s.reply(a, "A");
      s.reply(b, "B");
      await waitFor(
        () => settled.length === 2 && !settled.includes(undefined),
        "the replies",
      );
      assert.deepEqual(settled, ["A", "B"]);
    } finally {
      await s.close();
    }
  });

  test(`${mode}: replies out of order are matched; a duplicate, an unknown sequence and a reply of a disallowed type harm nothing`, async () => {
    const s = await scene(batch);
    try {
      const { sequences: [a, b, c], settled } = await s.ask(3);
      s.reply(c, "C");
      await waitFor(() => settled[2] !== undefined, "C");
      s.reply(b, "B");
      await waitFor(() => settled[1] !== undefined, "B");
      s.reply(c, "C again"); // duplicate
      s.reply(b + 1000, "never asked"); // never sent
      s.send(
        encodeDatagram(s.token(), MessageType.Request, 0, a, ops.echo("x")),
      );
      await waitFor(
        () => s.connection.stats.dropped === 2 && s.stats.rejected === 1,
        "two stray replies and a REQUEST dropped",
      );
      assert.equal(settled[0], undefined);
      s.reply(a, "A");
      await waitFor(() => settled[0] !== undefined, "A");
      assert.deepEqual(settled, ["A", "B", "C"]);
      assert.equal(s.connection.isOpen, true);
      assert.equal(s.connection.inFlight, 0);
    } finally {
      await s.close();
    }
  });

  test(`${mode}: a reply of the wrong kind for its sequence (a PONG to a request, a RESPONSE to a ping) or an ERROR that does not decode is dropped on its own; the connection, and the requests it names, carry on`, async () => {
    const s = await scene(batch);
    try {
      const { sequences: [a], settled } = await s.ask(1);
      let pong: number | Error | undefined;
      s.connection.ping().then((ms) => pong = ms, (e) => pong = e);
      await waitFor(() => s.requests.length === 2, "the ping");
      const p = s.requests[1].message.sequence;
      assert.equal(s.requests[1].message.type, MessageType.Ping);
      const unreadable = new Uint8Array([0xff]); // shorter than 3 bytes
      const broken = [
        s.frame(a, new Uint8Array(0), MessageType.Pong),
        s.frame(p, bytesOf("not a pong"), MessageType.Response),
        s.frame(a, unreadable, MessageType.Error),
        s.frame(0, unreadable, MessageType.Error),
      ];
      if (batch) {
        // In one datagram with a good reply: only the broken frames go.
        s.send(
          encodeDatagramFrames(s.token(), [
            ...broken,
            s.frame(a, bytesOf("A")),
          ]),
        );
      } else {
        for (const f of broken) {
          s.send(encodeDatagramFrames(s.token(), [f]));
        }
      }
      await waitFor(
        () => s.stats.rejected === 4 || !s.connection.isOpen,
        `4 drops (${s.stats.rejected} so far)`,
      );
      assert.equal(s.connection.isOpen, true, "the connection carries on");
      assert.equal(s.stats.rejected, 4);
      if (!batch) {
        assert.equal(settled[0], undefined, "the request still waits");
        s.reply(a, "A");
      }
      await waitFor(() => settled[0] !== undefined, "the request's reply");
      assert.equal(settled[0], "A");
      assert.equal(pong, undefined, "the ping still waits");
      s.send(
        encodeDatagram(s.token(), MessageType.Pong, 0, p, new Uint8Array(0)),
      );
      await waitFor(() => pong !== undefined, "the pong");
      assert.equal(typeof pong, "number", String(pong));
      assert.equal(s.stats.received, 2);
      assert.equal(s.connection.isOpen, true);
    } finally {
      await s.close();
    }
  });

  test(`${mode}: a reply larger than the client's own datagram limit is still received, up to 65 507 bytes`, async () => {
    const s = await scene(batch);
    try {
      const { sequences: [a, b], settled } = await s.ask(2);
      const big = "x".repeat(5000);
      s.reply(a, big); // over maxDatagramSize (1200): a send limit only
      const biggest = "y".repeat(65_507 - 32);
      s.reply(b, biggest);
      await waitFor(
        () => settled[0] !== undefined && settled[1] !== undefined,
        "both",
      );
      assert.ok(settled[0] === big, "the 5 000-byte reply, whole");
      assert.ok(settled[1] === biggest, "the 65 507-byte datagram, whole");
    } finally {
      await s.close();
    }
  });

  test(`${mode}: a request whose datagram is lost fails with RequestTimeoutError, retryable only when idempotent, and the connection goes on`, async () => {
    const clock = new VirtualClock();
    const s = await scene(batch, clock);
    try {
      const plain = await s.ask(1);
      const safe = await s.ask(1, { idempotent: true });
      // The fake node answers neither: both datagrams were "lost".
      await clock.advance(5000);
      await Promise.all([...plain.promises, ...safe.promises]);
      for (
        const [settled, retryable] of [[plain.settled, false], [
          safe.settled,
          true,
        ]] as const
      ) {
        const error = settled[0];
        assert.ok(error instanceof RequestTimeoutError, String(error));
        assert.equal(error.sent, true);
        assert.equal(error.retryable, retryable);
        assert.equal(error.timeoutMs, 5000);
      }
      assert.equal(s.connection.isOpen, true);
      const next = await s.ask(1);
      s.reply(next.sequences[0], "after");
      await Promise.all(next.promises);
      assert.deepEqual(next.settled, ["after"]);
    } finally {
      await s.close();
    }
  });

  test(`${mode}: a request too large for one datagram fails before it is sent, with DatagramTooLargeError naming the limit`, async () => {
    const s = await scene(batch);
    try {
      const small = await s.ask(1);
      const sentBefore = s.stats.sent;
      const payload = new Uint8Array(1169);
      await assert.rejects(s.connection.sendRequest(payload), (error) => {
        assert.ok(error instanceof DatagramTooLargeError, String(error));
        assert.equal(error.code, "DATAGRAM_TOO_LARGE");
        assert.equal(error.retryable, false);
        assert.equal(error.size, 1169);
        assert.equal(error.maxPayload, 1168);
        assert.match(error.message, /1169 bytes.*1200.*maxDatagramSize/);
        return true;
      });
      assert.equal(s.stats.sent, sentBefore, "nothing was sent");
      assert.equal(s.connection.isOpen, true);
      // One too large among others of the same tick: only it fails.
      const tooBig = s.connection.sendRequest(new Uint8Array(5000)).catch(
        (e) => e,
      );
      const next = await s.ask(1);
      assert.ok((await tooBig) instanceof DatagramTooLargeError);
      s.reply(small.sequences[0], "one");
      s.reply(next.sequences[0], "two");
      await Promise.all([...small.promises, ...next.promises]);
      assert.deepEqual([small.settled, next.settled], [["one"], ["two"]]);
      assert.equal(s.stats.sent, sentBefore + 1);
    } finally {
      await s.close();
    }
  });
}

test("closing clients with datagrams in flight and packed: no unhandled rejection, and the process exits on its own", async () => {
  const child = spawnScript(
    fileURLToPath(new URL("./support/udp_close_child.ts", import.meta.url)),
    [],
  );
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => stdout += chunk);
  child.stderr!.on("data", (chunk) => stderr += chunk);
  // A bound on a hang, not a timing check: the child needs well under 1 s.
  const watchdog = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await new Promise((resolve) => child.on("close", resolve));
  clearTimeout(watchdog);
  assert.equal(code, 0, `exit ${code} (killed: still running?): ${stderr}`);
  const lines = stdout.trim().split("\n");
  assert.deepEqual(JSON.parse(lines[lines.length - 1]), {
    unhandled: [],
    client: ["ClientClosedError", "ClientClosedError"],
    destroyed: ["ConnectionLostError", "ConnectionLostError"],
    closed: ["RequestTimeoutError"],
    udpSessionsLeft: 0,
  });
});

test("over IPv6 loopback (::1) replies are taken from the node, and a forged one from another port is not", async () => {
  const node = await startTestNode({
    hostname: "::1",
    protocols: ["udp"],
    udpPort: 0,
  });
  const adapter = await getAdapter();
  let token: Uint8Array | undefined;
  const udp = udpTransport({ adapter })!;
  const connection = await Connection.connect({
    adapter,
    hostname: "::1",
    port: node.port,
    handshake: createHandshake({
      protocols: ["udp"],
      transports: {
        udp: (c, negotiated, signal) => {
          token = parseUdpToken(negotiated.udpToken);
          return udp(c, negotiated, signal);
        },
      },
    }),
  });
  const other = await rawSocket("::1");
  try {
    const stats = udpStats(connection)!;
    assert.equal(stats.address, `[::1]:${node.udpPort}`);
    assert.equal(
      replyText(await connection.sendRequest(ops.echo("six"))),
      "six",
    );
    other.socket.send(
      encodeDatagram(token!, MessageType.Response, 0, 1, bytesOf("x")),
      "::1",
      stats.localPort,
    );
    await waitFor(() => stats.rejected === 1, "the forged datagram dropped");
    assert.equal(replyText(await connection.sendRequest(ops.echo("v6"))), "v6");
    assert.equal(stats.received, 2);
  } finally {
    other.socket.close();
    await connection.close();
    await node.close();
  }
});

test(
  "a node bound to 0.0.0.0 and reached at 127.0.0.2 answers from 127.0.0.1: its replies are taken",
  {
    // 127.0.0.2 is loopback on Linux only.
    skip: (globalThis as { process?: { platform?: string } }).process
      ?.platform !== "linux",
  },
  async () => {
    // The kernel picks a reply's source address by route: to the client's
    // 127.0.0.1 it is 127.0.0.1, not the 127.0.0.2 the request went to.
    const node = await startTestNode({
      hostname: "0.0.0.0",
      protocols: ["udp"],
      udpPort: 0,
    });
    const adapter = await getAdapter();
    const connection = await Connection.connect({
      adapter,
      hostname: "127.0.0.2",
      port: node.port,
      handshake: createHandshake({
        protocols: ["udp"],
        transports: { udp: udpTransport({ adapter }) },
      }),
    });
    try {
      const stats = udpStats(connection)!;
      assert.equal(stats.address, `127.0.0.2:${node.udpPort}`);
      const reply = await connection.sendRequest(ops.echo("lo"), {
        timeoutMs: 2000,
      });
      assert.equal(replyText(reply), "lo");
      assert.equal(stats.rejected, 0);
    } finally {
      await connection.close();
      await node.close();
    }
  },
);

test("requestMany over UDP: a payload too large for a datagram fails alone with DatagramTooLargeError, unretried; the rest are answered", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const client = await Client.connect({
    hosts: [node.address],
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 3, initialBackoffMs: 1 },
    poolConfig: {
      minConnections: 1,
      maxConnections: 1,
      heartbeatIntervalMs: 0,
    },
  });
  try {
    const results = await client.requestMany(
      [ops.echo("a"), ops.echo("x".repeat(2000)), ops.echo("b")],
      { idempotent: true },
    );
    assert.equal(results[0].ok && replyText(results[0].value), "a");
    assert.equal(results[2].ok && replyText(results[2].value), "b");
    const failed = results[1];
    assert.ok(!failed.ok);
    assert.ok(
      failed.error instanceof DatagramTooLargeError,
      String(failed.error),
    );
    assert.equal(failed.error.maxPayload, 1168);
    assert.equal(client.stats().retries, 0);
    assert.equal(client.stats().nodes[0].consecutiveFailures, 0);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("the node answers an unknown session only for a well-formed REQUEST or PING: a short or malformed datagram gets no (larger) answer", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const { socket, received } = await rawSocket();
  try {
    const [a, b, c, d] = [0xa1, 0xb2, 0xc3, 0xd4].map((n) =>
      new Uint8Array(16).fill(n)
    );
    const request = encodeDatagram(d, MessageType.Request, 0, 1, ops.echo("?"));
    const send = (bytes: Uint8Array) =>
      socket.send(bytes, "127.0.0.1", node.udpPort!);
    // 18 bytes, a version and a REQUEST type after the token: no frame.
    send(new Uint8Array([...a, 1, MessageType.Request]));
    // A header whose length runs past the datagram.
    const overrun = encodeDatagram(b, MessageType.Request, 0, 1, ops.echo("?"));
    overrun[31] = 200;
    send(overrun);
    // A REQUEST, then junk.
    send(
      new Uint8Array([
        ...encodeDatagram(c, MessageType.Ping, 0, 1, new Uint8Array(0)),
        9,
      ]),
    );
    send(request);
    await waitFor(
      () => received.some((r) => r[0] === 0xd4),
      "the answer to the well-formed one",
    );
    await waitFor(() => node.udpStats!.rejected === 4, "four refusals");
    assert.deepEqual(received.map((r) => r[0]), [0xd4], "only it was answered");
  } finally {
    socket.close();
    await node.close();
  }
});

for (const batch of [false, true]) {
  const mode = batch ? "with udp-batch" : "without udp-batch";
  test(`${mode}: a reply's bytes stay its own after later datagrams arrive (no receive buffer is reused under them)`, async () => {
    const s = await scene(batch);
    try {
      const n = 50;
      const { sequences, raw, promises } = await s.ask(n);
      const body = (i: number) => `reply ${i}`.padEnd(40, String(i % 10));
      for (let i = 0; i < n; i++) s.reply(sequences[i], body(i));
      await Promise.all(promises);
      raw.forEach((bytes, i) => assert.equal(text(bytes), body(i)));
    } finally {
      await s.close();
    }
  });
}

/**
 * The runtime's adapter, but its channels do not report the peer's
 * address (as a custom adapter's may not).
 */
async function addresslessAdapter(): Promise<RuntimeAdapter> {
  const adapter = await getAdapter();
  const hide = (channel: ByteChannel): ByteChannel =>
    new Proxy(channel, {
      get(target, key) {
        if (key === "remoteAddress") return undefined;
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return {
    ...adapter,
    connect: async (options) => hide(await adapter.connect(options)),
  };
}

test("a channel that does not report the node's address: UDP goes to the host configured by IP address, and for a host name the upgrade fails saying why, before it opens a socket", async () => {
  const adapter = await addresslessAdapter();
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  try {
    const connection = await connectUdp(node, {
      adapter,
      protocols: ["udp"],
    });
    try {
      assert.equal(connection.remoteAddress, undefined);
      assert.equal(
        replyText(
          await connection.sendRequest(ops.echo("by ip"), { timeoutMs: 5000 }),
        ),
        "by ip",
      );
      assert.equal(udpStats(connection)?.received, 1);
      assert.equal(udpStats(connection)?.rejected, 0);
    } finally {
      await connection.close();
    }
  } finally {
    await node.close();
  }

  // By name: refused at once, naming the node and what to do.
  let opened = 0;
  const upgrade = udpTransport({
    adapter: {
      ...adapter,
      datagram: (options) => {
        opened++;
        return adapter.datagram!(options);
      },
    },
  })!;
  const named = {
    hostname: "db.internal",
    port: 7000,
    address: "db.internal:7000",
    remoteAddress: undefined,
    hello: undefined,
  } as unknown as Connection;
  await assert.rejects(
    upgrade(
      named,
      {
        protocol: "udp",
        clientProtocols: ["udp"],
        nodeProtocols: ["udp"],
        udpPort: 7001,
        udpToken: "00".repeat(16),
      },
      new AbortController().signal,
    ),
    (error: unknown) => {
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.code, "CONNECTION_FAILED");
      assert.equal(error.retryable, false);
      assert.equal(error.address, "db.internal:7000");
      assert.match(error.message, /no remoteAddress/);
      assert.match(error.message, /by its IP address/);
      return true;
    },
  );
  assert.equal(opened, 0, "no datagram socket was opened");
});
