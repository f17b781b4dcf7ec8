/**
 * The nodewire command line: ping nodes, show cluster health, run a bounded
 * load, or run a reference node.
 *
 * ```sh
 * deno run -A jsr:@nodewire/client/cli ping 127.0.0.1:7000 127.0.0.1:7001
 * node ./node_modules/@nodewire/client/cli.js health 127.0.0.1:7000
 * ```
 *
 * Exit codes: 0 success; 1 a node was unreachable, unhealthy, or requests
 * failed; 2 bad usage or a malformed address.
 *
 * @example Run the CLI from code
 * ```ts
 * import { main } from "@nodewire/client/cli";
 * const code = await main(["ping", "127.0.0.1:7000"]);
 * ```
 *
 * @module
 */

import { Client } from "./src/client/client.ts";
import {
  formatCount,
  formatMs,
  quantile,
  renderTable,
} from "./src/cli/format.ts";
import { runLoad } from "./src/cli/load.ts";
import { ProgressLine } from "./src/cli/progress.ts";
import { parseHost } from "./src/config/hosts.ts";
import { NodewireError } from "./src/errors.ts";
import {
  commandArgs,
  isMainModule,
  setExitCode,
} from "./src/runtime/process.ts";
import { startTestNode } from "./testing/node.ts";
import { ops } from "./testing/ops.ts";

const USAGE = `nodewire — talk to nodewire database nodes

usage:
  nodewire ping <host:port>...     round trip per node, and the node's id
  nodewire health <host:port>...   health table of a cluster
  nodewire bench <host:port>... [--duration 5] [--concurrency 64] [--size 16]
                                   a bounded ECHO load (reference op set), live, then a summary
  nodewire node [--port 7000] [--host 127.0.0.1] [--id <name>]
                                   run a reference node until interrupted
  nodewire --help                  this text

exit codes: 0 ok; 1 a node unreachable or requests failed; 2 bad usage or address`;

/** Thrown for bad usage; becomes exit code 2. */
class UsageError extends Error {}

interface Parsed {
  command: string | undefined;
  hosts: string[];
  flags: Map<string, string>;
}

function parse(args: string[]): Parsed {
  const flags = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") flags.set("help", "");
    else if (a.startsWith("--")) {
      const [name, inline] = a.slice(2).split("=", 2);
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else rest.push(a);
  }
  return { command: rest[0], hosts: rest.slice(1), flags };
}

function numberFlag(
  flags: Map<string, string>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = flags.get(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(
      `--${name} must be a number in ${min}–${max}, got "${text}"`,
    );
  }
  return value;
}

