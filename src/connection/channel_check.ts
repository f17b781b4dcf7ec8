/**
 * Whether what a runtime adapter handed over is a ByteChannel a connection
 * can attach to: its methods, its `copyBelow`, and the errors that say
 * what was wrong. Apart from core.ts because it runs once per stream
 * (connect, TLS switch), never per request.
 *
 * @module
 */

import {
  ConnectionError,
  type Endpoint,
  InvalidArgumentError,
} from "../errors.ts";
import { foreignText } from "../errors/base.ts";
import { checkCopyBelow } from "../protocol/codec_limits.ts";
import type { ByteChannel } from "../runtime/types.ts";
import { missingMethod } from "../runtime/contract.ts";

/** What a ByteChannel must have: the methods the connection calls. */
const CHANNEL_METHODS = [
  "onData",
  "onClose",
  "write",
  "drained",
  "close",
  "destroy",
] as const;

/**
 * Refuses what is no ByteChannel: a custom adapter that resolved with
 * something else (nothing, a number, a socket of its runtime) is told so
 * here, not by a TypeError from deep in the first write.
 */
export function checkChannel(channel: ByteChannel): void {
  const problem = missingMethod(channel, CHANNEL_METHODS);
  if (problem !== undefined) {
    throw notAChannel(channel, problem.wrong, problem.cause);
  }
}

/** The refusal of what is no ByteChannel, saying why (`wrong`). */
export function notAChannel(
  channel: unknown,
  wrong: string,
  cause?: unknown,
): InvalidArgumentError {
  return new InvalidArgumentError(
    "channel",
    channel,
    `expected a ByteChannel (${wrong})`,
    { method: "the runtime adapter", cause },
  );
}

/**
 * A channel's `copyBelow`, read once (a getter may change its mind) and
 * checked here, so that a custom runtime adapter's mistake is an
 * InvalidArgumentError that says whose value it was.
 */
export function channelCopyBelow(channel: ByteChannel): number {
  const method = "the runtime adapter's channel";
  let value: unknown;
  try {
    value = channel.copyBelow;
  } catch (cause) {
    throw new InvalidArgumentError("copyBelow", channel, "could not be read", {
      method,
      cause,
    });
  }
  return value === undefined || value === null
    ? 0
    : checkCopyBelow(value, method);
}

/**
 * The error of a channel whose `onData` or `onClose` threw: the connection
 * to `owner` (the node, at `address`) cannot start. What it threw is
 * foreign text, quoted as such (escaped, cut short): as it came, a hostile
 * channel's control characters and megabytes went into our message.
 */
export function receiversRefused(
  owner: Endpoint & { readonly address: string },
  cause: unknown,
): ConnectionError {
  return new ConnectionError(
    "CONNECTION_FAILED",
    `connection to ${owner.address} failed: the runtime adapter's ` +
      `channel refused its receivers: ${foreignText(cause)}`,
    owner,
    { cause },
  );
}
