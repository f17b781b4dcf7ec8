// A node that answers a Client's traffic with valid sessions mutated at
// random, driven by fast-check on the in-memory network and a virtual
// clock: header fields changed (version, type, flags, a length shorter or
// longer than what follows), sequences that are 0, answered already,
// never sent or far ahead, replies duplicated and reordered in one write,
// cut anywhere and followed by a close, GOODBYE in the middle of a batch
// of replies, ERROR payloads that do not decode or carry control
// characters, unsolicited control frames. The caller uses request,
// requestMany, ping and withConnection at once. Whatever the node does:
// nothing escapes to the process, every call settles in time with a value
// or a NodewireError, a reply reaches only the request it answers, every
// message shows the node's text escaped, and after disconnect() no timer,
// no channel and no in-flight count is left. hostile_node.test.ts has the
// node's frames one kind at a time; this file mixes them per session.
import assert from "node:assert/strict";
import { test } from "node:test";
import process from "node:process";
import { Client } from "../src/client/client.ts";
import { createHandshake } from "../src/handshake/handshake.ts";
import type { Connection } from "../src/connection/connection.ts";
import type { HealthCheckResult } from "../src/cluster/health_loop.ts";
import type { LogEntry } from "../src/config/shapes.ts";
import { NodewireError, ProtocolError } from "../src/errors.ts";
import { parseUdpToken } from "../src/protocol/datagram.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError, encodeJson } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { toTlsError } from "../src/runtime/tls.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { fc } from "./support/fc.ts";
import { drive, Tracker, watchEscapes } from "./support/fault_harness.ts";
import {
  endsClean,
  frame,
  HostileNode,
  NODE_MAX_FRAME,
  type Received,
  same,
} from "./support/hostile_node.ts";

const CLIENT_MAX_FRAME = 2048;
const MAX_BACKOFF_MS = 20;
const HEDGE_DELAY_MS = 5;
const HEALTH_TIMEOUT_MS = 50;
/** Request sizes: NODE_MAX_FRAME is what the node takes, one more is not. */
const PAYLOAD_SIZES = [5, 5, 5, 5, 5, NODE_MAX_FRAME, NODE_MAX_FRAME + 1];

/** Control, format and separator characters no message may carry raw. */
const RAW =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

/** Text a node chooses: escapes, a line break, a bidi override. */
const NASTY = "\u001b[31mred\r\nforged: line\u202e\u0000\u0085end";

/** Every message in `error` and its causes (and a CONNECT_FAILED's). */
function messagesOf(error: unknown, depth = 0): string[] {
  if (!(error instanceof Error) || depth > 8) return [];
  const out = [error.message];
  out.push(...messagesOf((error as { cause?: unknown }).cause, depth + 1));
  const failures = (error as { failures?: { error?: unknown }[] }).failures;
  if (Array.isArray(failures)) {
    for (const f of failures) out.push(...messagesOf(f.error, depth + 1));
  }
  return out;
}

/** `error` is a NodewireError whose messages show foreign text escaped. */
function assertTypedEscaped(label: string, error: unknown): void {
  assert.ok(
    error instanceof NodewireError,
    `${label} failed untyped: ${error} (${
      (error as Error)?.constructor?.name
    })`,
  );
  assert.equal(typeof error.code, "string", label);
  for (const message of messagesOf(error)) {
    assert.ok(
      !RAW.test(message),
      `${label}: raw control text in ${JSON.stringify(message)}`,
    );
  }
}

type NodeAction =
  | { k: "reply"; pick: number }
  | { k: "duplicate"; pick: number }
  | {
    k: "burst";
    count: number;
    reverse: boolean;
    cut: "none" | "goodbye" | "close" | "destroy" | "midFrame";
    at: number;
  }
  | { k: "wrongType"; pick: number }
  | { k: "badSequence"; which: number; far: number; type: number }
  | {
    k: "header";
    pick: number;
    field: "version" | "type" | "flags";
    value: number;
  }
  | { k: "length"; pick: number; delta: number; longer: boolean }
  | { k: "error"; pick: number; zero: boolean; payload: number }
  | { k: "control"; type: number; sequence: number; payload: number }
  | { k: "nodePing"; sequence: number }
  | { k: "split"; cuts: number[]; byteByByte: boolean }
  | { k: "advance"; ms: number };

type CallerAction =
  | {
    k: "request";
    timeoutMs: number;
    idempotent: boolean;
    abortable: boolean;
    retry: boolean;
    size: number;
  }
  | {
    k: "batch";
    count: number;
    timeoutMs: number;
    idempotent: boolean;
    size: number;
  }
  | { k: "ping"; timeoutMs: number }
  | { k: "lend"; count: number; timeoutMs: number; fail: boolean }
  | { k: "abort"; pick: number }
  | { k: "health" }
  | { k: "disconnect"; timeoutMs: number };

/** A node's action, on the first node or the second (when there is one). */
type OnNode = { k: "on"; node: number; act: NodeAction };

type Action = OnNode | CallerAction;

const timeoutArb = fc.constantFrom(20, 100, 1000);

