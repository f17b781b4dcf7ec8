/**
 * A handshake step's wait for the node's reply to what it sent, shared by
 * negotiation and authentication.
 *
 * @module
 */

import type { Connection } from "../connection/connection.ts";
import { expectReply } from "../connection/open.ts";
import { type Message, MessageType } from "../protocol/frame.ts";

/**
 * Waits for the reply of type `type` to the message sent with sequence
 * `sent` (see expectReply: an ERROR is the node's RemoteError).
 */
export async function receive(
  connection: Connection,
  sent: number,
  type: number,
  options: { signal: AbortSignal; pauseReading?: boolean },
): Promise<Message> {
  const message = await connection.receiveMessage({
    signal: options.signal,
    // The connect timeout bounds the whole handshake through `signal`.
    timeoutMs: Infinity,
    pauseReading: options.pauseReading,
  });
  expectReply(
    message,
    sent,
    type,
    TYPE_NAMES[type],
    connection.nodeId,
    connection.address,
  );
  return message;
}

const TYPE_NAMES: Record<number, string> = {
  [MessageType.NegotiateOk]: "NEGOTIATE_OK",
  [MessageType.AuthChallenge]: "AUTH_CHALLENGE",
  [MessageType.AuthOk]: "AUTH_OK",
};
