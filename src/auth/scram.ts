/**
 * The client side of SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash): the
 * client proves it knows the password without sending it, and the node
 * proves it knows the password's salted verifier, so a forged node is
 * caught too. Channel binding is not used (GS2 header `n,,`).
 *
 * Here: the exchange's steps, its options and the key cache. Apart: the
 * messages' syntax and the server-first message's checks
 * (scram_messages.ts), which the test kit's server shares.
 *
 * @module
 */

import {
  AuthenticationError,
  InvalidArgumentError,
  SaslprepError,
} from "../errors.ts";
import { quoted } from "../errors/base.ts";
import { Secret } from "../secret.ts";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import {
  deriveScramKeys,
  hmacSha256,
  randomNonce,
  type ScramKeys,
  timingSafeEqual,
  xorBytes,
} from "./crypto.ts";
import { saslprep, SASLPREP_REFUSES } from "./saslprep.ts";
import {
  escapeScramName,
  GS2_HEADER,
  gs2Bytes,
  parseScramAttributes,
  PRINTABLE,
  readServerFirst,
} from "./scram_messages.ts";

/**
 * The lowest iteration count the client accepts: RFC 7677's minimum. A node
 * asking for fewer makes the stored verifier cheap to brute-force.
 *
 * @example
 * ```ts
 * import { CredentialStore } from "@nodewire/client/testing";
 * import { SCRAM_MIN_ITERATIONS } from "@nodewire/client/auth";
 * // The cheapest verifier a client still accepts: fast tests, real SCRAM.
 * const store = await CredentialStore.create({ app: "s3cret" }, { iterations: SCRAM_MIN_ITERATIONS });
 * console.log(store.get("app")?.iterations); // 4096
 * ```
 */
export const SCRAM_MIN_ITERATIONS = 4096;

/**
 * The highest iteration count the client accepts, so that a hostile node
 * cannot make every connect burn seconds of CPU. Above OWASP's 2023
 * advice for PBKDF2-HMAC-SHA-256 (600 000).
 *
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * import { SCRAM_MAX_ITERATIONS, ScramClient } from "@nodewire/client/auth";
 * // A client that accepts a tenth of the costliest challenge, for a slow device.
 * const scram = new ScramClient({
 *   username: "app",
 *   password: new Secret("s3cret"),
 *   maxIterations: SCRAM_MAX_ITERATIONS / 10,
 * });
 * ```
 */
export const SCRAM_MAX_ITERATIONS = 1_000_000;

/**
 * The mechanism name, as HELLO_OK and AUTH_START spell it on the wire.
 *
 * @example
 * ```ts
 * import { encodeJson } from "@nodewire/client/protocol";
 * import { SCRAM_SHA_256, ScramClient } from "@nodewire/client/auth";
 * declare const scram: ScramClient;
 * // The AUTH_START payload: the mechanism and the client-first message.
 * const payload = encodeJson({ mechanism: SCRAM_SHA_256, message: scram.clientFirstMessage() });
 * ```
 */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";

/**
 * A cache of derived keys for one password, keyed by salt and iteration
 * count. PBKDF2 is deliberately slow; a pool opening twenty connections to
 * nodes that share a verifier runs it once. Its contents never print.
 *
 * @example
 * ```ts
 * import { ScramKeyCache } from "@nodewire/client/auth";
 * const cache = new ScramKeyCache();
 * console.log(cache.size); // 0
 * ```
 */
export class ScramKeyCache {
  readonly #entries = new Map<string, Promise<ScramKeys>>();
  readonly #limit: number;

  /** Creates a cache holding at most `limit` salt/iteration pairs. */
  constructor(limit = 8) {
    // A NaN or negative limit would leave the cache unbounded.
    this.#limit = count("new ScramKeyCache()", "limit", limit);
  }

