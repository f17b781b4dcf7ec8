/**
 * The reference node's small operation set, and helpers to build requests
 * and read replies. A request payload is one op byte and its arguments; a
 * reply payload starts with the id of the node that answered, so tests can
 * see where every request went.
 *
 * ```
 * request:  op (u8) | arguments
 *   ECHO   0x01  data
 *   GET    0x02  key (UTF-8)
 *   PUT    0x03  key length (u16 BE) | key | value
 *   DELETE 0x04  key
 *   SLEEP  0x05  milliseconds (u32 BE) | data echoed after the sleep
 *   FAIL   0x06  error code (u16 BE) | retryable (u8) | message (UTF-8)
 * reply:    node id length (u8) | node id (UTF-8) | result
 * ```
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError } from "../src/errors.ts";
import { isPayload } from "../src/connection/payload.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Operation codes of the reference node.
 *
 * @example
 * ```ts
 * import { Op } from "@nodewire/client/testing";
 * console.log(Op.Echo); // 1
 * ```
 */
export const Op = {
  /** Returns the data as is. */
  Echo: 0x01,
  /** Returns the value stored under a key, or error NotFound. */
  Get: 0x02,
  /** Stores a value under a key. */
  Put: 0x03,
  /** Removes a key; returns 1 if it existed, else 0. */
  Delete: 0x04,
  /** Waits, then returns the data. */
  Sleep: 0x05,
  /** Answers with the error given. */
  Fail: 0x06,
} as const;
// Frozen, as is `ops`: the reference node switches on these, and a
// program that changed one would change every node and client of the
// process.
Object.freeze(Op);

/**
 * Builders for the reference node's request payloads.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { ops, replyText } from "@nodewire/client/testing";
 * declare const client: Client; // connected to a reference node
 * await client.request(ops.put("greeting", "hello"));
 * console.log(replyText(await client.request(ops.get("greeting")))); // "hello"
 * await client.request(ops.fail(3, false, "no such key")).catch((e) => console.log(e.message));
 * ```
 */
export interface OpBuilders {
  /** ECHO with `data` (bytes or text). */
  echo(data?: Uint8Array | string): Uint8Array;
  /** GET `key`. */
  get(key: string): Uint8Array;
  /** PUT `value` under `key`. */
  put(key: string, value: Uint8Array | string): Uint8Array;
  /** DELETE `key`. */
  delete(key: string): Uint8Array;
  /** SLEEP `ms`, then echo `data`. */
  sleep(ms: number, data?: Uint8Array | string): Uint8Array;
  /** FAIL with a node error `code`, flagged retryable or not. */
  fail(code: number, retryable: boolean, message?: string): Uint8Array;
}

/**
 * Builders for request payloads.
 *
 * @example
 * ```ts
 * import { ops } from "@nodewire/client/testing";
 * const payload = ops.put("k", new TextEncoder().encode("v"));
 * ```
 */
export const ops: OpBuilders = Object.freeze({
  /** ECHO with `data` (bytes or text). */
  echo(data: Uint8Array | string = new Uint8Array(0)): Uint8Array {
    return withOp(Op.Echo, toBytes(data, "data", "ops.echo"));
  },
  /** GET `key`. */
  get(key: string): Uint8Array {
    return withOp(Op.Get, encoder.encode(checkText(key, "key", "ops.get")));
  },
  /** PUT `value` under `key`. */
  put(key: string, value: Uint8Array | string): Uint8Array {
    const k = encoder.encode(checkText(key, "key", "ops.put"));
    const v = toBytes(value, "value", "ops.put");
    fits(k.byteLength, 2, "key's length", "ops.put");
    const out = new Uint8Array(3 + k.byteLength + v.byteLength);
    out[0] = Op.Put;
    out[1] = k.byteLength >>> 8;
    out[2] = k.byteLength & 0xff;
    out.set(k, 3);
    out.set(v, 3 + k.byteLength);
    return out;
  },
  /** DELETE `key`. */
  delete(key: string): Uint8Array {
    return withOp(
      Op.Delete,
      encoder.encode(checkText(key, "key", "ops.delete")),
    );
  },
  /** SLEEP `ms`, then echo `data`. */
  sleep(ms: number, data: Uint8Array | string = new Uint8Array(0)): Uint8Array {
    // -1 would have slept for 49 days.
    const delay = fits(ms, 4, "ms", "ops.sleep");
    const d = toBytes(data, "data", "ops.sleep");
    const out = new Uint8Array(5 + d.byteLength);
    out[0] = Op.Sleep;
    new DataView(out.buffer).setUint32(1, delay);
    out.set(d, 5);
    return out;
  },
  /** FAIL with a node error `code`, flagged retryable or not. */
  fail(
    code: number,
    retryable: boolean,
    message = "failed on request",
  ): Uint8Array {
    fits(code, 2, "code", "ops.fail");
    if (typeof retryable !== "boolean") {
      throw new InvalidArgumentError(
        "retryable",
        retryable,
        "expected true or false",
        { method: "ops.fail" },
      );
    }
    const m = encoder.encode(checkText(message, "message", "ops.fail"));
    const out = new Uint8Array(4 + m.byteLength);
    out[0] = Op.Fail;
    out[1] = code >>> 8;
    out[2] = code & 0xff;
    out[3] = retryable ? 1 : 0;
    out.set(m, 4);
    return out;
  },
});

