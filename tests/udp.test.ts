import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { RetryEvent } from "../src/client/events.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  ConnectionLostError,
  RemoteError,
  RequestTimeoutError,
} from "../src/errors.ts";
import {
  handshakeResult,
  negotiateProtocol,
} from "../src/handshake/handshake.ts";
import {
  decodeDatagram,
  encodeDatagram,
  newUdpToken,
  parseUdpToken,
} from "../src/protocol/datagram.ts";
import { FrameFlags, MessageType } from "../src/protocol/frame.ts";
import { decodeError, RemoteErrorCode } from "../src/protocol/messages.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { udpStats, udpTransport } from "../src/handshake/udp.ts";
import { DatagramTooLargeError } from "../src/errors.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { decodeReply, ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { connectUdp, rawSocket, waitFor } from "./support/udp_scene.ts";

/** A UDP-only node on its own virtual clock: the test decides when sleeps end. */
async function heldUdpNode(): Promise<
  { node: TestNode; nodeClock: VirtualClock }
> {
  const nodeClock = new VirtualClock();
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    clock: nodeClock,
  });
  return { node, nodeClock };
}

const quiet = {
  healthConfig: { intervalMs: 0 },
  poolConfig: { minConnections: 1, maxConnections: 1, heartbeatIntervalMs: 0 },
};

