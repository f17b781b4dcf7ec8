/**
 * The commands that run nodes: `node` (one reference node) and `cluster`
 * (several, like the demo's), with authentication and TLS when asked.
 * They print where the nodes listen and the URL a client connects with,
 * then run until SIGINT or SIGTERM, and stop by closing what they opened,
 * never by forcing the process to exit.
 *
 * The reference node comes from the testing kit, which this layer may
 * not import: the entry point hands it in as a {@linkcode NodeKit}.
 *
 * @module
 */

import { onTermination, writeTempFile } from "../runtime/process_io.ts";
import { absolutePath, writeTextFile } from "../runtime/process_io.ts";
import { serverTlsProblem } from "../runtime/tls.ts";
import {
  hasOption,
  numberOption,
  optionText,
  type ParsedArgs,
  UsageError,
  wordShown,
} from "./args.ts";
import { selfSignedCertificate } from "./certificate.ts";
import {
  type Credentials,
  readCredentials,
  readOptionFile,
} from "./credentials.ts";
import type { Output } from "./output.ts";
import { ExitCode } from "./spec.ts";
import { quoted } from "../errors/base.ts";

/** The options a served node starts with (a subset of the kit's). */
export interface NodeStartOptions {
  /** Port, 0 for a free one. */
  port: number;
  /** Address to bind. */
  hostname: string;
  /** The node's id. */
  nodeId?: string;
  /** Users the node requires, name to password. */
  credentials?: Record<string, string>;
  /** Protocols the node serves. */
  protocols?: ("tls" | "tcp")[];
  /** Certificate and key (PEM) to serve TLS with. */
  tls?: { cert: string; key: string };
}

/** What the serving commands use of a running node. */
export interface ServedNode {
  /** Its id. */
  readonly nodeId: string;
  /** `host:port`. */
  readonly address: string;
  /** Its counters; `open` is the connections open now. */
  readonly stats: { readonly open: number };
  /** Stops listening; `graceful` says GOODBYE and lets work finish. */
  stop(options?: { graceful?: boolean }): Promise<void>;
  /** Stops for good, dropping every connection. */
  close(): Promise<void>;
}

/** What the entry point hands in from the testing kit. */
export interface NodeKit {
  /** Starts one node. */
  start(options: NodeStartOptions): Promise<ServedNode>;
  /** The kit's rule for a node id: what was expected, or undefined. */
  nodeId(value: unknown): string | undefined;
}

/** How long a stop waits for clients to finish before dropping them. */
const DRAIN_MS = 2000;
/** Bound hosts that add no name to a throwaway certificate. */
const NO_EXTRA_NAME = new Set([
  "0.0.0.0",
  "::",
  "localhost",
  "127.0.0.1",
  "::1",
]);

interface TlsMaterial {
  cert: string;
  key: string;
  /** Where clients find the certificate to trust, when we made it. */
  caFile: string | undefined;
  /** The names a generated certificate is valid for. */
  names: string[] | undefined;
  /** Removes what was written to a temporary folder. */
  cleanup(): Promise<void>;
}

/**
 * Runs `node` or `cluster` until a termination signal (or `signal`)
 * and resolves with the exit code.
 */
