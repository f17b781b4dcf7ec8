import { test } from "node:test";
import assert from "node:assert/strict";
import type { Connection } from "../src/connection/connection.ts";
import { AbortedError, ConnectionLostError } from "../src/errors.ts";
import { udpStats } from "../src/handshake/udp.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import {
  type DatagramFrame,
  decodeDatagram,
  decodeDatagramFrames,
  encodeDatagram,
  encodeDatagramFrames,
  newUdpToken,
  parseUdpToken,
} from "../src/protocol/datagram.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { decodeJson, encodeJson } from "../src/protocol/messages.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { connectUdp, rawSocket, waitFor } from "./support/udp_scene.ts";

/** An SDK connection (which offers "udp-batch") negotiated to UDP only. */
function connectUdpOnly(node: TestNode, udpPort?: number) {
  return connectUdp(node, { protocols: ["udp"], udpPort });
}

/**
 * A client written by hand, speaking HELLO (with the given `features`, or
 * none, as a client from before them) and NEGOTIATE over TCP, then UDP
 * with its own datagram socket.
 */
async function rawUdpClient(node: TestNode, features?: string[]) {
  const adapter = await getAdapter();
  const channel = await adapter.connect({
    hostname: "127.0.0.1",
    port: node.port,
  });
  const codec = new MessageCodec();
  const inbox: Message[] = [];
  channel.onClose(() => {});
  channel.onData((chunk) =>
    codec.decode(chunk, (m) => inbox.push({ ...m, payload: m.payload.slice() }))
  );
  const call = async (type: number, sequence: number, body: object) => {
    channel.write(codec.encode({
      type,
      flags: 0,
      sequence,
      payload: encodeJson(body),
    }));
    await waitFor(() => inbox.length > 0, `the answer to 0x${type}`);
    return decodeJson(inbox.shift()!.payload, "reply");
  };
  const helloOk = await call(MessageType.Hello, 1, {
    version: 1,
    client: "raw",
    maxFrameSize: 1 << 20,
    ...(features === undefined ? {} : { features }),
  });
  const negotiated = await call(MessageType.Negotiate, 2, {
    protocols: ["udp"],
  });
  assert.equal(negotiated.selected, "udp");
  const token = parseUdpToken(negotiated.udpToken);
  const { socket, received } = await rawSocket();
  const request = (sequence: number, text: string): DatagramFrame => ({
    type: MessageType.Request,
    flags: 0,
    sequence,
    payload: ops.echo(text),
  });
  return {
    helloOk,
    token,
    received,
    request,
    send: (bytes: Uint8Array) =>
      socket.send(bytes, "127.0.0.1", negotiated.udpPort as number),
    close: () => {
      socket.close();
      channel.close();
    },
  };
}

/** 16 characters: an ECHO payload of 17 bytes, a frame of 33. */
const text = (i: number) => `r${i}`.padStart(16, "-");
const echoes = (connection: Connection, n: number) =>
  Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        connection.sendRequest(ops.echo(text(i)), { idempotent: true }).then(
          replyText,
        ),
    ),
  );

const expected = (n: number) => Array.from({ length: n }, (_, i) => text(i));

test("client and node with udp-batch: the requests of one tick share a datagram, and so do their replies", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const connection = await connectUdpOnly(node);
  try {
    assert.deepEqual(connection.hello?.features, ["udp-batch"]);
    const before = { ...node.udpStats! };
    // 20 ECHOs of 17-byte payloads, 33 bytes a frame: one 676-byte datagram.
    assert.deepEqual(await echoes(connection, 20), expected(20));
    const stats = udpStats(connection)!;
    assert.equal(stats.batching, true);
    assert.equal(stats.sent, 20);
    assert.equal(stats.datagramsSent, 1);
    assert.equal(stats.received, 20);
    assert.equal(stats.datagramsReceived, 1, "the node's replies in one");
    assert.equal(
      node.udpStats!.datagramsReceived - before.datagramsReceived,
      1,
    );
    assert.equal(node.udpStats!.datagramsSent - before.datagramsSent, 1);
    assert.equal(node.udpStats!.accepted - before.accepted, 20);

    // 100 at once: 35 frames fill a 1200-byte datagram (16 + 35 * 33 =
    // 1171), so three datagrams, none over the limit.
    const datagramsBefore = stats.datagramsSent;
    assert.deepEqual(await echoes(connection, 100), expected(100));
    assert.equal(stats.datagramsSent - datagramsBefore, 3);
    assert.equal(stats.sent, 120);
    assert.equal(stats.received, 120);
    assert.equal(stats.rejected, 0);
  } finally {
    await connection.close();
    await node.close();
  }
});

