/**
 * The HELLO_OK payload a handshake hook is handed, checked before the
 * hook acts on it. `Connection.connect` hands it one `decodeHelloOk`
 * built, but a caller may run the hook on a connection of its own, with
 * a hello it built itself.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { itemsOf } from "../errors/base.ts";
import { MIN_FRAME_SIZE } from "../protocol/frame.ts";
import { fieldsOf, type HelloOkPayload } from "../protocol/messages.ts";
import { nodeIdProblem } from "../protocol/node_id.ts";

const FIELDS = ["nodeId", "maxFrameSize", "auth", "protocols", "features"];

/**
 * `hello` read once into a copy, each field checked by the rule
 * `decodeHelloOk` applies to a node's, so every hello a HELLO_OK decodes
 * to passes as it is. Read once: a getter that answers differently on a
 * second read cannot slip past the check.
 *
 * A caller's hello is refused, not repaired: a missing nodeId or a NaN
 * `maxFrameSize` left alone would surface later as a TypeError, an
 * AuthenticationError about a node named "undefined", or nothing at all.
 *
 * @throws {InvalidArgumentError} naming `hello`, or the field of it, that
 *   is wrong, with `method` as the method.
 */
export function readHello(hello: unknown, method: string): HelloOkPayload {
  // Each read once; a read that throws is refused naming the field, a
  // revoked proxy naming `hello` itself, since nothing of it can be read.
  const v = fieldsOf<Record<string, unknown>>(
    method,
    "hello",
    hello,
    FIELDS,
    "expected an object (a HELLO_OK payload)",
  );
  const refuse = (field: string, expected: string): never => {
    throw new InvalidArgumentError(`hello.${field}`, v[field], expected, {
      method,
    });
  };
  const { nodeId, maxFrameSize, auth } = v;
  if (typeof nodeId !== "string" || nodeIdProblem(nodeId) !== undefined) {
    refuse(
      "nodeId",
      "expected a node id: a string of 1 to 255 UTF-8 bytes with no " +
        "control or format character",
    );
  }
  if (
    typeof maxFrameSize !== "number" || !Number.isInteger(maxFrameSize) ||
    maxFrameSize < MIN_FRAME_SIZE
  ) {
    refuse("maxFrameSize", `expected an integer of at least ${MIN_FRAME_SIZE}`);
  }
  if (auth !== "none" && auth !== "scram-sha-256") {
    refuse("auth", 'expected "none" or "scram-sha-256"');
  }
  const protocols = strings(v.protocols, "protocols", method);
  const features = strings(v.features, "features", method);
  return {
    nodeId: nodeId as string,
    maxFrameSize: maxFrameSize as number,
    auth: auth as HelloOkPayload["auth"],
    protocols,
    ...(features === undefined ? {} : {
      features: features as HelloOkPayload["features"],
    }),
  };
}

/**
 * An optional list of strings, copied: absent stays absent (a node that
 * predates negotiation lists no protocols).
 */
function strings(
  value: unknown,
  field: string,
  method: string,
): string[] | undefined {
  if (value === undefined) return undefined;
  // itemsOf, not Array.isArray: that throws on a revoked proxy.
  const items = itemsOf(value);
  if (items === undefined || !items.every((s) => typeof s === "string")) {
    throw new InvalidArgumentError(
      `hello.${field}`,
      value,
      "expected an array of strings, or none",
      { method },
    );
  }
  return items as string[];
}
