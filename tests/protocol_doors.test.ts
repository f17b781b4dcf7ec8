// The public entries of /protocol refuse bad input with an
// InvalidArgumentError naming the argument and the method: encode(null)
// and encodeHello(null) were raw TypeErrors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeHello, MessageCodec, MessageType } from "../protocol.ts";
import { InvalidArgumentError } from "../src/errors.ts";

/** Checks an InvalidArgumentError of `method` about `argument`. */
function invalid(method: string, argument: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.argument, argument, error.message);
    assert.ok(error.message.startsWith(`${method}: `), error.message);
    return true;
  };
}

const revoked = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};

test("MessageCodec.encode refuses a message that is no object", () => {
  const codec = new MessageCodec();
  const ping = { type: MessageType.Ping, flags: 0, sequence: 1 };
  const bad: [unknown, string][] = [
    [null, "message"],
    [5, "message"],
    [revoked(), "message"],
    [ping, "message.payload"],
    [{ ...ping, payload: [1, 2] }, "message.payload"],
  ];
  for (const [message, argument] of bad) {
    assert.throws(
      () => codec.encode(message as never),
      invalid("MessageCodec.encode", argument),
    );
  }
  const bytes = codec.encode({ ...ping, payload: new Uint8Array([7]) });
  codec.decode(bytes, (m) => assert.deepEqual([...m.payload], [7]));
});

test("encodeHello refuses a hello that is no object or has bad fields", () => {
  const hello = { version: 1, client: "c", maxFrameSize: 1024 };
  const bad: [unknown, string][] = [
    [null, "hello"],
    [revoked(), "hello"],
    [{ ...hello, version: "1" }, "hello.version"],
    [{ ...hello, client: 5 }, "hello.client"],
    [{ ...hello, maxFrameSize: NaN }, "hello.maxFrameSize"],
    [{ ...hello, features: "udp-batch" }, "hello.features"],
  ];
  for (const [value, argument] of bad) {
    assert.throws(
      () => encodeHello(value as never),
      invalid("encodeHello", argument),
    );
  }
});