const nodeActionArb: fc.Arbitrary<NodeAction> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ k: fc.constant("reply" as const), pick: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("duplicate" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("burst" as const),
      count: fc.integer({ min: 2, max: 5 }),
      reverse: fc.boolean(),
      cut: fc.constantFrom(
        "none" as const,
        "goodbye" as const,
        "close" as const,
        "destroy" as const,
        "midFrame" as const,
      ),
      at: fc.nat({ max: 80 }),
    }),
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
      k: fc.constant("badSequence" as const),
      // 0: sequence 0, 1: one answered already, 2: the next one not sent
      // yet, 3: far ahead, 4: past 2^53 - 1.
      which: fc.integer({ min: 0, max: 4 }),
      far: fc.nat({ max: 2 ** 20 }),
      type: fc.constantFrom(
        MessageType.Response,
        MessageType.Pong,
        MessageType.Error,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.record({
        k: fc.constant("header" as const),
        pick: fc.nat(),
        field: fc.constant("version" as const),
        value: fc.constantFrom(0, 2, 0x7f, 0xff),
      }),
      fc.record({
        k: fc.constant("header" as const),
        pick: fc.nat(),
        field: fc.constant("type" as const),
        value: fc.constantFrom(0, 0x09, 0x12, 0x22, 0x32, 0xff),
      }),
      fc.record({
        k: fc.constant("header" as const),
        pick: fc.nat(),
        field: fc.constant("flags" as const),
        value: fc.constantFrom(0x0001, 0x0002, 0x8000, 0xffff),
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("length" as const),
      pick: fc.nat(),
      delta: fc.oneof(
        fc.integer({ min: 1, max: 40 }),
        fc.constant(CLIENT_MAX_FRAME),
        fc.constant(2 ** 32 - 1),
      ),
      longer: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("error" as const),
      pick: fc.nat(),
      zero: fc.boolean(),
      payload: fc.nat({ max: 7 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("control" as const),
      type: fc.constantFrom(
        MessageType.HelloOk,
        MessageType.NegotiateOk,
        MessageType.AuthChallenge,
        MessageType.AuthOk,
        MessageType.Goodbye,
      ),
      sequence: fc.constantFrom(0, 1, 2, 7),
      payload: fc.nat({ max: 6 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("nodePing" as const),
      sequence: fc.constantFrom(0, 1, 2 ** 40),
    }),
  },
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

const callerActionArb: fc.Arbitrary<CallerAction> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("request" as const),
      timeoutMs: timeoutArb,
      idempotent: fc.boolean(),
      abortable: fc.boolean(),
      retry: fc.boolean(),
      size: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("batch" as const),
      count: fc.integer({ min: 1, max: 5 }),
      timeoutMs: timeoutArb,
      idempotent: fc.boolean(),
      size: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("ping" as const),
      timeoutMs: timeoutArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("lend" as const),
      count: fc.integer({ min: 0, max: 3 }),
      timeoutMs: timeoutArb,
      fail: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("abort" as const), pick: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.constant({ k: "health" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("disconnect" as const),
      timeoutMs: fc.constantFrom(1, 50, 2000),
    }),
  },
);

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("on" as const),
      node: fc.nat({ max: 1 }),
      act: nodeActionArb,
    }),
  },
  { weight: 2, arbitrary: callerActionArb },
);

/** ERROR payloads, valid and not: what `error.payload` picks. */
const ERROR_PAYLOADS: Uint8Array[] = [
  encodeError({ code: 5, retryable: true, message: NASTY }),
  encodeError({ code: 3, retryable: false, message: "x".repeat(1500) }),
  new Uint8Array(0),
  new Uint8Array([1, 0]),
  new Uint8Array([0, 0, 1, 0xff, 0xfe, 0x1b, 0x0a]), // not UTF-8
  encodeJson({ error: NASTY }),
  encodeError({ code: 65535, retryable: true, message: "" }),
  new Uint8Array([0xff, 0xff, 0xff, 0xc0, 0x80]), // unknown flags, overlong
];

/** Control payloads: valid JSON of the wrong shape, garbage, a BOM. */
const CONTROL_PAYLOADS: Uint8Array[] = [
  encodeJson({ nodeId: "again", maxFrameSize: 4096, auth: "none" }),
  encodeJson({ reason: NASTY }),
  new TextEncoder().encode('\ufeff{"reason":1,"reason":[[[[]]]]}'),
  new Uint8Array([0x7b, 0xff, 0x7d]),
  new Uint8Array(0),
  new TextEncoder().encode("[".repeat(600) + "]".repeat(600)),
  encodeJson({ nodeId: NASTY, maxFrameSize: 4096, auth: "none" }),
];

/** A request's tag: its op byte, the run and its id, unique per test. */
function tag(op: number, run: number, id: number): Uint8Array {
  return new Uint8Array([
    op,
    (run >> 8) & 0xff,
    run & 0xff,
    id >> 8,
    id & 0xff,
  ]);
}

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** What the node knows of the requests it got, across connections. */
class Ledger {
  /** Tags whose reply was sent with a length longer than it. */
  readonly stretched = new Set<string>();
  /** Every tag sent, to tell another request's reply. */
  readonly all = new Set<string>();

  /**
   * `value`, the reply a call got for `own`, is its own: the same bytes,
   * or (when its reply was stretched) bytes that begin with them.
   */
  check(label: string, own: Uint8Array, value: Uint8Array): void {
    assert.ok(
      own.length <= NODE_MAX_FRAME,
      `${label} over the node's limit got a reply`,
    );
    if (same(value, own)) return;
    const key = hex(own);
    if (
      this.stretched.has(key) && value.length > own.length &&
      same(value.subarray(0, own.length), own)
    ) return;
    assert.fail(
      `${label} got ${
        this.all.has(hex(value)) ? "another request's" : "a foreign"
      } reply ${hex(value.subarray(0, 16))} for ${key}`,
    );
  }
}

function pickOf(node: HostileNode, n: number, open = false) {
  const list = open ? node.received.filter((m) => !m.answered) : node.received;
  return list.length === 0 ? undefined : list[n % list.length];
}

function replyTo(m: Received): Uint8Array {
  return frame(
    m.type === MessageType.Ping ? MessageType.Pong : MessageType.Response,
    0,
    m.sequence,
    m.payload,
  );
}

