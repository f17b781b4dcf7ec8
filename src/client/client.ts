/**
 * The Client: what an application holds. It spreads requests over healthy
 * nodes, retries what is safe to retry, and shuts down leaving nothing
 * behind.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type {
  ConnectionConfig,
  Logger,
  ResolvedConfig,
} from "../config/shapes.ts";
import type {
  Connection,
  ConnectionOptions,
} from "../connection/connection.ts";
import { ClientClosedError } from "../errors.ts";
import type { ConnectionManager } from "../cluster/manager.ts";
import type { HealthCheckResult } from "../cluster/health_loop.ts";
import type { PoolEvent, PoolEventName } from "../pool/events.ts";
import {
  type ListenerOptions,
  TypedEventTarget,
  type TypedListener,
} from "../events.ts";
import { type ClientEventMap, RetryBudgetEvent, RetryEvent } from "./events.ts";
import {
  type ClientRequestOptions,
  RequestPath,
  type RequestPathOwner,
} from "./request_path.ts";
import {
  type ConnectCallOptions,
  forwardPoolEvent,
  openClient,
} from "./connect.ts";
// The checks at the door of every public method (bad input fails its call).
import * as door from "./arguments.ts";
import {
  type BatchHost,
  type BatchResult,
  failedBatch,
  runBatch,
} from "./batch.ts";
import type { ClientStats, NodeStats } from "./stats.ts";
import {
  checkAllNodes,
  checkClientConstruction,
  clientStats,
  lendClient,
  logBudgetSpent,
  logClockFailed,
  pingClient,
  wireClient,
} from "./client_support.ts";
import { LazyStart } from "./lazy_start.ts";
import {
  closingError,
  type DisconnectOptions,
  Shutdown,
} from "./disconnect.ts";

export type {
  BatchResult,
  ClientRequestOptions,
  ClientStats,
  DisconnectOptions,
  NodeStats,
};

/**
 * A client for a cluster of nodes.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * await using client = await Client.connect({ hosts: ["127.0.0.1:7000", "127.0.0.1:7001"] });
 * const reply = await client.request(new Uint8Array([1, 104, 105]), { idempotent: true });
 * console.log(reply.byteLength);
 * ```
 */
export class Client extends TypedEventTarget<ClientEventMap> {
  /**
   * The configuration in force, validated and with defaults filled in.
   * Frozen, with its sections (as `resolveConfig` returns it): an
   * assignment to one of its fields (`client.config.retryConfig.maxRetries
   * = 0`), which some settings read later used to follow, throws a
   * TypeError in strict code and is ignored in sloppy code. Per call, a
   * request's options set `timeoutMs`, `retry` and `hedge`; for other
   * settings, connect a client with the changed `ConnectionConfig`.
   *
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] }, { lazy: true });
   * console.log(Object.isFrozen(client.config.retryConfig)); // true
   * await client.disconnect();
   * ```
   */
  readonly config: ResolvedConfig;
  /** The manager of pools and node health. */
  readonly manager: ConnectionManager;
  /** Names this client in its `diagnostics_channel` messages (`clientId`). */
  readonly id: number;

  readonly #clock: Clock;
  readonly #path: RequestPath;
  /** What a batch, a lazy start and the shutdown work with. */
  readonly #parts: BatchHost;
  #closing = false;
  /** Set while a client created with `lazy: true` is not yet connected. */
  #lazy: LazyStart | undefined;
  #shutdown: Shutdown | undefined;
  readonly #log: Logger | undefined;
  /** The pool events somebody listens to, and the listener that forwards each. */
  readonly #forwarding = new Map<PoolEventName, (e: PoolEvent) => void>();

  /** @internal Use {@linkcode Client.connect}. */
  constructor(config: ResolvedConfig, manager: ConnectionManager) {
    super();
    checkClientConstruction(manager);
    this.config = config;
    this.manager = manager;
    this.id = manager.id;
    this.#clock = config.clock;
    this.#path = new RequestPath(this.#pathOwner, manager, config);
    this.#parts = { path: this.#path, manager, config };
    this.#log = wireClient(this, manager, config.logger, this.#forwarding);
  }

