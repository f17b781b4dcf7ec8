/**
 * What runs on a connection after HELLO_OK and before it is handed out:
 * protocol negotiation (NEGOTIATE / NEGOTIATE_OK), the transport switch it
 * may call for, then SCRAM-SHA-256 authentication (AUTH_START to AUTH_OK).
 * {@linkcode createHandshake} builds the function that `Connection.connect`
 * takes as its `handshake` hook; the ConnectionManager passes one built
 * from the client's configuration.
 *
 * @module
 */

import { SCRAM_SHA_256, ScramClient, ScramKeyCache } from "../auth/scram.ts";
import { bool, func, is, readOptions, refuse } from "../config/options.ts";
import type { ResolvedConfig } from "../config/shapes.ts";
import { oneOf } from "../config/validate.ts";
import type { Connection } from "../connection/connection.ts";
import { expectReply } from "../connection/open.ts";
import { itemsOf, quoted } from "../errors/base.ts";
import {
  AuthenticationError,
  NegotiationError,
  ProtocolError,
  RemoteError,
  TlsError,
} from "../errors.ts";
import { type Message, MessageType } from "../protocol/frame.ts";
import {
  decodeJson,
  encodeJson,
  type HelloOkPayload,
  RemoteErrorCode,
} from "../protocol/messages.ts";
import {
  allowedProtocols,
  decodeNegotiateOk,
  selectProtocol,
  sortProtocols,
  type TlsPolicy,
} from "../protocol/negotiation.ts";
import {
  isProtocolType,
  PROTOCOL_PRIORITY,
  type ProtocolType,
} from "../protocol_type.ts";
import { Secret } from "../secret.ts";
import { readHello } from "./hello.ts";

/**
 * The outcome of negotiation on one connection.
 *
 * @example
 * ```ts
 * import type { TransportUpgrade } from "@nodewire/client/core";
 * const logChoice: TransportUpgrade = (_connection, negotiated) => {
 *   console.log(`${negotiated.protocol} of ${negotiated.nodeProtocols.join(", ")} on port ${negotiated.udpPort}`);
 *   return Promise.resolve();
 * };
 * ```
 */
export interface NegotiationResult {
  /** The protocol both sides chose. */
  protocol: ProtocolType;
  /** What the client offered, best first. */
  clientProtocols: ProtocolType[];
  /** What the node serves, best first. */
  nodeProtocols: ProtocolType[];
  /** The node's UDP port, when it serves UDP. */
  udpPort?: number;
  /** The UDP session token (32 hex digits), when UDP was chosen. */
  udpToken?: string;
}

/**
 * What the handshake established on one connection.
 *
 * @example
 * ```ts
 * import { type Connection, handshakeResult } from "@nodewire/client/core";
 * declare const connection: Connection;
 * const result = handshakeResult(connection);
 * if (result?.authenticated) console.log(`${result.username} over ${result.protocol}`);
 * ```
 */
export interface HandshakeResult extends NegotiationResult {
  /** Whether SCRAM authentication ran and both sides proved themselves. */
  authenticated: boolean;
  /** The user name authenticated as, when `authenticated`. */
  username?: string;
}

/**
 * Switches a connection to a negotiated transport other than TCP. Runs
 * right after NEGOTIATE_OK and before authentication, so that credentials
 * are exchanged over the chosen transport. It must fail, never fall back:
 * a TLS upgrade that resolves with the stream still in plaintext fails the
 * connection with a `TlsError`.
 *
 * @example
 * ```ts
 * import type { TransportUpgrade } from "@nodewire/client/core";
 * const refuse: TransportUpgrade = () => Promise.reject(new Error("no TLS here"));
 * ```
 */
export type TransportUpgrade = (
  connection: Connection,
  negotiated: NegotiationResult,
  signal: AbortSignal,
) => Promise<void>;

