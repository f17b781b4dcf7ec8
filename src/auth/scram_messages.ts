/**
 * SCRAM's messages as text (RFC 5802, section 7): the GS2 header, a user
 * name's escapes, the `key=value` attributes, and the server-first message
 * read and judged before any key is derived. Shared by the client
 * (scram.ts) and the test kit's server, which reads the same syntax.
 *
 * @module
 */

import { AuthenticationError } from "../errors.ts";
import { quoted } from "../errors/base.ts";
import { decodeBase64 } from "./base64.ts";

/**
 * The longest server-first message the client reads, in characters: real
 * ones are under 200, and a salt or nonce of megabytes would be kept in
 * the key cache and echoed in AUTH_FINAL.
 */
const MAX_SERVER_FIRST = 4096;

/** The GS2 header for "no channel binding, no authorization identity". */
export const GS2_HEADER = "n,,";
/** Printable ASCII except ",": RFC 5802's `printable`, what a nonce may hold. */
export const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** The GS2 header's bytes, as the client-final message carries them. */
export const gs2Bytes = new TextEncoder().encode(GS2_HEADER);

/**
 * Escapes a (prepared) user name for a SCRAM message: `=` becomes `=3D`
 * and `,` becomes `=2C`.
 */
export function escapeScramName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/**
 * Reverses {@linkcode escapeScramName}; `undefined` for an `=` that starts
 * neither escape.
 */
export function unescapeScramName(text: string): string | undefined {
  if (/=(?!2C|3D)/.test(text)) return undefined;
  return text.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

/**
 * Splits a SCRAM message into its `key=value` attributes, in order.
 * Returns `undefined` when a part is not a single letter, `=`, and a value.
 */
export function parseScramAttributes(
  message: string,
): [string, string][] | undefined {
  const out: [string, string][] = [];
  for (const part of message.split(",")) {
    if (!/^[A-Za-z]=/.test(part)) return undefined;
    out.push([part[0], part.slice(2)]);
  }
  return out;
}

/** What a server-first message holds, once read and checked. */
export interface ServerFirst {
  /** The combined nonce: the client's, extended by the node. */
  nonce: string;
  /** The salt, decoded. */
  salt: Uint8Array;
  /** The iteration count, within the bounds asked for. */
  iterations: number;
}

/**
 * Reads a server-first message: `r=` extending `clientNonce`, `s=` a
 * non-empty base64 salt, `i=` an iteration count from `minIterations` to
 * `maxIterations`.
 *
 * @throws {AuthenticationError} (`"bad-challenge"`) saying what was wrong.
 */
export function readServerFirst(
  serverFirst: string,
  clientNonce: string,
  minIterations: number,
  maxIterations: number,
): ServerFirst {
  if (serverFirst.length > MAX_SERVER_FIRST) {
    throw challenge(
      `the server-first message has ${serverFirst.length} characters, ` +
        `more than ${MAX_SERVER_FIRST}`,
    );
  }
  const attrs = parseScramAttributes(serverFirst);
  if (attrs === undefined || attrs.length < 3) {
    throw challenge("the server-first message is malformed");
  }
  if (attrs[0][0] === "m") {
    throw challenge("the node demands a SCRAM extension we do not support");
  }
  const [[rKey, nonce], [sKey, saltText], [iKey, iterationText]] = attrs;
  if (rKey !== "r" || sKey !== "s" || iKey !== "i") {
    throw challenge("the server-first message is not r=,s=,i=");
  }
  if (
    !nonce.startsWith(clientNonce) || nonce.length === clientNonce.length ||
    !PRINTABLE.test(nonce)
  ) {
    // A replayed or spliced exchange: the node did not answer our nonce.
    throw challenge("the node's nonce does not extend the client nonce");
  }
  const salt = decodeBase64(saltText);
  if (salt === undefined || salt.byteLength === 0) {
    throw challenge("the salt is not non-empty base64");
  }
  if (!/^[1-9][0-9]*$/.test(iterationText)) {
    throw challenge(
      `the iteration count ${
        quoted(iterationText, 64)
      } is not a positive integer`,
    );
  }
  const iterations = Number(iterationText); // 400 digits: Infinity
  if (iterations < minIterations) {
    throw challenge(
      `the iteration count ${iterations} is below the minimum of ${minIterations}`,
    );
  }
  if (iterations > maxIterations) {
    throw challenge(
      `the iteration count ${
        quoted(iterationText, 64)
      } is above the maximum of ${maxIterations}`,
    );
  }
  return { nonce, salt, iterations };
}

/** A challenge refused: the node's server-first message, saying why. */
function challenge(message: string): AuthenticationError {
  return new AuthenticationError(message, { reason: "bad-challenge" });
}
