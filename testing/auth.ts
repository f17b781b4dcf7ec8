/**
 * The server side of SCRAM-SHA-256 for the reference node: a credential
 * store that keeps only salted verifiers (salt, iteration count, StoredKey,
 * ServerKey), never a password, and the verifier that runs one exchange.
 *
 * @module
 */

import {
  AuthenticationError,
  ConfigError,
  InvalidArgumentError,
  SaslprepError,
} from "../src/errors.ts";
import { integer, is } from "../src/config/options.ts";
import { isPayload } from "../src/connection/payload.ts";
import { decodeBase64, encodeBase64 } from "../src/auth/base64.ts";
import {
  deriveScramKeys,
  hmacSha256,
  randomNonce,
  sha256,
  timingSafeEqual,
  xorBytes,
} from "../src/auth/crypto.ts";
import {
  passwordProblem,
  saslprep,
  SASLPREP_REFUSES,
  userNameProblem,
} from "../src/auth/saslprep.ts";
import {
  SCRAM_MAX_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
} from "../src/auth/scram.ts";
import {
  parseScramAttributes,
  unescapeScramName,
} from "../src/auth/scram_messages.ts";
import { checkOptions } from "./options.ts";

// Below the SCRAM minimum is allowed: a test may check that a client
// refuses it. Above the client's maximum would only take long.
const ITERATIONS = integer(1, SCRAM_MAX_ITERATIONS);

/**
 * User names to passwords (as `CredentialStore.create` and
 * `startTestNode`'s `credentials` take them), read once into entries.
 *
 * @throws {ConfigError} about `field`, never showing a password, for
 *   anything else or a record that could not be read.
 */
export function readUsers(
  names: unknown,
  field: string,
  expected = "expected user names to passwords",
): [string, string][] {
  let entries: [string, unknown][] | undefined;
  let cause: unknown;
  try {
    // Inside the try: even Array.isArray throws for a revoked proxy.
    if (typeof names === "object" && names !== null && !Array.isArray(names)) {
      entries = Object.entries(names);
    }
  } catch (error) {
    cause = error;
  }
  if (entries?.every(([, p]) => typeof p === "string")) {
    for (const [name, password] of entries as [string, string][]) {
      // Refused here, naming the option, rather than by SASLprep when
      // the node starts.
      const problem = userNameProblem(name) ??
        passwordProblem(name, password);
      if (problem !== undefined) {
        throw new ConfigError(field, "[redacted]", problem);
      }
    }
    return entries as [string, string][];
  }
  throw new ConfigError(
    field,
    "[redacted]",
    cause === undefined ? expected : "could not be read",
    { cause },
  );
}

/**
 * What the node keeps for one user: enough to verify, not to log in.
 *
 * @example
 * ```ts
 * import { CredentialStore } from "@nodewire/client/testing";
 * const store = await CredentialStore.create({ alice: "correct horse" });
 * const stored = store.get("alice")!;
 * console.log(stored.iterations, stored.salt.byteLength); // 4096 16: no password kept
 * ```
 */
export interface StoredCredential {
  /** The user's random salt. */
  readonly salt: Uint8Array;
  /** PBKDF2 iterations used to derive the keys. */
  readonly iterations: number;
  /** H(ClientKey): checks a client proof. */
  readonly storedKey: Uint8Array;
  /** Signs the server-final message. */
  readonly serverKey: Uint8Array;
}

/**
 * Options for {@linkcode CredentialStore.add}.
 *
 * @example
 * ```ts
 * import { CredentialStore } from "@nodewire/client/testing";
 * const store = new CredentialStore();
 * // RFC 7677's test vector: a fixed salt and iteration count.
 * const salt = Uint8Array.from(atob("W22ZaJ0SNY7soEsUEjb6gQ=="), (c) => c.charCodeAt(0));
 * await store.add("user", "pencil", { salt, iterations: 4096 });
 * ```
 */
export interface AddCredentialOptions {
  /** PBKDF2 iterations. Default 4096. */
  iterations?: number;
  /** The salt. Default 16 random bytes. RFC vectors set it. */
  salt?: Uint8Array;
}

/**
 * Salted SCRAM verifiers by user name. The passwords given to
 * {@linkcode CredentialStore.add} are used once, to derive the keys, and
 * not kept.
 *
 * @example
 * ```ts
 * import { CredentialStore } from "@nodewire/client/testing";
 * const store = await CredentialStore.create({ alice: "correct horse" });
 * console.log(store.has("alice")); // true
 * ```
 */
export class CredentialStore {
  readonly #users = new Map<string, StoredCredential>();
  // Derives the fake salt of unknown users, so that they look like real
  // ones and a prober cannot tell which names exist.
  readonly #fakeSaltKey = crypto.getRandomValues(new Uint8Array(32));
  readonly #defaultIterations: number;