export async function serve(
  command: "node" | "cluster",
  parsed: ParsedArgs,
  out: Output,
  kit: NodeKit,
  signal?: AbortSignal,
): Promise<number> {
  if (parsed.positionals.length > 0) {
    throw new UsageError(
      `"${command}" takes no arguments, got ${
        wordShown(parsed.positionals[0])
      }`,
    );
  }
  const count = command === "cluster"
    ? numberOption(parsed, "nodes", 3, { min: 1, max: 64, integer: true })
    : 1;
  const port = numberOption(parsed, "port", 7000, {
    min: 0,
    max: 65536 - count,
    integer: true,
  });
  const hostname = optionText(parsed, "host") ?? "127.0.0.1";
  const certFile = optionText(parsed, "tls-cert");
  const keyFile = optionText(parsed, "tls-key");
  const caOut = optionText(parsed, "ca-out");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const tls = hasOption(parsed, "tls") || certFile !== undefined;
  if (caOut !== undefined && (!tls || certFile !== undefined)) {
    throw new UsageError(
      "--ca-out writes the throwaway certificate of --tls, made only without --tls-cert",
    );
  }
  const id = optionText(parsed, "id");
  if (id !== undefined) {
    // Checked here, to name --id: the kit would name its own option.
    const problem = kit.nodeId(id);
    if (problem) {
      throw new UsageError(`invalid --id: ${problem}, got ${quoted(id)}`);
    }
  }
  const credentials = await readCredentials(parsed, (t) => out.note(t));
  const material = tls
    ? await tlsMaterial(certFile, keyFile, caOut, hostname)
    : undefined;
  const ids = command === "cluster"
    ? Array.from({ length: count }, (_, i) => `n${i + 1}`)
    : [id];
  // Listening for the signals before anything is printed: a script that
  // sends SIGTERM as soon as it reads the URL must not find the default
  // action (an abrupt end) still in place.
  const stop = new StopRequest(out, signal);
  const nodes: ServedNode[] = [];
  try {
    try {
      for (const [i, nodeId] of ids.entries()) {
        nodes.push(
          await kit.start({
            port: port === 0 ? 0 : port + i,
            hostname,
            nodeId,
            ...(credentials
              ? {
                credentials: { [credentials.username]: credentials.password },
              }
              : {}),
            ...(material
              ? {
                protocols: ["tls"],
                tls: { cert: material.cert, key: material.key },
              }
              : {}),
          }),
        );
      }
    } catch (error) {
      await settled(nodes, (n) => n.close());
      throw error;
    }
    report(command, nodes, credentials, material, out);
    out.note("running; stop with Ctrl-C (SIGINT) or SIGTERM");
    await stop.requested();
    await drain(nodes, stop);
    out.note("stopped");
    return ExitCode.Ok;
  } finally {
    stop.dispose();
    await material?.cleanup();
  }
}

/** The certificate and key from files, or a throwaway one. */
async function tlsMaterial(
  certFile: string | undefined,
  keyFile: string | undefined,
  caOut: string | undefined,
  hostname: string,
): Promise<TlsMaterial> {
  const nothing = () => Promise.resolve();
  if (certFile !== undefined && keyFile !== undefined) {
    const cert = await pemFile("tls-cert", certFile, "CERTIFICATE");
    const key = await pemFile("tls-key", keyFile, "PRIVATE KEY");
    // The nodes would start, then reset every client's handshake.
    const problem = await serverTlsProblem({ cert, key });
    if (problem !== undefined) {
      throw new UsageError(
        `--tls-cert ${quoted(certFile)} and --tls-key ${
          quoted(keyFile)
        } are not a certificate and its key: ${problem}`,
      );
    }
    return {
      cert,
      key,
      caFile: undefined,
      names: undefined,
      cleanup: nothing,
    };
  }
  const generated = await selfSignedCertificate({
    extraNames: NO_EXTRA_NAME.has(hostname) ? [] : [hostname],
  });
  // Only the certificate is written; the key never leaves this process.
  if (caOut !== undefined) {
    try {
      await writeTextFile(caOut, generated.cert);
    } catch (error) {
      const reason = (error as { code?: string }).code ?? String(error);
      throw new UsageError(
        `--ca-out: cannot write ${quoted(caOut)} (${reason})`,
      );
    }
    return {
      ...generated,
      caFile: await absolutePath(caOut),
      cleanup: nothing,
    };
  }
  const ca = await writeTempFile("nodewire-", "ca.pem", generated.cert);
  return { ...generated, caFile: ca.path, cleanup: ca.remove };
}

/**
 * A file's text, refused unless it holds a PEM block of `label`: a node
 * served with anything else would fail every TLS handshake. The message
 * names the file, never what it holds (it may be a key).
 */
async function pemFile(
  option: string,
  path: string,
  label: string,
): Promise<string> {
  const text = await readOptionFile(option, path);
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) {
    throw new UsageError(
      `--${option}: ${
        quoted(path)
      } holds no PEM ${label.toLowerCase()} (no "-----BEGIN ...${label}-----" line)`,
    );
  }
  return text;
}

/** The URL of the served nodes: hosts, user name, TLS; never a password. */
export function servedUrl(
  addresses: string[],
  username: string | undefined,
  tls: boolean,
): string {
  const user = username === undefined ? "" : `${encodeURIComponent(username)}@`;
  return `nodewire://${user}${addresses.join(",")}${
    tls ? "/?tls=require" : ""
  }`;
}

