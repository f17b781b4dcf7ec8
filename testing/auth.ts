/**
 * The server side of SCRAM-SHA-256 for the reference node: the verifier
 * that runs one exchange against a credential store (credentials.ts,
 * re-exported here), which keeps only salted verifiers, never a password.
 *
 * @module
 */

import { AuthenticationError, InvalidArgumentError } from "../src/errors.ts";
import { is } from "../src/config/options.ts";
import { decodeBase64, encodeBase64 } from "../src/auth/base64.ts";
import {
  hmacSha256,
  randomNonce,
  sha256,
  timingSafeEqual,
  xorBytes,
} from "../src/auth/crypto.ts";
import { saslprep } from "../src/auth/saslprep.ts";
import {
  parseScramAttributes,
  unescapeScramName,
} from "../src/auth/scram_messages.ts";
import { checkOptions } from "./options.ts";
import {
  type CredentialStore,
  isStore,
  type StoredCredential,
} from "./credentials.ts";

export {
  type AddCredentialOptions,
  CredentialStore,
  isStore,
  readUsers,
  type StoredCredential,
} from "./credentials.ts";

/**
 * A server nonce: printable ASCII but the comma, as RFC 5802 says, since
 * it is sent as it is inside the comma-separated server-first message.
 */
const NONCE = is(
  (v) => typeof v === "string" && /^[\x21-\x2b\x2d-\x7e]+$/.test(v),
  "expected printable ASCII without a comma",
);

/**
 * Options for {@linkcode ScramServer}.
 *
 * @example
 * ```ts
 * import { CredentialStore, ScramServer } from "@nodewire/client/testing";
 * const store = await CredentialStore.create({ user: "pencil" });
 * // A fixed server nonce makes the exchange reproducible (RFC 7677's example).
 * const server = new ScramServer(store, { nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" });
 * ```
 */
export interface ScramServerOptions {
  /** The server's half of the nonce. Default 18 random bytes as base64. */
  nonce?: string;
}

/**
 * One SCRAM-SHA-256 exchange, node side. A wrong password, an unknown user
 * and a malformed message all fail with {@linkcode AuthenticationError};
 * an unknown user gets a plausible challenge first, so names cannot be
 * probed.
 *
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * import { ScramClient } from "@nodewire/client/auth";
 * import { CredentialStore, ScramServer } from "@nodewire/client/testing";
 * const server = new ScramServer(await CredentialStore.create({ user: "pencil" }));
 * const client = new ScramClient({ username: "user", password: new Secret("pencil") });
 * const serverFirst = await server.serverFirstMessage(client.clientFirstMessage());
 * const serverFinal = await server.serverFinalMessage(await client.clientFinalMessage(serverFirst));
 * await client.verifyServerFinal(serverFinal);
 * console.log(server.username, server.authenticated); // "user" true
 * ```
 */
export class ScramServer {
  readonly #store: CredentialStore;
  readonly #serverNonce: string;
  #step: "first" | "final" | "done" = "first";
  #username: string | undefined;
  #credential: StoredCredential | undefined;
  #gs2Header = "";
  #nonce = "";
  #clientFirstBare = "";
  #serverFirst = "";

  /** Starts an exchange against `store`. */
  constructor(store: CredentialStore, options: ScramServerOptions = {}) {
    // Read by every exchange's first step: a wrong one failed only there,
    // with a TypeError from inside.
    if (!isStore(store)) {
      throw new InvalidArgumentError(
        "store",
        store,
        "expected a CredentialStore",
        {
          method: "new ScramServer()",
        },
      );
    }
    const { nonce } = checkOptions<ScramServerOptions>(
      "ScramServer options",
      options,
      { nonce: NONCE },
    );
    this.#store = store;
    this.#serverNonce = nonce ?? randomNonce();
  }

  /** The user name the client gave, after step 1. */
  get username(): string | undefined {
    return this.#username;
  }

  /** Whether the exchange succeeded. */
  get authenticated(): boolean {
    return this.#step === "done";
  }