/**
 * The transports, beyond TCP, that this client can switch to. The client
 * offers only what it can do: a protocol with no upgrade here is never
 * offered, whatever the policy allows.
 *
 * @example
 * ```ts
 * import { createHandshake, resolveTlsConfig, systemClock, tlsTransport } from "@nodewire/client/core";
 * const handshake = createHandshake({
 *   tlsPolicy: "prefer", // TLS when the node offers it, else plain TCP
 *   protocols: ["tls", "tcp"],
 *   transports: { tls: tlsTransport({ tls: resolveTlsConfig({}, "prefer"), clock: systemClock }) },
 * });
 * ```
 */
export interface TransportUpgrades {
  /** Upgrades the open stream to TLS. */
  tls?: TransportUpgrade;
  /** Moves requests to the node's UDP port. */
  udp?: TransportUpgrade;
}

/**
 * Options for {@linkcode createHandshake}.
 *
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * import { Connection, createHandshake } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const connection = await Connection.connect({
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   handshake: createHandshake({ username: "app", password: new Secret("s3cret"), protocols: ["tcp"] }),
 * });
 * ```
 */
export interface HandshakeOptions {
  /** User name for SCRAM. */
  username?: string;
  /** Password for SCRAM, revealed only inside the SCRAM computation. */
  password?: Secret;
  /**
   * TLS policy. Default `"require"` with `enableTls`, else `"disable"`;
   * given with `enableTls`, it must agree with it.
   */
  tlsPolicy?: TlsPolicy;
  /** Require TLS (the policy's default becomes `"require"`). */
  enableTls?: boolean;
  /**
   * Protocols the client may use at all, at least one the TLS policy
   * keeps. Default all three.
   */
  protocols?: readonly ProtocolType[];
  /** The transports this client can switch to, besides TCP. */
  transports?: TransportUpgrades;
}

/**
 * The function `Connection.connect` runs after HELLO_OK.
 *
 * @example
 * ```ts
 * import { Connection, type Handshake } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * // Refuses nodes of an unexpected cluster before any request is sent.
 * const checkNode: Handshake = (_connection, hello) =>
 *   hello.nodeId.startsWith("eu-") ? Promise.resolve() : Promise.reject(new Error(`unexpected node ${hello.nodeId}`));
 * const connection = await Connection.connect({ adapter: await getAdapter(), hostname: "127.0.0.1", port: 7000, handshake: checkNode });
 * ```
 */
export type Handshake = (
  connection: Connection,
  hello: HelloOkPayload,
  signal: AbortSignal,
) => Promise<void>;

const results = new WeakMap<Connection, HandshakeResult>();

/**
 * What the handshake established on `connection`: the protocol chosen,
 * both sides' sets, and whether it authenticated. `undefined` for a
 * connection opened without {@linkcode createHandshake}'s hook. Each call
 * hands out a copy of its own: changing it changes nothing later calls see.
 *
 * @example
 * ```ts
 * import { Connection, createHandshake, handshakeResult } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const connection = await Connection.connect({
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   handshake: createHandshake({}),
 * });
 * console.log(handshakeResult(connection)?.protocol); // "tcp"
 * ```
 */
export function handshakeResult(
  connection: Connection,
): HandshakeResult | undefined {
  const result = results.get(connection);
  if (result === undefined) return undefined;
  // Read per connection (logs, diagnostics), never per request: a copy
  // costs nothing that matters.
  return {
    ...result,
    clientProtocols: [...result.clientProtocols],
    nodeProtocols: [...result.nodeProtocols],
  };
}