function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function nodeActs(
  node: HostileNode,
  clock: VirtualClock,
  ledger: Ledger,
  a: NodeAction,
): Promise<void> {
  switch (a.k) {
    case "reply": {
      const m = pickOf(node, a.pick, true) ?? pickOf(node, a.pick);
      if (m === undefined) break;
      m.answered = true;
      node.sendBytes(replyTo(m));
      break;
    }
    case "duplicate": {
      const m = pickOf(node, a.pick);
      if (m === undefined) break;
      m.answered = true;
      node.sendBytes(join([replyTo(m), replyTo(m)]));
      break;
    }
    case "burst": {
      const open = node.received.filter((m) => !m.answered).slice(0, a.count);
      if (open.length === 0) break;
      if (a.reverse) open.reverse();
      const frames = open.map(replyTo);
      const channel = node.channel;
      const k = a.at % (frames.length + 1);
      for (const m of open.slice(0, k)) m.answered = true;
      if (a.cut === "none") {
        for (const m of open) m.answered = true;
        node.sendBytes(join(frames));
      } else if (a.cut === "goodbye") {
        // GOODBYE between the replies: those after it still count.
        for (const m of open) m.answered = true;
        node.sendBytes(join([
          ...frames.slice(0, k),
          frame(MessageType.Goodbye, 0, 0, new Uint8Array(0)),
          ...frames.slice(k),
        ]));
      } else if (a.cut === "midFrame") {
        // The stream ends inside a reply: part of it, then a close.
        const bytes = join(frames);
        node.sendBytes(bytes.subarray(0, a.at % bytes.length));
        channel?.close();
      } else {
        node.sendBytes(join(frames.slice(0, k)));
        if (a.cut === "close") channel?.close();
        else channel?.destroy();
      }
      break;
    }
    case "wrongType": {
      const m = pickOf(node, a.pick);
      if (m === undefined) break;
      node.send(
        m.type === MessageType.Ping ? MessageType.Response : MessageType.Pong,
        0,
        m.sequence,
        m.payload,
      );
      break;
    }
    case "badSequence": {
      const answered = node.received.find((m) => m.answered);
      const last = node.received.at(-1)?.sequence ?? 0;
      const sequence = [
        0,
        answered?.sequence ?? 0,
        last + 1,
        last + 1000 + a.far,
        2 ** 53 + a.far,
      ][a.which];
      node.send(
        a.type,
        0,
        sequence,
        a.type === MessageType.Error
          ? ERROR_PAYLOADS[a.far % ERROR_PAYLOADS.length]
          : new Uint8Array([0xbb, 0xbb]),
      );
      break;
    }
    case "header": {
      const m = pickOf(node, a.pick);
      if (m === undefined) break;
      const bytes = replyTo(m);
      if (a.field === "version") bytes[0] = a.value;
      else if (a.field === "type") bytes[1] = a.value;
      else new DataView(bytes.buffer).setUint16(2, a.value);
      node.sendBytes(bytes);
      break;
    }
    case "length": {
      const m = pickOf(node, a.pick, true);
      if (m === undefined) break;
      const type = m.type === MessageType.Ping
        ? MessageType.Pong
        : MessageType.Response;
      if (a.longer) {
        // A length past what follows: the frames after it are read as
        // its payload (or it is over the limit, and the stream fails).
        const length = Math.min(m.payload.length + a.delta, 2 ** 32 - 1);
        ledger.stretched.add(hex(m.payload));
        m.answered = true;
        node.sendBytes(frame(type, 0, m.sequence, m.payload, length));
      } else {
        // A length short of what follows: the reply is whole, and the
        // bytes left over (0xee, no version) break the stream.
        const pad = Math.min(a.delta, 40);
        m.answered = true;
        node.sendBytes(
          frame(
            type,
            0,
            m.sequence,
            join([m.payload, new Uint8Array(pad).fill(0xee)]),
            m.payload.length,
          ),
        );
      }
      break;
    }
    case "error": {
      const m = pickOf(node, a.pick, true);
      if (m !== undefined && !a.zero) m.answered = true;
      node.send(
        MessageType.Error,
        0,
        a.zero || m === undefined ? 0 : m.sequence,
        ERROR_PAYLOADS[a.payload % ERROR_PAYLOADS.length],
      );
      break;
    }
    case "control":
      node.send(
        a.type,
        0,
        a.sequence,
        CONTROL_PAYLOADS[a.payload % CONTROL_PAYLOADS.length],
      );
      break;
    case "nodePing":
      node.send(MessageType.Ping, 0, a.sequence, new Uint8Array(3));
      break;
    case "split":
      node.splits = a.cuts;
      node.byteByByte = a.byteByByte;
      break;
    case "advance":
      await clock.advance(a.ms);
      break;
  }
}

/** A call the caller made, and how long it may take. */
interface Call {
  label: string;
  boundMs: number;
  check: (value: unknown) => void;
  /** An error of the caller's own, passed through withConnection. */
  own?: Error;
  /** A payload over the node's limit: it must fail, never sent. */
  tooLarge?: boolean;
}

/**
 * A call over the node's limit fails: with INVALID_ARGUMENT once the
 * client knows the limit (with what it met before a connection when not).
 */
function assertRefused(label: string, ok: boolean, error: unknown): void {
  assert.ok(!ok, `${label}: a payload over the node's limit was answered`);
  assert.notEqual(
    (error as NodewireError).code,
    "REMOTE_ERROR",
    `${label}: sent: ${error}`,
  );
}

class CallerError extends Error {}

test("property: against a node whose sessions are mutated at random (headers, sequences, lengths, cut, duplicated and reordered replies, GOODBYE and closes mid-batch, garbled ERRORs and control frames), every request, requestMany, ping and withConnection settles in time with its own reply or a NodewireError with escaped text, nothing escapes, and disconnect leaves no timer, channel or in-flight count", async () => {
  const watch = watchEscapes();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(actionArb, { minLength: 1, maxLength: 40 }),
      fc.record({
        healthMs: fc.constantFrom(0, 100),
        maxRetries: fc.constantFrom(0, 2),
        maxConnections: fc.constantFrom(1, 2),
        disconnectMs: fc.constantFrom(1, 50, 2000),
        nodes: fc.constantFrom(1, 2),
        hedging: fc.boolean(),
      }),
      (actions, config) =>
        session(++run, actions, config).catch((error) => {
          if (process.env.TRACE) console.error("FAILED", error);
          throw error;
        }),
    ),
    {
      numRuns: Number(process.env.RUNS ?? 80),
      verbose: process.env.VERBOSE ? 2 : 0,
    },
  );
  assert.deepEqual(await watch.stop(), []);
});