  /** How many salt/iteration pairs are cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** @internal The keys for `salt` and `iterations`, derived at most once. */
  keys(
    password: string,
    salt: Uint8Array,
    iterations: number,
  ): Promise<ScramKeys> {
    // Nothing kept: with no entry to evict, the one made would stay.
    if (this.#limit === 0) return deriveScramKeys(password, salt, iterations);
    const id = `${iterations}:${encodeBase64(salt)}`;
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      if (this.#entries.size >= this.#limit) {
        this.#entries.delete(this.#entries.keys().next().value!);
      }
      entry = deriveScramKeys(password, salt, iterations);
      // A failure is not worth keeping.
      entry.catch(() => this.#entries.delete(id));
      this.#entries.set(id, entry);
    }
    return entry;
  }
}

/**
 * Options for {@linkcode ScramClient}.
 *
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * import { ScramClient, ScramKeyCache } from "@nodewire/client/auth";
 * const cache = new ScramKeyCache(); // one per password, shared by its connections
 * const scram = new ScramClient({
 *   username: "app",
 *   password: new Secret("s3cret"),
 *   cache,
 *   minIterations: 10_000, // refuse nodes that store cheaper verifiers
 * });
 * console.log(scram.clientFirstMessage().startsWith("n,,n=app,r=")); // true
 * ```
 */
export interface ScramClientOptions {
  /** The user name, before SASLprep. */
  username: string;
  /** The password, before SASLprep. Revealed only to derive the keys. */
  password: Secret;
  /**
   * The client nonce. Default: 18 bytes from `crypto.getRandomValues`, as
   * base64. Only tests set it (RFC 7677's example uses a fixed one).
   */
  nonce?: string;
  /** Shares derived keys between exchanges with the same password. */
  cache?: ScramKeyCache;
  /** Lowest acceptable iteration count. Default and minimum 4096. */
  minIterations?: number;
  /**
   * Highest acceptable iteration count, at least the lowest. Default
   * 1 000 000.
   */
  maxIterations?: number;
}

/**
 * One SCRAM-SHA-256 exchange, client side: three steps, in order.
 * Every failure of the exchange is an {@linkcode AuthenticationError}; a
 * step called out of turn, or given a message that is no string, is the
 * caller's bug, an {@linkcode InvalidArgumentError}. No message ever
 * contains the password or a key.
 *
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * import { ScramClient } from "@nodewire/client/auth";
 * declare function exchange(message: string): Promise<string>; // one round trip to the node
 * const scram = new ScramClient({ username: "user", password: new Secret("pencil") });
 * const serverFirst = await exchange(scram.clientFirstMessage()); // sends "n,,n=user,r=..."
 * const serverFinal = await exchange(await scram.clientFinalMessage(serverFirst));
 * await scram.verifyServerFinal(serverFinal); // rejects unless the node knows the password
 * ```
 */
export class ScramClient {
  readonly #password: Secret;
  readonly #nonce: string;
  readonly #clientFirstBare: string;
  readonly #cache: ScramKeyCache | undefined;
  readonly #minIterations: number;
  readonly #maxIterations: number;
  #step: Step = "first";
  #expectedServerSignature: Uint8Array | undefined;

