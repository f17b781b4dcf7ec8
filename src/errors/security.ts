/**
 * Errors of the handshake's security steps: TLS, protocol negotiation and
 * authentication. None of them falls back to a weaker setting.
 *
 * @module
 */

import { fieldOf, itemsOf, NodewireError, optionsOf, textOf } from "./base.ts";
import type { ProtocolType } from "../protocol_type.ts";

/**
 * Why a TLS handshake failed, in {@linkcode TlsError.reason}:
 * - `"certificate"`: the node's certificate does not chain to a trusted CA
 *   (unknown issuer, self-signed, bad signature);
 * - `"hostname"`: the certificate is valid but not for the name the client
 *   connected to (`tls.serverName`, else the host);
 * - `"expired"`: the certificate is outside its validity period (expired,
 *   or not yet valid);
 * - `"handshake-timeout"`: the TLS handshake did not finish within
 *   `tls.handshakeTimeoutMs`;
 * - `"handshake"`: the TLS handshake broke otherwise (the node does not speak
 *   TLS, no common version or cipher, an alert).
 *
 * @example
 * ```ts
 * import type { TlsError, TlsFailureReason } from "@nodewire/client";
 * const transient: TlsFailureReason[] = ["handshake-timeout"]; // may work next time
 * declare const error: TlsError;
 * console.log(transient.includes(error.reason) ? "try again later" : `fix the certificate: ${error.reason}`);
 * ```
 */
export type TlsFailureReason =
  | "certificate"
  | "hostname"
  | "expired"
  | "handshake-timeout"
  | "handshake";

/**
 * A TLS handshake failed. The connection is closed and nothing falls back
 * to plain TCP or UDP. Only `"handshake-timeout"` is retryable (a busy
 * node may answer the next time); a certificate, hostname or validity
 * failure is never retried, since it cannot fix itself and retrying
 * elsewhere would only repeat it.
 *
 * @example
 * ```ts
 * import { Client, TlsError } from "@nodewire/client";
 * try {
 *   await Client.connect({ hosts: ["db.example.com:7000"], enableTls: true });
 * } catch (error) {
 *   if (!(error instanceof TlsError)) throw error;
 *   switch (error.reason) {
 *     case "hostname":
 *       console.log(`the certificate of ${error.address} is not for ${error.serverName}`);
 *       break;
 *     case "expired":
 *       console.log(`the certificate of ${error.address} has expired`);
 *       break;
 *     default:
 *       console.log(`TLS with ${error.address} failed (${error.reason})`);
 *   }
 * }
 * ```
 */
export class TlsError extends NodewireError {
  /** Always `"TLS_FAILED"`. */
  declare readonly code: "TLS_FAILED";
  /** Why it failed. */
  readonly reason: TlsFailureReason;
  /** `host:port` of the node. */
  readonly address: string;
  /** The name the certificate was checked against. */
  readonly serverName: string | undefined;
  /** No request was sent: the failure happened while connecting. */
  readonly sent = false;

  /** Creates the error; `reason` says why, and decides retryability. */
  constructor(
    message: string,
    options: {
      reason: TlsFailureReason;
      address: string;
      serverName?: string;
      cause?: unknown;
    },
  ) {
    const read = optionsOf(options);
    super("TLS_FAILED", message, {
      cause: read.cause,
      retryable: read.reason === "handshake-timeout",
    });
    this.reason = read.reason;
    this.address = read.address;
    this.serverName = read.serverName;
  }
}

/** What {@linkcode NegotiationError} reports about both sides. */
export interface NegotiationFailure {
  /** `host:port` of the node. */
  address: string;
  /** What the client offered (allowed by its policy and available to it). */
  clientProtocols: readonly ProtocolType[];
  /** What the client's policy allows, available or not. */
  allowedProtocols: readonly ProtocolType[];
  /** What the node said it serves. */
  nodeProtocols: readonly ProtocolType[];
  /** What went wrong, in words. */
  detail: string;
}

/**
 * The client and a node could not agree on a transport protocol: they
 * share none that the client's policy allows, or the node's choice differs
 * from the client's. Never retried and never answered by falling back to a
 * weaker protocol. The message lists both sides' sets.
 *
 * @example
 * ```ts
 * import { Client, NegotiationError } from "@nodewire/client";
 * try {
 *   await Client.connect({ hosts: ["127.0.0.1:7000"], enableTls: true });
 * } catch (error) {
 *   if (!(error instanceof NegotiationError)) throw error;
 *   // "127.0.0.1:7000 serves tcp; we allow tls"
 *   console.log(`${error.address} serves ${error.nodeProtocols}; we allow ${error.allowedProtocols}`);
 * }
 * ```
 */
export class NegotiationError extends NodewireError {
  /** Always `"NEGOTIATION_FAILED"`. */
  declare readonly code: "NEGOTIATION_FAILED";
  /** `host:port` of the node. */
  readonly address: string;
  /** What the client offered. */
  readonly clientProtocols: readonly ProtocolType[];
  /** What the client's policy allows. */
  readonly allowedProtocols: readonly ProtocolType[];
  /** What the node serves. */
  readonly nodeProtocols: readonly ProtocolType[];