/**
 * A served node's address as a client on this machine reaches it: a
 * wildcard bind (`0.0.0.0`, `::`) is written as its family's loopback
 * address, which the throwaway certificate is valid for, and which every
 * system connects to (Windows cannot connect to a wildcard).
 */
function reachableAddress(address: string): string {
  if (address.startsWith("0.0.0.0:")) return `127.0.0.1${address.slice(7)}`;
  if (address.startsWith("[::]:")) return `[::1]${address.slice(4)}`;
  return address;
}

function report(
  command: "node" | "cluster",
  nodes: ServedNode[],
  credentials: Credentials | undefined,
  material: TlsMaterial | undefined,
  out: Output,
): void {
  const url = servedUrl(
    nodes.map((n) => reachableAddress(n.address)),
    credentials?.username,
    material !== undefined,
  );
  out.result({
    ok: true,
    url,
    nodes: nodes.map((n) => ({ id: n.nodeId, address: n.address })),
    user: credentials?.username ?? null,
    tls: material
      ? {
        certificate: material.names ? "self-signed" : "file",
        caFile: material.caFile ?? null,
        names: material.names ?? null,
      }
      : null,
  }, () => {
    const lines = command === "node"
      ? [`reference node ${nodes[0].nodeId} listening on ${nodes[0].address}`]
      : [
        `cluster of ${nodes.length} reference nodes:`,
        ...nodes.map((n) => `  ${n.nodeId}  ${n.address}`),
      ];
    if (credentials) {
      lines.push(`authentication: SCRAM-SHA-256, user ${credentials.username}`);
    }
    if (material?.names) {
      lines.push(
        `TLS only, with a throwaway self-signed certificate for ${
          material.names.join(", ")
        }`,
        `clients trust: ${material.caFile}`,
      );
    } else if (material) lines.push("TLS only, with the given certificate");
    lines.push(`url: ${url}`);
    return lines.join("\n");
  });
}

/**
 * SIGINT, SIGTERM or an abort of `signal`, counted from construction
 * until {@linkcode StopRequest.dispose}: the first asks to stop, a second
 * to stop waiting for clients.
 */
class StopRequest {
  count = 0;
  #wake = () => {};
  readonly #off: () => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.#on("aborted");
  // The listeners alone may not hold the process open on every runtime.
  readonly #keepAlive = setInterval(() => {}, 1 << 30);

  constructor(readonly out: Output, signal: AbortSignal | undefined) {
    this.#off = onTermination((name) => this.#on(name));
    this.#signal = signal;
    if (signal?.aborted) this.count++;
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  #on(name: string): void {
    this.count++;
    if (this.count === 1) this.out.note(`stopping (${name})`);
    this.#wake();
  }

  /** Resolves at the first request (at once if one came already). */
  requested(): Promise<void> {
    return this.count > 0
      ? Promise.resolve()
      : new Promise((resolve) => (this.#wake = resolve));
  }

  /** Resolves after `ms` or at the next request, whichever is first. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Stops listening: the process may end, and signals act as usual. */
  dispose(): void {
    clearInterval(this.#keepAlive);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#off();
  }
}

/**
 * Stops the nodes: GOODBYE to every client, up to {@linkcode DRAIN_MS}
 * for them to finish (a second signal cuts that short), then the rest
 * dropped.
 */
async function drain(nodes: ServedNode[], stop: StopRequest): Promise<void> {
  const stopping = await settled(nodes, (n) => n.stop({ graceful: true }));
  const until = performance.now() + DRAIN_MS;
  while (
    stop.count < 2 && performance.now() < until &&
    nodes.some((n) => n.stats.open > 0)
  ) {
    await stop.pause(20);
  }
  const closing = await settled(nodes, (n) => n.close());
  const failed = stopping ?? closing;
  if (failed !== undefined) throw failed.error;
}

/**
 * Runs `step` on every node, each whatever the others do: one node whose
 * stop or close fails must not leave the rest open (and the process
 * running). Resolves with the first failure, if any.
 */
async function settled(
  nodes: ServedNode[],
  step: (node: ServedNode) => Promise<void>,
): Promise<{ error: unknown } | undefined> {
  const results = await Promise.allSettled(
    nodes.map(async (n) => await step(n)),
  );
  const failed = results.find((r) => r.status === "rejected");
  return failed === undefined ? undefined : { error: failed.reason };
}