/**
 * Builds the handshake hook: it checks credentials against what the node
 * requires, negotiates the protocol, switches transport when the choice is
 * not TCP, then authenticates when the node requires it. Derived SCRAM
 * keys are cached inside the hook, so a pool opening many connections
 * runs PBKDF2 once per salt.
 *
 * Credentials and a node that does not authenticate do not mix: the
 * client refuses such a node ({@linkcode AuthenticationError},
 * `"node-unauthenticated"`), since it cannot prove it is the node the
 * credentials were meant for.
 *
 * @throws {AuthenticationError} (`"invalid-credentials"`), at once, when
 *   SASLprep refuses the username or password or either is empty.
 * @throws {InvalidArgumentError}, at once, for a bad option, among them a
 *   `tlsPolicy` that contradicts `enableTls` (`"disable"` with `true`,
 *   `"require"` or `"prefer"` with `false`), a `password` without a
 *   `username`, and `protocols` that name
 *   none, one that is no protocol, or none the TLS policy keeps.
 * @throws (from the hook) {@linkcode InvalidArgumentError}, before it
 *   touches the connection, for a `hello` that no HELLO_OK decodes to (not
 *   an object, a field missing or of the wrong type, a read that throws),
 *   naming `hello` or its field; {@linkcode NegotiationError} when no protocol
 *   can be agreed, {@linkcode TlsError} (`"handshake"`) when the TLS
 *   transport resolved without switching the stream to TLS,
 *   {@linkcode AuthenticationError} when authentication
 *   cannot or does not succeed, the node's {@linkcode RemoteError} when it
 *   refuses a step, {@linkcode ProtocolError} for a reply of another type
 *   or sequence.
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * import { Connection, createHandshake } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const connection = await Connection.connect({
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   handshake: createHandshake({ username: "alice", password: new Secret("correct horse") }),
 * });
 * ```
 */
