/**
 * What a payload is: a `Uint8Array` (a Node `Buffer` is one), checked at
 * the door of every request path. Anything else used to reach the frame
 * writer, where a string's missing `byteLength` turned the connection's
 * write offset into `NaN` for every later request, and a `Uint16Array`
 * was sent element by element as the wrong bytes.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { lengthOf } from "../protocol/payload_length.ts";

/**
 * Whether `value` is a real `Uint8Array`: `instanceof` for the type, and
 * `ArrayBuffer.isView` so that an object that only borrowed the prototype
 * (`Object.create(Uint8Array.prototype)`) or a proxy, whose `byteLength`
 * would throw inside the writer, is refused too. Two tests, no allocation:
 * cheap enough for the request path.
 */
export function isPayload(value: unknown): value is Uint8Array {
  // isView first: it never throws, where `instanceof` does for a revoked
  // proxy.
  return ArrayBuffer.isView(value) && value instanceof Uint8Array;
}

/**
 * The error for a `value` that {@linkcode isPayload} refused, with a hint
 * at the conversion the caller most likely needs. `method` names the call.
 */
export function invalidPayload(
  value: unknown,
  method?: string,
): InvalidArgumentError {
  let hint = "";
  if (typeof value === "string") {
    hint = "; encode text first, e.g. new TextEncoder().encode(text)";
  } else if (ArrayBuffer.isView(value)) {
    hint =
      "; view its bytes with new Uint8Array(view.buffer, view.byteOffset, view.byteLength)";
  } else if (isArrayBuffer(value)) {
    hint = "; view it with new Uint8Array(buffer)";
  }
  return new InvalidArgumentError(
    "payload",
    value,
    `expected a Uint8Array (a Buffer is one)${hint}`,
    { method },
  );
}

// The typed array's own accessors, read once: what a view really is,
// whatever getters a subclass or the view itself puts in front of them.
const TYPED_ARRAY: object = Object.getPrototypeOf(Uint8Array.prototype);

/**
 * `Uint8Array.prototype`'s real `length`, `byteLength`, `byteOffset` and
 * `buffer` getters, to call on a payload: what it is, not what it says.
 */
export const REAL = {
  length: intrinsic("length"),
  byteLength: intrinsic("byteLength"),
  byteOffset: intrinsic("byteOffset"),
  buffer: intrinsic("buffer"),
};

function intrinsic(name: string): (this: Uint8Array) => unknown {
  return Object.getOwnPropertyDescriptor(TYPED_ARRAY, name)!.get!;
}

/**
 * A plain view of `payload`'s real bytes, whose length cannot change
 * after this call (a copy when its buffer can resize or grow), for a
 * payload handed to the runtime as it is after a header that states its
 * length: a getter answering differently than at the door, or a buffer
 * resized in the queue, would put the stream out of step for every
 * request behind it.
 */
export function fixedView(payload: Uint8Array): Uint8Array {
  const buffer = REAL.buffer.call(payload) as ArrayBufferLike & {
    resizable?: boolean;
    growable?: boolean;
  };
  const view = new Uint8Array(
    buffer,
    REAL.byteOffset.call(payload) as number,
    lengthOf(payload),
  );
  return buffer.resizable || buffer.growable ? view.slice() : view;
}

function isArrayBuffer(value: unknown): boolean {
  try {
    return value instanceof ArrayBuffer;
  } catch {
    return false; // a revoked proxy
  }
}
