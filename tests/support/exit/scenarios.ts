// The exit test's scenarios, each run alone in a child process by child.ts.
// A scenario calls `mark()` right after its last call returned; from then
// on nothing may keep the process alive: it must exit on its own within a
// second. What it still checks after `mark()` only reads outcomes that are
// already settled (a call still pending then is itself a failure).
import {
  AbortedError,
  Client,
  ClientClosedError,
  ConnectFailedError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  executeWithRetry,
  NodewireError,
  PoolTimeoutError,
  RequestTimeoutError,
  TlsError,
} from "../../../mod.ts";
import {
  Connection,
  ConnectionPool,
  sleep as clockSleep,
  systemClock,
} from "../../../core.ts";
import {
  type ByteChannel,
  createMemoryNetwork,
  type RuntimeAdapter,
} from "../../../runtime.ts";
import { ops, startFaultProxy, startTestNode } from "../../../testing/mod.ts";
import {
  encodeHello,
  encodeJson,
  MessageCodec,
  MessageType,
} from "../../../protocol.ts";
import { readFileSync } from "node:fs";
import { connect } from "node:net";

/** What the parent provides, and how a scenario reports. */
export interface ExitContext {
  /** A loopback port that never accepts (a stopped listener, full backlog). */
  readonly blackHole: string;
  /** A reference node in the parent, which goes on working after we leave. */
  readonly slowNode: string;
  /** Says the last call returned: the exit clock starts now. */
  mark(): void;
  /** Reports a broken expectation; the process still has to exit by itself. */
  fail(message: string): void;
  /** Says what happened, for the parent's report when the scenario fails. */
  note(message: string): void;
}

type Scenario = (ctx: ExitContext) => Promise<void>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Tracks calls, to tell which are still pending when the scenario ends. */
class Calls {
  #pending = 0;
  readonly outcomes: unknown[] = [];

  add<T>(promise: Promise<T>): Promise<unknown> {
    this.#pending++;
    return promise.then(
      (value) => value,
      (error: unknown) => error,
    ).then((outcome) => {
      this.#pending--;
      this.outcomes.push(outcome);
      return outcome;
    });
  }

  get pending(): number {
    return this.#pending;
  }