test("UDP is chosen when it is the only protocol both sides have, and requests and pings travel as datagrams", async () => {
  const node = await startTestNode({
    nodeId: "u1",
    protocols: ["udp"],
    udpPort: 0,
  });
  const client = await Client.connect({ hosts: [node.address], ...quiet });
  try {
    assert.equal(client.stats().nodes[0].protocol, "udp");
    assert.equal(node.udpSessions, 1);
    const accepted = node.udpStats!.accepted;
    const reply = decodeReply(
      await client.request(ops.echo("over udp"), { idempotent: true }),
    );
    assert.equal(reply.nodeId, "u1");
    assert.equal(new TextDecoder().decode(reply.data), "over udp");
    await client.withConnection(async (connection) => {
      const result = handshakeResult(connection)!;
      assert.equal(result.protocol, "udp");
      assert.equal(result.udpPort, node.udpPort);
      assert.equal(
        "udpToken" in result,
        false,
        "the token stays with the transport",
      );
      assert.ok((await connection.ping()) >= 0);
      const stats = udpStats(connection)!;
      assert.equal(stats.address, `127.0.0.1:${node.udpPort}`);
      assert.equal(stats.sent, stats.received);
    });
    assert.equal(node.udpStats!.accepted, accepted + 2, "request and ping");
    assert.equal(node.stats.pings, 1);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("with TCP and UDP both common, TCP wins and no UDP session is opened", async () => {
  const node = await startTestNode({ protocols: ["tcp", "udp"], udpPort: 0 });
  const connection = await connectUdp(node);
  try {
    assert.equal(handshakeResult(connection)?.protocol, "tcp");
    assert.equal(udpStats(connection), undefined);
    assert.equal(node.udpSessions, 0);
    assert.equal(replyText(await connection.sendRequest(ops.echo("t"))), "t");
    assert.equal(node.udpStats!.accepted, 0);
  } finally {
    await connection.close();
    await node.close();
  }
});

test("many requests in flight over UDP each get their own reply, matched by sequence number, whatever the order", async () => {
  const { node, nodeClock } = await heldUdpNode();
  const connection = await connectUdp(node);
  try {
    const n = 100;
    const arrived: number[] = [];
    const replies = Array.from({ length: n }, (_, i) => {
      // Odd: answered at once. Even: held by the node, the earliest sent
      // for the longest, so those replies come back in reverse order.
      const payload = i % 2 ? ops.echo(`e${i}`) : ops.sleep(n - i, `s${i}`);
      return connection.sendRequest(payload, { idempotent: true }).then(
        (reply) => (arrived.push(i), replyText(reply)),
      );
    });
    assert.equal(connection.inFlight, n);
    await waitFor(() => nodeClock.pendingTimers === n / 2, "the held sleeps");
    await nodeClock.advance(n);
    const texts = await Promise.all(replies);
    texts.forEach((text, i) => assert.equal(text, i % 2 ? `e${i}` : `s${i}`));
    const sleeps = arrived.filter((i) => i % 2 === 0);
    assert.deepEqual(
      sleeps,
      Array.from({ length: n / 2 }, (_, k) => n - 2 - 2 * k),
      "held replies came back last sent, first answered",
    );
    assert.equal(udpStats(connection)!.received, n);
    assert.equal(connection.stats.dropped, 0);
    assert.equal(connection.inFlight, 0);
  } finally {
    await connection.close();
    await node.close();
  }
});

test("a lost datagram fails the request with RequestTimeoutError; only an idempotent request is retried", async () => {
  const clock = new VirtualClock();
  // Every second datagram is thrown away: 1 answered, 2 lost, 3 answered, 4 lost.
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    udpDropEvery: 2,
  });
  const client = await Client.connect({
    hosts: [node.address],
    clock,
    requestTimeoutMs: 1000,
    retryConfig: { maxRetries: 2, initialBackoffMs: 10 },
    ...quiet,
  });
  const retries: RetryEvent[] = [];
  client.addEventListener("retry", (e) => retries.push(e));
  try {
    assert.equal(replyText(await client.request(ops.echo("1"))), "1");

    const idempotent = client.request(ops.echo("2"), { idempotent: true });
    await waitFor(() => node.udpStats!.dropped === 1, "the first loss");
    await clock.advance(1000);
    await waitFor(() => retries.length === 1, "the retry");
    assert.ok(retries[0].detail.error instanceof RequestTimeoutError);
    await clock.advance(10);
    assert.equal(replyText(await idempotent), "2", "the retry got through");

    const once = assert.rejects(client.request(ops.echo("4")), (error) => {
      assert.ok(error instanceof RequestTimeoutError, String(error));
      assert.match(error.message, /timed out after 1000 ms/);
      return true;
    });
    await waitFor(() => node.udpStats!.dropped === 2, "the second loss");
    await clock.advance(1000);
    await once;
    assert.equal(
      retries.length,
      1,
      "a request that may have run is not retried",
    );
    assert.equal(node.udpStats!.accepted, 2);
    assert.equal(client.stats().retries, 1);
  } finally {
    await client.disconnect({ timeoutMs: 100 });
    await node.close();
  }
});

test("a request too large for one datagram fails before it is sent with DatagramTooLargeError, and is not retried", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const client = await Client.connect({
    hosts: [node.address],
    retryConfig: { maxRetries: 3, initialBackoffMs: 1 },
    ...quiet,
  });
  const roomy = await Client.connect({
    hosts: [node.address],
    maxDatagramSize: 4096,
    ...quiet,
  });
  try {
    // 1200-byte datagrams: 32 bytes of token and header, 1168 of payload.
    const fits = ops.echo("x".repeat(1167));
    assert.equal(fits.byteLength, 1168);
    assert.equal(replyText(await client.request(fits)), "x".repeat(1167));
    const accepted = node.udpStats!.accepted;

    await assert.rejects(
      client.request(ops.echo("x".repeat(1168)), { idempotent: true }),
      (error) => {
        assert.ok(error instanceof DatagramTooLargeError, String(error));
        assert.equal(error.code, "DATAGRAM_TOO_LARGE");
        assert.equal(error.retryable, false);
        assert.equal(error.size, 1169);
        assert.equal(error.maxPayload, 1168);
        assert.match(error.message, /1169 bytes does not fit.*maxDatagramSize/);
        return true;
      },
    );
    assert.equal(node.udpStats!.accepted, accepted, "nothing reached the node");
    assert.equal(client.stats().retries, 0);
    assert.equal(client.stats().nodes[0].healthy, true);
    assert.equal(client.stats().nodes[0].consecutiveFailures, 0);

    const big = "y".repeat(2000);
    assert.equal(replyText(await roomy.request(ops.echo(big))), big);
  } finally {
    await client.disconnect();
    await roomy.disconnect();
    await node.close();
  }
});

