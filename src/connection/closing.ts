/**
 * How a connection ends, apart from the state it keeps: the GOODBYE it
 * says when it closes itself, and the error it ends with when the stream
 * closes under it (the node closed it, cleanly or while the connection was
 * draining, or the network broke it), and destroying a channel whose own
 * destroy may throw. Runs once per connection, never on the request path.
 *
 * @module
 */

import { ConnectionLostError, type Endpoint } from "../errors.ts";
import { foreignText, isInstance, letGo } from "../errors/base.ts";
import { MessageType } from "../protocol/frame.ts";
import type { FrameWriter } from "./frame_writer.ts";

/**
 * Says GOODBYE through `writer` and hands it to the socket at once: the
 * last frame of a connection closing gracefully.
 */
export function sayGoodbye(writer: FrameWriter): void {
  writer.push(MessageType.Goodbye, 0, 0, NO_BYTES);
  writer.flush();
}

/**
 * The error a connection to `endpoint` ends with when its stream closed
 * without the client asking: `error` is the adapter's, if the stream
 * broke; `draining`, whether the connection was finishing its work after
 * a GOODBYE or `close()`.
 */
export function streamClosedError(
  endpoint: Endpoint,
  error: Error | undefined,
  draining: boolean,
): ConnectionLostError {
  // The adapter's own "lost" already says it; wrapping it again would
  // repeat "connection to ... lost:" in the message.
  if (isInstance(error, ConnectionLostError)) {
    return error as ConnectionLostError;
  }
  const reason = error === undefined || error === null
    ? draining ? "closed by the node while draining" : "closed by the node"
    : isInstance(error, Error)
    ? foreignText(error)
    // A custom adapter's onClose with what is no Error.
    : `the runtime adapter's channel closed with ${foreignText(error)}`;
  return new ConnectionLostError(endpoint, reason, { cause: error });
}

const NO_BYTES = new Uint8Array(0);

/**
 * Destroys a channel (or what holds one) that failed `reason`'s way. A
 * custom channel's destroy may throw: the caller needs the reason, not
 * that, and nothing more can be done for the channel.
 */
export function destroyQuietly(
  target: { destroy(error?: Error): void },
  reason: unknown,
): void {
  // isInstance: `instanceof` itself throws for a revoked proxy, which
  // would skip the destroy and leave the socket open.
  const error = isInstance(reason, Error) ? reason as Error : undefined;
  try {
    letGo(target.destroy(error));
  } catch {
    // See above.
  }
}
