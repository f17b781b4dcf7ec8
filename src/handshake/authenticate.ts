/**
 * The authentication step of the handshake: SCRAM-SHA-256 over AUTH_START
 * to AUTH_OK, and its failures told as {@linkcode AuthenticationError}s
 * naming the node and the user.
 *
 * @module
 */

import {
  SCRAM_SHA_256,
  ScramClient,
  type ScramKeyCache,
} from "../auth/scram.ts";
import type { Connection } from "../connection/connection.ts";
import { quoted } from "../errors/base.ts";
import { AuthenticationError, ProtocolError, RemoteError } from "../errors.ts";
import { type Message, MessageType } from "../protocol/frame.ts";
import {
  decodeJson,
  encodeJson,
  RemoteErrorCode,
} from "../protocol/messages.ts";
import type { Secret } from "../secret.ts";
import { receive } from "./step_reply.ts";

/**
 * Runs SCRAM-SHA-256 over AUTH_START, AUTH_CHALLENGE, AUTH_FINAL and
 * AUTH_OK. Resolves once the node accepted the client's proof and proved
 * itself with its signature.
 *
 * @throws {AuthenticationError} for rejected credentials, a node signature
 *   that does not verify, or an unsafe or malformed challenge.
 */
export async function authenticate(
  connection: Connection,
  options: {
    username: string;
    password: Secret;
    signal: AbortSignal;
    cache?: ScramKeyCache;
    nonce?: string;
  },
): Promise<void> {
  const { address } = connection;
  try {
    const scram = new ScramClient({
      username: options.username,
      password: options.password,
      cache: options.cache,
      nonce: options.nonce,
    });
    const started = connection.sendMessage(
      MessageType.AuthStart,
      encodeJson({
        mechanism: SCRAM_SHA_256,
        message: scram.clientFirstMessage(),
      }),
    );
    const challenge = await receive(
      connection,
      started,
      MessageType.AuthChallenge,
      options,
    );
    const clientFinal = await scram.clientFinalMessage(
      scramText(challenge, "AUTH_CHALLENGE"),
    );
    const final = connection.sendMessage(
      MessageType.AuthFinal,
      encodeJson({ message: clientFinal }),
    );
    const ok = await receive(connection, final, MessageType.AuthOk, options);
    await scram.verifyServerFinal(scramText(ok, "AUTH_OK"));
  } catch (error) {
    throw asAuthError(error, address, options.username);
  }
}
function scramText(message: Message, what: string): string {
  const v = decodeJson(message.payload, what);
  if (typeof v.message !== "string") {
    throw new ProtocolError(`${what} has no message string`);
  }
  return v.message;
}

/** The node's ERROR behind a lost connection, if that is what ended it. */
function remoteCause(error: unknown): RemoteError | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof RemoteError) return e;
    e = e.cause;
  }
  return undefined;
}

function asAuthError(
  error: unknown,
  address: string,
  username: string,
): unknown {
  const who = `authentication with ${address} as ${quoted(username)}`;
  if (error instanceof AuthenticationError) {
    return new AuthenticationError(`${who} failed: ${error.message}`, {
      reason: error.reason,
      address,
      cause: error,
    });
  }
  const remote = remoteCause(error);
  if (
    remote?.remoteCode === RemoteErrorCode.AuthFailed ||
    remote?.remoteCode === RemoteErrorCode.AuthRequired
  ) {
    return new AuthenticationError(
      `${who} failed: the node rejected the credentials (${remote.message})`,
      { reason: "rejected", address, cause: error },
    );
  }
  // Timeouts, aborts and lost connections keep their own class.
  return error;
}