interface SessionConfig {
  healthMs: number;
  maxRetries: number;
  maxConnections: number;
  disconnectMs: number;
  nodes: number;
  hedging: boolean;
}

async function session(
  run: number,
  actions: Action[],
  config: SessionConfig,
): Promise<void> {
  if (process.env.TRACE) {
    console.error("RUN", run, JSON.stringify([actions, config]));
  }
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = [await HostileNode.start(network)];
  if (config.nodes === 2) nodes.push(await HostileNode.start(network));
  const logged: LogEntry[] = [];
  const client = await drive(
    clock,
    Client.connect(nodes[0].clientConfig(clock, {
      hosts: nodes.map((n) => `127.0.0.1:${n.port}`),
      hedging: config.hedging
        ? { delayMs: HEDGE_DELAY_MS, maxHedges: 1 }
        : false,
      timeoutMs: 1000,
      requestTimeoutMs: 1000,
      maxFrameSize: CLIENT_MAX_FRAME,
      poolConfig: {
        minConnections: 1,
        maxConnections: config.maxConnections,
      },
      retryConfig: {
        maxRetries: config.maxRetries,
        initialBackoffMs: 10,
        maxBackoffMs: MAX_BACKOFF_MS,
      },
      healthConfig: {
        intervalMs: config.healthMs,
        timeoutMs: HEALTH_TIMEOUT_MS,
      },
      logger: (entry) => logged.push(entry),
    })),
  );
  const ledger = new Ledger();
  const tracker = new Tracker(clock);
  let disconnecting: Promise<void> | undefined;
  // A signal for one call in two (by `n`), that an "abort" may fire.
  const abortable = (n: number) => {
    if (n % 2 === 0) return undefined;
    const abort = new AbortController();
    aborts.push(abort);
    return abort.signal;
  };
  const calls: Call[] = [];
  const aborts: AbortController[] = [];
  const lent: Connection[] = [];
  let id = 0;
  const next = (op: number, size = 0) => {
    const t = tag(op, run, id++);
    // Most payloads small; some as large as the node takes, or one more.
    const length = PAYLOAD_SIZES[size % PAYLOAD_SIZES.length];
    const payload = new Uint8Array(Math.max(length, t.length)).fill(0x5a);
    payload.set(t);
    ledger.all.add(hex(payload));
    return payload;
  };
  // Attempts allowed, each within its timeout, with the waits between; a
  // hedge goes out HEDGE_DELAY_MS into an attempt, with a timeout of its own.
  const within = (timeoutMs: number, retry = true, idempotent = false) => {
    const attempts = retry ? config.maxRetries + 1 : 1;
    const hedge = config.hedging && idempotent ? HEDGE_DELAY_MS : 0;
    return attempts * (timeoutMs + hedge) + (attempts - 1) * MAX_BACKOFF_MS;
  };
  let requestsOk = 0;
  let requestsFailed = 0;
  const counted = <T>(p: Promise<T>) =>
    p.then(
      (v) => (requestsOk++, v),
      (e) => {
        requestsFailed++;
        throw e;
      },
    );
  for (const a of actions) {
    switch (a.k) {
      case "request": {
        const payload = next(0x72, a.size);
        const abort = a.abortable ? new AbortController() : undefined;
        if (abort) aborts.push(abort);
        const label = `r${id}`;
        calls.push({
          label,
          boundMs: within(a.timeoutMs, a.retry, a.idempotent),
          tooLarge: payload.length > NODE_MAX_FRAME,
          check: (v) => ledger.check(label, payload, v as Uint8Array),
        });
        tracker.track(
          label,
          counted(client.request(payload, {
            timeoutMs: a.timeoutMs,
            idempotent: a.idempotent,
            retry: a.retry,
            signal: abort?.signal,
          })),
        );
        break;
      }
      case "batch": {
        const list = Array.from(
          { length: a.count },
          (_, i) => next(0x62, a.size + 3 * i),
        );
        const label = `b${id}`;
        calls.push({
          label,
          boundMs: within(a.timeoutMs, true, a.idempotent),
          check: (v) => {
            const results = v as Awaited<
              ReturnType<Client["requestMany"]>
            >;
            assert.equal(results.length, list.length, label);
            for (const [i, r] of results.entries()) {
              if (list[i].length > NODE_MAX_FRAME) {
                assertRefused(`${label}[${i}]`, r.ok, r.ok ? 0 : r.error);
              }
              if (r.ok) {
                requestsOk++;
                ledger.check(`${label}[${i}]`, list[i], r.value);
              } else {
                requestsFailed++;
                assertTypedEscaped(`${label}[${i}]`, r.error);
              }
            }
          },
        });
        tracker.track(
          label,
          client.requestMany(list, {
            timeoutMs: a.timeoutMs,
            idempotent: a.idempotent,
            signal: abortable(a.size),
          }),
        );
        break;
      }
      case "ping": {
        const label = `p${id++}`;
        calls.push({
          label,
          boundMs: a.timeoutMs,
          check: (v) =>
            assert.equal(
              typeof (v as { latencyMs: number }).latencyMs,
              "number",
            ),
        });
        tracker.track(label, client.ping({ timeoutMs: a.timeoutMs }));
        break;
      }
      case "lend": {
        const list = Array.from({ length: a.count }, () => next(0x6c));
        const label = `l${id}`;
        const own = a.fail ? new CallerError(label) : undefined;
        calls.push({
          label,
          // The acquire is retried like a request; the caller's
          // requests on the connection each within their timeout.
          boundMs: within(a.timeoutMs) + a.timeoutMs,
          own,
          check: (v) => {
            const outcomes = v as PromiseSettledResult<Uint8Array>[];
            for (const [i, r] of outcomes.entries()) {
              if (r.status === "fulfilled") {
                ledger.check(`${label}[${i}]`, list[i], r.value);
              } else assertTypedEscaped(`${label}[${i}]`, r.reason);
            }
          },
        });
        tracker.track(
          label,
          client.withConnection(async (connection) => {
            lent.push(connection);
            const outcomes = await Promise.allSettled(
              list.map((p) =>
                connection.sendRequest(p, { timeoutMs: a.timeoutMs })
              ),
            );
            if (own) throw own;
            return outcomes;
          }, { timeoutMs: a.timeoutMs, signal: abortable(a.count) }),
        );
        break;
      }
      case "abort":
        if (aborts.length > 0) aborts[a.pick % aborts.length].abort();
        break;
      case "health": {
        const label = `h${id++}`;
        calls.push({
          label,
          // Every node pinged at once, each within the health timeout.
          boundMs: HEALTH_TIMEOUT_MS,
          check: (v) => {
            for (const r of v as HealthCheckResult[]) {
              if (r.ok) assert.equal(typeof r.latencyMs, "number", label);
              else assertTypedEscaped(`${label} ${r.address}`, r.error);
            }
          },
        });
        tracker.track(label, client.healthCheckAllNodes());
        break;
      }
      case "disconnect":
        // Calls in flight settle as the disconnect lets them; calls
        // after it fail with CLIENT_CLOSED. Checked like the others.
        disconnecting ??= client.disconnect({ timeoutMs: a.timeoutMs });
        break;
      case "on":
        await nodeActs(nodes[a.node % nodes.length], clock, ledger, a.act);
    }
    await clock.advance(0);
  }
  // The caller's calls end on their own, before any disconnect.
  await drive(clock, tracker.settled(), 20_000);
  for (const [i, t] of tracker.all.entries()) {
    const call = calls[i];
    assert.equal(t.settledCount, 1, t.label);
    const took = t.settledAt! - t.startedAt;
    assert.ok(
      took <= call.boundMs,
      `${t.label} settled after ${took} ms, past its ${call.boundMs}`,
    );
    if (call.tooLarge) assertRefused(t.label, t.ok, t.error);
    if (t.ok) call.check(t.value);
    else if (call.own !== undefined && t.error === call.own) continue;
    else assertTypedEscaped(t.label, t.error);
  }
  // A hedge that lost is left to finish: its node carries it until its
  // reply or its timeout (at most 1000 ms).
  await clock.advance(1000);
  const before = client.stats();
  assert.equal(before.inFlight, 0, "requests left in flight");
  for (const n of before.nodes) {
    assert.equal(n.inFlight, 0, `${n.address} has requests in flight`);
    // The health loop's pings count in the pool's numbers while it runs.
    if (config.healthMs > 0) continue;
    assert.equal(n.pool.inUse, 0, `${n.address} has a connection lent`);
    assert.equal(n.pool.inFlight, 0, `${n.address}'s pool in flight`);
    assert.equal(n.pool.waiting, 0, `${n.address} has waiters`);
  }
  if (disconnecting === undefined) {
    // (After disconnect() a call is refused before it counts.)
    assert.equal(before.succeeded, requestsOk, "succeeded miscounted");
    assert.equal(before.failed, requestsFailed, "failed miscounted");
  }
  for (const connection of config.healthMs > 0 ? [] : lent) {
    assert.equal(connection.inFlight, 0, "a lent connection in flight");
  }
  const started = clock.now();
  await drive(
    clock,
    Promise.all([
      disconnecting,
      client.disconnect({ timeoutMs: config.disconnectMs }),
    ]),
    10_000,
  );
  // Nothing is in flight: the wait is for the sockets to close.
  assert.ok(
    clock.now() - started <= 1000,
    `disconnect took ${clock.now() - started} ms`,
  );
  await clock.advance(0);
  const after = client.stats();
  assert.equal(after.inFlight, 0);
  for (const n of after.nodes) {
    assert.equal(n.inFlight, 0, `${n.address} has requests in flight`);
    assert.equal(n.pool.inUse, 0, `${n.address} has a connection lent`);
    assert.equal(n.pool.inFlight, 0, `${n.address}'s pool in flight`);
    assert.equal(n.pool.waiting, 0, `${n.address} has waiters`);
    assert.equal(n.pool.open, 0, `${n.address} keeps a connection`);
    assert.equal(n.pool.connecting, 0, `${n.address} still connects`);
  }
  assert.equal(clock.pendingTimers, 0, "a timer is left armed");
  const nodeSide = nodes.reduce((n, node) => n + node.open.size, 0);
  assert.equal(
    network.openChannels - nodeSide,
    0,
    "a client channel is left open",
  );
  for (const node of nodes) {
    assert.deepEqual(node.violations, [], "the client broke the protocol");
  }
  // What the node sent shows escaped in log lines too.
  for (const entry of logged) {
    assert.ok(
      !RAW.test(entry.message),
      `raw control text in the log line ${JSON.stringify(entry.message)}`,
    );
    for (const message of messagesOf(entry.error)) {
      assert.ok(!RAW.test(message), `raw text in ${JSON.stringify(message)}`);
    }
  }
  for (const node of nodes) await node.close();
  await clock.advance(0);
  assert.equal(network.openChannels, 0, "a channel is left open");
}