test("a reply too large for the node's datagrams comes back as ERROR 8, not as silence", async () => {
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    udpMaxDatagramSize: 256,
  });
  const connection = await connectUdp(node);
  try {
    await assert.rejects(
      connection.sendRequest(ops.echo("z".repeat(300))),
      (error) => {
        assert.ok(error instanceof RemoteError, String(error));
        assert.equal(error.remoteCode, RemoteErrorCode.Unsupported);
        assert.equal(error.retryable, false);
        assert.match(error.message, /does not fit in a 256-byte datagram/);
        return true;
      },
    );
    assert.equal(node.udpStats!.oversized, 1);
  } finally {
    await connection.close();
    await node.close();
  }
});

test("a reply that comes after its request timed out is dropped, never handed to another request", async () => {
  const clock = new VirtualClock();
  const { node, nodeClock } = await heldUdpNode();
  const connection = await connectUdp(node, { clock });
  try {
    const late = assert.rejects(
      connection.sendRequest(ops.sleep(1000, "late"), { timeoutMs: 100 }),
      (e: unknown) =>
        e instanceof RequestTimeoutError && e.code === "REQUEST_TIMEOUT" &&
        /timed out after 100 ms$/.test(e.message),
    );
    await waitFor(() => nodeClock.pendingTimers === 1, "the node holds it");
    await clock.advance(100);
    await late;
    const next = connection.sendRequest(ops.sleep(2000, "next"));
    await waitFor(() => nodeClock.pendingTimers === 2, "the second request");
    await nodeClock.advance(1000);
    await waitFor(() => connection.stats.dropped === 1, "the late reply");
    assert.equal(connection.inFlight, 1, "the second request still waits");
    await nodeClock.advance(1000);
    assert.equal(replyText(await next), "next");
    assert.equal(udpStats(connection)!.received, 2);
  } finally {
    await connection.close();
    await node.close();
  }
});

test("the node refuses datagrams it cannot place, and tells a client whose session it does not know", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const { socket, received } = await rawSocket();
  try {
    const token = newUdpToken();
    const send = (type: number) =>
      socket.send(
        encodeDatagram(token, type, 0, 9, ops.echo("?")),
        "127.0.0.1",
        node.udpPort!,
      );
    socket.send(new Uint8Array([1, 2, 3]), "127.0.0.1", node.udpPort!);
    send(MessageType.Error); // never answered: no error ping-pong
    send(MessageType.Request);
    await waitFor(() => received.length === 1, "the node's answer");
    const { token: echoed, message } = decodeDatagram(received[0]);
    assert.deepEqual(echoed, token);
    assert.equal(message.type, MessageType.Error);
    assert.equal(message.sequence, 0, "about the session as a whole");
    const error = decodeError(message.payload);
    assert.equal(error.code, RemoteErrorCode.Unavailable);
    assert.equal(error.message, "unknown UDP session");
    await waitFor(() => node.udpStats!.rejected === 3, "all three refused");
    assert.equal(node.stats.requests, 0);
    assert.equal(received.length, 1);
  } finally {
    socket.close();
    await node.close();
  }
});

