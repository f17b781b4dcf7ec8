// A connection reads a sink's `method` (the public method a request came
// through) only to word its refusal of an oversized payload. A /core
// caller's sink whose getter throws must not turn that refusal into a
// throw: submitRequest threw the getter's error at its caller instead of
// telling the sink, and submitBatch threw halfway through its run, after
// sending what came before the refused item (whose replies then came
// anyway) and before sending what came after it (never sent, never told).
// Over the in-memory network; the node answers at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import type { BatchReplySink, ReplySink } from "../src/connection/types.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { fc } from "./support/fc.ts";

const LIMIT = 1024;

async function withConnection(
  body: (connection: Connection) => Promise<void>,
): Promise<void> {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network, maxFrameSize: LIMIT });
  const connection = await Connection.connect({
    adapter: network,
    hostname: "127.0.0.1",
    port: node.port,
  });
  try {
    await body(connection);
  } finally {
    await connection.close();
    await node.close();
  }
}

/** Each sequence's outcomes, a reply's text or an error's message. */
type Outcomes = Map<number, string[]>;

function record(outcomes: Outcomes, sequence: number, what: string): void {
  outcomes.set(sequence, [...(outcomes.get(sequence) ?? []), what]);
}

function throwingMethod(): never {
  throw new Error("the sink's method getter broke");
}

test("Connection.submitRequest tells a sink whose method getter throws of its oversized payload, instead of throwing the getter's error", async () => {
  await withConnection((connection) => {
    const errors: Error[] = [];
    const sink: ReplySink = {
      onReply: () => assert.fail("an oversized payload got a reply"),
      onError: (error) => void errors.push(error),
      get method(): string {
        return throwingMethod();
      },
    };
    assert.doesNotThrow(() =>
      connection.submitRequest(new Uint8Array(LIMIT + 1), undefined, sink)
    );
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof InvalidArgumentError, String(errors[0]));
    assert.equal(errors[0].argument, "payload");
    assert.match(errors[0].message, /expected at most 1024 bytes/);
    return Promise.resolve();
  });
});

test("Connection.submitBatch with a sink whose method getter throws sends the whole run, refusing only the oversized item: every item has one outcome", async () => {
  await withConnection(async (connection) => {
    const outcomes: Outcomes = new Map();
    let settled = 0;
    let allSettled!: () => void;
    const done = new Promise<void>((resolve) => (allSettled = resolve));
    const count = (sequence: number | undefined, what: string) => {
      record(outcomes, sequence ?? -1, what);
      if (++settled === 3) allSettled();
    };
    const sink: BatchReplySink = {
      first: 0,
      onReply: (payload, sequence) => count(sequence, replyText(payload)),
      onError: (error, sequence) => count(sequence, error.message),
      get method(): string {
        return throwingMethod();
      },
    };
    const payloads = [
      ops.echo("before"),
      new Uint8Array(LIMIT + 1),
      ops.echo("after"),
    ];
    let refused: Error | undefined;
    assert.doesNotThrow(() => {
      refused = connection.submitBatch(payloads, 0, 3, {}, sink);
    });
    assert.equal(refused, undefined);
    await done;
    const first = sink.first;
    assert.deepEqual(outcomes.get(first), ["before"]);
    assert.equal(outcomes.get(first + 1)?.length, 1);
    assert.match(outcomes.get(first + 1)![0], /expected at most 1024 bytes/);
    assert.deepEqual(outcomes.get(first + 2), ["after"]);
    assert.equal(connection.stats.sent, 2, "both small items counted sent");
  });
});

test("a sink's method is foreign text: whatever string it gives, the refusal's message shows it escaped and clipped (a newline or an escape sequence went into the message raw, and any length)", async () => {
  await withConnection((connection) => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 40 }),
          fc.constantFrom("x\u001b[2J\nforged: log line", "y".repeat(10_000)),
        ),
        (method) => {
          const errors: Error[] = [];
          const sink: ReplySink = {
            onReply: () => assert.fail("an oversized payload got a reply"),
            onError: (error) => void errors.push(error),
            method,
          };
          connection.submitRequest(new Uint8Array(LIMIT + 1), undefined, sink);
          assert.equal(errors.length, 1);
          const { message } = errors[0];
          assert.ok(
            !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u.test(message),
            message,
          );
          assert.ok(message.length < 400, `${message.length} characters`);
        },
      ),
    );
    return Promise.resolve();
  });
});
