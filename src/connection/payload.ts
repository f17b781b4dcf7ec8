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

function isArrayBuffer(value: unknown): boolean {
  try {
    return value instanceof ArrayBuffer;
  } catch {
    return false; // a revoked proxy
  }
}
