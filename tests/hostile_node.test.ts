// A broken or hostile node, driven by fast-check, against Connection and
// Client on the in-memory network and a virtual clock: replies with
// unknown, duplicate and stale sequence numbers, replies of the wrong
// type, malformed ERROR frames, frames that break the header, control
// messages after the handshake, GOODBYE again and again, close and reset,
// every frame cut anywhere. Whatever it sends: nothing escapes to the
// process, every call settles typed within its timeout, a reply reaches
// only the request whose sequence it carries, and once the client is
// closed no timer is armed and no channel is open. The handshake's side
// is in hostile_handshake.test.ts, the datagrams' in
// hostile_node_udp.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import process from "node:process";
import { Client } from "../src/client/client.ts";
import type { BatchReplySink } from "../src/connection/types.ts";
import { createHandshake } from "../src/handshake/handshake.ts";
import { NodewireError } from "../src/errors.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError, encodeJson } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { fc } from "./support/fc.ts";
import { drive, Tracker, watchEscapes } from "./support/fault_harness.ts";
import {
  assertOwnOutcome,
  frame,
  HostileNode,
  NODE_MAX_FRAME,
  same,
  tagged,
} from "./support/hostile_node.ts";

const CLIENT_MAX_FRAME = 2048;

type Action =
  | { k: "request"; timeoutMs: number; idempotent: boolean; abortable: boolean }
  | { k: "ping"; timeoutMs: number }
  | { k: "batch"; count: number; timeoutMs: number; idempotent: boolean }
  | { k: "abort"; pick: number }
  | { k: "reply"; pick: number }
  | { k: "wrongType"; pick: number }
  | { k: "unknownSeq"; sequence: number; type: number }
  | { k: "error"; pick: number; zero: boolean; payload: Uint8Array }
  | { k: "oversized"; pick: number }
  | { k: "badHeader"; byte: number; value: number }
  | { k: "hugeThenClose" }
  | { k: "control"; type: number; sequence: number; payload: Uint8Array }
  | { k: "goodbye" }
  | { k: "nodePing"; sequence: number; size: number }
  | { k: "halfClose" }
  | { k: "reset" }
  | { k: "split"; cuts: number[]; byteByByte: boolean }
  | { k: "advance"; ms: number };

