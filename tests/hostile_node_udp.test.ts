// A hostile node's UDP side, driven by fast-check: the session is set up
// on the in-memory network (the stream) and a real loopback datagram
// socket (the node's udpPort); then the node sends, in any order, replies
// and duplicates, garbage, datagrams cut short, datagrams with another
// token or from another port, frames of types a node may not send, and
// ERROR frames. Each datagram is awaited until the client has taken it,
// so every run is the same on every runtime. Whatever arrives: nothing
// escapes, every request settles typed within its timeout, a reply
// reaches only the request whose sequence it carries, and once the
// connection is closed no timer is armed and no socket is open.
import assert from "node:assert/strict";
import { test } from "node:test";
import process from "node:process";
import { createHandshake } from "../src/handshake/handshake.ts";
import { udpStats, udpTransport } from "../src/handshake/udp.ts";
import { MessageType } from "../src/protocol/frame.ts";
import {
  decodeDatagramFrames,
  formatUdpToken,
} from "../src/protocol/datagram.ts";
import { encodeError } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type { DatagramChannel } from "../src/runtime/datagram.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { fc } from "./support/fc.ts";
import { drive, Tracker, watchEscapes } from "./support/fault_harness.ts";
import {
  assertOwnOutcome,
  endsClean,
  frame,
  HostileNode,
  tagged,
} from "./support/hostile_node.ts";
import { waitFor } from "./support/udp_scene.ts";

const TOKEN = new Uint8Array(16).map((_, i) => 0xa0 + i);
const OTHER_TOKEN = new Uint8Array(16).map((_, i) => 0x10 + i);

type UdpAction =
  | { k: "request"; timeoutMs: number; abortable: boolean }
  | { k: "ping"; timeoutMs: number }
  | { k: "abort"; pick: number }
  | { k: "reply"; pick: number; type?: number; extra: number }
  | { k: "error"; pick: number; zero: boolean; payload: Uint8Array }
  | { k: "garbage"; bytes: Uint8Array }
  | { k: "truncated"; pick: number; cut: number }
  | { k: "wrongToken"; pick: number }
  | { k: "wrongPort"; pick: number }
  | { k: "nodeType"; type: number; sequence: number }
  | { k: "advance"; ms: number };