export function createHandshake(options: HandshakeOptions): Handshake {
  // Read once and checked: null was a raw TypeError, a transport that is
  // no function crashed at connect, and a misspelt name was ignored.
  options = readOptions<HandshakeOptions>("createHandshake", options, {
    username: is((v) => typeof v === "string", "expected a string"),
    // Never shown: it may be the password itself.
    password: (v, at, method) =>
      v instanceof Secret
        ? undefined
        : refuse(method, at, undefined, "expected a Secret"),
    tlsPolicy: oneOf(["require", "prefer", "disable"]),
    enableTls: bool,
    // Checked as the client's config checks them: a misspelt name was
    // dropped, and every connect failed naming none of them.
    protocols: (v, at, method) => {
      const items = itemsOf(v);
      if (items === undefined || items.length === 0) {
        return 'expected a non-empty array of "tls", "tcp", "udp"';
      }
      const i = items.findIndex((p) => !isProtocolType(p));
      return i === -1 ? undefined : refuse(
        method,
        `${at}[${i}]`,
        items[i],
        'expected "tls", "tcp" or "udp"',
      );
    },
    transports: () => undefined,
  });
  const transports = readOptions<TransportUpgrades>(
    "createHandshake",
    options.transports,
    { tls: func, udp: func },
    undefined,
    "options.transports",
  );
  const { enableTls } = options;
  // Refused as the client's config refuses it: "disable" beside enableTls
  // won, and the client connected in plaintext.
  if (
    enableTls !== undefined && options.tlsPolicy !== undefined &&
    (options.tlsPolicy === "disable") === enableTls
  ) {
    throw refuse(
      "createHandshake",
      "options.tlsPolicy",
      options.tlsPolicy,
      `cannot be "${options.tlsPolicy}" when enableTls is ${enableTls}`,
    );
  }
  const tlsPolicy = options.tlsPolicy ?? (enableTls ? "require" : "disable");
  const allowed = allowedProtocols(
    tlsPolicy,
    options.protocols ?? PROTOCOL_PRIORITY,
  );
  if (allowed.length === 0) {
    throw refuse(
      "createHandshake",
      "options.protocols",
      options.protocols,
      tlsPolicy === "require"
        ? 'must include "tls" when TLS is required'
        : 'must include "tcp" or "udp" when tlsPolicy is "disable"',
    );
  }
  const available = new Set<ProtocolType>(["tcp"]);
  if (transports.tls) available.add("tls");
  if (transports.udp) available.add("udp");
  const offer = allowed.filter((p) => available.has(p));
  const { username, password } = options;
  // As the client's config: no node could take it. One that authenticates
  // was told no username "and password are" configured, one that does not
  // was refused for the credentials.
  if (password !== undefined && username === undefined) {
    throw refuse(
      "createHandshake",
      "options.username",
      undefined,
      "a username is required when a password is given",
    );
  }
  // SASLprep now: an empty or refused password fails here, before any
  // socket, not on every connect (AuthenticationError, invalid-credentials).
  if (username !== undefined && password !== undefined) {
    new ScramClient({ username, password });
  }
  const cache = new ScramKeyCache();

  return async (connection, given, signal) => {
    // Checked before anything else: a caller's own hello that is no
    // HELLO_OK would fail later as a TypeError, or not at all.
    const hello = readHello(given, "handshake");
    const authRequired = hello.auth === "scram-sha-256";
    if (authRequired && (username === undefined || password === undefined)) {
      throw new AuthenticationError(
        `node ${connection.address} (${hello.nodeId}) requires ` +
          `authentication (SCRAM-SHA-256), but no ${
            username === undefined ? "username and password are" : "password is"
          } configured`,
        { reason: "credentials-required", address: connection.address },
      );
    }
    if (!authRequired && password !== undefined) {
      throw new AuthenticationError(
        `node ${connection.address} (${hello.nodeId}) does not authenticate, ` +
          "but credentials are configured: refusing a node that cannot " +
          "prove who it is",
        { reason: "node-unauthenticated", address: connection.address },
      );
    }
    const negotiated = await negotiateProtocol(connection, hello, {
      offer,
      allowed,
      tlsPolicy,
      signal,
    });
    if (negotiated.protocol !== "tcp") {
      // Only offered when present, so the node cannot pick one we lack.
      await transports[negotiated.protocol]!(connection, negotiated, signal);
      // A transport of the caller's own that resolved without the switch
      // left the stream in plaintext (and paused: no reply was read), yet
      // the connection was handed out as TLS. It must fail, never fall back.
      if (negotiated.protocol === "tls" && !connection.encrypted) {
        throw new TlsError(
          `TLS with ${connection.address} failed: the TLS transport ` +
            "resolved, but the stream was not switched to TLS",
          { reason: "handshake", address: connection.address },
        );
      }
    }
    if (authRequired) {
      await authenticate(connection, {
        username: username!,
        password: password!,
        cache,
        signal,
      });
    }
    // The UDP token admits datagrams to this session: the transport keeps
    // it, the result (which callers may log) does not.
    const { udpToken: _token, ...kept } = negotiated;
    results.set(connection, {
      ...kept,
      authenticated: authRequired,
      username: authRequired ? username : undefined,
    });
  };
}

/**
 * {@linkcode createHandshake} with the options of a resolved
 * configuration.
 */
export function handshakeFromConfig(
  config: ResolvedConfig,
  transports?: TransportUpgrades,
): Handshake {
  return createHandshake({
    username: config.username,
    password: config.password,
    // The resolved policy already says what enableTls asked for; beside
    // it, enableTls's default (false) would contradict "prefer".
    tlsPolicy: config.tlsPolicy,
    protocols: config.protocols,
    transports,
  });
}

/**
 * Runs NEGOTIATE / NEGOTIATE_OK on a connection that has completed HELLO.
 * Both sides apply {@linkcode selectProtocol} to the offer and the node's
 * set; a node whose choice differs from the client's is refused.
 *
 * A node that lists no `protocols` in HELLO_OK predates negotiation: it is
 * not sent NEGOTIATE, and the stream already open counts as TCP, or as TLS
 * when the client connected with TLS directly.
 *
 * @throws {NegotiationError} when the client can offer nothing its policy
 *   allows, when the sets share nothing, or when the choices differ.
 * @throws {ProtocolError} when the node answers with something else.
 */