// Sequences this client never uses in a run (it numbers from 1 and sends
// fewer than 100): 0, and numbers whose low bits alias those it uses.
const seqArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1000, max: 1040 }),
  fc.nat({ max: 40 }).map((n) => 2 ** 32 + n),
  fc.nat({ max: 40 }).map((n) => 2 ** 53 - 1 - n),
);
const errorPayloadArb = fc.oneof(
  fc.constant(encodeError({ code: 5, retryable: true, message: "busy" })),
  fc.uint8Array({ maxLength: 2 }),
  fc.constant(new Uint8Array([0, 0, 1, 0xff, 0xfe])), // not UTF-8
  fc.uint8Array({ minLength: 3, maxLength: 24 }),
  fc.constant(encodeJson({ error: "json, not binary" })),
);

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("request" as const),
      timeoutMs: fc.constantFrom(20, 100, 1000),
      idempotent: fc.boolean(),
      abortable: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("ping" as const),
      timeoutMs: fc.constantFrom(20, 100, 1000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("abort" as const), pick: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("batch" as const),
      count: fc.integer({ min: 1, max: 4 }),
      timeoutMs: fc.constantFrom(20, 1000),
      idempotent: fc.boolean(),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ k: fc.constant("reply" as const), pick: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("wrongType" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("unknownSeq" as const),
      sequence: seqArb,
      type: fc.constantFrom(MessageType.Response, MessageType.Pong),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("error" as const),
      pick: fc.nat(),
      zero: fc.boolean(),
      payload: errorPayloadArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("oversized" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("badHeader" as const),
      byte: fc.constantFrom(0, 1, 2, 3, 4),
      value: fc.integer({ min: 0, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: "hugeThenClose" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("control" as const),
      type: fc.constantFrom(
        MessageType.Hello,
        MessageType.HelloOk,
        MessageType.Negotiate,
        MessageType.NegotiateOk,
        MessageType.AuthStart,
        MessageType.AuthChallenge,
        MessageType.AuthFinal,
        MessageType.AuthOk,
        MessageType.Request,
      ),
      sequence: seqArb,
      payload: fc.oneof(
        fc.constant(
          encodeJson({ nodeId: "x", maxFrameSize: 4096, auth: "none" }),
        ),
        fc.uint8Array({ maxLength: 12 }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: "goodbye" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("nodePing" as const),
      sequence: seqArb,
      // Within the client's limit, some over the node's own.
      size: fc.constantFrom(
        1,
        NODE_MAX_FRAME,
        NODE_MAX_FRAME + 1,
        CLIENT_MAX_FRAME,
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: "halfClose" as const }) },
  { weight: 1, arbitrary: fc.constant({ k: "reset" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("split" as const),
      cuts: fc.array(fc.nat({ max: 40 }), { maxLength: 4 }).map((c) =>
        c.sort((a, b) => a - b)
      ),
      byteByByte: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("advance" as const),
      ms: fc.constantFrom(0, 1, 10, 30, 150),
    }),
  },
);

/**
 * What the node (or the clock) does for an action that is not the
 * client's.
 */
async function nodeActs(
  node: HostileNode,
  clock: VirtualClock,
  a: Action,
): Promise<void> {
  const pick = (n: number) =>
    node.received.length === 0
      ? undefined
      : node.received[n % node.received.length];
  switch (a.k) {
    case "reply": {
      const m = pick(a.pick);
      if (m === undefined) break;
      m.answered = true;
      node.send(
        m.type === MessageType.Ping ? MessageType.Pong : MessageType.Response,
        0,
        m.sequence,
        m.payload,
      );
      break;
    }
    case "wrongType": {
      const m = pick(a.pick);
      if (m === undefined) break;
      node.send(
        m.type === MessageType.Ping ? MessageType.Response : MessageType.Pong,
        0,
        m.sequence,
        m.payload,
      );
      break;
    }
    case "unknownSeq":
      node.send(a.type, 0, a.sequence, new Uint8Array([0x62, 0x61, 0x64]));
      break;
    case "error": {
      const m = pick(a.pick);
      node.send(
        MessageType.Error,
        0,
        a.zero || m === undefined ? 0 : m.sequence,
        a.payload,
      );
      break;
    }
    case "oversized": {
      const m = pick(a.pick);
      node.sendBytes(
        frame(
          MessageType.Response,
          0,
          m?.sequence ?? 1,
          new Uint8Array(8),
          CLIENT_MAX_FRAME + 1,
        ),
      );
      break;
    }
    case "advance":
      await clock.advance(a.ms);
      break;
    case "badHeader": {
      const bytes = frame(MessageType.Response, 0, 1, new Uint8Array(2));
      bytes[a.byte] = a.value;
      node.sendBytes(bytes);
      break;
    }
    case "hugeThenClose": {
      node.sendBytes(
        frame(MessageType.Response, 0, 1, new Uint8Array(0), CLIENT_MAX_FRAME),
      );
      node.channel?.close();
      break;
    }
    case "control":
      node.send(a.type, 0, a.sequence, a.payload);
      break;
    case "goodbye":
      node.send(MessageType.Goodbye, 0, 0, new Uint8Array(0));
      break;
    case "nodePing":
      node.send(MessageType.Ping, 0, a.sequence, new Uint8Array(a.size));
      break;
    case "halfClose":
      node.channel?.close();
      break;
    case "reset":
      node.channel?.destroy();
      break;
    case "split":
      node.splits = a.cuts;
      node.byteByByte = a.byteByByte;
      break;
  }
}

interface Call {
  label: string;
  kind: "request" | "ping";
  payload: Uint8Array;
  timeoutMs: number;
  abort?: AbortController;
  promise: Promise<unknown>;
}

test("property: whatever a hostile node sends after the handshake, every request and ping settles typed in time, each reply reaches only its own request, and close leaves no timer and no channel", async () => {
  const watch = watchEscapes();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(actionArb, { minLength: 1, maxLength: 30 }),
      fc.constantFrom("close", "destroy"),
      async (actions, end) => {
        run++;
        const network = createMemoryNetwork();
        const clock = new VirtualClock();
        const node = await HostileNode.start(network);
        const connection = await drive(
          clock,
          node.connect(clock, {
            timeoutMs: 1000,
            maxFrameSize: CLIENT_MAX_FRAME,
            handshake: createHandshake({}),
          }),
        );
        const tracker = new Tracker(clock);
        const calls: Call[] = [];
        const add = (call: Call) => {
          calls.push(call);
          tracker.track(call.label, call.promise);
        };
        let id = 0;
        for (const a of actions) {
          switch (a.k) {
            case "request": {
              const payload = tagged(0x72, run, id++);
              const abort = a.abortable ? new AbortController() : undefined;
              const promise = connection.sendRequest(payload, {
                timeoutMs: a.timeoutMs,
                idempotent: a.idempotent,
                signal: abort?.signal,
              });
              add({
                label: `r${id}`,
                kind: "request",
                payload,
                timeoutMs: a.timeoutMs,
                abort,
                promise,
              });
              break;
            }
            case "ping": {
              const promise = connection.ping({ timeoutMs: a.timeoutMs });
              add({
                label: `p${id++}`,
                kind: "ping",
                payload: new Uint8Array(0),
                timeoutMs: a.timeoutMs,
                promise,
              });
              break;
            }
            case "batch": {
              // submitBatch: each outcome once, with its own sequence.
              const list = Array.from(
                { length: a.count },
                () => new Uint8Array([0x62, run & 0xff, id >> 8, id++ & 0xff]),
              );
              const seen = new Set<number>();
              let left = list.length;
              const promise = new Promise<void>((resolve, reject) => {
                const settle = (sequence: number | undefined) => {
                  const at = sequence! - sink.first;
                  if (!(at >= 0 && at < list.length) || seen.has(at)) {
                    reject(new Error(`batch outcome for sequence ${sequence}`));
                  }
                  seen.add(at);
                  if (--left === 0) resolve();
                };
                const sink: BatchReplySink = {
                  first: 0,
                  onReply(payload, sequence) {
                    const at = sequence! - sink.first;
                    if (!same(payload, list[at] ?? new Uint8Array(0))) {
                      reject(new Error(`batch item ${at} got another reply`));
                    }
                    settle(sequence);
                  },
                  onError(error, sequence) {
                    if (!(error instanceof NodewireError)) reject(error);
                    settle(sequence);
                  },
                };
                const refused = connection.submitBatch(list, 0, list.length, {
                  timeoutMs: a.timeoutMs,
                  idempotent: a.idempotent,
                }, sink);
                if (refused !== undefined) {
                  if (refused instanceof NodewireError) resolve();
                  else reject(refused);
                }
              });
              add({
                label: `b${id}`,
                kind: "ping",
                payload: new Uint8Array(0),
                timeoutMs: a.timeoutMs,
                promise,
              });
              break;
            }
            case "abort": {
              const withAbort = calls.filter((c) => c.abort);
              if (withAbort.length > 0) {
                withAbort[a.pick % withAbort.length].abort!.abort();
              }
              break;
            }
            default:
              await nodeActs(node, clock, a);
          }
          await clock.advance(0);
        }
        const ended = end === "close"
          ? connection.close()
          : (connection.destroy(), connection.closed);
        await drive(clock, Promise.all([tracker.settled(), ended]), 5000);
        // Each call within its own timeout (the close may only end it sooner).
        for (const [i, t] of tracker.all.entries()) {
          const call = calls[i];
          assert.equal(t.settledCount, 1, t.label);
          assert.ok(
            t.settledAt! - t.startedAt <= call.timeoutMs,
            `${t.label} settled after ${
              t.settledAt! - t.startedAt
            } ms, past its ${call.timeoutMs}`,
          );
          assertOwnOutcome(
            t,
            call.kind === "request" ? call.payload : undefined,
          );
        }
        assert.equal(clock.pendingTimers, 0, "a timer is left armed");
        assert.equal(connection.timerArmed, false);
        assert.equal(network.openChannels, 0, "a channel is left open");
        assert.deepEqual(node.violations, [], "the client broke the protocol");
        await node.close();
      },
    ),
    {
      numRuns: Number(process.env.RUNS ?? 60),
      verbose: process.env.VERBOSE ? 2 : 0,
    },
  );
  const escaped = await watch.stop();
  assert.deepEqual(escaped, []);
});

test("a node's PING larger than the maxFrameSize its HELLO_OK announced gets no PONG (the echo would break the node's own limit); one within it is answered", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await HostileNode.start(network);
  const connection = await drive(
    clock,
    node.connect(clock, {
      maxFrameSize: CLIENT_MAX_FRAME,
    }),
  );
  const pongs: number[] = [];
  node.onFrame = (m) => {
    if (m.type === MessageType.Pong) pongs.push(m.sequence);
  };
  node.send(MessageType.Ping, 0, 7, new Uint8Array(NODE_MAX_FRAME + 1));
  node.send(MessageType.Ping, 0, 8, new Uint8Array(NODE_MAX_FRAME));
  await clock.advance(0);
  await clock.advance(0);
  assert.deepEqual(node.violations, [], "no frame over the node's limit");
  assert.deepEqual(pongs, [8]);
  assert.equal(connection.stats.dropped, 1);
  assert.ok(connection.isOpen);
  await drive(clock, connection.close());
  await node.close();
  assert.equal(network.openChannels, 0);
});

// ---------------------------------------------------------------- client

test("property: a Client of a hostile node: every request and ping settles typed, a reply reaches only the request it answers, and disconnect leaves no timer and no channel", async () => {
  const watch = watchEscapes();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(actionArb, { minLength: 1, maxLength: 30 }),
      fc.record({
        healthMs: fc.constantFrom(0, 100),
        maxRetries: fc.constantFrom(0, 2),
        disconnectMs: fc.constantFrom(1, 50, 2000),
      }),
      async (actions, config) => {
        run++;
        const network = createMemoryNetwork();
        const clock = new VirtualClock();
        const node = await HostileNode.start(network);
        const client = await drive(
          clock,
          Client.connect(node.clientConfig(clock, {
            timeoutMs: 1000,
            requestTimeoutMs: 1000,
            maxFrameSize: CLIENT_MAX_FRAME,
            poolConfig: { minConnections: 1, maxConnections: 2 },
            retryConfig: {
              maxRetries: config.maxRetries,
              initialBackoffMs: 10,
            },
            healthConfig: { intervalMs: config.healthMs, timeoutMs: 50 },
          })),
        );
        const tracker = new Tracker(clock);
        const payloads: (Uint8Array | undefined)[] = [];
        let id = 0;
        const aborts: AbortController[] = [];
        for (const a of actions) {
          switch (a.k) {
            case "request": {
              const payload = tagged(0x63, run, id++);
              const abort = a.abortable ? new AbortController() : undefined;
              if (abort) aborts.push(abort);
              payloads.push(payload);
              tracker.track(
                `r${id}`,
                client.request(payload, {
                  timeoutMs: a.timeoutMs,
                  idempotent: a.idempotent,
                  signal: abort?.signal,
                }),
              );
              break;
            }
            case "batch": {
              // requestMany: each result is its own request's reply.
              const list = Array.from(
                { length: a.count },
                () => new Uint8Array([0x62, run & 0xff, id >> 8, id++ & 0xff]),
              );
              payloads.push(undefined);
              tracker.track(
                `b${id}`,
                client.requestMany(list, {
                  timeoutMs: a.timeoutMs,
                  idempotent: a.idempotent,
                }).then((results) => {
                  for (const [i, r] of results.entries()) {
                    if (r.ok) assert.ok(same(r.value, list[i]), `b${id}[${i}]`);
                    else assert.ok(r.error instanceof NodewireError);
                  }
                }),
              );
              break;
            }
            case "ping":
              payloads.push(undefined);
              tracker.track(
                `p${id++}`,
                client.ping({ timeoutMs: a.timeoutMs }),
              );
              break;
            case "abort":
              if (aborts.length > 0) aborts[a.pick % aborts.length].abort();
              break;
            default:
              await nodeActs(node, clock, a);
          }
          await clock.advance(0);
        }
        await drive(
          clock,
          client.disconnect({ timeoutMs: config.disconnectMs }),
          10_000,
        );
        await drive(clock, tracker.settled(), 10_000);
        for (const [i, t] of tracker.all.entries()) {
          assert.equal(t.settledCount, 1, t.label);
          assertOwnOutcome(t, payloads[i]);
        }
        await clock.advance(0);
        assert.equal(clock.pendingTimers, 0, "a timer is left armed");
        assert.equal(
          network.openChannels - node.open.size,
          0,
          "a client channel is left open",
        );
        assert.deepEqual(node.violations, [], "the client broke the protocol");
        await node.close();
        await clock.advance(0);
        assert.equal(network.openChannels, 0, "a channel is left open");
      },
    ),
    {
      numRuns: Number(process.env.RUNS ?? 40),
      verbose: process.env.VERBOSE ? 2 : 0,
    },
  );
  assert.deepEqual(await watch.stop(), []);
});
