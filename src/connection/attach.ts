/**
 * Attaching a stream to a connection's core: the checks on the channel,
 * its writer, its receivers, and the spent plaintext channel after a TLS
 * switch, with the way back when the channel refuses its receivers. Apart
 * from core.ts because it runs once per stream (connect, TLS switch),
 * never per request or reply.
 *
 * @module
 */

import { ConnectionLostError } from "../errors.ts";
import { foreignText } from "../errors/base.ts";
import type { MessageCodec } from "../protocol/codec.ts";
import type { ByteChannel } from "../runtime/types.ts";
import {
  channelCopyBelow,
  checkChannel,
  notAChannel,
  receiversRefused,
} from "./channel_check.ts";
import type { CoreOwner } from "./core_owner.ts";
import { FrameWriter } from "./frame_writer.ts";
import type { HeldFrame } from "./in_flight.ts";

/** The parts of a connection's core that attaching a stream sets or reads. */
export interface AttachTarget {
  /** The connection the core works for. */
  readonly owner: CoreOwner;
  /** Decodes the stream; takes the channel's `copyBelow`. */
  readonly codec: MessageCodec;
  /** The stream (none yet before the first attach). */
  channel: ByteChannel;
  /** Encodes frames for `channel`. */
  writer: FrameWriter;
  /** Requests held back while the socket is congested. */
  readonly queued: readonly HeldFrame[];
}

/**
 * Writes through `channel` and reads from it into `onData` from now on;
 * its close goes to `onClose`, the writer's drain to `onDrained`, and the
 * writer sizes a tick's parts by `inFlight`. A channel refused (what is no
 * ByteChannel, a bad `copyBelow`, receivers it will not take) leaves the
 * stream as it was (see `ConnectionCore.attach`).
 */
export function attachStream(
  core: AttachTarget,
  channel: ByteChannel,
  onClose: (error?: Error) => void,
  onData: (chunk: Uint8Array) => void,
  onDrained: () => void,
  inFlight: () => number,
): void {
  // First: a bad value (a custom adapter's) throws before anything is
  // attached.
  if (typeof channel !== "object" || channel === null) {
    throw notAChannel(channel, "it is no object");
  }
  // Its copyBelow before its methods, as before they were checked.
  const copyBelow = channelCopyBelow(channel);
  checkChannel(channel);
  const { channel: before, writer: beforeWriter } = core;
  const copiedBelow = core.codec.copyBelow;
  core.codec.copyBelow = copyBelow;
  core.channel = channel;
  core.writer = new FrameWriter(
    channel,
    onDrained,
    brokenReceiver(core.owner),
    inFlight,
  );
  // The stream it replaces (only a TLS switch replaces one) is spent,
  // by the runtime adapter's contract: what a custom one still hands
  // over is no frame of the node's, and read as one, an injected reply
  // answered a request sent over TLS. Its receiver now ends the
  // connection; set first, so that a secure channel reading through it
  // (a custom adapter's pass-through) takes it back just below.
  if (before !== undefined) readFrom(before, spentReceiver(core.owner));
  try {
    channel.onData(onData);
    channel.onClose(onClose);
  } catch (cause) {
    // Refused: the stream is the one before it again (a TLS switch's
    // plaintext one), so whoever ends the connection destroys that one,
    // and the refused channel is the caller's to destroy: each once.
    // Left swapped, the secure channel was destroyed twice and the
    // plaintext one never, its socket open for good.
    core.channel = before;
    core.writer = beforeWriter;
    core.codec.copyBelow = copiedBelow;
    // Its onData may have taken the receiver before its onClose threw:
    // what it delivered then was read by a connection that never got a
    // writer (a first attach), and a node's PING threw back into the
    // channel. Dropped: a channel that keeps it anyway meets a connection
    // that has ended (Connection's constructor).
    readFrom(channel, ignore);
    if (before !== undefined) readFrom(before, onData);
    throw receiversRefused(core.owner, cause);
  }
  // Requests held while the stream switched to TLS go out on it now.
  if (core.queued.length > 0) onDrained();
}

/**
 * The receiver of a spent plaintext channel (see attachStream): what it
 * still hands over ends the connection.
 */
function spentReceiver(owner: CoreOwner): () => void {
  return (): void => {
    owner.destroy(
      new ConnectionLostError(
        owner,
        "protocol violation: data arrived on the plaintext channel after " +
          "the switch to TLS",
      ),
    );
  };
}

/**
 * What the writer calls when the channel's write threw, or its drained()
 * failed: a custom adapter's bug, after which nobody knows what reached
 * the socket.
 */
function brokenReceiver(owner: CoreOwner): (error: unknown) => void {
  return (error: unknown): void => {
    owner.destroy(
      new ConnectionLostError(
        owner,
        `the runtime adapter's channel failed to write: ${foreignText(error)}`,
        { cause: error },
      ),
    );
  };
}

/** The receiver of a refused channel: what it hands over is nobody's. */
function ignore(): void {}

/**
 * Hands what `channel` reads to `fn` from now on, if it takes it: a
 * custom channel's onData may throw, and nothing more can be done for it.
 */
function readFrom(
  channel: ByteChannel,
  fn: (chunk: Uint8Array) => void,
): void {
  try {
    channel.onData(fn);
  } catch {
    // See above.
  }
}