  /** The outcomes so far by kind, e.g. "3 RequestTimeoutError, 1 ok". */
  summary(): string {
    const counts = new Map<string, number>();
    for (const outcome of this.outcomes) {
      const kind = outcome instanceof Error ? outcome.name : "ok";
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    if (this.#pending > 0) counts.set("pending", this.#pending);
    return [...counts].map(([kind, n]) => `${n} ${kind}`).join(", ");
  }
}

/** Fails unless every outcome is an error of one of `kinds`. */
function expectErrors(
  ctx: ExitContext,
  what: string,
  outcomes: unknown[],
  // deno-lint-ignore no-explicit-any
  ...kinds: (abstract new (...args: any[]) => Error)[]
): void {
  for (const outcome of outcomes) {
    if (!kinds.some((kind) => outcome instanceof kind)) {
      ctx.fail(`${what}: expected ${kinds.map((k) => k.name)}, got ${outcome}`);
      return;
    }
  }
}

/** Polls until `done()` holds (true), or gives up after `ms` (false). */
async function until(done: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** The pool counters of the node at `address`. */
function poolOf(client: Client, address: string) {
  const node = client.stats().nodes.find((n) => n.address === address);
  if (node === undefined) throw new Error(`no node ${address}`);
  return node.pool;
}

/** Notes each node's pool: what is open, lent, waiting, connecting. */
function notePools(ctx: ExitContext, client: Client): void {
  for (const node of client.stats().nodes) {
    const p = node.pool;
    ctx.note(
      `${node.address}: healthy ${node.healthy}, open ${p.open}, ` +
        `in use ${p.inUse}, in flight ${p.inFlight}, waiting ${p.waiting}, ` +
        `connecting ${p.connecting}, failed ${p.totalFailed}`,
    );
  }
}

/** Fails when calls made before the last one are still pending. */
function expectSettled(ctx: ExitContext, calls: Calls): void {
  ctx.note(calls.summary());
  if (calls.pending > 0) {
    ctx.fail(`${calls.pending} calls still pending after the last call`);
  }
}

/** The scenarios by name; child.ts runs one. */
export const scenarios: Record<string, Scenario> = {
  /** A client that only connects, sends one request and disconnects. */
  async "connect-disconnect"(ctx) {
    const node = await startTestNode();
    const client = await Client.connect({ hosts: [node.address] });
    await client.request(ops.echo("x"));
    await client.disconnect();
    await node.close();
    ctx.mark();
  },

  /**
   * A client that closed, then a failed connect, then the node closed:
   * the node's sockets, already ended, were reset, which left Node
   * spinning at 100% CPU, never exiting.
   */
  async "ended-then-reset"(ctx) {
    const node = await startTestNode();
    const gone = await startTestNode();
    const refused = gone.address;
    await gone.close();
    const config = {
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 0 },
    };
    const client = await Client.connect({ ...config, hosts: [node.address] });
    await client.healthCheckAllNodes();
    await client.disconnect();
    const error = await Client.connect({ ...config, hosts: [refused] }).then(
      (client) => client.disconnect(),
      (error: unknown) => error,
    );
    await node.close();
    ctx.mark();
    expectErrors(ctx, "connect", [error], ConnectFailedError);
  },

  /** Client.connect fails: the only node refuses the connection. */
  async "connect-refused"(ctx) {
    const gone = await startTestNode();
    const address = gone.address;
    await gone.close();
    const error = await Client.connect({ hosts: [address] }).then(
      (client) => client.disconnect(),
      (error: unknown) => error,
    );
    ctx.mark();
    expectErrors(ctx, "connect", [error], ConnectFailedError);
  },

  /** One node refuses while the client works with another, health loop on. */
  async "refused-in-cluster"(ctx) {
    const node = await startTestNode();
    const gone = await startTestNode();
    const refused = gone.address;
    await gone.close();
    const client = await Client.connect({
      hosts: [node.address, refused],
      healthConfig: { intervalMs: 50 },
    });
    for (let i = 0; i < 10; i++) await client.request(ops.echo(`r${i}`));
    // A few health checks and reconnects meet the refusing port meanwhile.
    await sleep(200);
    await client.disconnect();
    await node.close();
    ctx.mark();
  },

  /** Client.connect fails: the only node never accepts (connect timeout). */
  async "black-hole-connect"(ctx) {
    const error = await Client.connect({
      hosts: [ctx.blackHole],
      timeoutMs: 300,
    }).then((client) => client.disconnect(), (error: unknown) => error);
    ctx.mark();
    expectErrors(ctx, "connect", [error], ConnectFailedError);
    if (error instanceof ConnectFailedError) {
      expectErrors(
        ctx,
        "the connect's failure",
        error.failures.map((f) => f.error),
        ConnectTimeoutError,
      );
    }
  },

  /** Client.connect to a node that never accepts, aborted by the caller. */
  async "black-hole-abort"(ctx) {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("gave up")), 100);
    const error = await Client.connect(
      { hosts: [ctx.blackHole], timeoutMs: 10_000 },
      { signal: controller.signal },
    ).then((client) => client.disconnect(), (error: unknown) => error);
    ctx.mark();
    // The caller's abort, said as such (issue #12, defect 4).
    expectErrors(ctx, "connect", [error], AbortedError);
  },

  /**
   * Disconnect while connects to a node that never accepts are pending:
   * the health loop keeps trying it while the other node serves requests.
   */
  async "black-hole-in-cluster"(ctx) {
    const node = await startTestNode();
    const client = await Client.connect({
      hosts: [node.address, ctx.blackHole],
      // The live node's connect and HELLO must fit too, on a busy machine.
      timeoutMs: 1000,
      healthConfig: { intervalMs: 50, timeoutMs: 5000 },
    });
    for (let i = 0; i < 10; i++) await client.request(ops.echo(`r${i}`));
    if (!await until(() => poolOf(client, ctx.blackHole).connecting > 0)) {
      ctx.fail("no connect to the black hole was pending");
    }
    notePools(ctx, client);
    await client.disconnect();
    await node.close();
    ctx.mark();
  },

