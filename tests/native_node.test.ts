/**
 * The native benchmark node of bench/native/ speaks the wire protocol to
 * the real Client on every runtime: TCP, ping, UDP (and the "udp-batch"
 * datagram rule, which no client speaks yet), TLS, a 1 MiB payload; it
 * drops a connection that breaks the protocol without harming the others,
 * and exits when its stdin closes. The test machines have a C compiler: a
 * missing one fails here rather than skipping.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import {
  type BenchNode,
  startNativeNode,
} from "../bench/native/native_node.ts";
import { ops } from "../testing/ops.ts";
import { within as settleWithin } from "./support/within.ts";

const LIMIT_MS = 10_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let node: BenchNode;

before(async () => {
  const started = await startNativeNode({ tls: true });
  if ("unavailable" in started) {
    assert.fail(
      `the native node must build on test machines (install cc/gcc): ${started.unavailable}`,
    );
  }
  node = started;
});

after(async () => {
  await node?.close();
});

/** `promise`, or a failure naming `what` after LIMIT_MS. */
const within = <T>(what: string, promise: Promise<T>): Promise<T> =>
  settleWithin(LIMIT_MS, what, promise);

async function withClient(
  extra: Partial<ConnectionConfig>,
  fn: (client: Client) => Promise<void>,
): Promise<void> {
  const client = await within(
    "connect",
    Client.connect({
      hosts: [node.address],
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 1, maxConnections: 1 },
      ...extra,
    }),
  );
  try {
    await fn(client);
  } finally {
    await within("disconnect", client.disconnect());
  }
}

async function echoes(client: Client, text: string): Promise<void> {
  const reply = await within("request", client.request(ops.echo(text)));
  // Reply: node id length, node id, the data.
  assert.equal(reply[0], "native-1".length);
  assert.equal(decoder.decode(reply.subarray(1)), `native-1${text}`);
}

test("over TCP the native node echoes requests and answers pings", async () => {
  await withClient({}, async (client) => {
    await echoes(client, "hello");
    const replies = await within(
      "64 requests",
      Promise.all(
        Array.from({ length: 64 }, (_, i) => client.request(ops.echo(`r${i}`))),
      ),
    );
    replies.forEach((r, i) =>
      assert.equal(decoder.decode(r.subarray(9)), `r${i}`)
    );
    const pong = await within("ping", client.ping());
    assert.equal(pong.nodeId, "native-1");
  });
});

test("over UDP (negotiated, token-led datagrams) the native node echoes requests and pings", async () => {
  assert.ok(node.udpPort > 0, "the native node serves UDP");
  await withClient({ protocols: ["udp"] }, async (client) => {
    await echoes(client, "over udp");
    await within("ping", client.ping());
    const replies = await within(
      "32 requests",
      Promise.all(
        Array.from({ length: 32 }, (_, i) => client.request(ops.echo(`u${i}`))),
      ),
    );
    assert.equal(replies.length, 32);
  });
});

test("over TLS (switched after NEGOTIATE_OK, certificate checked) the native node echoes", async (t) => {
  if (!node.tls) {
    t.skip("the native node was built without OpenSSL (no headers or -lssl)");
    return;
  }
  await withClient(
    { tlsPolicy: "require", tls: { ca: node.ca } },
    async (client) => {
      await echoes(client, "over tls");
      const big = new Uint8Array(256 * 1024).fill(7);
      const reply = await within("256 KiB", client.request(ops.echo(big)));
      assert.equal(reply.byteLength, 1 + 8 + big.byteLength);
      // Many records a read, some split across reads: the node reads
      // ahead, so what OpenSSL holds must still be answered.
      const many = Array.from(
        { length: 400 },
        (_, i) => new Uint8Array(1000 + i).fill(i & 0xff),
      );
      const echoed = await within(
        "400 requests over tls",
        Promise.all(many.map((p) => client.request(ops.echo(p)))),
      );
      echoed.forEach((r, i) => assert.deepEqual(r.subarray(9), many[i]));
    },
  );
});

