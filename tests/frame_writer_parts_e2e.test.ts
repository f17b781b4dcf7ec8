// Many callers on one connection to the reference node, on the memory
// network and on loopback TCP, with aborts and timeouts in the ticks whose
// frames go out in parts (frame_writer.ts): every call settles once, as
// it should, and a request aborted in its own tick ran on the node exactly
// when a part had taken its frame before the abort.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { DIRECT_PAYLOAD_BYTES } from "../src/connection/frame_writer.ts";
import type { BatchReplySink } from "../src/connection/types.ts";
import {
  AbortedError,
  RemoteError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { within } from "./support/within.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** What a caller sends, in the order of a round's pattern. */
const KINDS = [
  "echo",
  "abortable",
  "put",
  "abortable",
  "slow",
  "batch",
] as const;
type Kind = typeof KINDS[number];

const SLOW_MS = 100;
const TIMEOUT_MS = 50;
const BATCH = 5;

/** A round: how many callers, and after how many the signal aborts. */
const ROUNDS = [
  { callers: 12, abortAfter: 8 },
  { callers: 150, abortAfter: 70 },
  { callers: 40, abortAfter: 39 },
  { callers: 200, abortAfter: 3 },
  { callers: 90, abortAfter: 90 },
];

async function scene(adapter: RuntimeAdapter) {
  const clock = new VirtualClock();
  const node = await startTestNode({ nodeId: "n", runtime: adapter, clock });
  const connection = await Connection.connect({
    adapter,
    hostname: node.hostname,
    port: node.port,
    clock,
    requestTimeoutMs: 10_000,
  });
  try {
    await growSlab(connection);
    await rounds(connection, clock);
  } finally {
    connection.destroy();
    await node.close();
  }
}

/**
 * Requests that grow the connection's slab to its largest size: a slab
 * that fills goes in a write of its own in the middle of a tick, which
 * would send a round's first frames before its abort without any part.
 */
async function growSlab(connection: Connection) {
  const large = ops.echo("w".repeat(DIRECT_PAYLOAD_BYTES - 64));
  await Promise.all(
    Array.from({ length: 5 }, () => connection.sendRequest(large)),
  );
}

/** The rounds of callers on `connection`, then what their aborts left. */
async function rounds(connection: Connection, clock: VirtualClock) {
  // Keys of the abortable puts, round by round, in the order sent.
  const abortable: string[][] = [];
  let key = 0;
  for (const [r, { callers, abortAfter }] of ROUNDS.entries()) {
    const controller = new AbortController();
    const keys: string[] = [];
    abortable.push(keys);
    const checks: Promise<void>[] = [];
    const failures: unknown[] = [];
    for (let i = 0; i < callers; i++) {
      if (i === abortAfter) controller.abort(new Error("test: enough"));
      const kind: Kind = KINDS[(i + r) % KINDS.length];
      const id = `r${r}k${key++}`;
      checks.push(
        call(connection, kind, id, controller.signal, keys).catch((error) =>
          void failures.push(error)
        ),
      );
    }
    // In the same tick, at the latest.
    controller.abort(new Error("test: enough"));
    await tickEnds();
    await clock.advance(TIMEOUT_MS);
    await clock.advance(SLOW_MS);
    await within(10_000, `round ${r}'s calls`, Promise.all(checks));
    assert.deepEqual(failures, [], `round ${r}`);
  }
  // Which abortable puts ran: those a part had handed to the socket before
  // the abort, in each round a first few of those sent before it.
  for (const [r, keys] of abortable.entries()) {
    const ran: boolean[] = [];
    for (const k of keys) {
      ran.push(
        await connection.sendRequest(ops.get(k)).then(
          (reply) => (assert.equal(replyText(reply), k), true),
          (
            error,
          ) => (assert.ok(error instanceof RemoteError, String(error)), false),
        ),
      );
    }
    const firstNot = ran.indexOf(false);
    if (firstNot >= 0) {
      assert.deepEqual(
        ran.slice(firstNot),
        ran.slice(firstNot).map(() => false),
        `round ${r}: an abortable put ran after one that did not: ${ran}`,
      );
    }
    // Round 3 aborts after 7 frames, before its first part (at least
    // MIN_PART_FRAMES): none of its abortable puts ran.
    if (r === 3) assert.equal(firstNot, 0, `round 3: ${ran}`);
    // Round 1's parts took some of its abortable puts before the abort.
    if (r === 1) assert.ok(firstNot > 0, `round 1: ${ran}`);
  }
  assert.equal(connection.inFlight, 0);
  await connection.close();
}

/** Sends one caller's request(s) and checks the outcome. */
function call(
  connection: Connection,
  kind: Kind,
  id: string,
  signal: AbortSignal,
  abortable: string[],
): Promise<void> {
  const settledOnce = (what: string) => {
    let settled = 0;
    return () => assert.equal(++settled, 1, `${what} settled twice`);
  };
  switch (kind) {
    case "echo":
      return connection.sendRequest(ops.echo(id)).then((reply) => {
        assert.equal(replyText(reply), id);
      });
    case "put":
      return connection.sendRequest(ops.put(id, id)).then(() => {});
    case "abortable": {
      // One sent once the signal aborted is refused at once: it never ran.
      abortable.push(id);
      return connection.sendRequest(ops.put(id, id), { signal }).then(
        () => assert.fail(`${id} was answered, though aborted in its tick`),
        (error) => {
          assert.ok(error instanceof AbortedError, String(error));
        },
      );
    }
    case "slow":
      return connection.sendRequest(ops.sleep(SLOW_MS, id), {
        timeoutMs: TIMEOUT_MS,
      }).then(
        () => assert.fail(`${id} was answered before its timeout`),
        (error) => {
          assert.ok(error instanceof RequestTimeoutError, String(error));
          assert.equal(error.sent, true, "written before it timed out");
        },
      );
    case "batch": {
      const payloads = Array.from(
        { length: BATCH },
        (_, j) => ops.echo(`${id}.${j}`),
      );
      return new Promise<void>((resolve, reject) => {
        const seen = new Set<number>();
        const once = settledOnce(id);
        const sink: BatchReplySink = {
          first: 0,
          onReply(payload, sequence) {
            const j = sequence! - sink.first;
            try {
              assert.ok(!seen.has(j), `${id}.${j} settled twice`);
              seen.add(j);
              assert.equal(replyText(payload), `${id}.${j}`);
              if (seen.size === BATCH) (once(), resolve());
            } catch (error) {
              reject(error);
            }
          },
          onError: (error) => reject(error),
        };
        const refused = connection.submitBatch(payloads, 0, BATCH, {}, sink);
        if (refused !== undefined) reject(refused);
      });
    }
  }
}

test("many callers on the memory network, with aborts and timeouts in ticks sent in parts: every call settles once, as it should", async () => {
  await scene(createMemoryNetwork());
});

test("many callers on loopback TCP, with aborts and timeouts in ticks sent in parts: every call settles once, as it should", async () => {
  await scene(await getAdapter());
});