  /** Creates an empty store; `iterations` is the default for new users. */
  constructor(options: { iterations?: number } = {}) {
    const { iterations } = checkOptions<{ iterations?: number }>(
      "CredentialStore options",
      options,
      { iterations: ITERATIONS },
    );
    this.#defaultIterations = iterations ?? SCRAM_MIN_ITERATIONS;
  }

  /** Creates a store holding `users` (name to password). */
  static async create(
    names: Record<string, string>,
    options: { iterations?: number } = {},
  ): Promise<CredentialStore> {
    const store = new CredentialStore(options);
    for (const [name, password] of readUsers(names, "CredentialStore users")) {
      await store.add(name, password);
    }
    return store;
  }

  /** How many users the store holds. */
  get size(): number {
    return this.#users.size;
  }

  /** Adds or replaces a user; the password is not kept. */
  async add(
    username: string,
    password: string,
    options: AddCredentialOptions = {},
  ): Promise<StoredCredential> {
    const user = prepared(username, "CredentialStore.add");
    // Checked here, not by saslprep: its error would name itself.
    if (typeof password !== "string") {
      throw new InvalidArgumentError(
        "password",
        "[redacted]",
        "expected a string",
        {
          method: "CredentialStore.add",
        },
      );
    }
    const read = checkOptions<AddCredentialOptions>(
      "CredentialStore.add options",
      options,
      {
        iterations: ITERATIONS,
        // isPayload: WebCrypto threw a raw TypeError for a fake, and a
        // detached buffer (byteLength 0) for a salt that is none.
        salt: is(
          (v) => isPayload(v) && v.byteLength > 0,
          "expected a non-empty Uint8Array",
        ),
      },
    );
    // A copy, taken now: the keys are derived after an await, and the
    // caller may change its array meanwhile.
    const salt = read.salt === undefined
      ? crypto.getRandomValues(new Uint8Array(16))
      : new Uint8Array(read.salt);
    const iterations = read.iterations ?? this.#defaultIterations;
    const keys = await deriveScramKeys(
      preparedPassword(password),
      salt,
      iterations,
    );
    const stored: StoredCredential = Object.freeze({
      salt,
      iterations,
      storedKey: keys.storedKey,
      serverKey: keys.serverKey,
    });
    this.#users.set(user, stored);
    return copyOf(stored);
  }

  /** Removes a user. */
  delete(username: string): boolean {
    return this.#users.delete(prepared(username, "CredentialStore.delete"));
  }

  /** Whether a user exists. */
  has(username: string): boolean {
    return this.#users.has(prepared(username, "CredentialStore.has"));
  }

  /** The stored verifier of a user. */
  get(username: string): StoredCredential | undefined {
    const stored = this.#users.get(prepared(username, "CredentialStore.get"));
    return stored && copyOf(stored);
  }

  /** @internal A stand-in salt for a user that does not exist. */
  async fakeSalt(username: string): Promise<Uint8Array> {
    return (await hmacSha256(this.#fakeSaltKey, username)).slice(0, 16);
  }

  /** @internal The iteration count given to unknown users. */
  get defaultIterations(): number {
    return this.#defaultIterations;
  }
}

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
 * A copy of `stored` to hand out: freezing it leaves its arrays writable,
 * and a caller that zeroed the store's own StoredKey locked its user out.
 */
function copyOf(stored: StoredCredential): StoredCredential {
  return Object.freeze({
    salt: stored.salt.slice(),
    iterations: stored.iterations,
    storedKey: stored.storedKey.slice(),
    serverKey: stored.serverKey.slice(),
  });
}

/**
 * `password` prepared with SASLprep for `CredentialStore.add`. A refusal
 * does not say why: SaslprepError's message names the character refused
 * and where it is, a piece of the password (the client hides it too).
 */
function preparedPassword(password: string): string {
  try {
    return saslprep(password);
  } catch (error) {
    if (!(error instanceof SaslprepError)) throw error;
    throw new InvalidArgumentError(
      "password",
      "[redacted]",
      `is not allowed by SASLprep (${SASLPREP_REFUSES})`,
      { method: "CredentialStore.add" },
    );
  }
}

/**
 * `username` prepared with SASLprep, or an InvalidArgumentError of
 * `method` for one that is no string (saslprep's own would name saslprep).
 */
function prepared(username: unknown, method: string): string {
  if (typeof username !== "string") {
    throw new InvalidArgumentError("username", username, "expected a string", {
      method,
    });
  }
  return saslprep(username);
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

/** Whether `value` is a CredentialStore; false for a revoked proxy. */
export function isStore(value: unknown): value is CredentialStore {
  try {
    return value instanceof CredentialStore;
  } catch {
    return false;
  }
}