  /**
   * Prepares the exchange.
   *
   * @throws {AuthenticationError} (`"invalid-credentials"`) when SASLprep
   *   refuses the user name or password, or either is empty.
   * @throws {InvalidArgumentError} for an option of the wrong kind, or a
   *   `maxIterations` below the lowest count accepted.
   */
  constructor(options: ScramClientOptions) {
    // Each option read once, and checked: a NaN bound turned its check off
    // (NaN compares false), and other bad values failed later, raw.
    const method = "new ScramClient()";
    let o: ScramClientOptions;
    try {
      const { username, password, nonce, cache, minIterations, maxIterations } =
        options;
      o = { username, password, nonce, cache, minIterations, maxIterations };
    } catch (cause) {
      throw new InvalidArgumentError(
        "options",
        undefined,
        "could not be read",
        {
          method,
          cause,
        },
      );
    }
    const bad = (name: string, value: unknown, expected: string) =>
      new InvalidArgumentError(`options.${name}`, value, expected, { method });
    if (typeof o.username !== "string") {
      throw bad("username", o.username, "expected a string");
    }
    // Never shown: it may be the password itself.
    if (!(o.password instanceof Secret)) {
      throw bad("password", undefined, "expected a Secret");
    }
    const nonce = o.nonce ?? randomNonce();
    if (typeof nonce !== "string" || !PRINTABLE.test(nonce)) {
      throw bad("nonce", nonce, "expected printable ASCII without ,");
    }
    if (o.cache !== undefined && !(o.cache instanceof ScramKeyCache)) {
      throw bad("cache", o.cache, "expected a ScramKeyCache");
    }
    this.#password = o.password;
    this.#nonce = nonce;
    this.#cache = o.cache;
    this.#minIterations = Math.max(
      SCRAM_MIN_ITERATIONS,
      count(method, "options.minIterations", o.minIterations),
    );
    this.#maxIterations = count(
      method,
      "options.maxIterations",
      o.maxIterations ?? SCRAM_MAX_ITERATIONS,
    );
    // Bounds that leave no count were taken, and every challenge refused.
    if (this.#maxIterations < this.#minIterations) {
      throw bad(
        "maxIterations",
        this.#maxIterations,
        `expected at least ${this.#minIterations} (the minimum accepted)`,
      );
    }
    const username = prepare(o.username, "username");
    // Checked now so that a bad password fails before anything is sent.
    prepare(o.password.reveal(), "password");
    this.#clientFirstBare = `n=${escapeScramName(username)},r=${nonce}`;
  }

  /**
   * Step 1: the client-first message, `n,,n=<user>,r=<nonce>`.
   *
   * @throws {InvalidArgumentError} (`step`) when called a second time.
   */
  clientFirstMessage(): string {
    this.#advance("clientFirstMessage", "first", "final");
    return GS2_HEADER + this.#clientFirstBare;
  }

  /**
   * Step 2: checks the server-first message and answers with the
   * client-final message, which carries the proof.
   *
   * @throws {AuthenticationError} (`"bad-challenge"`) for a malformed
   *   message, a nonce that does not extend ours, a bad salt, or an
   *   iteration count outside the accepted bounds.
   * @throws {InvalidArgumentError} for a `serverFirst` that is no string,
   *   before the step is taken; (`step`) unless step 1 came just before.
   */
  async clientFinalMessage(serverFirst: string): Promise<string> {
    text("clientFinalMessage", "serverFirst", serverFirst);
    this.#advance("clientFinalMessage", "final", "proving");
    try {
      const clientFinal = await this.#prove(serverFirst);
      this.#step = "verify";
      return clientFinal;
    } catch (error) {
      // Nothing to verify: step 3 is refused, not a TypeError on a missing
      // signature.
      this.#step = "failed";
      throw error;
    }
  }

  /** Step 2's work: checks the challenge, derives the proof. */
  async #prove(serverFirst: string): Promise<string> {
    const { nonce, salt, iterations } = readServerFirst(
      serverFirst,
      this.#nonce,
      this.#minIterations,
      this.#maxIterations,
    );
    const password = saslprep(this.#password.reveal());
    const keys = this.#cache
      ? await this.#cache.keys(password, salt, iterations)
      : await deriveScramKeys(password, salt, iterations);
    const withoutProof = `c=${encodeBase64(gs2Bytes)},r=${nonce}`;
    const authMessage =
      `${this.#clientFirstBare},${serverFirst},${withoutProof}`;
    const [clientSignature, serverSignature] = await Promise.all([
      hmacSha256(keys.storedKey, authMessage),
      hmacSha256(keys.serverKey, authMessage),
    ]);
    this.#expectedServerSignature = serverSignature;
    const proof = xorBytes(keys.clientKey, clientSignature);
    return `${withoutProof},p=${encodeBase64(proof)}`;
  }

  /**
   * Step 3: checks the server-final message. Resolves when the node proved
   * it knows the verifier.
   *
   * @throws {AuthenticationError} `"rejected"` for `e=<error>`,
   *   `"server-signature"` when the signature does not match.
   * @throws {InvalidArgumentError} for a `serverFinal` that is no string,
   *   before the step is taken; (`step`) unless step 2 resolved just
   *   before.
   */
  verifyServerFinal(serverFinal: string): Promise<void> {
    try {
      text("verifyServerFinal", "serverFinal", serverFinal);
      this.#advance("verifyServerFinal", "verify", "done");
    } catch (error) {
      return Promise.reject(error);
    }
    const attrs = parseScramAttributes(serverFinal);
    if (attrs !== undefined && attrs[0][0] === "e") {
      return Promise.reject(
        new AuthenticationError(
          `the node rejected the credentials (${quoted(attrs[0][1], 64)})`,
          { reason: "rejected" },
        ),
      );
    }
    const signature = attrs !== undefined && attrs[0][0] === "v"
      ? decodeBase64(attrs[0][1])
      : undefined;
    if (
      signature === undefined ||
      !timingSafeEqual(signature, this.#expectedServerSignature!)
    ) {
      return Promise.reject(
        new AuthenticationError(
          "the node's SCRAM server signature does not verify: it does not " +
            "know the credentials (a forged or misconfigured node)",
          { reason: "server-signature" },
        ),
      );
    }
    return Promise.resolve();
  }

  /** Moves from step `expected` to `next`, or refuses the call of `method`. */
  #advance(method: string, expected: Step, next: Step): void {
    if (this.#step !== expected) {
      throw new InvalidArgumentError(
        "step",
        STEP_REACHED[this.#step],
        `expected ${STEP_WANTED[expected]}`,
        { method: `ScramClient.${method}` },
      );
    }
    this.#step = next;
  }
}