function checkHosts(hosts: string[]): void {
  if (hosts.length === 0) throw new UsageError("give at least one host:port");
  hosts.forEach((h, i) => {
    try {
      parseHost(h, `host ${i + 1}`);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  });
}

function connect(hosts: string[]): Promise<Client> {
  return Client.connect({
    hosts,
    healthConfig: { intervalMs: 0, unhealthyThreshold: 1 },
    poolConfig: { minConnections: 0, maxConnections: 8 },
    timeoutMs: 3000,
  });
}

async function ping(hosts: string[]): Promise<number> {
  const client = await connect(hosts);
  try {
    const results = await client.healthCheckAllNodes();
    const protocols = new Map(
      client.stats().nodes.map((n) => [n.address, n.protocol]),
    );
    console.log(renderTable(
      ["node", "id", "round trip", "protocol", "result"],
      results.map((r) => [
        r.address,
        r.nodeId ?? "–",
        formatMs(r.latencyMs),
        protocols.get(r.address) ?? "–",
        r.ok ? "ok" : `FAILED: ${r.error?.message}`,
      ]),
    ));
    return results.every((r) => r.ok) ? 0 : 1;
  } finally {
    await client.disconnect();
  }
}

async function health(hosts: string[]): Promise<number> {
  const client = await connect(hosts);
  try {
    await client.healthCheckAllNodes();
    const stats = client.stats();
    console.log(renderTable(
      ["node", "id", "healthy", "latency", "failures", "open", "in flight"],
      stats.nodes.map((n) => [
        n.address,
        n.nodeId ?? "–",
        n.healthy ? "yes" : "NO",
        formatMs(n.latencyMs),
        n.consecutiveFailures,
        n.pool.open,
        n.inFlight,
      ]),
    ));
    return stats.nodes.every((n) => n.healthy) ? 0 : 1;
  } finally {
    await client.disconnect();
  }
}

async function bench(
  hosts: string[],
  flags: Map<string, string>,
): Promise<number> {
  const durationMs = numberFlag(flags, "duration", 5, 0.1, 600) * 1000;
  const concurrency = numberFlag(flags, "concurrency", 64, 1, 10_000);
  const size = numberFlag(flags, "size", 16, 0, 1 << 20);
  const client = await connect(hosts);
  const progress = new ProgressLine();
  try {
    const result = await runLoad(client, {
      concurrency,
      durationMs,
      payload: ops.echo(new Uint8Array(size)),
      idempotent: true,
      onTick: (s) =>
        progress.update(
          `${(s.elapsedMs / 1000).toFixed(1)} s  ${
            formatCount(s.recentRate)
          } req/s  p50 ${formatMs(quantile(s.recent, 0.5))}  p99 ${
            formatMs(quantile(s.recent, 0.99))
          }  errors ${s.errors}`,
        ),
    });
    progress.done();
    const seconds = result.elapsedMs / 1000;
    console.log(renderTable(["measure", "value"], [
      ["requests", formatCount(result.ok)],
      ["throughput", `${formatCount(result.ok / seconds)} req/s`],
      ["errors", result.errors],
      ["p50", formatMs(quantile(result.latencies, 0.5))],
      ["p99", formatMs(quantile(result.latencies, 0.99))],
      ["max", formatMs(result.latencies[result.latencies.length - 1])],
      ...[...result.perNode].map((
        [id, n],
      ): [string, string] => [`node ${id}`, formatCount(n)]),
    ]));
    return result.errors === 0 && result.ok > 0 ? 0 : 1;
  } finally {
    await client.disconnect();
  }
}

async function node(flags: Map<string, string>): Promise<number> {
  const port = numberFlag(flags, "port", 7000, 0, 65535);
  if (!Number.isInteger(port)) {
    throw new UsageError("--port must be an integer");
  }
  const reference = await startTestNode({
    port,
    hostname: flags.get("host") ?? "127.0.0.1",
    nodeId: flags.get("id"),
  });
  console.log(
    `reference node ${reference.nodeId} listening on ${reference.address}`,
  );
  // Stay up until the process is interrupted; the listener may be unreferenced.
  await new Promise(() => setInterval(() => {}, 1 << 30));
  return 0;
}

/**
 * Runs the CLI with `args` and resolves with the exit code; never throws.
 *
 * @example
 * ```ts
 * import { main } from "@nodewire/client/cli";
 * console.log(await main(["--help"])); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    const { command, hosts, flags } = parse(args);
    if (flags.has("help") || command === "help") {
      console.log(USAGE);
      return 0;
    }
    switch (command) {
      case "ping":
        checkHosts(hosts);
        return await ping(hosts);
      case "health":
        checkHosts(hosts);
        return await health(hosts);
      case "bench":
        checkHosts(hosts);
        return await bench(hosts, flags);
      case "node":
        return await node(flags);
      case undefined:
        throw new UsageError("no command given");
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    const code = error instanceof NodewireError ? ` [${error.code}]` : "";
    console.error(
      `error${code}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return 1;
  }
}

// The exit code is set, not forced: once the client has disconnected nothing
// is left open, so the process ends on its own, and a leak would show as a
// process that does not end instead of being hidden by an exit.
if (await isMainModule(import.meta)) setExitCode(await main(commandArgs()));
