// An unknown option's name is the caller's text, of any length and with
// any character: the error that names it clips it and escapes what a
// terminal would act on, in its message and in its field path alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readOptions } from "../src/config/options.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { ConfigError, InvalidArgumentError } from "../src/errors.ts";

const HUGE = "x".repeat(100_000);

/** What `fn` threw. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  assert.fail("nothing was thrown");
}

test("an unknown config option with a huge or control-laden name makes a short ConfigError", () => {
  for (
    const [config, field] of [
      [{ hosts: ["db1"], [HUGE]: 1 }, /^x{80}…$/],
      [{ hosts: ["db1"], poolConfig: { [HUGE]: 1 } }, /^poolConfig\.x{80}…$/],
      [{ hosts: ["db1"], "a\u001b[2Jb": 1 }, /^a\\u001b\[2Jb$/],
    ] as const
  ) {
    const error = thrown(() =>
      resolveConfig(config as unknown as ConnectionConfig)
    );
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.field, field);
    assert.ok(error.message.length < 2000, `${error.message.length} chars`);
    assert.match(error.message, /unknown option/);
    assert.ok(!error.message.includes("\u001b"));
  }
});

test("an unknown per-call option with a huge name makes a short InvalidArgumentError", () => {
  const error = thrown(() =>
    readOptions("Client.request", { [HUGE]: true }, {
      timeoutMs: () => undefined,
    })
  );
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.match(error.argument, /^options\.x{80}…$/);
  assert.ok(error.message.length < 2000, `${error.message.length} chars`);
  assert.match(
    error.message,
    /^Client\.request: invalid options\.x{80}…: unknown option/,
  );
});