  /**
   * Requests cut by their timeouts while the node (in the parent) goes on
   * working on them; the client disconnects before any reply comes.
   */
  async "request-timeouts"(ctx) {
    const client = await Client.connect({ hosts: [ctx.slowNode] });
    const calls = new Calls();
    const outcomes = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          calls.add(
            client.request(ops.sleep(5000, `t${i}`), {
              timeoutMs: 100,
              retry: false,
            }),
          ),
      ),
    );
    notePools(ctx, client);
    // The caller's own timeouts say nothing about the node (defect 2).
    const healthy = client.stats().nodes[0].healthy;
    await client.disconnect();
    ctx.mark();
    ctx.note(calls.summary());
    expectErrors(ctx, "requests", outcomes, RequestTimeoutError);
    if (!healthy) {
      ctx.fail("the caller's own timeouts marked the node unhealthy");
    }
  },

  /**
   * Disconnect with a request in flight on a connection lent exclusively
   * (the node takes 5 s over it) and callers queued for that connection,
   * the pool's only one: the grace period runs out and everything ends.
   */
  async "disconnect-in-flight"(ctx) {
    const client = await Client.connect({
      hosts: [ctx.slowNode],
      poolConfig: { minConnections: 1, maxConnections: 1 },
    });
    const calls = new Calls();
    let lent!: () => void;
    const holding = new Promise<void>((resolve) => (lent = resolve));
    calls.add(client.withConnection(async (connection) => {
      lent();
      await connection.sendRequest(ops.sleep(5000, "held"));
    }));
    await holding;
    for (let i = 0; i < 5; i++) {
      calls.add(client.request(ops.echo(`w${i}`), { retry: false }));
    }
    calls.add(client.withConnection(() => Promise.resolve()));
    const pool = () => poolOf(client, ctx.slowNode);
    if (!await until(() => pool().waiting >= 6 && pool().inFlight > 0)) {
      ctx.fail("the callers were not queued behind a request in flight");
    }
    notePools(ctx, client);
    await client.disconnect({ timeoutMs: 100 });
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /**
   * Disconnect while a withConnection waits to retry its checkout (the
   * first one timed out behind the pool's one connection, lent): the
   * disconnect ends that wait. It did not: the call stayed pending and
   * its 5 s backoff timer held the process after the disconnect.
   */
  async "disconnect-in-checkout-backoff"(ctx) {
    const client = await Client.connect({
      hosts: [ctx.slowNode],
      poolConfig: { minConnections: 1, maxConnections: 1 },
      retryConfig: {
        maxRetries: 2,
        initialBackoffMs: 5000,
        maxBackoffMs: 5000,
        backoffMultiplier: 2,
        jitter: false,
      },
    });
    const calls = new Calls();
    let release!: () => void;
    const holder = client.withConnection(
      () => new Promise<void>((resolve) => (release = resolve)),
    );
    calls.add(
      client.withConnection(() => Promise.resolve(), { timeoutMs: 50 }),
    );
    await sleep(200);
    release();
    await holder;
    await client.disconnect({ timeoutMs: 100 });
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /**
   * A pool (/core) closed while a checkout waits on an open whose factory
   * is deaf to its abort and holds no socket: close() waits 500 ms for
   * that open, and the caller awaits close(). Node ended the program under
   * it (the wait's timer was unreferenced): no mark, the code after the
   * close never ran.
   */
  async "pool-close-deaf-factory"(ctx) {
    const pool = new ConnectionPool<Connection>({
      address: "127.0.0.1:7000",
      config: { minConnections: 0, maxConnections: 1 },
      factory: () => new Promise<Connection>(() => {}),
    });
    const calls = new Calls();
    calls.add(pool.getConnection({ timeoutMs: 10_000 }));
    await sleep(20);
    await pool.close();
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /**
   * A checkout (/core pool) waits on an open whose factory holds no socket
   * and never settles: its deadline is on the pool's maintenance timer,
   * which was unreferenced, and Node ended the program inside the await
   * (no mark). It fails at its deadline now, and the pool closes.
   */
  async "pool-checkout-deaf-factory"(ctx) {
    const pool = new ConnectionPool<Connection>({
      address: "127.0.0.1:7000",
      config: { minConnections: 0, maxConnections: 1 },
      factory: () => new Promise<Connection>(() => {}),
    });
    const outcome = await pool.getConnection({ timeoutMs: 200 }).then(
      () => "a connection",
      (error: unknown) => error,
    );
    if (!(outcome instanceof PoolTimeoutError)) {
      ctx.fail(`getConnection gave ${outcome}, expected a PoolTimeoutError`);
    }
    await pool.close();
    ctx.mark();
  },

  /**
   * The same through a lazy client: withConnection waits for the first
   * connect, whose connection the pool opens over a runtime adapter whose
   * connect never settles and holds no socket. Node ended the program
   * inside the await.
   */
  async "lazy-checkout-silent-adapter"(ctx) {
    const network = createMemoryNetwork();
    const silent: RuntimeAdapter = {
      name: "memory",
      connect: () => new Promise<ByteChannel>(() => {}),
      listen: (options, onChannel) => network.listen(options, onChannel),
    };
    const client = await Client.connect({
      hosts: ["127.0.0.1:7000"],
      runtime: silent,
      timeoutMs: 300,
      healthConfig: { intervalMs: 0 },
      retryConfig: { maxRetries: 0 },
    }, { lazy: true });
    const outcome = await client.withConnection(() => Promise.resolve()).then(
      () => "a connection",
      (error: unknown) => error,
    );
    ctx.note(String(outcome));
    if (!(outcome instanceof NodewireError)) {
      ctx.fail(`withConnection gave ${outcome}, expected an SDK error`);
    }
    await client.disconnect();
    ctx.mark();
  },

  /**
   * Disconnect with a request in flight that holds no socket (the memory
   * network, a node in this process that takes 5 s over it): the grace
   * period's timer was unreferenced, and Node ended the program inside
   * the await of disconnect() (no mark). The grace runs out, the request
   * is cancelled, the disconnect resolves.
   */
  async "disconnect-grace-no-socket"(ctx) {
    const network = createMemoryNetwork();
    const node = await startTestNode({ runtime: network });
    const client = await Client.connect({
      hosts: [node.address],
      runtime: network,
      healthConfig: { intervalMs: 0 },
    });
    const calls = new Calls();
    calls.add(client.request(ops.sleep(5000, "held"), { timeoutMs: 10_000 }));
    if (!await until(() => poolOf(client, node.address).inFlight > 0)) {
      ctx.fail("the request was not in flight");
    }
    await client.disconnect({ timeoutMs: 200 });
    await node.close();
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
    expectErrors(ctx, "the request", calls.outcomes, ClientClosedError);
  },

  /**
   * removeNode() while a connection of that node is lent, with nothing
   * holding a socket (the memory network): the removal's grace timer was
   * unreferenced, and Node ended the program inside the await of
   * removeNode() (no mark). The grace runs out, the lent connection is
   * destroyed, the removal resolves.
   */
  async "remove-node-lent-no-socket"(ctx) {
    const network = createMemoryNetwork();
    const one = await startTestNode({ runtime: network });
    const two = await startTestNode({ runtime: network });
    const client = await Client.connect({
      hosts: [one.address, two.address],
      runtime: network,
      timeoutMs: 200,
      healthConfig: { intervalMs: 0 },
    });
    // The callback removes the node it was lent, and waits for it: the
    // grace's timer is all there is to wake the process.
    let lentOn = "";
    const outcome = await client.withConnection(async (connection) => {
      lentOn = connection.address;
      await client.removeNode(connection.address);
      return "removed";
    }).then((value) => value, (error: unknown) => error);
    ctx.note(`lent on ${lentOn}: ${outcome}`);
    if (outcome !== "removed") ctx.fail(`withConnection gave ${outcome}`);
    if (client.stats().nodes.length !== 1) ctx.fail("the node is still there");
    await client.disconnect();
    await one.close();
    await two.close();
    ctx.mark();
  },

  /**
   * Connection.connect() (/core) over a runtime adapter whose connect
   * never settles and holds no socket: the limit's timer was unreferenced,
   * and Node ended the program inside the await (no mark). It fails at
   * its limit now.
   */
  async "core-connect-silent-adapter"(ctx) {
    const network = createMemoryNetwork();
    const silent: RuntimeAdapter = {
      name: "memory",
      connect: () => new Promise<ByteChannel>(() => {}),
      listen: (options, onChannel) => network.listen(options, onChannel),
    };
    const outcome = await Connection.connect({
      adapter: silent,
      hostname: "127.0.0.1",
      port: 7000,
      timeoutMs: 200,
    }).then(() => "a connection", (error: unknown) => error);
    ctx.note(String(outcome));
    if (!(outcome instanceof ConnectTimeoutError)) {
      ctx.fail(`connect gave ${outcome}, expected a ConnectTimeoutError`);
    }
    ctx.mark();
  },

  /**
   * Connection.startTls() (/core) over a channel whose startTls never
   * settles, on the memory network (no socket): the switch's limit timer
   * was unreferenced, and Node ended the program inside the await (no
   * mark). It fails at its limit now (the connect's timeoutMs).
   */
  async "core-starttls-silent-channel"(ctx) {
    const network = createMemoryNetwork();
    const node = await startTestNode({ runtime: network });
    const silent: RuntimeAdapter = {
      name: "memory",
      connect: async (options) =>
        Object.assign(await network.connect(options), {
          startTls: () => new Promise<ByteChannel>(() => {}),
        }),
      listen: (options, onChannel) => network.listen(options, onChannel),
    };
    const connection = await Connection.connect({
      adapter: silent,
      hostname: "127.0.0.1",
      port: node.port,
      timeoutMs: 200,
    });
    const outcome = await connection.startTls({ serverName: "db" }).then(
      () => "switched",
      (error: unknown) => error,
    );
    ctx.note(String(outcome));
    if (!(outcome instanceof TlsError)) {
      ctx.fail(`startTls gave ${outcome}, expected a TlsError`);
    }
    connection.destroy();
    await node.close();
    ctx.mark();
  },

  /** The node (in this process) is closed under live sessions. */
  async "node-closed-live-sessions"(ctx) {
    const node = await startTestNode();
    const client = await Client.connect({
      hosts: [node.address],
      poolConfig: { minConnections: 3 },
      healthConfig: { intervalMs: 50 },
    });
    const calls = new Calls();
    for (let i = 0; i < 10; i++) {
      calls.add(client.request(ops.sleep(5000, `s${i}`), { retry: false }));
    }
    if (!await until(() => poolOf(client, node.address).inFlight >= 10)) {
      ctx.fail("the requests were not in flight");
    }
    await node.close();
    await sleep(100);
    await client.disconnect();
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /** The node stops gracefully (GOODBYE) with requests in flight. */
  async "node-stopped-gracefully"(ctx) {
    const node = await startTestNode();
    const client = await Client.connect({
      hosts: [node.address],
      poolConfig: { minConnections: 2 },
      healthConfig: { intervalMs: 50 },
    });
    const calls = new Calls();
    for (let i = 0; i < 10; i++) {
      calls.add(client.request(ops.sleep(100, `g${i}`), { retry: false }));
    }
    await sleep(20);
    await node.stop({ graceful: true });
    if (!await until(() => calls.pending === 0)) {
      ctx.fail("the node did not finish its requests after GOODBYE");
    }
    await client.disconnect();
    await node.close();
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /**
   * The node stops gracefully and is closed at once: its idle sessions
   * were ended (FIN sent) and are then dropped before the client answered.
   */
  async "node-stopped-then-closed"(ctx) {
    const node = await startTestNode();
    const client = await Client.connect({
      hosts: [node.address],
      poolConfig: { minConnections: 3 },
      healthConfig: { intervalMs: 0 },
    });
    await client.request(ops.echo("x"));
    await node.stop({ graceful: true });
    await node.close();
    await client.disconnect();
    ctx.mark();
  },

  /**
   * A node serving TLS from the first byte is closed while a client's
   * handshake is under way (a client that connected and sent nothing
   * yet): the node drops that connection too. It did not: the socket,
   * no session yet, stayed open until the handshake's 10 s limit, and
   * held the process that long after close().
   */
  async "node-closed-mid-tls-handshake"(ctx) {
    const pem = (name: string) =>
      readFileSync(
        new URL(`../../../testing/certs/${name}`, import.meta.url),
        "utf8",
      );
    const node = await startTestNode({
      protocols: ["tls", "tcp"],
      tls: {
        cert: pem("server.pem"),
        key: pem("server-key.pem"),
        direct: true,
      },
    });
    // The client's end holds nothing: what is left open is the node's.
    const client = connect({ host: "127.0.0.1", port: node.port }).unref();
    let clientClosed = false;
    client.on("error", () => {});
    client.on("close", () => (clientClosed = true));
    await new Promise((resolve) => client.once("connect", resolve));
    await sleep(50);
    await node.close();
    ctx.mark();
    if (!await until(() => clientClosed, 500)) {
      ctx.fail("the node left the connection open");
    }
  },

  /**
   * The same with TLS chosen by negotiation: the node is closed while a
   * client's switch to TLS is under way (NEGOTIATE_OK sent, no
   * ClientHello yet). The TLS side owned the socket, so dropping the
   * session's plaintext channel did not close it: on Node and Deno it
   * stayed open, and the process alive, for the handshake's 10 s limit.
   */
  async "node-closed-mid-tls-switch"(ctx) {
    const pem = (name: string) =>
      readFileSync(
        new URL(`../../../testing/certs/${name}`, import.meta.url),
        "utf8",
      );
    const node = await startTestNode({
      protocols: ["tls", "tcp"],
      tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
    });
    const codec = new MessageCodec();
    const send = (type: number, sequence: number, payload: Uint8Array) =>
      client.write(codec.encode({ type, flags: 0, sequence, payload }));
    const client = connect({ host: "127.0.0.1", port: node.port }).unref();
    let agreed = false;
    let clientClosed = false;
    client.on("error", () => {});
    client.on("close", () => (clientClosed = true));
    client.on("data", (chunk: Uint8Array) =>
      codec.decode(chunk, (m) => {
        if (m.type === MessageType.HelloOk) {
          send(MessageType.Negotiate, 2, encodeJson({ protocols: ["tls"] }));
        } else if (m.type === MessageType.NegotiateOk) agreed = true;
      }));
    await new Promise((resolve) => client.once("connect", resolve));
    send(
      MessageType.Hello,
      1,
      encodeHello({ version: 1, client: "mute", maxFrameSize: 1 << 20 }),
    );
    if (!await until(() => agreed)) ctx.fail("TLS was not agreed");
    await node.close();
    ctx.mark();
    if (!await until(() => clientClosed, 500)) {
      ctx.fail("the node left the connection open");
    }
  },

  /** A fault proxy between client and node is closed mid-stream. */
  async "proxy-closed-mid-stream"(ctx) {
    const node = await startTestNode();
    const proxy = await startFaultProxy({
      target: node,
      faults: { latencyMs: 5 },
    });
    const client = await Client.connect({
      hosts: [proxy.address],
      healthConfig: { intervalMs: 50 },
    });
    const calls = new Calls();
    const payload = ops.echo(new Uint8Array(32 * 1024));
    for (let i = 0; i < 50; i++) {
      calls.add(client.request(payload, { retry: false }));
    }
    if (!await until(() => proxy.stats.bytesToClient > 0)) {
      ctx.fail("no reply started through the proxy");
    }
    await proxy.close();
    await sleep(100);
    await client.disconnect();
    await node.close();
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /** The path to the node goes silent (a stalled proxy) with requests in flight. */
  async "silent-peer"(ctx) {
    const node = await startTestNode();
    const proxy = await startFaultProxy({ target: node });
    const client = await Client.connect({
      hosts: [proxy.address],
      healthConfig: { intervalMs: 50, timeoutMs: 100 },
    });
    await client.request(ops.echo("before"));
    await proxy.setFaults({ stall: true });
    const calls = new Calls();
    for (let i = 0; i < 10; i++) {
      calls.add(client.request(ops.echo(`q${i}`), { retry: false }));
    }
    if (!await until(() => poolOf(client, proxy.address).inFlight >= 10)) {
      ctx.fail("the requests were not in flight");
    }
    await client.disconnect({ timeoutMs: 100 });
    await proxy.close();
    await node.close();
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /** Disconnect while a lazy client's first connect meets a node that never accepts. */
  async "lazy-connect-black-hole"(ctx) {
    const client = await Client.connect({
      hosts: [ctx.blackHole],
      timeoutMs: 10_000,
    }, { lazy: true });
    const calls = new Calls();
    calls.add(client.request(ops.echo("x")));
    calls.add(client.ping());
    if (!await until(() => poolOf(client, ctx.blackHole).connecting > 0)) {
      ctx.fail("no connect to the black hole was pending");
    }
    await client.disconnect({ timeoutMs: 50 });
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /**
   * Disconnect at once, and a few ms later, while a lazy client's first
   * connect to a live node is under way (TCP connect, HELLO).
   */
  async "lazy-connect-disconnect"(ctx) {
    const calls = new Calls();
    for (const delay of [-1, 0, 1, 3, 10]) {
      const client = await Client.connect({
        hosts: [ctx.slowNode],
        poolConfig: { minConnections: 3 },
      }, { lazy: true });
      calls.add(client.request(ops.echo("x")));
      calls.add(client.withConnection(() => Promise.resolve()));
      if (delay >= 0) await sleep(delay);
      await client.disconnect({ timeoutMs: 0 });
    }
    ctx.mark();
    await Promise.resolve();
    expectSettled(ctx, calls);
  },

  /** Disconnect while the pool still opens its minimum of connections. */
  async "disconnect-while-filling"(ctx) {
    for (const delay of [-1, 0, 1, 3]) {
      const client = await Client.connect({
        hosts: [ctx.slowNode],
        poolConfig: { minConnections: 8, maxConnecting: 8 },
      });
      if (delay >= 0) await sleep(delay);
      ctx.note(`connecting ${poolOf(client, ctx.slowNode).connecting}`);
      await client.disconnect();
    }
    ctx.mark();
  },

  /** The same over UDP: opens cut during the datagram socket's set-up. */
  async "udp-disconnect-while-filling"(ctx) {
    const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
    for (const delay of [-1, 0, 1, 3]) {
      const client = await Client.connect({
        hosts: [node.address],
        protocols: ["udp"],
        poolConfig: { minConnections: 8, maxConnecting: 8 },
      });
      await client.request(ops.echo("x"));
      if (delay >= 0) await sleep(delay);
      ctx.note(`connecting ${poolOf(client, node.address).connecting}`);
      await client.disconnect();
    }
    await node.close();
    ctx.mark();
  },

  /**
   * The other way round: what a caller awaits keeps the process alive until
   * it settles, even when nothing else is left. Node ended the program
   * under the SDK's public sleep, executeWithRetry's backoff, and a request
   * backing off before its retry once its node had gone (no socket open):
   * the process left without its mark.
   */
  async "awaited-backoff-keeps-alive"(ctx) {
    await clockSleep(systemClock, 50);
    const schedule = {
      maxRetries: 2,
      initialBackoffMs: 100,
      maxBackoffMs: 100,
      backoffMultiplier: 2,
      jitter: false,
    };
    let attempts = 0;
    const result = await executeWithRetry(() => {
      if (attempts++ < 2) {
        throw new ConnectionRefusedError({ hostname: "127.0.0.1", port: 1 });
      }
      return Promise.resolve("third time");
    }, schedule);
    if (result !== "third time") ctx.fail(`executeWithRetry gave ${result}`);
    const node = await startTestNode();
    const client = await Client.connect({
      hosts: [node.address],
      healthConfig: { intervalMs: 0 },
      retryConfig: {
        ...schedule,
        maxRetries: 1,
        initialBackoffMs: 200,
        maxBackoffMs: 200,
      },
    });
    const outcome = client.request(ops.sleep(5000, "gone"), {
      idempotent: true,
    }).then((value) => value, (error: unknown) => error);
    if (!await until(() => poolOf(client, node.address).inFlight > 0)) {
      ctx.fail("the request was not in flight");
    }
    await node.close();
    // Lost, retried after 200 ms, refused: an error, not a vanished process.
    const error = await outcome;
    ctx.note(String(error));
    if (!(error instanceof NodewireError)) {
      ctx.fail(`the request gave ${error}, expected an SDK error`);
    }
    await client.disconnect();
    ctx.mark();
  },
};
