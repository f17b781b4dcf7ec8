/**
 * The reference node's credential store: salted SCRAM-SHA-256 verifiers
 * (salt, iteration count, StoredKey, ServerKey) by user name, never a
 * password, and the reading of the user names to passwords a test gives.
 *
 * @module
 */

import {
  ConfigError,
  InvalidArgumentError,
  SaslprepError,
} from "../src/errors.ts";
import { integer, is } from "../src/config/options.ts";
import { isPayload } from "../src/connection/payload.ts";
import { deriveScramKeys, hmacSha256 } from "../src/auth/crypto.ts";
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

/** Whether `value` is a CredentialStore; false for a revoked proxy. */
export function isStore(value: unknown): value is CredentialStore {
  try {
    return value instanceof CredentialStore;
  } catch {
    return false;
  }
}
