/**
 * The database client metrics of the OpenTelemetry semantic conventions,
 * for one client: the operation duration, and per node pool the
 * connection counts (read from the pools when metrics are collected) and
 * the connection create, wait and use times and timeouts.
 *
 * @module
 */

import type { Client } from "../client/client.ts";
import { refuse } from "../config/options.ts";
import { messageOf } from "../errors.ts";
// What a meter's method returns is let go of: an async one's rejection
// must not be the process's unhandled one (its own loss, as a throw is).
import { letGo } from "../errors/base.ts";
import type { PoolEvent } from "../pool/events.ts";
import type { Attributes, BatchObservableResult, Meter } from "./types.ts";

type Histogram = ReturnType<Meter["createHistogram"]>;
type Counter = ReturnType<Meter["createCounter"]>;

/** The conventions' boundaries for `db.client.operation.duration`, in s. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** The attribute naming a pool. */
export const POOL_NAME = "db.client.connection.pool.name";
const STATE = "db.client.connection.state";

/** A pool's attribute sets, made once. */
interface PoolAttributes {
  pool: Attributes;
  idle: Attributes;
  used: Attributes;
}

/**
 * `poolName(address)`, checked: what it threw, or a name that is no
 * string, is instrumentClient's error about `options.poolName` (at the
 * door; for a node added later, the loss of that node's metrics).
 */
function poolNameOf(
  poolName: (address: string) => string,
  address: string,
): string {
  let name: unknown;
  try {
    name = poolName(address);
  } catch (error) {
    throw refuse(
      "instrumentClient",
      "options.poolName",
      poolName,
      `could not be called (it threw ${messageOf(error)})`,
      error,
    );
  }
  if (typeof name !== "string") {
    throw refuse(
      "instrumentClient",
      "options.poolName",
      name,
      "expected a function returning a string (the pool's name)",
    );
  }
  return name;
}

/** One client's metric instruments and what feeds them. */
export class ClientMetrics {
  readonly #client: Client;
  readonly #meter: Meter;
  readonly #operation: Histogram;
  readonly #createTime: Histogram;
  readonly #waitTime: Histogram;
  readonly #useTime: Histogram;
  readonly #timeouts: Counter;
  readonly #count: object;
  readonly #max: object;
  readonly #pending: object;
  readonly #pools = new Map<string, PoolAttributes>();
  readonly #poolName: (address: string) => string;
  /** Exclusive lends in progress, by `address#connectionId`: when they began. */
  readonly #lends = new Map<string, number>();

  constructor(
    client: Client,
    meter: Meter,
    poolName: (address: string) => string,
  ) {
    this.#client = client;
    this.#meter = meter;
    this.#poolName = poolName;
    // Now, so that a poolName that throws fails instrumentClient.
    for (const node of client.manager.nodes) this.#of(node.address);
    const seconds = (description: string) => ({
      description,
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.#operation = meter.createHistogram(
      "db.client.operation.duration",
      seconds("Duration of database client operations."),
    );
    this.#createTime = meter.createHistogram(
      "db.client.connection.create_time",
      seconds("The time it took to create a new connection."),
    );
    this.#waitTime = meter.createHistogram(
      "db.client.connection.wait_time",
      seconds("The time it took to obtain an open connection from the pool."),
    );
    this.#useTime = meter.createHistogram(
      "db.client.connection.use_time",
      seconds("The time a connection was used."),
    );
    this.#timeouts = meter.createCounter("db.client.connection.timeouts", {
      description: "Checkouts from the pool that timed out.",
      unit: "{timeout}",
    });
    this.#count = meter.createObservableUpDownCounter(
      "db.client.connection.count",
      {
        description: "Open connections, by state.",
        unit: "{connection}",
      },
    );
    this.#max = meter.createObservableUpDownCounter(
      "db.client.connection.max",
      {
        description: "The maximum number of open connections allowed.",
        unit: "{connection}",
      },
    );
    this.#pending = meter.createObservableUpDownCounter(
      "db.client.connection.pending_requests",
      {
        description: "Requests waiting for a connection.",
        unit: "{request}",
      },
    );
    letGo(meter.addBatchObservableCallback(this.#observe, [
      this.#count,
      this.#max,
      this.#pending,
    ]));
    client.addEventListener("checkedIn", this.#returned);
  }

  /** A request ended after `seconds`, its attempts and waits included. */
  operation(seconds: number, attributes: Attributes): void {
    letGo(this.#operation.record(seconds, attributes));
  }

  /**
   * The attributes of `address`'s pool, made on first use: a node added
   * after the client was instrumented has its metrics too.
   */
  #of(address: string): PoolAttributes {
    let attributes = this.#pools.get(address);
    if (attributes === undefined) {
      const pool = { [POOL_NAME]: poolNameOf(this.#poolName, address) };
      attributes = {
        pool,
        idle: { ...pool, [STATE]: "idle" },
        used: { ...pool, [STATE]: "used" },
      };
      this.#pools.set(address, attributes);
    }
    return attributes;
  }

  /** A connection to `address` opened in `ms`. */
  created(address: string, ms: number): void {
    letGo(this.#createTime.record(ms / 1000, this.#of(address).pool));
  }

  /**
   * A checkout from `address`'s pool got a connection after `ms`; an
   * exclusive one is used until it comes back.
   */
  waited(
    address: string,
    ms: number,
    exclusive: number | undefined,
  ): void {
    letGo(this.#waitTime.record(ms / 1000, this.#of(address).pool));
    if (exclusive !== undefined) {
      this.#lends.set(
        `${address}#${exclusive}`,
        this.#client.config.clock.now(),
      );
    }
  }

  /** A checkout from `address`'s pool timed out. */
  timedOut(address: string): void {
    letGo(this.#timeouts.add(1, this.#of(address).pool));
  }

  /** A connection to `address` served one request attempt for `ms`. */
  used(address: string, ms: number): void {
    letGo(this.#useTime.record(ms / 1000, this.#of(address).pool));
  }

  /**
   * Stops reading the pools and hearing returns. A meter that throws here
   * loses that, and the client is let go of all the same.
   */
  close(): void {
    this.#client.removeEventListener("checkedIn", this.#returned);
    this.#lends.clear();
    try {
      letGo(this.#meter.removeBatchObservableCallback(this.#observe, [
        this.#count,
        this.#max,
        this.#pending,
      ]));
    } catch { /* the meter's own loss */ }
  }

  /**
   * A connection lent exclusively came back: its use ends. A throw of the
   * meter's here would be the process's uncaught error, as any listener's.
   */
  readonly #returned = (e: PoolEvent<"checkedIn">): void => {
    const key = `${e.detail.address}#${e.detail.connectionId}`;
    const since = this.#lends.get(key);
    if (since === undefined) return;
    this.#lends.delete(key);
    try {
      this.used(e.detail.address, e.at - since);
    } catch { /* the meter's own loss */ }
  };

  /** Reads every pool's counts, at each collection. */
  readonly #observe = (result: BatchObservableResult): void => {
    for (const node of this.#client.manager.nodes) {
      const attributes = this.#of(node.address);
      const stats = node.pool.stats();
      result.observe(this.#count, stats.idle, attributes.idle);
      result.observe(this.#count, stats.open - stats.idle, attributes.used);
      result.observe(
        this.#max,
        node.pool.config.maxConnections,
        attributes.pool,
      );
      result.observe(this.#pending, stats.waiting, attributes.pool);
    }
  };
}