  /** Creates the error from both sides' sets. */
  constructor(failure: NegotiationFailure, options: { cause?: unknown } = {}) {
    // Each set as the failure holds it; one that is no array that can be
    // read is shown as what it is, and kept as none.
    const set = (key: keyof NegotiationFailure) => {
      const items = itemsOf(fieldOf(failure, key));
      return {
        items: Object.freeze([...items ?? []]) as readonly ProtocolType[],
        text: items === undefined
          ? textOf(fieldOf(failure, key))
          : `[${items.map(textOf).join(", ")}]`,
      };
    };
    const client = set("clientProtocols");
    const allowed = set("allowedProtocols");
    const node = set("nodeProtocols");
    const address = fieldOf(failure, "address") as string;
    super(
      "NEGOTIATION_FAILED",
      `protocol negotiation with ${textOf(address)} failed: ${
        textOf(fieldOf(failure, "detail"))
      } (client offers ${client.text}, its policy allows ${allowed.text}; ` +
        `node supports ${node.text})`,
      { cause: optionsOf(options).cause, retryable: false },
    );
    this.address = address;
    this.clientProtocols = client.items;
    this.allowedProtocols = allowed.items;
    this.nodeProtocols = node.items;
  }
}

/**
 * Why authentication failed, in {@linkcode AuthenticationError.reason}:
 * - `"credentials-required"`: the node requires authentication and the
 *   client has no username and password;
 * - `"rejected"`: the node rejected the proof (wrong user or password);
 * - `"server-signature"`: the node's signature did not verify, so it does
 *   not know the password: a forged or misconfigured node;
 * - `"node-unauthenticated"`: the client has credentials but the node does
 *   not authenticate, so it could not prove who it is;
 * - `"bad-challenge"`: the node's SCRAM message was malformed or unsafe
 *   (iteration count out of bounds, a nonce that does not extend ours);
 * - `"invalid-credentials"`: the username or password is not allowed by
 *   SASLprep (control characters, for example), or is empty.
 *
 * @example
 * ```ts
 * import { AuthenticationError, type AuthFailureReason } from "@nodewire/client";
 * const hints: Record<AuthFailureReason, string> = {
 *   "credentials-required": "set username and password",
 *   "rejected": "check the user name and password",
 *   "server-signature": "the node does not know the password: is it the right node?",
 *   "node-unauthenticated": "the node does not authenticate: refuse it",
 *   "bad-challenge": "the node's SCRAM message was unsafe",
 *   "invalid-credentials": "the user name or password is not allowed by SASLprep",
 * };
 * declare const error: AuthenticationError;
 * console.log(hints[error.reason]);
 * ```
 */
export type AuthFailureReason =
  | "credentials-required"
  | "rejected"
  | "server-signature"
  | "node-unauthenticated"
  | "bad-challenge"
  | "invalid-credentials";

/**
 * Authentication failed. Never retried: trying the same credentials again
 * cannot succeed, and retrying could lock an account. The message never
 * contains the password.
 *
 * @example
 * ```ts
 * import { AuthenticationError, Client } from "@nodewire/client";
 * try {
 *   await Client.connect({ hosts: ["127.0.0.1:7000"], username: "app", password: "wrong" });
 * } catch (error) {
 *   if (!(error instanceof AuthenticationError)) throw error;
 *   if (error.reason === "rejected") console.log(`${error.address} rejected the credentials`);
 *   else console.log(`authentication failed: ${error.reason}`);
 * }
 * ```
 */
export class AuthenticationError extends NodewireError {
  /** Always `"AUTH_FAILED"`. */
  declare readonly code: "AUTH_FAILED";
  /** Why it failed. */
  readonly reason: AuthFailureReason;
  /** `host:port` of the node, when known. */
  readonly address: string | undefined;

  /** Creates the error; `reason` says why. */
  constructor(
    message: string,
    options: { reason: AuthFailureReason; address?: string; cause?: unknown },
  ) {
    const read = optionsOf(options);
    super("AUTH_FAILED", message, { cause: read.cause, retryable: false });
    this.reason = read.reason;
    this.address = read.address;
  }
}

/**
 * SASLprep refused a string. The message names the offending code point by
 * its position and number, never the string itself, since it may be a
 * password.
 *
 * @example
 * ```ts
 * import { SaslprepError } from "@nodewire/client";
 * import { saslprep } from "@nodewire/client/auth";
 * try {
 *   saslprep("bell\u0007");
 * } catch (error) {
 *   if (error instanceof SaslprepError) console.log(error.code, error.message); // names the code point, not the string
 *   else throw error;
 * }
 * ```
 */
export class SaslprepError extends NodewireError {
  /** Always `"SASLPREP_FAILED"`. */
  declare readonly code: "SASLPREP_FAILED";
  /** Creates the error. */
  constructor(message: string) {
    super("SASLPREP_FAILED", message, { retryable: false });
  }
}
