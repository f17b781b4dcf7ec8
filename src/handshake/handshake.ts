/**
 * What runs on a connection after HELLO_OK and before it is handed out:
 * protocol negotiation (NEGOTIATE / NEGOTIATE_OK), the transport switch it
 * may call for, then SCRAM-SHA-256 authentication (AUTH_START to AUTH_OK).
 * {@linkcode createHandshake} builds the function that `Connection.connect`
 * takes as its `handshake` hook; the ConnectionManager passes one built
 * from the client's configuration. Here: the checks of its options, the
 * hook running the steps in order, and what it established. Apart: the
 * shapes (shapes.ts), negotiation (negotiate.ts) and authentication
 * (authenticate.ts).
 *
 * @module
 */

import { ScramClient, ScramKeyCache } from "../auth/scram.ts";
import { bool, func, is, readOptions, refuse } from "../config/options.ts";
import type { ResolvedConfig } from "../config/shapes.ts";
import { oneOf } from "../config/validate.ts";
import type { Connection } from "../connection/connection.ts";
import { itemsOf } from "../errors/base.ts";
import { AuthenticationError, TlsError } from "../errors.ts";
import { allowedProtocols } from "../protocol/negotiation.ts";
import {
  isProtocolType,
  PROTOCOL_PRIORITY,
  type ProtocolType,
} from "../protocol_type.ts";
import { Secret } from "../secret.ts";
import { authenticate } from "./authenticate.ts";
import { readHello } from "./hello.ts";
import { negotiateProtocol } from "./negotiate.ts";
import type {
  Handshake,
  HandshakeOptions,
  HandshakeResult,
  TransportUpgrades,
} from "./shapes.ts";

// Their homes are apart; importers of the handshake find them here.
export type {
  Handshake,
  HandshakeOptions,
  HandshakeResult,
  NegotiationResult,
  TransportUpgrade,
  TransportUpgrades,
} from "./shapes.ts";
export { authenticate } from "./authenticate.ts";
export { negotiateProtocol } from "./negotiate.ts";

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