// ------------------------------------------------------------- handshake

const text = (s: string) => new TextEncoder().encode(s);
const nest = (depth: number, inner = "") =>
  "[".repeat(depth) + inner + "]".repeat(depth);

/**
 * Field values of a HELLO_OK, as JSON text by name (so that a failing
 * case prints short), including what JSON.stringify never writes:
 * duplicate keys, nesting deeper than any stack.
 */
const FIELD_TEXT: Record<string, string> = {
  n1: '"n1"',
  none: '"none"',
  size: "4096",
  tcp: '["tcp"]',
  udpBatch: '["udp-batch"]',
  idTwiceEscape: '"n1","nodeId":"\\u001b[2J"',
  idTwiceNumber: '"n1","nodeId":5',
  hugeString: `"${"x".repeat(100_000)}"`,
  object: "{}",
  deep: nest(200_000),
  deepNumber: nest(200_000, "4096"),
  deepNone: nest(200_000, '"none"'),
  deepInArray: '["tcp",' + nest(200_000) + "]",
  sizeTwice: '4096,"maxFrameSize":"4096"',
  // Not JSON: a parser's message quotes it.
  bareEscape: "\u001b[2J\u001b]0;title\u0007",
  infinite: "1e400",
  minusInfinite: "-1e400",
  minusZero: "-0",
  digits: `"${"9".repeat(50_000)}"`,
  valueOf: '{"valueOf":4096}',
  authTwice: '"none","auth":null',
  escape: '"\\u001b[31m\\u202e"',
  arrayLike: '{"0":"tcp","length":1}',
  repeated: '["x","x","x"]',
  tcpUdp: '["tcp","udp"]',
  tcpName: '"tcp"',
  port: "7001",
  token: '"000102030405060708090a0b0c0d0e0f"',
};