const actionArb: fc.Arbitrary<UdpAction> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("request" as const),
      timeoutMs: fc.constantFrom(20, 100, 1000),
      abortable: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("ping" as const),
      timeoutMs: fc.constantFrom(20, 1000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("abort" as const), pick: fc.nat() }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("reply" as const),
      pick: fc.nat(),
      // Another type now and then: a PONG to a request, a RESPONSE to a ping.
      type: fc.option(
        fc.constantFrom(MessageType.Response, MessageType.Pong),
        { nil: undefined, freq: 4 },
      ),
      // With batching, this many more frames in the datagram.
      extra: fc.nat({ max: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("error" as const),
      pick: fc.nat(),
      zero: fc.boolean(),
      payload: fc.oneof(
        fc.constant(encodeError({ code: 4, retryable: true, message: "busy" })),
        fc.uint8Array({ maxLength: 2 }),
        fc.constant(new Uint8Array([0, 0, 1, 0xff])),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("garbage" as const),
      bytes: fc.uint8Array({ maxLength: 64 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("truncated" as const),
      pick: fc.nat(),
      cut: fc.integer({ min: 1, max: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("wrongToken" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("wrongPort" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("nodeType" as const),
      type: fc.constantFrom(
        MessageType.Request,
        MessageType.Ping,
        MessageType.Goodbye,
        MessageType.HelloOk,
        MessageType.AuthOk,
      ),
      sequence: fc.nat({ max: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("advance" as const),
      ms: fc.constantFrom(1, 30, 150),
    }),
  },
);

const datagram = (token: Uint8Array, frames: Uint8Array[]) => {
  const out = new Uint8Array(
    16 + frames.reduce((n, f) => n + f.length, 0),
  );
  out.set(token, 0);
  let at = 16;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
};

test("property: whatever datagrams a hostile node sends (garbage, cut short, another token or port, wrong types, duplicates, ERRORs), every request settles typed in time, a reply reaches only its own request, and close leaves no timer and no socket", async () => {
  const adapter = await getAdapter();
  const watch = watchEscapes();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(actionArb, { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      async (actions, batching) => {
        run++;
        const network = createMemoryNetwork();
        const clock = new VirtualClock();
        const nodeUdp: DatagramChannel = await adapter.datagram!({
          hostname: "127.0.0.1",
        });
        const stranger: DatagramChannel = await adapter.datagram!({
          hostname: "127.0.0.1",
        });
        // What the client sent by UDP, in order, decoded.
        const received: {
          type: number;
          sequence: number;
          payload: Uint8Array;
        }[] = [];
        let clientPort = 0;
        nodeUdp.onMessage((bytes, _host, port) => {
          clientPort = port;
          try {
            for (const m of decodeDatagramFrames(bytes).messages) {
              received.push({ ...m, payload: m.payload.slice() });
            }
          } catch {
            // Not the client's: ignored.
          }
        });
        nodeUdp.onClose(() => {});
        stranger.onMessage(() => {});
        stranger.onClose(() => {});
        const node = await HostileNode.start(network, {
          helloOk: {
            nodeId: "udp-node",
            maxFrameSize: 4096,
            auth: "none",
            protocols: ["udp"],
            features: batching ? ["udp-batch"] : [],
          },
          negotiateOk: {
            protocols: ["udp"],
            selected: "udp",
            udpPort: nodeUdp.port,
            udpToken: formatUdpToken(TOKEN),
          },
        });
        const connection = await drive(
          clock,
          node.connect(clock, {
            timeoutMs: 1000,
            handshake: createHandshake({
              transports: { udp: udpTransport({ adapter }) },
            }),
          }),
        );
        const stats = udpStats(connection)!;
        assert.ok(stats, "UDP was chosen");
        const tracker = new Tracker(clock);
        const calls: { payload?: Uint8Array; timeoutMs: number }[] = [];
        const aborts: AbortController[] = [];
        let id = 0;
        const pick = (n: number) =>
          received.length === 0 ? undefined : received[n % received.length];
        /** Sends one datagram and waits until the client has taken it. */
        const deliver = async (bytes: Uint8Array, from = nodeUdp) => {
          if (!connection.isOpen || clientPort === 0) return;
          const before = stats.datagramsReceived + stats.rejected;
          from.send(bytes, "127.0.0.1", clientPort);
          await waitFor(
            () =>
              stats.datagramsReceived + stats.rejected > before ||
              !connection.isOpen,
            "the client to take a datagram",
          );
          await clock.advance(0);
        };
        /**
         * The tick ends (the datagram goes, batched), then the node has
         * it: more than the `sent` datagrams it had.
         */
        const sentOn = async (sent: number, what: string) => {
          await clock.advance(0);
          if (connection.isOpen) {
            await waitFor(() => received.length > sent, what);
          }
        };
        const replyFrame = (
          m: { type: number; sequence: number; payload: Uint8Array },
          type?: number,
        ) =>
          frame(
            type ??
              (m.type === MessageType.Ping
                ? MessageType.Pong
                : MessageType.Response),
            0,
            m.sequence,
            m.payload,
          );
        for (const a of actions) {
          switch (a.k) {
            case "request": {
              const payload = tagged(0x75, run, id++);
              const abort = a.abortable ? new AbortController() : undefined;
              if (abort) aborts.push(abort);
              const sent = received.length;
              calls.push({ payload, timeoutMs: a.timeoutMs });
              tracker.track(
                `r${id}`,
                connection.sendRequest(payload, {
                  timeoutMs: a.timeoutMs,
                  signal: abort?.signal,
                }),
              );
              await sentOn(sent, "the request datagram");
              break;
            }
            case "ping": {
              const sent = received.length;
              calls.push({ timeoutMs: a.timeoutMs });
              tracker.track(
                `p${id++}`,
                connection.ping({ timeoutMs: a.timeoutMs }),
              );
              await sentOn(sent, "the ping datagram");
              break;
            }
            case "abort":
              if (aborts.length > 0) aborts[a.pick % aborts.length].abort();
              break;
            case "reply": {
              const m = pick(a.pick);
              if (m === undefined) break;
              const frames = [replyFrame(m, a.type)];
              for (let i = 0; batching && i < a.extra; i++) {
                frames.push(replyFrame(pick(a.pick + i + 1)!));
              }
              await deliver(datagram(TOKEN, frames));
              break;
            }
            case "error": {
              const m = pick(a.pick);
              await deliver(
                datagram(TOKEN, [
                  frame(
                    MessageType.Error,
                    0,
                    a.zero || !m ? 0 : m.sequence,
                    a.payload,
                  ),
                ]),
              );
              break;
            }
            case "garbage":
              await deliver(a.bytes);
              break;
            case "truncated": {
              const m = pick(a.pick);
              if (m === undefined) break;
              const whole = datagram(TOKEN, [replyFrame(m)]);
              await deliver(
                whole.subarray(0, Math.max(0, whole.length - a.cut)),
              );
              break;
            }
            case "wrongToken": {
              const m = pick(a.pick);
              if (m === undefined) break;
              await deliver(datagram(OTHER_TOKEN, [replyFrame(m)]));
              break;
            }
            case "wrongPort": {
              const m = pick(a.pick);
              if (m === undefined) break;
              await deliver(datagram(TOKEN, [replyFrame(m)]), stranger);
              break;
            }
            case "nodeType":
              await deliver(
                datagram(TOKEN, [
                  frame(a.type, 0, a.sequence, new Uint8Array(1)),
                ]),
              );
              break;
            case "advance":
              await clock.advance(a.ms);
              break;
          }
          await clock.advance(0);
        }
        await drive(clock, connection.close(), 5000);
        await drive(clock, tracker.settled(), 5000);
        for (const [i, t] of tracker.all.entries()) {
          const call = calls[i];
          assert.equal(t.settledCount, 1, t.label);
          assert.ok(
            t.settledAt! - t.startedAt <= call.timeoutMs,
            `${t.label} settled after ${
              t.settledAt! - t.startedAt
            } ms, past its ${call.timeoutMs}`,
          );
          assertOwnOutcome(t, call.payload);
        }
        await endsClean(clock, node);
        nodeUdp.close();
        stranger.close();
      },
    ),
    {
      numRuns: Number(process.env.RUNS ?? 40),
      verbose: process.env.VERBOSE ? 2 : 0,
    },
  );
  assert.deepEqual(await watch.stop(), []);
});
