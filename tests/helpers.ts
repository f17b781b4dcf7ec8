// Helpers shared by several test files. Not a test file itself: the suite
// finds tests by the `.test.ts` suffix, which this name does not have.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Scene } from "./support/fault_scene.ts";
import type { Tracked } from "./support/fault_harness.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { FrameWriter } from "../src/connection/frame_writer.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";

/** The runtime globals the leak tests look at, where the runtime has them. */
export const runtimeGlobals = globalThis as {
  Deno?: {
    test(t: {
      name: string;
      sanitizeOps: boolean;
      sanitizeResources: boolean;
      fn: () => Promise<void>;
    }): void;
  };
  Bun?: unknown;
  process?: { getActiveResourcesInfo?: () => string[]; execPath: string };
};

/** A small seeded generator (mulberry32), so a failing seed replays. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The fault rows' health loop: a ping a second, 300 ms to answer; a node is
 * out after two misses and back after one answer.
 */
export const rowHealth = {
  intervalMs: 1000,
  timeoutMs: 300,
  unhealthyThreshold: 2,
  healthyThreshold: 1,
};

/** Checks what a fault scene's `finish()` counted: nothing left, nothing escaped. */
export function assertClean(
  result: { openChannels: number; liveTimers: number; escaped: unknown[] },
): void {
  assert.equal(
    result.openChannels,
    0,
    "every channel the client opened is closed",
  );
  assert.equal(result.liveTimers, 0, "every timer the client set is gone");
  assert.deepEqual(result.escaped, [], "no error escaped to the process");
}

/**
 * Starts a tracked request in a fault scene whose reply must echo `data`;
 * a reply handed to the wrong request is recorded as an escaped error, so
 * the row's `assertClean` fails.
 */
export function send(
  s: Scene,
  data: string,
  options: { idempotent?: boolean; sleepMs?: number; timeoutMs?: number } = {},
): Tracked<Uint8Array> {
  const payload = options.sleepMs === undefined
    ? ops.echo(data)
    : ops.sleep(options.sleepMs, data);
  const tracked = s.tracker.track(
    data,
    s.client.request(payload, {
      idempotent: options.idempotent,
      timeoutMs: options.timeoutMs,
    }),
  );
  tracked.done.then(() => {
    if (!tracked.ok) return;
    const got = new TextDecoder().decode(
      decodeReply(tracked.value as Uint8Array).data,
    );
    if (got !== data) {
      s.escapes.escaped.push(new Error(`${data} got the reply for ${got}`));
    }
  });
  return tracked;
}

/** The node that answered a tracked request. */
export const nodeOf = (t: { value: unknown }): string =>
  decodeReply(t.value as Uint8Array).nodeId;

/**
 * Plays a node on `channel` that answers HELLO and agrees to TLS in its
 * NEGOTIATE_OK, then leaves the channel to the test: `afterAgreeing` runs
 * right after NEGOTIATE_OK is queued (to slip bytes in behind it), and
 * every later chunk goes to `onSwitched` instead of the codec.
 */
export function agreeToTls(
  channel: ByteChannel,
  options: {
    nodeId: string;
    protocols: string[];
    afterAgreeing?: (writer: FrameWriter) => void;
    onSwitched?: (chunk: Uint8Array) => void;
  },
): void {
  const codec = new MessageCodec();
  const writer = new FrameWriter(channel);
  const { protocols } = options;
  let switched = false;
  channel.onData((chunk) => {
    if (switched) return options.onSwitched?.(chunk);
    codec.decode(chunk, (m) => {
      if (m.type === MessageType.Hello) {
        writer.push(
          MessageType.HelloOk,
          0,
          m.sequence,
          encodeJson({
            nodeId: options.nodeId,
            maxFrameSize: 1 << 20,
            auth: "none",
            protocols,
          }),
        );
      } else if (m.type === MessageType.Negotiate) {
        writer.push(
          MessageType.NegotiateOk,
          0,
          m.sequence,
          encodeJson({ protocols, selected: "tls" }),
        );
        options.afterAgreeing?.(writer);
        switched = true;
      }
    });
  });
}

/**
 * Connects to 127.0.0.1:`port` with the `startsTls` hint: on Deno the
 * channel is then a `Deno.Conn`'s, upgraded by `Deno.startTls`.
 */
export function connectHinted(
  adapter: RuntimeAdapter,
  port: number,
): Promise<ByteChannel> {
  return adapter.connect({ hostname: "127.0.0.1", port, startsTls: true });
}

/** A fixture of `scripts/gen-test-certs.sh` (testing/certs/), as text. */
export function pem(name: string): string {
  return readFileSync(
    new URL(`../testing/certs/${name}`, import.meta.url),
    "utf8",
  );
}

/**
 * Counts the calls of `Deno.startTls` (on Deno; elsewhere there are none):
 * `hook.calls`, and `hook.onCall` runs right after each call. `restore()`
 * puts the original back.
 */
export function hookStartTls() {
  const hook = { calls: 0, onCall: undefined as (() => void) | undefined };
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno === undefined) return { hook, restore: () => {} };
  const original = deno.startTls;
  deno.startTls = ((...args: Parameters<typeof Deno.startTls>) => {
    hook.calls++;
    const pending = original(...args);
    hook.onCall?.();
    return pending;
  }) as typeof Deno.startTls;
  return { hook, restore: () => (deno.startTls = original) };
}
