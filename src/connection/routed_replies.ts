/**
 * The receiver of the replies a `RequestRoute` (the UDP
 * transport) takes in, matched like replies on the stream. Apart from
 * core.ts because only a routed connection makes one, once.
 *
 * @module
 */

import {
  ConnectionLostError,
  type Endpoint,
  ProtocolError,
} from "../errors.ts";
import { foreignText } from "../errors/base.ts";
import { type Message, MessageType } from "../protocol/frame.ts";

/** The parts of a connection's core the routed receiver reads. */
export interface RoutedTarget {
  /** The connection: where errors say the node is, and how to end it. */
  readonly owner: Endpoint & {
    readonly address: string;
    destroy(error?: Error): void;
  };
  /** Set once the connection has closed. */
  readonly closed: boolean;
}

/**
 * The function that takes the replies a `RequestRoute`
 * receives, handing each to `onMessage` (the core's reading side). It
 * returns false for a message it refused: one that is no reply (RESPONSE,
 * PONG, ERROR), or that breaks the protocol on its own (a reply of the
 * wrong kind for its sequence, an ERROR that does not decode). Unlike on
 * the stream, where the bytes after a broken frame cannot be trusted, a
 * datagram stands alone: the route drops it and the request it names
 * waits for its own reply, or its timeout. Any other error ends the
 * connection.
 */
export function routedReceiver(
  core: RoutedTarget,
  onMessage: (message: Message) => void,
): (message: Message) => boolean {
  return (message: Message): boolean => {
    if (core.closed) return true;
    const type = message.type;
    if (
      type !== MessageType.Response && type !== MessageType.Pong &&
      type !== MessageType.Error
    ) return false;
    try {
      // Each check that throws (the reply's kind, the ERROR's payload)
      // comes before the request is released: refused, it still waits.
      onMessage(message);
      return true;
    } catch (error) {
      if (error instanceof ProtocolError) return false;
      core.owner.destroy(
        new ConnectionLostError(
          core.owner,
          // Foreign (a custom route's message, its getters): quoted and
          // cut, kept whole as the cause.
          `failed to handle a message: ${foreignText(error)}`,
          { cause: error },
        ),
      );
      return true;
    }
  };
}