const mostly = (usual: string, ...odd: string[]) =>
  fc.oneof(
    { weight: 2 * odd.length, arbitrary: fc.constant(usual) },
    ...odd.map((v) => ({ weight: 1, arbitrary: fc.constant(v) })),
  );
const helloOkTextArb = fc.record({
  bom: fc.boolean(),
  nodeId: mostly(
    "n1",
    "idTwiceEscape",
    "idTwiceNumber",
    "hugeString",
    "object",
    "deep",
    "bareEscape",
  ),
  maxFrameSize: mostly(
    "size",
    "sizeTwice",
    "infinite",
    "minusZero",
    "digits",
    "deepNumber",
    "valueOf",
  ),
  auth: mostly("none", "authTwice", "escape", "deepNone", "hugeString"),
  protocols: mostly(
    "tcpUdp",
    "absent",
    "tcp",
    "deep",
    "deepInArray",
    "arrayLike",
  ),
  features: mostly("absent", "udpBatch", "deep", "repeated"),
});

/** NEGOTIATE_OK's fields, by name as above: asked for when both list udp. */
const negotiateOkTextArb = fc.record({
  protocols: mostly("tcpUdp", "deep", "arrayLike", "hugeString"),
  selected: mostly("tcpName", "deep", "deepNone", "hugeString", "escape"),
  udpPort: mostly(
    "absent",
    "port",
    "deepNumber",
    "digits",
    "valueOf",
    "bareEscape",
  ),
  udpToken: mostly("absent", "token", "hugeString", "deep", "escape"),
});

function jsonText(fields: Record<string, string>): Uint8Array {
  const parts = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value !== "absent") parts.push(`"${name}":${FIELD_TEXT[value]}`);
  }
  return text(`{${parts.join(",")}}`);
}

function helloOkText(h: {
  bom: boolean;
  nodeId: string;
  maxFrameSize: string;
  auth: string;
  protocols: string;
  features: string;
}): Uint8Array {
  const fields = [];
  for (
    const name of [
      "nodeId",
      "maxFrameSize",
      "auth",
      "protocols",
      "features",
    ] as const
  ) {
    if (h[name] !== "absent") fields.push(`"${name}":${FIELD_TEXT[h[name]]}`);
  }
  return text(`${h.bom ? "\ufeff" : ""}{${fields.join(",")}}`);
}

test("property: a HELLO_OK or NEGOTIATE_OK with duplicate keys, a BOM, huge strings, values of the wrong type or nested past any stack: Connection.connect and Client.connect settle in time, with a connection or a NodewireError whose message shows the node's text escaped, and leave no timer and no channel", async () => {
  const watch = watchEscapes();
  await fc.assert(
    fc.asyncProperty(
      helloOkTextArb,
      negotiateOkTextArb,
      fc.constantFrom("connection", "client"),
      async (hello, negotiated, via) => {
        const network = createMemoryNetwork();
        const clock = new VirtualClock();
        const node = await HostileNode.start(network, {
          helloOk: helloOkText(hello),
          negotiateOk: jsonText(negotiated),
        });
        const protocols = ["tcp", "udp"] as ("tcp" | "udp")[];
        const opening: Promise<Connection | Client> = via === "client"
          ? Client.connect(node.clientConfig(clock, {
            timeoutMs: 1000,
            protocols,
            healthConfig: { intervalMs: 0 },
            retryConfig: { maxRetries: 0 },
          }))
          : node.connect(clock, {
            timeoutMs: 1000,
            handshake: createHandshake({
              protocols,
              transports: { udp: () => Promise.resolve() },
            }),
          });
        const tracker = new Tracker(clock);
        const t = tracker.track("connect", opening);
        await drive(clock, t.done, 5000);
        tracker.assertSettled(via === "client" ? 2000 : 1000);
        if (t.value instanceof Client) {
          await drive(clock, t.value.disconnect(), 5000);
        } else if (t.ok) {
          await drive(clock, (t.value as Connection).close(), 5000);
        } else {
          assertTypedEscaped("connect", t.error);
        }
        await clock.advance(0);
        assert.equal(clock.pendingTimers, 0, "a timer is left armed");
        assert.equal(network.openChannels, 0, "a channel is left open");
        await node.close();
      },
    ),
    {
      numRuns: Number(process.env.RUNS ?? 60),
      verbose: process.env.VERBOSE ? 2 : 0,
    },
  );
  assert.deepEqual(await watch.stop(), []);
});

