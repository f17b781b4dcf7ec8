/**
 * What the tests of the building blocks' doors share: the check of an
 * InvalidArgumentError, and a revoked proxy to read.
 *
 * @module
 */

import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../src/errors.ts";

/** Checks an InvalidArgumentError of `method` about `argument`. */
export function invalid(
  method: string,
  argument: string,
): (error: unknown) => boolean {
  return (error: unknown): boolean => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.argument, argument, error.message);
    assert.ok(error.message.startsWith(`${method}: `), error.message);
    return true;
  };
}

/** A proxy revoked already: any read of it throws. */
export const revoked = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};
