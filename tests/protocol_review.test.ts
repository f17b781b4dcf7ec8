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
import { MessageCodec, writeHeader } from "../src/protocol/codec.ts";
import { HEADER_SIZE, MessageType } from "../src/protocol/frame.ts";
import { InvalidArgumentError, ProtocolError } from "../src/errors.ts";
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

test('MessageCodec.encode and writeHeader refuse a header field that is a BigInt or a symbol with a ProtocolError naming the field and showing the value: a raw TypeError ("Cannot mix BigInt and other types"), and a sequence of 1n was "sequence 1 is out of range"', () => {
  const codec = new MessageCodec();
  const ping = {
    type: MessageType.Ping,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  };
  const bad: [object, RegExp][] = [
    [{ ...ping, type: 16n }, /message type 16n/],
    [{ ...ping, flags: 0n }, /flag bits 0n/],
    [{ ...ping, flags: Symbol("f") }, /flag bits a symbol/],
    [{ ...ping, sequence: 1n }, /sequence 1n is out of range/],
    [{ ...ping, sequence: Symbol("s") }, /sequence a symbol is out of range/],
  ];
  for (const [message, words] of bad) {
    assert.throws(() => codec.encode(message as never), (error) => {
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, words);
      return true;
    });
  }
  const header = new Uint8Array(HEADER_SIZE);
  for (
    const args of [
      [0n, MessageType.Ping, 0, 1, 0],
      [0, MessageType.Ping, 0, 1, 0n],
      [0, MessageType.Ping, 0, 1, Symbol("n")],
    ]
  ) {
    assert.throws(
      () =>
        writeHeader(
          header,
          ...(args as [number, number, number, number, number]),
        ),
      (error) =>
        error instanceof ProtocolError ||
        error instanceof InvalidArgumentError,
      String(args.map(String)),
    );
  }
});
