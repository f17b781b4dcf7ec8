/**
 * What a connection does with a message that answers no request: the node
 * speaks to the client (a PING, a GOODBYE, an ERROR for the whole
 * connection) or hands the handshake its next control message. Apart from
 * core.ts because no reply takes this path: the core's reading side comes
 * here only for what is not a RESPONSE, PONG or a request's ERROR.
 *
 * @module
 */

import {
  ConnectionLostError,
  type Endpoint,
  type RemoteError,
} from "../errors.ts";
import { clipped } from "../errors/base.ts";
import { type Message, MessageType } from "../protocol/frame.ts";
import { decodeError, type ErrorPayload } from "../protocol/messages.ts";
import type { FrameWriter } from "./frame_writer.ts";
import type { ControlInbox } from "./inbox.ts";
import type { ConnectionStats } from "./types.ts";

/** The parts of a connection's core that a node's own message acts on. */
export interface NodeMessageTarget {
  /** The connection: where errors say the node is, and how to end it. */
  readonly owner: Endpoint & {
    readonly address: string;
    destroy(error?: Error): void;
  };
  /** The connection's counters. */
  readonly stats: ConnectionStats;
  /** Encodes frames for the stream (a PING's PONG). */
  readonly writer: FrameWriter;
  /** Control messages for `receiveMessage`. */
  readonly inbox: ControlInbox;
  /** The largest payload the node accepts. */
  readonly peerMaxFrameSize: number;
  /** Set once the connection has closed. */
  readonly closed: boolean;
  /** The node's ERROR as a RemoteError naming the node. */
  nodeError(e: ErrorPayload): RemoteError;
}

/**
 * A message that answers no request: the node speaks to the client. A
 * GOODBYE goes to `onGoodbye`.
 */
export function onControl(
  core: NodeMessageTarget,
  message: Message,
  onGoodbye: () => void,
): void {
  const type = message.type;
  if (type === MessageType.Ping) {
    // A node may probe us; answer in kind, unless it reads nothing: each
    // answer would wait in memory for a peer that may never read. Nor
    // when the echo would be more than the node said it accepts.
    if (message.payload.length > core.peerMaxFrameSize) {
      core.stats.dropped++;
    } else if (!core.closed && !core.writer.congested) {
      core.writer.push(
        MessageType.Pong,
        0,
        message.sequence,
        message.payload,
      );
    }
    return;
  }
  if (type === MessageType.Goodbye) {
    // The node is draining: take no new work; what is in flight finishes.
    onGoodbye();
    return;
  }
  if (type === MessageType.Error && message.sequence === 0) {
    const e = decodeError(message.payload);
    core.owner.destroy(
      new ConnectionLostError(
        core.owner,
        // The node's text as the RemoteError shows it (clipped; every
        // error's message is escaped by NodewireError).
        `node error ${e.code}: ${clipped(e.message, 1024)}`,
        {
          cause: core.nodeError(e),
        },
      ),
    );
    return;
  }
  core.inbox.deliver(message);
}