test("the client drops datagrams without its token, and closes the connection when the node disowns the session", async () => {
  const { node: held } = await heldUdpNode();
  let token: Uint8Array | undefined;
  const adapter = await getAdapter();
  const udp = udpTransport({ adapter })!;
  // The raw socket plays the node's UDP side: the client takes datagrams
  // only from where it sends its own.
  const { socket, received } = await rawSocket();
  const connection = await connectUdp(held, {
    udpPort: socket.port,
    udp: (c, negotiated, signal) => {
      token = parseUdpToken(negotiated.udpToken);
      return udp(c, negotiated, signal);
    },
  });
  try {
    const port = udpStats(connection)!.localPort;
    const pending = connection.sendRequest(ops.sleep(1000));
    await waitFor(() => received.length === 1, "the request");
    // Someone else's token: dropped, the connection carries on.
    socket.send(
      encodeDatagram(newUdpToken(), MessageType.Response, 0, 1, ops.echo("x")),
      "127.0.0.1",
      port,
    );
    await waitFor(() => udpStats(connection)!.rejected === 1, "the drop");
    assert.ok(connection.isOpen);
    // The session's own token on an ERROR with sequence 0: the node says
    // the session is gone, so the connection goes, failing what waits.
    socket.send(
      encodeDatagram(
        token!,
        MessageType.Error,
        0,
        0,
        new Uint8Array([
          1,
          0,
          5,
          ...new TextEncoder().encode("unknown UDP session"),
        ]),
      ),
      "127.0.0.1",
      port,
    );
    await assert.rejects(pending, (error) => {
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.match(error.message, /unknown UDP session/);
      return true;
    });
    assert.equal(connection.isOpen, false);
  } finally {
    socket.close();
    connection.destroy();
    await held.close();
  }
});

test("a token is honoured only from the address of its TCP connection", {
  // 127.0.0.2 is loopback on Linux only.
  skip: (globalThis as { process?: { platform?: string } }).process
    ?.platform !== "linux",
}, async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  let token: Uint8Array | undefined;
  const adapter = await getAdapter();
  const udp = udpTransport({ adapter })!;
  const connection = await connectUdp(node, {
    udp: (c, negotiated, signal) => {
      token = parseUdpToken(negotiated.udpToken);
      return udp(c, negotiated, signal);
    },
  });
  const { socket, received } = await rawSocket("127.0.0.2");
  try {
    socket.send(
      encodeDatagram(token!, MessageType.Request, 0, 99, ops.echo("stolen")),
      "127.0.0.1",
      node.udpPort!,
    );
    await waitFor(() => node.udpStats!.rejected === 1, "the refusal");
    // A request with an unknown token gets an answer; had the stolen one
    // been served, its reply would have come first.
    socket.send(
      encodeDatagram(newUdpToken(), MessageType.Request, 0, 1, ops.echo("?")),
      "127.0.0.1",
      node.udpPort!,
    );
    await waitFor(() => received.length === 1, "the answer");
    assert.equal(decodeDatagram(received[0]).message.type, MessageType.Error);
    assert.equal(node.stats.requests, 0);
    assert.equal(replyText(await connection.sendRequest(ops.echo("ok"))), "ok");
  } finally {
    socket.close();
    await connection.close();
    await node.close();
  }
});

test("over UDP the node serves only a session whose TCP connection authenticated", async () => {
  const node = await startTestNode({
    protocols: ["udp"],
    udpPort: 0,
    credentials: { alice: "correct horse" },
  });
  const adapter = await getAdapter();
  const udp = udpTransport({ adapter })!;
  // Negotiates UDP and skips authentication.
  const sneaky = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: node.port,
    handshake: async (connection, hello, signal) => {
      const negotiated = await negotiateProtocol(connection, hello, {
        offer: ["udp"],
        allowed: ["udp"],
        signal,
      });
      await udp(connection, negotiated, signal);
    },
  });
  const client = await Client.connect({
    hosts: [node.address],
    username: "alice",
    password: "correct horse",
    ...quiet,
  });
  try {
    await assert.rejects(
      sneaky.sendRequest(ops.echo("let me in")),
      (error) => {
        assert.ok(error instanceof RemoteError, String(error));
        assert.equal(error.remoteCode, RemoteErrorCode.AuthRequired);
        return true;
      },
    );
    assert.ok((await sneaky.ping()) >= 0, "PING carries no data");
    assert.equal(client.stats().nodes[0].protocol, "udp");
    assert.equal(replyText(await client.request(ops.echo("hi"))), "hi");
    assert.equal(node.stats.authSuccesses, 1);
    assert.equal(node.udpStats!.accepted, 3);
  } finally {
    sneaky.destroy();
    await client.disconnect();
    await node.close();
  }
});

