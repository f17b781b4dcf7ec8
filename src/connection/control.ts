/**
 * The stream as the control channel, the cold side of a connection's API:
 * the checks on a control message before it is sent
 * (`Connection.sendMessage`) and on reading again after a pause
 * (`Connection.resumeReading`), both refused while the stream switches to
 * TLS (start_tls.ts holds the switch itself), and the options of
 * `Connection.connect`, `receiveMessage` and `sendMessage`, each read once
 * and refused with an `InvalidArgumentError` naming it before anything
 * starts. Never on the request path.
 *
 * @module
 */

import {
  bool,
  clientName,
  clock,
  duration,
  func,
  integer,
  is,
  methods,
  nested,
  readOptions,
  type Rule,
  serverName,
  signal,
  text,
} from "../config/options.ts";
import { InvalidArgumentError, ProtocolError } from "../errors.ts";
import {
  isKnownMessageType,
  KNOWN_FLAGS,
  MAX_FRAME_SIZE_LIMIT,
  MIN_FRAME_SIZE,
} from "../protocol/frame.ts";
import { lengthOf } from "../protocol/payload_length.ts";
import type { ConnectionCore } from "./core.ts";
import { invalidPayload, isPayload } from "./payload.ts";
import { switching } from "./tls_switching.ts";
import { messageTooLarge } from "./refusals.ts";

/**
 * Throws unless `payload` may be sent as a control message now on
 * `core`'s stream: a `Uint8Array`, on a connection that is not closed
 * (else `refusal` makes the error, saying how it ended) and whose stream
 * is not switching to TLS, within `sendLimit`: the lower of the frame
 * limit of its codec (the connection's `maxFrameSize`) and the node's.
 *
 * @throws {InvalidArgumentError} for a payload that is not a Uint8Array.
 * @throws {ConnectionError} what `refusal` makes, once closed.
 * @throws {ProtocolError} during a TLS switch, or for a payload over
 *   either limit, naming which.
 */
export function checkMessage(
  payload: Uint8Array,
  refusal: (() => Error) | undefined,
  core: ConnectionCore,
  sendLimit: number,
): void {
  if (!isPayload(payload)) throw invalidPayload(payload);
  if (refusal !== undefined) throw refusal();
  if (switching.has(core.channel)) {
    // The plaintext stream carries the handshake now: a frame written to
    // it would go out unencrypted and break the handshake. Unlike a
    // request, a control message has no record to hold it by, and a
    // handshake's next step waits for startTls anyway.
    throw underSwitch(
      "a control message cannot be sent",
      "send it once startTls() has settled",
    );
  }
  const codec = core.codec;
  const length = lengthOf(payload); // what frames it: see codec.ts
  // The send limit is never above the codec's: one check, whose message
  // says which limit it is.
  if (length > sendLimit) {
    throw messageTooLarge(length, sendLimit, codec.maxFrameSize);
  }
}

/**
 * Throws unless `core`'s stream may be read again after a `pauseReading`
 * receive (`Connection.resumeReading`): not while it switches to TLS.
 *
 * @throws {ProtocolError} during a TLS switch.
 */
export function checkResume(core: ConnectionCore): void {
  if (switching.has(core.channel)) {
    // The plaintext channel is the TLS layer's now: resumed, it would
    // hand the handshake's bytes to us as frames (or to nobody), and
    // what an attacker injected there would be acted on. Nothing is
    // left to resume either way: the secure channel reads on its own,
    // and a failed switch ends the connection.
    throw underSwitch(
      "reading cannot resume",
      "once startTls() has settled, the secure stream is read on its own",
    );
  }
}

/** The refusal of `what` during a TLS switch; `instead` says what to do. */
function underSwitch(what: string, instead: string): ProtocolError {
  return new ProtocolError(
    `${what} while a TLS switch is under way on this connection: ${instead}`,
  );
}

const sequence = integer(0, Number.MAX_SAFE_INTEGER);

/**
 * `Connection.connect`'s `tls`, by name: the client's door checks its
 * `connection.tls` override by them too. The server name is checked here,
 * once: a custom adapter's connect got any string.
 */
export const TLS_CONNECT: Record<string, Rule> = {
  serverName,
  ca: is(
    (v) => Array.isArray(v) && v.every((pem) => typeof pem === "string"),
    "expected an array of PEM strings",
  ),
  dangerouslySkipVerify: bool,
};

/**
 * The options of `Connection.connect`, by name; the client's door checks
 * its `connection` overrides by them too.
 */
export const CONNECT: Record<string, Rule> = {
  adapter: methods("connect"),
  hostname: text,
  port: integer(1, 65535),
  timeoutMs: duration,
  requestTimeoutMs: duration,
  maxFrameSize: integer(MIN_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT),
  clock,
  clientName,
  id: sequence,
  signal,
  handshake: func,
  tls: nested(TLS_CONNECT),
  startsTls: bool,
};

const RECEIVE: Record<string, Rule> = {
  // Infinity: no limit of its own (the handshake's, bounded by its signal).
  timeoutMs: (value) => value === Infinity ? undefined : duration(value),
  signal,
  pauseReading: bool,
};

const MESSAGE: Record<string, Rule> = {
  flags: integer(0, KNOWN_FLAGS),
  sequence,
};

/** `Connection.connect`'s options, read once and checked. */
export function readConnectOptions<T>(options: unknown): T {
  return readOptions("Connection.connect()", options, CONNECT, [
    "adapter",
    "hostname",
    "port",
  ]);
}

/** `receiveMessage`'s options (none: `{}`), read once and checked. */
export function readReceiveOptions<T>(options: unknown): T {
  return readOptions(
    "receiveMessage()",
    options === undefined ? {} : options,
    RECEIVE,
  );
}

/**
 * `sendMessage`'s options, read once, after checking that `type` is a
 * message type a node can read: known flags, a sequence of up to 53 bits.
 */
export function readFrameFields(
  type: unknown,
  options: unknown,
): { flags?: number; sequence?: number } {
  if (typeof type !== "number" || !isKnownMessageType(type)) {
    throw new InvalidArgumentError("type", type, "expected a message type", {
      method: "sendMessage()",
    });
  }
  return readOptions(
    "sendMessage()",
    options === undefined ? {} : options,
    MESSAGE,
  );
}
