/**
 * The Client: what an application holds. It spreads requests over healthy
 * nodes, retries what is safe to retry, and shuts down leaving nothing
 * behind.
 *
 * @module
 */

import { type Clock, sleep } from "../clock.ts";
import { resolveConfig } from "../config/resolve.ts";
import type {
  ConnectionConfig,
  Logger,
  ResolvedConfig,
} from "../config/shapes.ts";
import type {
  Connection,
  ConnectionOptions,
} from "../connection/connection.ts";
import type { ReplySink } from "../connection/types.ts";
import {
  AbortedError,
  ClientClosedError,
  messageOf,
  NoHealthyNodesError,
  RemoteError,
} from "../errors.ts";
import { ConnectionManager } from "../cluster/manager.ts";
import type { HealthCheckResult } from "../cluster/health_loop.ts";
import type { ManagedNode } from "../cluster/node.ts";
import { NodeHealthEvent, ProtocolSelectedEvent } from "../cluster/events.ts";
import type { PoolStats } from "../pool/types.ts";
import {
  POOL_EVENT_NAMES,
  PoolEvent,
  type PoolEventName,
} from "../pool/events.ts";
import {
  type ListenerOptions,
  TypedEventTarget,
  type TypedListener,
} from "../events.ts";
import { type ClientEventMap, RetryEvent } from "./events.ts";
import type { ProtocolType } from "../protocol_type.ts";
import { executeWithRetry, isRetryable } from "./retry.ts";
import { rejection, type Resolve } from "../connection/resolve_only.ts";
import { getAdapter } from "../runtime/detect.ts";
// The checks at the door of every public method (bad input fails its call).
import * as door from "./arguments.ts";

const POOL_EVENTS = new Set<string>(POOL_EVENT_NAMES);

// Shared, so a request without options allocates no options object.
const NO_OPTIONS: ClientRequestOptions = Object.freeze({});

/** Where a request's outcome is booked; owned by its client. */
interface RequestLedger {
  succeeded(call: RequestCall, reply: Uint8Array): void;
  failed(call: RequestCall, error: Error): void;
}

/**
 * One request on the fast path: the connection's reply sink and the
 * request's promise in one small record.
 */
class RequestCall implements ReplySink {
  constructor(
    readonly ledger: RequestLedger,
    readonly node: ManagedNode,
    readonly payload: Uint8Array,
    readonly options: ClientRequestOptions,
    // Failures too settle through it (see resolve_only.ts).
    readonly resolve: Resolve<Uint8Array>,
  ) {}

  onReply(payload: Uint8Array): void {
    this.ledger.succeeded(this, payload);
  }

  onError(error: Error): void {
    this.ledger.failed(this, error);
  }
}

/** Options of {@linkcode Client.request}. */
export interface ClientRequestOptions {
  /** Per-attempt timeout, in ms. Default `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Cancels the request, including waits between retries. */
  signal?: AbortSignal;
  /**
   * The request is safe to execute twice, so it may be retried even after
   * it may have reached a node. Default false.
   */
  idempotent?: boolean;
  /** Set false to make exactly one attempt. Default true. */
  retry?: boolean;
}

/** Options of {@linkcode Client.disconnect}. */
export interface DisconnectOptions {
  /**
   * How long requests in flight may take to finish before they are
   * cancelled, in ms. Default `timeoutMs` of the config.
   */
  timeoutMs?: number;
}

/** A node's state, from {@linkcode Client.stats}. */
export interface NodeStats {
  /** `host:port`. */
  address: string;
  /** The node's id, once known. */
  nodeId: string | undefined;
  /** The protocol negotiated with it, once a connection was made. */
  protocol: ProtocolType | undefined;
  /** Whether requests go to it. */
  healthy: boolean;
  /** Consecutive failed checks or requests. */
  consecutiveFailures: number;
  /** Moving average of ping round trips, in ms. */
  latencyMs: number | undefined;
  /** Requests in flight to it through this client. */
  inFlight: number;
  /** The pool's counters. */
  pool: PoolStats;
}