test("parseUdpToken refuses what is no token with a ProtocolError whose message quotes it short: a string of a million characters is cut, an array nested past the stack is named, never a RangeError", () => {
  const huge = "z".repeat(1_000_000);
  const deep = JSON.parse(nest(200_000));
  for (const value of [huge, deep, "\u001b[2J", 5n]) {
    assert.throws(
      () => parseUdpToken(value),
      (error: unknown) => {
        assertTypedEscaped("parseUdpToken", error);
        assert.equal((error as NodewireError).code, "PROTOCOL_ERROR");
        assert.ok(
          (error as Error).message.length < 200,
          `a message of ${(error as Error).message.length} characters`,
        );
        return true;
      },
    );
  }
});

test("property: a lazy client whose first connect meets a hostile handshake: request, requestMany, ping and withConnection made at once each settle in time, typed and escaped, and disconnect leaves no timer, channel or in-flight count", async () => {
  const watch = watchEscapes();
  await fc.assert(
    fc.asyncProperty(
      helloOkTextArb,
      negotiateOkTextArb,
      fc.array(
        fc.constantFrom("request", "batch", "ping", "lend", "advance"),
        { minLength: 1, maxLength: 8 },
      ),
      fc.constantFrom(20, 1000),
      async (hello, negotiated, calls, timeoutMs) => {
        const network = createMemoryNetwork();
        const clock = new VirtualClock();
        const node = await HostileNode.start(network, {
          helloOk: helloOkText(hello),
          negotiateOk: jsonText(negotiated),
        });
        const client = await Client.connect(
          node.clientConfig(clock, {
            timeoutMs: 1000,
            requestTimeoutMs: 1000,
            protocols: ["tcp", "udp"],
            healthConfig: { intervalMs: 0 },
            retryConfig: { maxRetries: 0 },
          }),
          { lazy: true },
        );
        const tracker = new Tracker(clock);
        const payload = new Uint8Array([1, 2, 3]);
        for (const [i, call] of calls.entries()) {
          const label = `${call}${i}`;
          if (call === "request") {
            tracker.track(label, client.request(payload, { timeoutMs }));
          } else if (call === "batch") {
            tracker.track(
              label,
              client.requestMany([payload, payload], { timeoutMs }).then(
                (results) => {
                  for (const r of results) {
                    if (!r.ok) assertTypedEscaped(label, r.error);
                  }
                },
              ),
            );
          } else if (call === "ping") {
            tracker.track(label, client.ping({ timeoutMs }));
          } else if (call === "lend") {
            tracker.track(
              label,
              client.withConnection(
                (connection) => connection.sendRequest(payload, { timeoutMs }),
                { timeoutMs },
              ),
            );
          } else await clock.advance(10);
        }
        await drive(clock, tracker.settled(), 20_000);
        for (const t of tracker.all) {
          assert.equal(t.settledCount, 1, t.label);
          if (process.env.TRACE) {
            console.error(t.label, t.settledAt! - t.startedAt, String(t.error));
          }
          // Waiting for the connect, then the attempt (the node never
          // answers a request): each within timeoutMs.
          assert.ok(
            t.settledAt! - t.startedAt <= 2 * timeoutMs,
            `${t.label} took ${t.settledAt! - t.startedAt} ms`,
          );
          if (!t.ok) assertTypedEscaped(t.label, t.error);
        }
        await drive(clock, client.disconnect({ timeoutMs: 10 }), 5000);
        await clock.advance(0);
        const stats = client.stats();
        assert.equal(stats.inFlight, 0, "requests left in flight");
        for (const n of stats.nodes) {
          assert.equal(n.inFlight, 0);
          assert.equal(n.pool.open + n.pool.connecting + n.pool.waiting, 0);
        }
        assert.equal(clock.pendingTimers, 0, "a timer is left armed");
        assert.equal(network.openChannels - node.open.size, 0);
        await node.close();
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

test("a number JSON cannot write back (1e400 parses to Infinity) is named as it is in the ProtocolError, not as null: HELLO_OK maxFrameSize and NEGOTIATE_OK udpPort", async () => {
  const cases = [
    {
      hello: { maxFrameSize: "infinite" },
      negotiated: {},
      expected: /HELLO_OK maxFrameSize is Infinity,/,
    },
    {
      hello: {},
      negotiated: { udpPort: "minusInfinite" },
      expected: /NEGOTIATE_OK udpPort -Infinity is not a port/,
    },
  ];
  for (const { hello, negotiated, expected } of cases) {
    const network = createMemoryNetwork();
    const clock = new VirtualClock();
    const node = await HostileNode.start(network, {
      helloOk: helloOkText({
        bom: false,
        nodeId: "n1",
        maxFrameSize: "size",
        auth: "none",
        protocols: "tcpUdp",
        features: "absent",
        ...hello,
      }),
      negotiateOk: jsonText({
        protocols: "tcpUdp",
        selected: "tcpName",
        udpPort: "port",
        udpToken: "token",
        ...negotiated,
      }),
    });
    const outcome = await drive(
      clock,
      node.connect(clock, {
        timeoutMs: 1000,
        handshake: createHandshake({
          protocols: ["tcp", "udp"],
          transports: { udp: () => Promise.resolve() },
        }),
      }).then(() => undefined, (error: unknown) => error),
    );
    assert.ok(
      outcome instanceof ProtocolError && expected.test(outcome.message),
      `expected ${expected}, got ${outcome}`,
    );
    await endsClean(clock, node);
  }
});

// ------------------------------------------------------------ connection

type ConnectionAction =
  | { k: "request"; timeoutMs: number; abortable: boolean; size: number }
  | { k: "ping"; timeoutMs: number }
  | { k: "abort"; pick: number }
  | { k: "on"; act: NodeAction };

const connectionActionArb: fc.Arbitrary<ConnectionAction> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("request" as const),
      timeoutMs: timeoutArb,
      abortable: fc.boolean(),
      size: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("ping" as const),
      timeoutMs: timeoutArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("abort" as const), pick: fc.nat() }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ k: fc.constant("on" as const), act: nodeActionArb }),
  },
);