test("client with udp-batch, node without: HELLO_OK agrees nothing, and every frame travels alone", async () => {
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    udpBatch: false,
  });
  const connection = await connectUdpOnly(node);
  try {
    assert.equal(connection.hello?.features, undefined);
    assert.deepEqual(await echoes(connection, 20), expected(20));
    const stats = udpStats(connection)!;
    assert.equal(stats.batching, false);
    assert.equal(stats.sent, 20);
    assert.equal(stats.datagramsSent, 20);
    assert.equal(stats.datagramsReceived, 20);
    assert.equal(node.udpStats!.datagramsSent, 20);
  } finally {
    await connection.close();
    await node.close();
  }
});

for (const udpBatch of [true, false]) {
  test(
    `client without udp-batch, node ${
      udpBatch ? "with" : "without"
    } it: HELLO_OK names no feature, replies come one per datagram, and a datagram of several frames is dropped`,
    async () => {
      const node = await startTestNode({
        protocols: ["udp"],
        udpPort: 0,
        udpBatch,
      });
      const client = await rawUdpClient(node);
      try {
        assert.equal("features" in client.helloOk, false);
        for (let i = 1; i <= 3; i++) {
          client.send(
            encodeDatagram(
              client.token,
              MessageType.Request,
              0,
              i,
              ops.echo(`s${i}`),
            ),
          );
        }
        await waitFor(() => client.received.length === 3, "three replies");
        const sequences = client.received.map((d) =>
          decodeDatagram(d).message.sequence
        );
        assert.deepEqual(sequences.sort(), [1, 2, 3], "one frame each");
        const rejected = node.udpStats!.rejected;
        client.send(
          encodeDatagramFrames(client.token, [
            client.request(4, "a"),
            client.request(5, "b"),
          ]),
        );
        await waitFor(() => node.udpStats!.rejected === rejected + 1, "a drop");
        assert.equal(
          node.stats.requests,
          3,
          "neither of its frames was served",
        );
      } finally {
        client.close();
        await node.close();
      }
    },
  );
}

test("the node skips a frame a client may not send and serves the others; a datagram with a partial frame is dropped whole", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const client = await rawUdpClient(node, ["future-thing", "udp-batch"]);
  try {
    assert.deepEqual(client.helloOk.features, ["udp-batch"]);
    client.send(
      encodeDatagramFrames(client.token, [
        client.request(1, "one"),
        {
          type: MessageType.Response,
          flags: 0,
          sequence: 2,
          payload: ops.echo(""),
        },
        {
          type: MessageType.Ping,
          flags: 0,
          sequence: 3,
          payload: new Uint8Array(0),
        },
      ]),
    );
    await waitFor(() => client.received.length === 1, "the replies");
    const replies = decodeDatagramFrames(client.received[0]).messages;
    assert.deepEqual(
      replies.map((m) => [m.type, m.sequence]),
      [[MessageType.Response, 1], [MessageType.Pong, 3]],
      "both replies in one datagram, the RESPONSE frame skipped",
    );
    assert.equal(node.udpStats!.rejected, 1);

    const whole = encodeDatagramFrames(client.token, [
      client.request(4, "four"),
      client.request(5, "five"),
    ]);
    client.send(whole.subarray(0, whole.byteLength - 1));
    await waitFor(() => node.udpStats!.rejected === 2, "the drop");
    assert.equal(node.stats.requests, 1, "not even the whole first frame ran");

    // Unknown token: one ERROR 5 for the datagram, not one per frame.
    const stranger = newUdpToken();
    client.send(
      encodeDatagramFrames(stranger, [
        client.request(6, "x"),
        client.request(7, "y"),
        client.request(8, "z"),
      ]),
    );
    client.send(
      encodeDatagram(client.token, MessageType.Ping, 0, 9, new Uint8Array(0)),
    );
    await waitFor(() => client.received.length === 3, "the answers");
    const error = decodeDatagram(client.received[1]);
    assert.deepEqual(error.token, stranger);
    assert.equal(error.message.type, MessageType.Error);
    assert.equal(error.message.sequence, 0);
    assert.equal(decodeDatagram(client.received[2]).message.sequence, 9);
  } finally {
    client.close();
    await node.close();
  }
});

