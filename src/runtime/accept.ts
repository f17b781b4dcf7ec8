/**
 * Handing an accepted channel to a listener's receiver, the one way every
 * adapter does it.
 *
 * @module
 */

import { asError } from "../errors/base.ts";
import type { ByteChannel } from "./types.ts";

/**
 * Calls `onConnection` with `channel`. A receiver that throws has not
 * taken the channel, and nobody else will: it is destroyed with what was
 * thrown (its close receiver, if set, hears that), rather than the throw
 * escaping into the runtime's event loop (an uncaught exception from
 * node:net's connection event, an unhandled rejection behind a TLS
 * listener's handshake, a rejected connect and an open pair on the
 * memory network). The listener goes on accepting.
 */
export function handOver(
  onConnection: (channel: ByteChannel) => void,
  channel: ByteChannel,
): void {
  try {
    onConnection(channel);
  } catch (error) {
    channel.destroy(asError(error));
  }
}