test("property: Connection (core) under the same mutated sessions: each sendRequest and ping settles within its own timeout with its own reply or a NodewireError with escaped text, and close or destroy leaves nothing in flight, no timer and no channel", async () => {
  const watch = watchEscapes();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(connectionActionArb, { minLength: 1, maxLength: 40 }),
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
        const ledger = new Ledger();
        const tracker = new Tracker(clock);
        const bounds: number[] = [];
        const checks: ((value: unknown) => void)[] = [];
        const aborts: AbortController[] = [];
        let id = 0;
        for (const a of actions) {
          switch (a.k) {
            case "request": {
              const t = tag(0x43, run, id++);
              const length = PAYLOAD_SIZES[a.size % PAYLOAD_SIZES.length];
              const payload = new Uint8Array(Math.max(length, t.length));
              payload.fill(0x5a).set(t);
              ledger.all.add(hex(payload));
              const abort = a.abortable ? new AbortController() : undefined;
              if (abort) aborts.push(abort);
              const label = `c${id}`;
              bounds.push(a.timeoutMs);
              checks.push((v) => ledger.check(label, payload, v as Uint8Array));
              tracker.track(
                label,
                connection.sendRequest(payload, {
                  timeoutMs: a.timeoutMs,
                  signal: abort?.signal,
                }),
              );
              break;
            }
            case "ping":
              bounds.push(a.timeoutMs);
              checks.push((v) => assert.equal(typeof v, "number"));
              tracker.track(
                `p${id++}`,
                connection.ping({ timeoutMs: a.timeoutMs }),
              );
              break;
            case "abort":
              if (aborts.length > 0) aborts[a.pick % aborts.length].abort();
              break;
            case "on":
              await nodeActs(node, clock, ledger, a.act);
          }
          await clock.advance(0);
        }
        await drive(clock, tracker.settled(), 5000);
        for (const [i, t] of tracker.all.entries()) {
          assert.equal(t.settledCount, 1, t.label);
          const took = t.settledAt! - t.startedAt;
          assert.ok(took <= bounds[i], `${t.label} took ${took} ms`);
          if (t.ok) checks[i](t.value);
          else assertTypedEscaped(t.label, t.error);
        }
        assert.equal(connection.inFlight, 0, "requests left in flight");
        const ended: Promise<unknown> = end === "close"
          ? connection.close()
          : (connection.destroy(), connection.closed);
        await drive(clock, ended, 5000);
        await clock.advance(0);
        assert.equal(connection.timerArmed, false);
        assert.equal(clock.pendingTimers, 0, "a timer is left armed");
        assert.equal(network.openChannels - node.open.size, 0);
        assert.deepEqual(node.violations, [], "the client broke the protocol");
        await node.close();
        assert.equal(network.openChannels, 0, "a channel is left open");
      },
    ),
    {
      numRuns: Number(process.env.RUNS ?? 60),
      verbose: process.env.VERBOSE ? 2 : 0,
    },
  );
  assert.deepEqual(await watch.stop(), []);
});

test("a HELLO_OK or NEGOTIATE_OK that is no JSON, starting with a terminal escape: the ProtocolError names the parser's complaint with the node's bytes escaped, and nothing under it (no cause, no stack) holds them raw", async () => {
  const bytes = text("\u001b[2J\u001b]0;pwned\u0007 not json");
  for (const script of [{ helloOk: bytes }, { negotiateOk: bytes }]) {
    const network = createMemoryNetwork();
    const clock = new VirtualClock();
    const node = await HostileNode.start(network, {
      ...(script.negotiateOk
        ? {
          helloOk: helloOkText({
            bom: false,
            nodeId: "n1",
            maxFrameSize: "size",
            auth: "none",
            protocols: "tcpUdp",
            features: "absent",
          }),
        }
        : {}),
      ...script,
    });
    const outcome = await drive(
      clock,
      node.connect(clock, {
        timeoutMs: 1000,
        handshake: createHandshake({
          protocols: ["tcp", "udp"],
          transports: { udp: () => Promise.resolve() },
        }),
      }).then(() => undefined, (error: unknown) => error),
    );
    assert.ok(outcome instanceof ProtocolError, `got ${outcome}`);
    assert.match(outcome.message, /payload is not UTF-8 JSON/);
    assertTypedEscaped("connect", outcome);
    for (let e: unknown = outcome; e instanceof Error; e = e.cause) {
      // A stack is lines: the message's line, then where it was thrown.
      for (const line of String(e.stack).split("\n")) {
        assert.ok(!RAW.test(line), `raw text in ${JSON.stringify(line)}`);
      }
    }
    await endsClean(clock, node);
  }
});

// ------------------------------------------------------------------- tls

test("a node's certificate names quoted by the runtime (Deno's rustls: certificate is only valid for DnsName(\"evil<ESC>]0;pwn<BEL>\")) reach no TlsError or ConnectionLostError raw: the cause keeps its name and code, its message escaped", () => {
  const endpoint = { hostname: "localhost", port: 7000 };
  const deno = Object.assign(
    new Error(
      'invalid peer certificate: certificate not valid for name "localhost"; ' +
        'certificate is only valid for DnsName("evil\u001b]0;pwn\u0007.example")',
    ),
    { name: "InvalidData" },
  );
  const lost = Object.assign(new Error("connection reset \u001b[2J"), {
    code: "ECONNRESET",
  });
  for (const raw of [deno, lost]) {
    const error = toTlsError(raw, endpoint, "localhost");
    assertTypedEscaped("toTlsError", error);
    const cause = error.cause as Error & { code?: unknown };
    assert.ok(cause instanceof Error);
    assert.equal(cause.name, raw.name);
    assert.equal(cause.code, (raw as { code?: unknown }).code);
  }
  // A cause with nothing to escape is kept as it is.
  const plain = new Error("certificate has expired");
  assert.equal(toTlsError(plain, endpoint, "localhost").cause, plain);
});