test("a node that drains still answers datagrams in flight, then closes its UDP socket", async () => {
  const { node, nodeClock } = await heldUdpNode();
  const connection = await connectUdp(node);
  try {
    const inFlight = connection.sendRequest(ops.sleep(500, "finished"));
    await waitFor(() => nodeClock.pendingTimers === 1, "the request");
    await node.stop({ graceful: true });
    await waitFor(() => !connection.isOpen, "GOODBYE");
    assert.notEqual(node.udpPort, undefined, "UDP stays up for the reply");
    await nodeClock.advance(500);
    assert.equal(replyText(await inFlight), "finished");
    await connection.closed;
    await waitFor(() => node.udpPort === undefined, "the UDP socket closing");
    assert.equal(node.udpSessions, 0);
  } finally {
    connection.destroy();
    await node.close();
  }
});

test("a request flagged idempotent carries the flag in its datagram", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const { socket, received } = await rawSocket();
  // A fake node's UDP side: the client is told to send here.
  let seen: number | undefined;
  socket.onMessage((bytes, hostname, port) => {
    received.push(bytes);
    const { token, message } = decodeDatagram(bytes);
    seen = message.flags;
    socket.send(
      encodeDatagram(
        token,
        MessageType.Response,
        0,
        message.sequence,
        ops.echo(""),
      ),
      hostname,
      port,
    );
  });
  const adapter = await getAdapter();
  const udp = udpTransport({ adapter })!;
  const connection = await connectUdp(node, {
    udp: (c, negotiated, signal) =>
      udp(c, { ...negotiated, udpPort: socket.port }, signal),
  });
  try {
    await connection.sendRequest(ops.echo("i"), { idempotent: true });
    assert.equal(seen, FrameFlags.Idempotent);
    await connection.sendRequest(ops.echo("n"));
    assert.equal(seen, 0);
    assert.equal(received.length, 2);
  } finally {
    socket.close();
    await connection.close();
    await node.close();
  }
});

test("after a restart the node serves UDP on the same port, and the client moves to a new session", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const client = await Client.connect({
    hosts: [node.address],
    retryConfig: { maxRetries: 3, initialBackoffMs: 1 },
    ...quiet,
  });
  try {
    assert.equal(replyText(await client.request(ops.echo("before"))), "before");
    const udpPort = node.udpPort;
    await node.stop();
    await node.start();
    assert.equal(node.udpPort, udpPort);
    assert.equal(node.udpSessions, 0, "the old token died with the crash");
    const reply = await client.request(ops.echo("after"), { idempotent: true });
    assert.equal(replyText(reply), "after");
    assert.equal(node.udpSessions, 1, "a new session, with a new token");
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("a datagram bounced by a closed port does not close the socket that sent it", async () => {
  // Bun reports the ICMP "port unreachable" through its error handler with
  // the socket still open; it concerns one datagram, not the socket.
  const { socket, received } = await rawSocket();
  const gone = await rawSocket();
  const goneAt = gone.socket.port;
  const peer = await rawSocket();
  let closedWith: Error | undefined | "open" = "open";
  socket.onClose((error) => (closedWith = error));
  try {
    gone.socket.close();
    await waitFor(() => gone.socket.closed, "the port to close");
    for (let i = 0; i < 3; i++) {
      assert.ok(socket.send(new Uint8Array([i]), "127.0.0.1", goneAt));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(socket.closed, false);
    assert.equal(closedWith, "open");
    peer.socket.send(new Uint8Array([42]), "127.0.0.1", socket.port);
    await waitFor(() => received.length === 1, "a datagram after the bounces");
    assert.deepEqual(received[0], new Uint8Array([42]));
  } finally {
    socket.close();
    peer.socket.close();
  }
});