test("a 1 MiB payload comes back whole over TCP", async () => {
  await withClient({}, async (client) => {
    const data = new Uint8Array(1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = i * 7;
    const reply = await within("1 MiB", client.request(ops.echo(data)));
    assert.equal(reply.byteLength, 1 + 8 + data.byteLength);
    assert.deepEqual(reply.subarray(9), data);
  });
});

/** A raw connection to the node, collecting decoded frames. */
async function rawConnection(): Promise<{
  channel: ByteChannel;
  messages: Message[];
  closed: Promise<void>;
  next(): Promise<Message>;
}> {
  const adapter = await getAdapter();
  const channel = await adapter.connect({
    hostname: node.host,
    port: node.port,
  });
  const codec = new MessageCodec();
  const messages: Message[] = [];
  let wake = () => {};
  channel.onData((chunk) =>
    codec.decode(chunk, (m) => {
      messages.push({ ...m, payload: m.payload.slice() });
      wake();
    })
  );
  const closed = new Promise<void>((resolve) =>
    channel.onClose(() => resolve())
  );
  let read = 0;
  const next = () =>
    within(
      "a frame from the node",
      new Promise<Message>((resolve) => {
        const check = () => {
          if (read < messages.length) resolve(messages[read++]);
          else wake = check;
        };
        check();
      }),
    );
  return { channel, messages, closed, next };
}

function frame(
  type: number,
  sequence: number,
  payload: Uint8Array,
): Uint8Array {
  return new MessageCodec().encode({ type, flags: 0, sequence, payload });
}

test("a malformed frame closes that connection only; another one keeps working", async () => {
  await withClient({}, async (client) => {
    await echoes(client, "before");
    const raw = await rawConnection();
    // Version 2: rejected on the header alone.
    const bad = frame(MessageType.Ping, 1, new Uint8Array(0));
    bad[0] = 2;
    raw.channel.write(bad);
    await within("the node closing the bad connection", raw.closed);
    const error = raw.messages.find((m) => m.type === MessageType.Error);
    assert.ok(error, "the node says why before closing");
    assert.equal(error.sequence, 0);
    assert.equal((error.payload[1] << 8) | error.payload[2], 2); // BadRequest
    await echoes(client, "after");
  });
});

test("a first message other than HELLO gets ERROR 2 and a close; an unknown op gets ERROR 8", async () => {
  const first = await rawConnection();
  first.channel.write(frame(MessageType.Request, 1, ops.echo("x")));
  await within("close", first.closed);
  assert.equal(first.messages[0]?.type, MessageType.Error);

  const raw = await rawConnection();
  raw.channel.write(
    frame(MessageType.Hello, 1, encoder.encode('{"version":1}')),
  );
  assert.equal((await raw.next()).type, MessageType.HelloOk);
  raw.channel.write(frame(MessageType.Request, 2, new Uint8Array([0x42])));
  const error = await raw.next();
  assert.equal(error.type, MessageType.Error);
  assert.equal(error.sequence, 2);
  assert.equal(error.payload[0], 0); // not retryable
  assert.equal((error.payload[1] << 8) | error.payload[2], 8); // Unsupported
  raw.channel.close();
  await within("close", raw.closed);
});

test("udp-batch: agreed in HELLO, several frames per datagram each way; an unknown token gets ERROR 5, if well-formed", async () => {
  const raw = await rawConnection();
  raw.channel.write(frame(
    MessageType.Hello,
    1,
    encoder.encode(
      '{"version":1,"client":"t","features":["udp-batch","other"]}',
    ),
  ));
  const hello = JSON.parse(decoder.decode((await raw.next()).payload));
  assert.deepEqual(hello.features, ["udp-batch"]);
  raw.channel.write(
    frame(MessageType.Negotiate, 2, encoder.encode('{"protocols":["udp"]}')),
  );
  const ok = JSON.parse(decoder.decode((await raw.next()).payload));
  assert.equal(ok.selected, "udp");
  assert.match(ok.udpToken, /^[0-9a-f]{32}$/);
  const token = Uint8Array.from(
    { length: 16 },
    (_, i) => parseInt(ok.udpToken.slice(2 * i, 2 * i + 2), 16),
  );

  const adapter = await getAdapter();
  const socket = await adapter.datagram!({ hostname: "127.0.0.1", port: 0 });
  const received: Uint8Array[] = [];
  let wake = () => {};
  socket.onMessage((bytes) => {
    received.push(bytes.slice());
    wake();
  });
  const datagram = () =>
    within(
      "a datagram from the node",
      new Promise<Uint8Array>((resolve) => {
        const check = () => {
          const d = received.shift();
          if (d) resolve(d);
          else wake = check;
        };
        check();
      }),
    );
  const join = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  };
  try {
    // Three frames in one datagram: a request, a ping, a RESPONSE (not
    // allowed from a client: skipped on its own), another request.
    socket.send(
      join(
        token,
        frame(MessageType.Request, 3, ops.echo("a")),
        frame(MessageType.Ping, 4, encoder.encode("p")),
        frame(MessageType.Response, 5, new Uint8Array(0)),
        frame(MessageType.Request, 6, ops.echo("b")),
      ),
      "127.0.0.1",
      node.udpPort,
    );
    const reply = await datagram();
    assert.deepEqual(reply.subarray(0, 16), token);
    const frames: Message[] = [];
    new MessageCodec().decode(reply.subarray(16), (m) => frames.push(m));
    assert.deepEqual(
      frames.map((m) => [m.type, m.sequence]),
      [
        [MessageType.Response, 3],
        [MessageType.Pong, 4],
        [MessageType.Response, 6],
      ],
    );
    assert.equal(decoder.decode(frames[2].payload.subarray(9)), "b");

    // Malformed datagrams of an unknown session draw no answer (forged
    // bytes must not draw a larger reply): a header cut short, a length
    // past the end, junk after a frame. Sent first: the first answer that
    // comes must be the one to the well-formed datagram after them.
    const forged = new Uint8Array(16).fill(0xcd);
    const request = frame(MessageType.Request, 1, ops.echo("x"));
    for (
      const bad of [
        join(forged, request.subarray(0, 2)),
        join(forged, request.subarray(0, request.length - 1)),
        join(forged, request, new Uint8Array([1, 2])),
      ]
    ) socket.send(bad, "127.0.0.1", node.udpPort);
    const stranger = new Uint8Array(16).fill(0xab);
    socket.send(
      join(
        stranger,
        frame(MessageType.Request, 1, ops.echo("x")),
        frame(MessageType.Request, 2, ops.echo("y")),
      ),
      "127.0.0.1",
      node.udpPort,
    );
    const refusal = await datagram();
    assert.deepEqual(refusal.subarray(0, 16), stranger);
    const errors: Message[] = [];
    new MessageCodec().decode(refusal.subarray(16), (m) => errors.push(m));
    assert.equal(errors.length, 1);
    assert.equal(errors[0].type, MessageType.Error);
    assert.equal(errors[0].sequence, 0);
    assert.deepEqual([...errors[0].payload.subarray(0, 3)], [1, 0, 5]);
    assert.equal(
      decoder.decode(errors[0].payload.subarray(3)),
      "unknown UDP session",
    );
  } finally {
    socket.close();
    raw.channel.close();
    await within("close", raw.closed);
  }
});

test("the node exits when its stdin closes", async () => {
  const other = await startNativeNode({ udp: false });
  if ("unavailable" in other) assert.fail(other.unavailable);
  assert.equal(other.udpPort, 0);
  assert.equal(await within("exit", other.close()), "exited");
});
