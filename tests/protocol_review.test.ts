// The wire format's public codecs as a careless caller drives them (the
// review of src/protocol/): ERROR payloads and frame headers given what
// is no payload or no field of the right kind.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeError,
  encodeError,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import { invalid, revoked } from "./support/doors.ts";

test('encodeError refuses an error that is no object, or whose message is no string or retryable no boolean, naming the field: null was a raw TypeError, and a missing message went out as empty text, an object as "[object Object]"', () => {
  const ok = { code: RemoteErrorCode.NotFound, retryable: false, message: "x" };
  const bad: [unknown, string][] = [
    [null, "error"],
    [undefined, "error"],
    [5, "error"],
    [revoked(), "error"],
    [{ code: 1, retryable: false }, "error.message"],
    [{ ...ok, message: { text: "x" } }, "error.message"],
    [{ ...ok, message: 5 }, "error.message"],
    [{ ...ok, retryable: "no" }, "error.retryable"],
    [{ ...ok, retryable: undefined }, "error.retryable"],
    [{ ...ok, code: 1.5 }, "error.code"],
  ];
  for (const [value, argument] of bad) {
    assert.throws(
      () => encodeError(value as never),
      invalid("encodeError", argument),
      argument,
    );
  }
  assert.deepEqual(decodeError(encodeError(ok)), ok);
});

test("decodeError refuses a payload that is no Uint8Array with an InvalidArgumentError naming payload: null was a raw TypeError, an array a ProtocolError saying the bytes were not UTF-8", () => {
  for (const value of [null, undefined, [1, 0, 3, 104, 105], "abc"]) {
    assert.throws(
      () => decodeError(value as never),
      invalid("decodeError", "payload"),
      String(value),
    );
  }
});