test("the client skips a frame a node may not send, and drops a reply datagram with a partial frame whole", async () => {
  // The TestNode agrees udp-batch over TCP; this socket plays its UDP side.
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const fake = await rawSocket();
  const requests: { token: Uint8Array; message: Message; port: number }[] = [];
  fake.socket.onMessage((bytes, _host, port) => {
    const { token, messages } = decodeDatagramFrames(bytes);
    for (const message of messages) requests.push({ token, message, port });
  });
  const connection = await connectUdpOnly(node, fake.socket.port);
  const answer = (frames: DatagramFrame[], cut = 0) => {
    const { token, port } = requests[0];
    const bytes = encodeDatagramFrames(token, frames);
    fake.socket.send(
      bytes.subarray(0, bytes.byteLength - cut),
      "127.0.0.1",
      port,
    );
  };
  const response = (sequence: number, text: string): DatagramFrame => ({
    type: MessageType.Response,
    flags: 0,
    sequence,
    payload: new TextEncoder().encode(text),
  });
  try {
    const a = connection.sendRequest(ops.echo("a"));
    const b = connection.sendRequest(ops.echo("b"));
    await waitFor(() => requests.length === 2, "both requests");
    const [sa, sb] = requests.map((r) => r.message.sequence);
    // A cut-short datagram: the complete RESPONSE in it is not delivered.
    answer([response(sa, "A!"), response(sb, "B!")], 1);
    await waitFor(() => udpStats(connection)!.rejected === 1, "the drop");
    assert.equal(connection.inFlight, 2);
    answer([
      response(sa, "A"),
      {
        type: MessageType.Request,
        flags: 0,
        sequence: sb,
        payload: ops.echo(""),
      },
      response(sb, "B"),
    ]);
    assert.equal(new TextDecoder().decode(await a), "A");
    assert.equal(new TextDecoder().decode(await b), "B");
    const stats = udpStats(connection)!;
    assert.equal(stats.rejected, 2, "the datagram, then the REQUEST frame");
    assert.equal(stats.received, 2);
    assert.equal(stats.datagramsSent, 1, "the two requests went together");
  } finally {
    fake.socket.close();
    await connection.close();
    await node.close();
  }
});

test("requests packed for a datagram that never went out, because the connection ended in the same run, fail as never sent", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const connection = await connectUdpOnly(node);
  try {
    // One that went out first: its datagram left, so it counts as sent.
    const stats = udpStats(connection)!;
    const first = connection.sendRequest(ops.sleep(60_000)).catch((e) => e);
    await waitFor(() => stats.datagramsSent === 1, "the first datagram");
    const late = [1, 2, 3].map((i) =>
      connection.sendRequest(ops.echo(`late ${i}`)).catch((e) => e)
    );
    connection.destroy(new Error("gone"));
    const errors = await Promise.all(late);
    for (const error of errors) {
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.equal(error.sent, false, "packed, never sent");
      assert.equal(error.retryable, true);
    }
    const sent = await first;
    assert.ok(sent instanceof ConnectionLostError, String(sent));
    assert.equal(sent.sent, true, "its datagram left");
    assert.equal(stats.datagramsSent, 1, "the packed datagram was dropped");
  } finally {
    await connection.close();
    await node.close();
  }
});

test("a request aborted in the tick it was packed never goes out: its datagram carries the others, and one left empty is not sent", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const connection = await connectUdpOnly(node);
  try {
    const stats = udpStats(connection)!;
    const accepted = node.udpStats!.accepted;
    const abort = new AbortController();
    const first = connection.sendRequest(ops.echo("first"));
    const aborted = connection.sendRequest(ops.echo("aborted"), {
      signal: abort.signal,
    }).catch((e) => e);
    const third = connection.sendRequest(ops.echo("third"));
    abort.abort();
    assert.ok((await aborted) instanceof AbortedError);
    assert.deepEqual(
      [replyText(await first), replyText(await third)],
      ["first", "third"],
    );
    assert.equal(stats.sent, 2, "the aborted frame was taken back");
    assert.equal(stats.datagramsSent, 1);
    assert.equal(
      node.udpStats!.accepted - accepted,
      2,
      "the node never saw it",
    );

    // Alone in its tick: the datagram it emptied never goes out, and the
    // next one is whole (token first).
    const alone = new AbortController();
    const lone = connection.sendRequest(ops.echo("alone"), {
      signal: alone.signal,
    }).catch((e) => e);
    alone.abort();
    assert.ok((await lone) instanceof AbortedError);
    assert.equal(
      replyText(await connection.sendRequest(ops.echo("after"))),
      "after",
    );
    assert.equal(stats.datagramsSent, 2, "no datagram for the aborted one");
    assert.equal(stats.rejected, 0);
    assert.equal(node.udpStats!.accepted - accepted, 3);
  } finally {
    await connection.close();
    await node.close();
  }
});