  /**
   * Listens to the client's own events (`nodeHealthChanged`, `retry`,
   * `protocolSelected`) and to every pool's events (`connectionCreated`,
   * `checkoutFailed`, ...), which the client forwards from all its nodes;
   * see {@linkcode ClientEventMap}. The listener's event type follows from
   * the name. Pool events are only built once somebody listens, so
   * unobserved pools pay nothing.
   */
  override addEventListener<K extends keyof ClientEventMap & string>(
    type: K,
    listener: TypedListener<ClientEventMap[K]> | null,
    options?: boolean | ListenerOptions,
  ): void {
    // Read once: the event target would read the options again.
    const read = door.readListenerArguments(type, listener, options);
    forwardPoolEvent(this.manager, type, this, this.#forwarding);
    super.addEventListener(type, listener, read);
  }

  /**
   * Removes a listener added with the same `type`, `listener` and
   * `capture`, checking its arguments as `addEventListener` does.
   *
   * @throws {InvalidArgumentError} naming the bad argument.
   */
  override removeEventListener<K extends keyof ClientEventMap & string>(
    type: K,
    listener: TypedListener<ClientEventMap[K]> | null,
    options?: boolean | Pick<ListenerOptions, "capture">,
  ): void {
    const read = door.readListenerArguments(
      type,
      listener,
      options,
      "Client.removeEventListener",
    );
    super.removeEventListener(type, listener, read);
  }

  /**
   * Validates `config`, connects to every node at once and resolves once
   * each answered or failed (in `timeoutMs`), if one answered. The object
   * is the whole configuration: the environment is not read.
   * `options.signal` gives up on connecting;
   * `options.connection` tunes each connection (for tests and tools).
   *
   * With `options.lazy`, it resolves at once without needing any node up
   * (the configuration is still validated): the first `request`, `ping`
   * or `withConnection` connects, and calls made meanwhile wait for that
   * one connect, each within its own `timeoutMs` and `signal` (a
   * request's first attempt, or a batch item's, then has what the connect
   * left of its `timeoutMs`; its retries their whole `timeoutMs`; a
   * `withConnection`'s first checkout what it left of its `timeoutMs` or
   * of `poolConfig.connectionTimeoutMs`). If it
   * fails they fail with its error, and the next call tries again. For
   * programs that start before their database.
   *
   * @throws {ConfigError} for a bad configuration, naming the field; or
   *   naming `clock` when none answered and one failed because a custom
   *   clock threw, or when its `setTimeout()` throws as the health loop
   *   is scheduled.
   * @throws {ConnectFailedError} naming each host and why, when none answered.
   * @throws {AuthenticationError} (or `NegotiationError`, or a `TlsError`
   *   about the certificate) itself when every node turned the client
   *   away so: a retry cannot help.
   * @throws {AbortedError} when `options.signal` aborts first.
   */
  static connect(
    config: ConnectionConfig,
    options?: {
      signal?: AbortSignal;
      connection?: Partial<ConnectionOptions>;
      lazy?: boolean;
    },
  ): Promise<Client>;
  /**
   * Connects with a connection string,
   * `nodewire://user:password@host1:port,host2/?option=value&...`
   * (docs/CONNECTION_STRING.md), with `overrides` merged over it (field by
   * field within the sections) for what text cannot hold: a `logger`, a
   * `tls.ca`. Without `url`, the string comes from `NODEWIRE_URL` (on Deno
   * only if `--allow-env` grants it: the client never prompts). `options`
   * as for a config object.
   *
   * @throws {ConfigError} for a bad string, parameter or override, naming
   *   it but never the password; or when `NODEWIRE_URL` is needed but unset
   *   or not readable.
   * @throws {ConnectFailedError} naming each host and why, when none answered.
   * @throws {AuthenticationError} (or `NegotiationError`, or a `TlsError`
   *   about the certificate) itself when every node turned the client
   *   away so: a retry cannot help.
   * @throws {AbortedError} when `options.signal` aborts first.
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect(
   *   "nodewire://app:s%40cret@db1:7000,db2:7001/?tls=require&poolMax=50",
   *   { logger: (entry) => console.log(entry.message) },
   * );
   * await client.disconnect();
   * await (await Client.connect()).disconnect(); // from NODEWIRE_URL
   * ```
   */
  static connect(
    url?: string,
    overrides?: Partial<ConnectionConfig>,
    options?: {
      signal?: AbortSignal;
      connection?: Partial<ConnectionOptions>;
      lazy?: boolean;
    },
  ): Promise<Client>;
  static connect(
    first?: string | ConnectionConfig,
    second?: Partial<ConnectionConfig> | ConnectCallOptions,
    third?: ConnectCallOptions,
  ): Promise<Client> {
    return openClient(first, second, third, (config, manager, lazy) => {
      const client = new Client(config, manager);
      if (lazy) {
        client.#lazy = new LazyStart(client.#parts, client.#pathOwner, () => {
          client.#lazy = undefined;
        });
      }
      return client;
    });
  }

  /** Whether `disconnect()` was called. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * Sends a request to a healthy node and resolves with the reply payload.
   * Retries by the retry policy: always when the request certainly never
   * left the client, after it may have reached a node only when
   * `idempotent`; a retry prefers another node. The payload is not copied
   * (a large one is written as it is, and a retry sends it again): do not
   * change it until the promise settles. One of 16 KiB or more that failed
   * with a timeout or an abort after it was sent may still be on its way
   * to the node: put no other data in its buffer then, or the node may
   * read it as the rest of this request. The reply is a view into the
   * bytes received (a small one may be a copy), never into `payload`.
   *
   * @throws {ClientClosedError} after `disconnect()`.
   * @throws {InvalidArgumentError} for a bad argument or option (before anything is sent).
   * @throws {RetriesExhaustedError} when every allowed attempt failed (the last error is its cause).
   * @throws the first error itself when it is not retryable (`RemoteError`, `AbortedError`, ...).
   */
  request(
    payload: Uint8Array,
    options: ClientRequestOptions = door.NO_REQUEST_OPTIONS,
  ): Promise<Uint8Array> {
    const checked = door.checkedRequest(payload, options);
    if (checked === undefined) return door.rejectRequest(payload, options);
    if (this.#closing) return Promise.reject(new ClientClosedError());
    if (this.#lazy) return this.#lazy.request(payload, checked);
    return this.#path.request(payload, checked);
  }

  /**
   * Sends many independent requests (a multi-get) with one call and one
   * promise; resolves with one {@linkcode BatchResult} per payload, in
   * order. Rejects only for a bad argument (`InvalidArgumentError`). The
   * options apply to each request as in `request` (`signal` to the whole
   * call), and each is retried on its own. Payloads must not change until
   * the promise settles (nor, for one of 16 KiB or more whose request
   * timed out or was aborted after it was sent, later: see `request`); the
   * array and the options are read once, here.
   *
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
   * const keys = [new Uint8Array([2, 97]), new Uint8Array([2, 98])];
   * for (const r of await client.requestMany(keys, { idempotent: true })) {
   *   console.log(r.ok ? r.value.byteLength : r.error.code);
   * }
   * ```
   */
  requestMany(
    payloads: readonly Uint8Array[],
    options: ClientRequestOptions = door.NO_REQUEST_OPTIONS,
  ): Promise<BatchResult[]> {
    let args: door.RequestManyArguments;
    try {
      args = door.checkRequestManyArguments(payloads, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const list = args.payloads;
    if (this.#closing) {
      return Promise.resolve(failedBatch(list.length, new ClientClosedError()));
    }
    if (this.#lazy) return this.#lazy.requestMany(list, args.options);
    return runBatch(this.#parts, list, args.options);
  }

  /** How the request path reaches back into the client. */
  readonly #pathOwner: RequestPathOwner = {
    closing: () => this.#closing,
    retrying: (detail) => {
      if (!this.hasListeners("retry")) return;
      this.dispatchEvent(new RetryEvent(detail, this.#clock.now()));
    },
    budgetSpent: (detail) => {
      if (this.#log) logBudgetSpent(this.#log, detail);
      if (!this.hasListeners("retryBudgetExhausted")) return;
      this.dispatchEvent(new RetryBudgetEvent(detail, this.#clock.now()));
    },
    final: (error) => this.#final(error),
    idle: () => this.#shutdown?.idle(),
    clockFailed: (error) => {
      if (this.#log) logClockFailed(this.#log, error);
    },
  };

  /**
   * Pings one healthy node and resolves with where it went and how long it
   * took. `timeoutMs` (default `requestTimeoutMs`) bounds the wait for a
   * connection and the round trip together; `signal` aborts it with
   * {@linkcode AbortedError}. Not retried.
   *
   * @throws {ConfigError} naming `clock` when a custom clock's `now()`
   *   throws as the ping reads it.
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
   * const { address, latencyMs } = await client.ping({ timeoutMs: 1000 });
   * console.log(`${address} answered in ${latencyMs} ms`);
   * await client.disconnect();
   * ```
   */
  async ping(
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<
    { address: string; nodeId: string | undefined; latencyMs: number }
  > {
    return await pingClient(this.#parts, this.#pathOwner, this.#lazy, options);
  }

  /**
   * Pings every node and returns each one's result; updates node health.
   * `signal` ends the caller's wait with {@linkcode AbortedError}; the
   * sweep itself, shared with the health loop, runs to its end within
   * `healthConfig.timeoutMs`. A node whose every connection is lent by
   * `withConnection` has none to ping: its check fails with
   * `PoolTimeoutError` and changes nothing (the wait was for the
   * application, not the node). A check that meets a custom clock whose
   * `now()` throws has the `ConfigError` naming `clock` as its `error`.
   *
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
   * for (const { address, ok, healthy, error } of await client.healthCheckAllNodes()) {
   *   console.log(address, ok ? "answered" : error?.message, healthy);
   * }
   * await client.disconnect();
   * ```
   */
  healthCheckAllNodes(
    options: { signal?: AbortSignal } = {},
  ): Promise<HealthCheckResult[]> {
    return checkAllNodes(this.manager, this.#pathOwner, options);
  }

  /**
   * Lends `fn` a connection to a healthy node for its exclusive use, and
   * takes it back when `fn` settles. The acquire is retried like a request
   * (a `disconnect()` ends the wait before a retry, as it ends a
   * request's); `fn` itself is not. `timeoutMs` (default
   * `poolConfig.connectionTimeoutMs`) bounds each wait for a connection
   * (on a lazy client the first connect and the first wait together) and
   * `signal` the acquire with its retries (then `AbortedError`); neither
   * stops `fn` once it has the connection: the call settles when `fn` does.
   *
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
   * const reply = await client.withConnection((connection) =>
   *   connection.sendRequest(new TextEncoder().encode("mine alone"))
   * );
   * console.log(reply.length);
   * await client.disconnect();
   * ```
   * @throws {ClientClosedError} after `disconnect()`, or when it came while
   *   the checkout waited to be retried.
   * @throws {InvalidArgumentError} for a bad argument or option (before anything is sent).
   * @throws {ConfigError} naming `clock` when a custom clock's `now()`
   *   throws as the connection is given back after `fn` succeeded (after
   *   `fn` failed, the call rejects with `fn`'s error).
   */
  async withConnection<T>(
    fn: (connection: Connection) => Promise<T>,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    return await lendClient(
      this.#parts,
      this.#pathOwner,
      this.#lazy,
      fn,
      options,
    );
  }

  /**
   * Adds a node to the running client (see "Changing the cluster at run
   * time" in the README). `host` is parsed like a configured host. The
   * node takes requests once its first connection is made; the result
   * says how that went (`healthy`, or the `error`, after which the health
   * checks keep trying it). Emits `nodeAdded`, and pool events of the new
   * node reach listeners already subscribed.
   *
   * @throws {ConfigError} (rejects) for a bad host or one already a node.
   * @throws {ClientClosedError} (rejects) after `disconnect()`.
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
   * const { healthy } = await client.addNode("127.0.0.1:7001");
   * console.log(healthy, client.stats().nodes.length); // true 2
   * await client.removeNode("127.0.0.1:7000");
   * await client.disconnect();
   * ```
   */
  addNode(host: string): Promise<HealthCheckResult> {
    if (this.#closing) return Promise.reject(new ClientClosedError());
    return this.manager.addNode(host);
  }

  /**
   * Removes a node from the running client: no new request goes to it at
   * once, requests in flight on it and connections `withConnection` lent
   * on it get the config's `timeoutMs` (as `disconnect()`'s grace) to
   * finish, then its connections close. A connection still in use then is
   * destroyed: what is in flight on it fails with `ConnectionLostError`
   * ("... was removed from the client"), retried elsewhere when that is
   * safe. So a `withConnection` callback that awaits the removal of its
   * own node waits `timeoutMs`, then loses its connection. Resolves when
   * the node is gone (after `nodeRemoved`). On the system clock that wait
   * keeps the process alive, as awaited I/O does, even when nothing in
   * use holds a socket.
   *
   * @throws {ConfigError} (rejects) for something that is not an address,
   *   an address that is not a node, or the last node; naming `clock`
   *   once the node is gone, when a custom clock's `clearTimeout()` threw
   *   as the removal's time limit was cleared, or its `setTimeout()` as
   *   it was armed (the node then leaves with no grace: its connections
   *   still in use are destroyed at once).
   * @throws {ClientClosedError} (rejects) after `disconnect()`.
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({
   *   hosts: ["127.0.0.1:7000", "127.0.0.1:7001"],
   *   timeoutMs: 2000, // what removeNode lets a busy connection finish in
   * });
   * await client.removeNode("127.0.0.1:7001"); // within about 2 s
   * console.log(client.stats().nodes.length); // 1
   * await client.disconnect();
   * ```
   */
  removeNode(address: string): Promise<void> {
    if (this.#closing) return Promise.reject(new ClientClosedError());
    return this.manager.removeNode(address);
  }

  /** Counters and per-node state, as plain data. */
  stats(): ClientStats {
    return clientStats(this.#parts);
  }

  /**
   * Shuts down: refuses new work at once with {@linkcode ClientClosedError},
   * lets requests in flight finish for up to `timeoutMs`, then cancels the
   * rest, fails waiters, closes every socket and stops every timer.
   * Resolves when all of it is done. Calling it again returns the same
   * promise; a shorter `timeoutMs` then ends the wait sooner. A connection
   * lent straight from a node's pool (`client.manager`, the `/core` pool
   * API) has the rest of the same `timeoutMs` to come back, then is
   * destroyed, so that no holder keeps the disconnect from ending. On the
   * system clock that wait keeps the process alive, as awaited I/O does,
   * even when nothing in flight holds a socket.
   *
   * @throws {InvalidArgumentError} for bad options (nothing is shut down).
   * @throws {ConfigError} naming `clock` once everything is closed, when
   *   a custom clock's `now()` or `setTimeout()` threw as the grace was
   *   timed (the grace, which it could not time, was over at once), or
   *   its `clearTimeout()` threw as the grace ended.
   * @example
   * ```ts
   * import { Client } from "@nodewire/client";
   * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
   * await client.disconnect({ timeoutMs: 2000 }); // resolves within about 2 s
   * ```
   */
  disconnect(options: DisconnectOptions = {}): Promise<void> {
    let timeoutMs: number;
    try {
      timeoutMs = door.readDisconnectOptions(options).timeoutMs ??
        this.config.timeoutMs;
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#shutdown === undefined) {
      this.#closing = true;
      // Held before it starts: see Shutdown.
      (this.#shutdown = new Shutdown()).start(
        this.#parts,
        this.#log,
        timeoutMs,
      );
    } else {
      this.#shutdown.shorten(timeoutMs);
    }
    return this.#shutdown.done;
  }

  /** `await using client = await Client.connect(...)` disconnects at scope end. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.disconnect();
  }

  /** Once the client is closing, failures say so. */
  #final(error: unknown): unknown {
    return this.#closing
      ? closingError(error, this.#shutdown?.cancelled)
      : error;
  }
}
