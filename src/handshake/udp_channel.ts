/**
 * Opening the datagram socket of a UDP transport through a runtime
 * adapter that may be the user's own, and holding it to the
 * `DatagramChannel` contract: a failure that is no SDK error, or a
 * channel that is none, is refused with an SDK error that says so, not
 * passed on raw or met as a TypeError later. Runs once per connection.
 *
 * @module
 */

import {
  ConnectionError,
  type Endpoint,
  formatAddress,
  InvalidArgumentError,
  NodewireError,
} from "../errors.ts";
import { foreignText, isInstance } from "../errors/base.ts";
import { letGo } from "../errors/base.ts";
import { missingMethod } from "../runtime/contract.ts";
import type { DatagramChannel } from "../runtime/datagram.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";

/** What a DatagramChannel must have: the methods a UDP route calls. */
const DATAGRAM_METHODS = ["onMessage", "onClose", "send", "close"] as const;

/**
 * A datagram socket bound to `hostname` by `adapter`, for the connection
 * to `endpoint`.
 *
 * @throws {ConnectionError} `LISTEN_FAILED` when it cannot be bound, or
 *   the adapter failed with what is no SDK error (quoted).
 * @throws {InvalidArgumentError} when the adapter resolved with what is
 *   no DatagramChannel (the channel, if any, is closed).
 */
export async function openDatagram(
  adapter: RuntimeAdapter,
  hostname: string,
  endpoint: Endpoint,
): Promise<DatagramChannel> {
  let channel: DatagramChannel;
  try {
    channel = await adapter.datagram!({ hostname });
  } catch (error) {
    if (isInstance(error, NodewireError)) throw error;
    throw new ConnectionError(
      "LISTEN_FAILED",
      `UDP to ${formatAddress(endpoint)}: the runtime adapter could not ` +
        `open a datagram socket on ${hostname}: ${foreignText(error)}`,
      endpoint,
      { cause: error, retryable: false },
    );
  }
  checkDatagramChannel(channel);
  return channel;
}

/**
 * Refuses what is no DatagramChannel, closing it if it can be.
 *
 * @throws {InvalidArgumentError} saying which method is missing or wrong.
 */
export function checkDatagramChannel(channel: DatagramChannel): void {
  const problem = missingMethod(channel, DATAGRAM_METHODS);
  if (problem === undefined) return;
  closeQuietly(channel);
  throw new InvalidArgumentError(
    "channel",
    channel,
    `expected a DatagramChannel (${problem.wrong})`,
    { method: "the runtime adapter's datagram()", cause: problem.cause },
  );
}

/** Closes a datagram channel whose close may throw (a custom one's). */
export function closeQuietly(channel: DatagramChannel): void {
  try {
    letGo(channel.close());
  } catch {
    // Nothing more can be done for it.
  }
}