/**
 * A reply from the reference node, split into who answered and what.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { decodeReply, ops } from "@nodewire/client/testing";
 * declare const client: Client; // connected to reference nodes
 * const { nodeId, data } = decodeReply(await client.request(ops.echo("hi")));
 * console.log(`${nodeId} answered ${data.byteLength} bytes`);
 * ```
 */
export interface Reply {
  /** The id of the node that answered. */
  nodeId: string;
  /** The operation's result bytes (a view into the payload). */
  data: Uint8Array;
}

/**
 * Splits a reference node reply into node id and result.
 *
 * @throws {ProtocolError} for a payload too short to hold its node id.
 * @example
 * ```ts
 * import { decodeReply, encodeReply } from "@nodewire/client/testing";
 * decodeReply(encodeReply("n1", new Uint8Array([7]))).nodeId; // "n1"
 * ```
 */
export function decodeReply(payload: Uint8Array): Reply {
  // isPayload, not instanceof: that throws for a revoked proxy.
  if (!isPayload(payload)) {
    throw new InvalidArgumentError(
      "payload",
      payload,
      "expected a Uint8Array",
      { method: "decodeReply" },
    );
  }
  const n = payload[0];
  if (payload.byteLength < 1 || payload.byteLength < 1 + n) {
    throw new ProtocolError("reply too short for its node id");
  }
  return {
    nodeId: decoder.decode(payload.subarray(1, 1 + n)),
    data: payload.subarray(1 + n),
  };
}

/**
 * Builds a reply payload: node id, then result.
 *
 * @example
 * ```ts
 * import { encodeReply } from "@nodewire/client/testing";
 * encodeReply("n1", new Uint8Array([1, 2])).byteLength; // 5
 * ```
 */
export function encodeReply(
  nodeId: Uint8Array | string,
  data: Uint8Array,
): Uint8Array {
  const id = toBytes(nodeId, "nodeId", "encodeReply");
  if (!isPayload(data)) {
    throw new InvalidArgumentError("data", data, "expected a Uint8Array", {
      method: "encodeReply",
    });
  }
  fits(id.byteLength, 1, "nodeId's length", "encodeReply");
  const out = new Uint8Array(1 + id.byteLength + data.byteLength);
  out[0] = id.byteLength;
  out.set(id, 1);
  out.set(data, 1 + id.byteLength);
  return out;
}

/**
 * Reads the text of a reply's data.
 *
 * @example
 * ```ts
 * import { encodeReply, replyText } from "@nodewire/client/testing";
 * replyText(encodeReply("n1", new TextEncoder().encode("hi"))); // "hi"
 * ```
 */
export function replyText(payload: Uint8Array): string {
  return decoder.decode(decodeReply(payload).data);
}

function withOp(op: number, args: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + args.byteLength);
  out[0] = op;
  out.set(args, 1);
  return out;
}

// A number or an object would otherwise be coerced ("5") or end in a
// RangeError from inside the builder, far from the argument at fault; a
// revoked proxy in a TypeError from instanceof.
function toBytes(data: unknown, argument: string, method: string): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (isPayload(data)) return data;
  throw new InvalidArgumentError(
    argument,
    data,
    "expected a Uint8Array or a string",
    { method },
  );
}

function checkText(value: unknown, argument: string, method: string): string {
  if (typeof value === "string") return value;
  throw new InvalidArgumentError(argument, value, "expected a string", {
    method,
  });
}

/** `value` when it fits an unsigned field of `bytes` bytes. */
function fits(
  value: number,
  bytes: number,
  argument: string,
  method: string,
): number {
  const max = 2 ** (8 * bytes) - 1;
  if (Number.isInteger(value) && value >= 0 && value <= max) return value;
  throw new InvalidArgumentError(argument, value, `expected 0 to ${max}`, {
    method,
  });
}
