import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { COPY_BELOW, WriteQueue } from "../src/runtime/write_queue.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

test("push reports false once the high-water mark is reached", () => {
  const queue = new WriteQueue(10, 4);
  assert.equal(queue.push(new Uint8Array(6)), true);
  assert.equal(queue.push(new Uint8Array(3)), true);
  assert.equal(queue.push(new Uint8Array(1)), false);
  assert.equal(queue.size, 10);
});

test("peek coalesces small chunks up to the limit and keeps them queued", () => {
  const queue = new WriteQueue();
  queue.push(bytes(1, 2));
  queue.push(bytes(3));
  queue.push(bytes(4, 5, 6));
  assert.deepEqual(queue.peek(3), bytes(1, 2, 3));
  assert.equal(queue.size, 6);
  assert.deepEqual(queue.peek(100), bytes(1, 2, 3, 4, 5, 6));
});

test("peek hands a chunk larger than the limit over without copying", () => {
  const queue = new WriteQueue();
  const big = new Uint8Array(10);
  queue.push(big);
  assert.equal(queue.peek(4), big);
});

test("consume resumes inside a chunk after a partial write", () => {
  const queue = new WriteQueue();
  queue.push(bytes(1, 2, 3, 4));
  queue.push(bytes(5));
  queue.consume(3);
  assert.equal(queue.size, 2);
  assert.deepEqual(queue.peek(), bytes(4, 5));
  queue.consume(2);
  assert.equal(queue.size, 0);
  assert.equal(queue.shift(), undefined);
});

test("drained waits until the size falls below the low-water mark", async () => {
  const queue = new WriteQueue(8, 4);
  queue.push(new Uint8Array(9));
  let woke = false;
  const waiting = queue.drained().then(() => woke = true);
  queue.consume(5);
  await Promise.resolve();
  assert.equal(woke, false, "4 bytes left is not below the low mark of 4");
  queue.consume(1);
  await waiting;
  assert.equal(woke, true);
});

test("clear drops everything and releases waiters", async () => {
  const queue = new WriteQueue(8, 4);
  queue.push(new Uint8Array(20));
  const waiting = queue.drained();
  queue.clear();
  await waiting;
  assert.equal(queue.size, 0);
  assert.equal(queue.peek().length, 0);
});

test("any mix of pushes, partial consumes and shifts keeps the byte order", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ push: fc.uint8Array({ maxLength: 40 }) }),
          fc.record({
            consume: fc.nat(50),
            limit: fc.integer({ min: 1, max: 64 }),
          }),
          fc.record({ shift: fc.constant(true) }),
        ),
        { maxLength: 60 },
      ),
      (ops) => {
        const queue = new WriteQueue(1000, 100);
        const expected: number[] = [];
        const out: number[] = [];
        for (const op of ops) {
          if ("push" in op) {
            queue.push(op.push);
            expected.push(...op.push);
          } else if ("consume" in op) {
            const next = queue.peek(op.limit);
            const n = Math.min(op.consume, next.length);
            out.push(...next.subarray(0, n));
            queue.consume(n);
          } else {
            out.push(...(queue.shift() ?? []));
          }
          assert.equal(queue.size, expected.length - out.length);
        }
        while (queue.size > 0) {
          const next = queue.peek();
          out.push(...next);
          queue.consume(next.length);
        }
        assert.deepEqual(out, expected);
      },
    ),
  );
});

test("a chunk whose buffer is detached after it was pushed: peek hands it over empty, never merged away, and size still counts it", () => {
  const detach = (bytes: Uint8Array) =>
    structuredClone(bytes.buffer, {
      transfer: [bytes.buffer as ArrayBuffer],
    });
  const queue = new WriteQueue();
  const small = new Uint8Array([1, 2, 3]);
  const large = new Uint8Array(COPY_BELOW + 10).fill(7);
  const last = new Uint8Array([4, 5]);
  queue.push(small);
  queue.push(large);
  queue.push(last);
  detach(large);
  assert.equal(large.length, 0);
  assert.deepEqual(queue.peek(), small, "merged with nothing after it");
  queue.consume(3);
  assert.equal(queue.peek().length, 0);
  assert.equal(queue.size, COPY_BELOW + 10 + 2);

  // A small one detached: not merged with the small one after it either.
  const second = new WriteQueue();
  const gone = new Uint8Array([9, 9]);
  second.push(gone);
  second.push(new Uint8Array([8]));
  detach(gone);
  assert.equal(second.peek().length, 0);
  assert.equal(second.size, 3);
});
