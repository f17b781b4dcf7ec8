// Behaviour the docs promise that the code did not do; each test failed
// before its fix. (Checks that only pin what already held live with the
// code they test.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/errors.ts";
import { decodeReply, encodeReply, ops } from "../testing/mod.ts";

test('docs/TESTING.md: the ops builders and encodeReply refuse a value of the wrong kind with InvalidArgumentError, never coercing it (a number key became "5") or failing with a RangeError from inside', () => {
  const bad: [() => unknown, string][] = [
    [() => ops.echo(5 as never), "data"],
    [() => ops.echo(new ArrayBuffer(2) as never), "data"],
    [() => ops.get(5 as never), "key"],
    [() => ops.get(undefined as never), "key"],
    [() => ops.delete({} as never), "key"],
    [() => ops.put(5 as never, "v"), "key"],
    [() => ops.put("k", 5 as never), "value"],
    [() => ops.put("k", [1, 2] as never), "value"],
    [() => ops.sleep(10, 5 as never), "data"],
    [() => ops.fail(4, "yes" as never), "retryable"],
    [() => ops.fail(4, 1 as never), "retryable"],
    [() => ops.fail(4, true, 5 as never), "message"],
    [() => encodeReply(5 as never, new Uint8Array(0)), "nodeId"],
    [() => encodeReply("n1", "hi" as never), "data"],
  ];
  for (const [build, argument] of bad) {
    assert.throws(
      build,
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument,
      argument,
    );
  }
  // What they take still builds the same bytes.
  assert.deepEqual([...ops.echo("hi")], [1, 0x68, 0x69]);
  assert.deepEqual([...ops.echo(new Uint8Array([7]))], [1, 7]);
  assert.deepEqual([...ops.get("k")], [2, 0x6b]);
  assert.deepEqual([...ops.put("k", "v")], [3, 0, 1, 0x6b, 0x76]);
  assert.deepEqual([...ops.delete("k")], [4, 0x6b]);
  assert.deepEqual([...ops.sleep(1, "x")], [5, 0, 0, 0, 1, 0x78]);
  assert.deepEqual([...ops.fail(4, true, "b")], [6, 0, 4, 1, 0x62]);
  assert.equal(
    decodeReply(encodeReply("n1", new Uint8Array([9]))).nodeId,
    "n1",
  );
});