/** Where an exchange is: "proving" while step 2 derives its keys. */
type Step = "first" | "final" | "proving" | "verify" | "failed" | "done";

/** Where an exchange is, as a call out of turn is told. */
const STEP_REACHED: Record<Step, string> = {
  first: "before clientFirstMessage()",
  final: "after clientFirstMessage()",
  proving: "while clientFinalMessage() is under way",
  verify: "after clientFinalMessage()",
  failed: "after clientFinalMessage() failed",
  done: "after verifyServerFinal(): the exchange is over",
};

/** When each step may be called. */
const STEP_WANTED: Partial<Record<Step, string>> = {
  first: "the first call of the exchange",
  final: "a call right after clientFirstMessage()",
  verify: "a call once clientFinalMessage() has resolved",
};

/**
 * Refuses a message of the node's, handed in by the caller, that is no
 * string: it was a TypeError from inside the parsing.
 */
function text(method: string, argument: string, value: unknown): void {
  if (typeof value !== "string") {
    throw new InvalidArgumentError(argument, value, "expected a string", {
      method: `ScramClient.${method}`,
    });
  }
}

/** `value` (undefined: 0), when it is a whole number ≥ 0. */
function count(method: string, name: string, value: unknown = 0): number {
  if (Number.isSafeInteger(value) && (value as number) >= 0) {
    return value as number;
  }
  throw new InvalidArgumentError(name, value, "expected a whole number ≥ 0", {
    method,
  });
}

/**
 * SASLprep for one credential; the error names which one, and for the
 * password says nothing about its characters.
 */
function prepare(value: string, which: "username" | "password"): string {
  let prepared: string;
  try {
    prepared = saslprep(value);
  } catch (error) {
    if (!(error instanceof SaslprepError)) throw error;
    const detail = which === "username"
      ? `: ${error.message}`
      : ` (${SASLPREP_REFUSES})`;
    throw new AuthenticationError(
      `the ${which} is not allowed by SASLprep${detail}`,
      { reason: "invalid-credentials" },
    );
  }
  if (prepared.length === 0) {
    throw new AuthenticationError(`the ${which} is empty after SASLprep`, {
      reason: "invalid-credentials",
    });
  }
  return prepared;
}