export async function negotiateProtocol(
  connection: Connection,
  hello: HelloOkPayload,
  options: {
    offer: readonly ProtocolType[];
    allowed: readonly ProtocolType[];
    tlsPolicy?: TlsPolicy;
    signal: AbortSignal;
  },
): Promise<NegotiationResult> {
  const offer = sortProtocols(options.offer);
  const advertised = sortProtocols(hello.protocols ?? []);
  const fail = (detail: string, nodeProtocols = advertised) =>
    new NegotiationError({
      address: connection.address,
      clientProtocols: offer,
      allowedProtocols: options.allowed,
      nodeProtocols,
      detail,
    });
  if (offer.length === 0) {
    const missing = options.allowed.join(", ");
    throw fail(
      options.tlsPolicy === "require"
        ? "TLS is required, but this client has no TLS transport, and it " +
          "never falls back to a weaker protocol"
        : `the client's policy allows only ${missing || "nothing"}, and ` +
          "this client has no transport for it",
    );
  }
  if (hello.protocols === undefined) {
    // The stream it opened is kept: TLS when it connected with TLS
    // directly (docs/PROTOCOL.md), which "tcp" refused under "require".
    const kept = connection.encrypted ? "tls" : "tcp";
    if (!offer.includes(kept)) {
      throw fail(`the node predates negotiation and serves only ${kept}`, [
        kept,
      ]);
    }
    return { protocol: kept, clientProtocols: offer, nodeProtocols: [kept] };
  }
  const sent = connection.sendMessage(
    MessageType.Negotiate,
    encodeJson({ protocols: offer }),
  );
  // Should the node choose TLS, nothing may be read past NEGOTIATE_OK
  // before the TLS handshake takes the socket (see Connection.startTls).
  const mayUpgrade = offer.includes("tls") && !connection.encrypted;
  const reply = await receive(connection, sent, MessageType.NegotiateOk, {
    signal: options.signal,
    pauseReading: mayUpgrade,
  });
  const answer = decodeNegotiateOk(reply.payload);
  const expected = selectProtocol(offer, answer.protocols);
  if (expected === undefined && answer.selected === null) {
    throw fail("no protocol in common", answer.protocols);
  }
  if (answer.selected !== (expected ?? null)) {
    throw fail(
      `the node chose ${answer.selected ?? "nothing"}, but the client's ` +
        `rule gives ${expected ?? "nothing"}`,
      answer.protocols,
    );
  }
  const result: NegotiationResult = {
    protocol: expected!,
    clientProtocols: offer,
    nodeProtocols: answer.protocols,
  };
  if (answer.udpPort !== undefined) result.udpPort = answer.udpPort;
  if (answer.udpToken !== undefined) result.udpToken = answer.udpToken;
  if (mayUpgrade && result.protocol !== "tls") connection.resumeReading();
  return result;
}

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

/**
 * Waits for the reply of type `type` to the message sent with sequence
 * `sent` (see expectReply: an ERROR is the node's RemoteError).
 */
async function receive(
  connection: Connection,
  sent: number,
  type: number,
  options: { signal: AbortSignal; pauseReading?: boolean },
): Promise<Message> {
  const message = await connection.receiveMessage({
    signal: options.signal,
    // The connect timeout bounds the whole handshake through `signal`.
    timeoutMs: Infinity,
    pauseReading: options.pauseReading,
  });
  expectReply(
    message,
    sent,
    type,
    TYPE_NAMES[type],
    connection.nodeId,
    connection.address,
  );
  return message;
}

const TYPE_NAMES: Record<number, string> = {
  [MessageType.NegotiateOk]: "NEGOTIATE_OK",
  [MessageType.AuthChallenge]: "AUTH_CHALLENGE",
  [MessageType.AuthOk]: "AUTH_OK",
};

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