  /**
   * Step 1: reads the client-first message and answers with the
   * server-first message `r=<nonce>,s=<salt>,i=<iterations>`.
   *
   * @throws {AuthenticationError} for a malformed message or one that asks
   *   for channel binding, an authorization identity or an extension.
   */
  async serverFirstMessage(clientFirst: string): Promise<string> {
    checkMessage(clientFirst, "clientFirst", "serverFirstMessage");
    if (this.#step !== "first") throw bad("the exchange already started");
    this.#step = "final";
    const match = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/.exec(clientFirst);
    if (match === null) throw bad("the GS2 header is malformed");
    if (match[1].startsWith("p")) throw bad("channel binding is unsupported");
    if (match[2] !== undefined) throw bad("authorization ids are unsupported");
    this.#gs2Header = `${match[1]},,`;
    this.#clientFirstBare = match[3];
    const attrs = parseScramAttributes(this.#clientFirstBare);
    if (
      attrs === undefined || attrs.length < 2 || attrs[0][0] !== "n" ||
      attrs[1][0] !== "r"
    ) {
      throw bad("the client-first message is not n=,r=");
    }
    const name = unescapeScramName(attrs[0][1]);
    if (name === undefined || name.length === 0) {
      throw bad(
        name === undefined
          ? 'the user name has an "=" not escaped as =3D or =2C (RFC 5802)'
          : "the user name is empty",
      );
    }
    const clientNonce = attrs[1][1];
    if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) {
      throw bad("the client nonce is not printable");
    }
    let prepared: string;
    try {
      prepared = saslprep(name);
    } catch {
      throw bad("the user name is not allowed by SASLprep");
    }
    this.#username = prepared;
    this.#credential = this.#store.get(prepared);
    const salt = this.#credential?.salt ??
      await this.#store.fakeSalt(prepared);
    const iterations = this.#credential?.iterations ??
      this.#store.defaultIterations;
    this.#nonce = clientNonce + this.#serverNonce;
    this.#serverFirst = `r=${this.#nonce},s=${
      encodeBase64(salt)
    },i=${iterations}`;
    return this.#serverFirst;
  }

  /**
   * Step 2: checks the client's proof and answers with the server-final
   * message `v=<signature>`.
   *
   * @throws {AuthenticationError} (`"rejected"`) for a wrong proof, an
   *   unknown user, or a message that does not continue this exchange.
   */
  async serverFinalMessage(clientFinal: string): Promise<string> {
    checkMessage(clientFinal, "clientFinal", "serverFinalMessage");
    if (this.#step !== "final") throw bad("the exchange is not at step 2");
    this.#step = "first";
    const proofAt = clientFinal.lastIndexOf(",p=");
    if (proofAt < 0) throw bad("the client-final message has no proof");
    const withoutProof = clientFinal.slice(0, proofAt);
    const attrs = parseScramAttributes(withoutProof);
    if (
      attrs === undefined || attrs.length < 2 || attrs[0][0] !== "c" ||
      attrs[1][0] !== "r"
    ) {
      throw bad("the client-final message is not c=,r=,p=");
    }
    const binding = decodeBase64(attrs[0][1]);
    if (
      binding === undefined ||
      new TextDecoder().decode(binding) !== this.#gs2Header
    ) {
      throw bad("the channel binding does not repeat the GS2 header");
    }
    if (attrs[1][1] !== this.#nonce) throw bad("the nonce does not match");
    const proof = decodeBase64(clientFinal.slice(proofAt + 3));
    const credential = this.#credential;
    if (proof === undefined || proof.byteLength !== 32 || !credential) {
      throw rejected();
    }
    const authMessage =
      `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientSignature = await hmacSha256(credential.storedKey, authMessage);
    const clientKey = xorBytes(proof, clientSignature);
    if (!timingSafeEqual(await sha256(clientKey), credential.storedKey)) {
      throw rejected();
    }
    this.#step = "done";
    const signature = await hmacSha256(credential.serverKey, authMessage);
    return `v=${encodeBase64(signature)}`;
  }
}

/**
 * Throws the error of `method` about a `message` that is no string: the
 * exchange would read it as its text, or fail inside with a TypeError.
 */
function checkMessage(
  message: unknown,
  argument: string,
  method: string,
): void {
  if (typeof message === "string") return;
  throw new InvalidArgumentError(argument, message, "expected a string", {
    method: `ScramServer.${method}`,
  });
}

function bad(message: string): AuthenticationError {
  return new AuthenticationError(`SCRAM: ${message}`, { reason: "rejected" });
}

function rejected(): AuthenticationError {
  // The same words for an unknown user and a wrong password.
  return new AuthenticationError("invalid user name or password", {
    reason: "rejected",
  });
}