/** Counters of a client, from {@linkcode Client.stats}. */
export interface ClientStats {
  /** Requests that got a reply. */
  succeeded: number;
  /** Requests that failed for good. */
  failed: number;
  /** Retries made (attempts after the first). */
  retries: number;
  /** Requests in flight now. */
  inFlight: number;
  /** Per node. */
  nodes: NodeStats[];
}

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
  /** The configuration in force, validated and with defaults filled in. */
  readonly config: ResolvedConfig;
  /** The manager of pools and node health. */
  readonly manager: ConnectionManager;

  readonly #clock: Clock;
  #inFlight = 0;
  #succeeded = 0;
  #failed = 0;
  #retries = 0;
  #closing = false;
  #cancelled: Error | undefined;
  #disconnected: Promise<void> | undefined;
  #onIdle: (() => void) | undefined;
  readonly #log: Logger | undefined;
  readonly #forwarding = new Set<string>();

  /** @internal Use {@linkcode Client.connect}. */
  constructor(config: ResolvedConfig, manager: ConnectionManager) {
    super();
    this.config = config;
    this.manager = manager;
    this.#clock = config.clock;
    // Health changes are the client's events too.
    manager.addEventListener(
      "nodeHealthChanged",
      (e) => this.dispatchEvent(new NodeHealthEvent(e.detail, e.at)),
    );
    manager.addEventListener(
      "protocolSelected",
      (e) => this.dispatchEvent(new ProtocolSelectedEvent(e.detail, e.at)),
    );
    this.#log = config.logger;
    if (this.#log) {
      const log = this.#log;
      this.addEventListener("nodeHealthChanged", (e) => {
        const d = e.detail;
        log({
          level: d.healthy ? "info" : "warn",
          message: `node ${d.address} is ${
            d.healthy ? "healthy" : "unhealthy"
          }: ${d.reason}`,
          event: "nodeHealthChanged",
          address: d.address,
        });
      });
      this.addEventListener("retry", (e) => {
        const d = e.detail;
        log({
          level: "debug",
          message: `retry ${d.attempt} in ${d.delayMs} ms after: ${
            messageOf(d.error)
          }`,
          event: "retry",
          address: d.address,
        });
      });
    }
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
    door.checkListenerArguments(type, listener, options);
    if (POOL_EVENTS.has(type) && !this.#forwarding.has(type)) {
      this.#forwarding.add(type);
      this.#forward(type as PoolEventName);
    }
    super.addEventListener(type, listener, options);
  }

  /** Re-dispatches a pool event of every node as the client's own. */
  #forward<K extends PoolEventName>(type: K): void {
    const forward = (e: PoolEvent<K>): void => {
      this.dispatchEvent(
        new PoolEvent(type, e.detail, e.at) as ClientEventMap[K],
      );
    };
    for (const node of this.manager.nodes) {
      node.pool.addEventListener(type, forward);
    }
  }

  /**
   * Validates `config`, connects to every node at once and resolves when at
   * least one answered.
   *
   * @throws {ConfigError} for a bad configuration, naming the field.
   * @throws {ConnectFailedError} naming each host and why, when none answered.
   */
  static async connect(
    config: ConnectionConfig,
    options: { signal?: AbortSignal; connection?: Partial<ConnectionOptions> } =
      {},
  ): Promise<Client> {
    door.checkConnectOptions(options);
    const resolved = resolveConfig(config);
    const adapter = await getAdapter(resolved.runtime);
    const manager = new ConnectionManager(
      resolved,
      adapter,
      options.connection,
    );
    try {
      await manager.connect(options.signal);
    } catch (error) {
      await manager.close();
      throw error;
    }
    return new Client(resolved, manager);
  }

  /** Whether `disconnect()` was called. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * Sends a request to a healthy node and resolves with the reply payload.
   * Retries by the retry policy: always when the request certainly never
   * left the client, after it may have reached a node only when
   * `idempotent`; a retry prefers another node.
   *
   * @throws {ClientClosedError} after `disconnect()`.
   * @throws {RetriesExhaustedError} when every allowed attempt failed (the last error is its cause).
   * @throws the first error itself when it is not retryable (`RemoteError`, `AbortedError`, ...).
   */
  request(
    payload: Uint8Array,
    options: ClientRequestOptions = NO_OPTIONS,
  ): Promise<Uint8Array> {
    if (!door.isValidRequest(payload, options)) {
      return door.rejectRequest(payload, options);
    }
    if (this.#closing) return Promise.reject(new ClientClosedError());
    let node: ManagedNode;
    try {
      node = this.manager.pickNode();
    } catch (error) {
      // No healthy node: fail fast, without the retry machinery.
      this.#failed++;
      return Promise.reject(error);
    }
    this.#inFlight++;
    const connection = node.pool.tryAcquireShared();
    if (connection === undefined) {
      return this.#attempt(node, payload, options).then(
        (reply) => this.#succeed(reply),
        (error) => this.#retryAfter(error, node, payload, options),
      );
    }
    // The common case: a connection ready to share. The request's one
    // promise is settled straight from the connection through a small
    // record; retries only start after a failure.
    return new Promise((resolve) => {
      node.inFlight++;
      connection.submitRequest(
        payload,
        options,
        new RequestCall(this.#ledger, node, payload, options, resolve),
      );
    });
  }

  /** What a {@linkcode RequestCall} reports back to. */
  readonly #ledger: RequestLedger = {
    succeeded: (call, reply) => {
      call.node.inFlight--;
      this.manager.recordRequestSuccess(call.node);
      call.resolve(this.#succeed(reply));
    },
    failed: (call, error) => {
      call.node.inFlight--;
      this.manager.recordRequestFailure(call.node, error);
      if (!this.#shouldRetry(error, call.options)) {
        // Settle now: no retry follows, so no async hop is needed.
        this.#failed++;
        this.#settled();
        call.resolve(rejection(this.#final(error)));
        return;
      }
      call.resolve(
        this.#retryAfter(error, call.node, call.payload, call.options),
      );
    },
  };

  #succeed(reply: Uint8Array): Uint8Array {
    this.#succeeded++;
    this.#settled();
    return reply;
  }

  async #retryAfter(
    first: unknown,
    failedOn: ManagedNode,
    payload: Uint8Array,
    options: ClientRequestOptions,
  ): Promise<Uint8Array> {
    let node = failedOn;
    try {
      if (!this.#shouldRetry(first, options)) throw first;
      const reply = await executeWithRetry(
        (attempt, signal) => {
          if (attempt === 0) return Promise.reject(first);
          node = this.manager.pickNode(node);
          return this.#attempt(node, payload, { ...options, signal });
        },
        this.config.retryConfig,
        {
          clock: this.#clock,
          signal: options.signal,
          idempotent: options.idempotent,
          isRetryable: (e) => this.#shouldRetry(e, options),
          onRetry: (info) => {
            this.#retries++;
            if (!this.hasListeners("retry")) return;
            this.dispatchEvent(
              new RetryEvent(
                { ...info, address: node.address },
                this.#clock.now(),
              ),
            );
          },
        },
      );
      this.#succeeded++;
      return reply;
    } catch (error) {
      this.#failed++;
      throw this.#final(error);
    } finally {
      this.#settled();
    }
  }

  #settled(): void {
    if (--this.#inFlight === 0 && this.#onIdle) this.#onIdle();
  }

  /**
   * Pings one healthy node and resolves with where it went and how long it
   * took.
   */
  async ping(
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<
    { address: string; nodeId: string | undefined; latencyMs: number }
  > {
    door.checkPingOptions(options);
    if (this.#closing) throw new ClientClosedError();
    const node = this.manager.pickNode();
    const connection = node.pool.tryAcquireShared() ??
      await node.pool.acquireShared(options);
    const latencyMs = await connection.ping(options);
    return { address: node.address, nodeId: connection.nodeId, latencyMs };
  }

  /**
   * Pings every node and returns each one's result; updates node health.
   */
  healthCheckAllNodes(): Promise<HealthCheckResult[]> {
    if (this.#closing) return Promise.reject(new ClientClosedError());
    return this.manager.healthCheckAllNodes();
  }

  /**
   * Lends `fn` a connection to a healthy node for its exclusive use, and
   * takes it back when `fn` settles. The acquire is retried like a request;
   * `fn` itself is not.
   *
   * @throws {ClientClosedError} after `disconnect()`.
   */
  async withConnection<T>(
    fn: (connection: Connection) => Promise<T>,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    door.checkWithConnectionArguments(fn, options);
    if (this.#closing) throw new ClientClosedError();
    this.#inFlight++;
    try {
      let node: ManagedNode | undefined;
      const connection = await executeWithRetry(
        () => {
          node = this.manager.pickNode(node);
          return node.pool.getConnection(options);
        },
        this.config.retryConfig,
        {
          clock: this.#clock,
          signal: options.signal,
          isRetryable: (e) => !this.#closing && isRetryable(e),
        },
      ).catch((error) => {
        throw this.#final(error);
      });
      try {
        return await fn(connection);
      } finally {
        node!.pool.returnConnection(connection);
      }
    } finally {
      if (--this.#inFlight === 0 && this.#onIdle) this.#onIdle();
    }
  }

  /** Counters and per-node state, as plain data. */
  stats(): ClientStats {
    return {
      succeeded: this.#succeeded,
      failed: this.#failed,
      retries: this.#retries,
      inFlight: this.#inFlight,
      nodes: this.manager.nodes.map((n) => ({
        address: n.address,
        nodeId: n.nodeId,
        protocol: n.protocol,
        healthy: n.health.isHealthy,
        consecutiveFailures: n.health.consecutiveFailures,
        latencyMs: n.health.latencyMs,
        inFlight: n.inFlight,
        pool: n.pool.stats(),
      })),
    };
  }

  /**
   * Shuts down: refuses new work at once with {@linkcode ClientClosedError},
   * lets requests in flight finish for up to `timeoutMs`, then cancels the
   * rest, fails waiters, closes every socket and stops every timer.
   * Resolves when all of it is done. Calling it again returns the same
   * promise.
   */
  disconnect(options: DisconnectOptions = {}): Promise<void> {
    if (!door.isValidDisconnect(options)) return door.rejectDisconnect(options);
    this.#disconnected ??= this.#shutdown(
      options.timeoutMs ?? this.config.timeoutMs,
    );
    return this.#disconnected;
  }

  /** `await using client = await Client.connect(...)` disconnects at scope end. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.disconnect();
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    this.#closing = true;
    this.manager.stopHealthLoop();
    if (this.#inFlight > 0) {
      const grace = new AbortController();
      const idle = new Promise<void>((resolve) => (this.#onIdle = resolve));
      await Promise.race([
        idle,
        sleep(this.#clock, timeoutMs, grace.signal).catch(() => {}),
      ]);
      grace.abort();
      this.#onIdle = undefined;
    }
    if (this.#inFlight > 0) {
      this.#cancelled = new ClientClosedError(
        `disconnect cancelled the request after waiting ${timeoutMs} ms`,
      );
      this.manager.destroyConnections(this.#cancelled);
    }
    await this.manager.close();
  }

  async #attempt(
    node: ManagedNode,
    payload: Uint8Array,
    options: ClientRequestOptions,
  ): Promise<Uint8Array> {
    let connection: Connection;
    try {
      connection = node.pool.tryAcquireShared() ??
        await node.pool.acquireShared({ signal: options.signal });
    } catch (error) {
      // A node that refuses or cannot be reached is a node failure too:
      // the passive signal must not wait for the health loop to notice.
      this.manager.recordRequestFailure(node, error);
      throw error;
    }
    return this.#send(node, connection, payload, options);
  }

  /** Sends on `connection` and feeds the outcome into the node's health. */
  #send(
    node: ManagedNode,
    connection: Connection,
    payload: Uint8Array,
    options: ClientRequestOptions,
  ): Promise<Uint8Array> {
    node.inFlight++;
    return connection.sendRequest(payload, options).then(
      (reply) => {
        node.inFlight--;
        this.manager.recordRequestSuccess(node);
        return reply;
      },
      (error) => {
        node.inFlight--;
        this.manager.recordRequestFailure(node, error);
        throw error;
      },
    );
  }

  #shouldRetry(error: unknown, options: ClientRequestOptions): boolean {
    // With no healthy node the client fails fast instead of backing off.
    return options.retry !== false && !this.#closing &&
      !(error instanceof NoHealthyNodesError) && isRetryable(error, options);
  }

  /** Once the client is closing, failures say so. */
  #final(error: unknown): unknown {
    if (!this.#closing || error instanceof ClientClosedError) return error;
    // A node's answer and the caller's own abort stay what they are.
    if (error instanceof AbortedError || error instanceof RemoteError) {
      return error;
    }
    return new ClientClosedError(
      this.#cancelled?.message ?? "the client disconnected during the request",
      { cause: error },
    );
  }
}
