/**
 * The client configuration of `ping`, `health` and `bench`: where the
 * nodes are (addresses or a `nodewire://` URL in the arguments, else
 * `NODEWIRE_URL`), with the options merged over it (an option wins over
 * the URL, as `Client.connect(url, overrides)` merges), and the few
 * settings a command that lives seconds needs.
 *
 * @module
 */

import type { ConnectionConfig } from "../config/shapes.ts";
import { mergeConfig, URL_VARIABLE } from "../config/sources.ts";
import { parseConnectionString, parseUnsureHost } from "../config/url.ts";
import { type EnvReader, readEnvVariable } from "../runtime/env.ts";
import {
  durationOption,
  hasOption,
  optionText,
  type ParsedArgs,
  UsageError,
} from "./args.ts";
import {
  checkPassword,
  checkUserName,
  readOptionFile,
  readPassword,
} from "./credentials.ts";
import type { Output } from "./output.ts";
import { DEFAULT_TIMEOUT_MS } from "./spec.ts";

const URL_LIKE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** Where the nodes came from, and what that source configures. */
interface Target {
  config: ConnectionConfig;
  from: "arguments" | "url" | "env";
}

/**
 * The nodes the arguments name, or `NODEWIRE_URL` when they name none.
 *
 * @throws {UsageError} for a malformed address or URL, a URL with a
 *   password in the arguments, or no nodes at all.
 */
function target(positionals: string[], readEnv: EnvReader): Target {
  const url = positionals.find((p) => URL_LIKE.test(p));
  if (url !== undefined) {
    if (positionals.length > 1) {
      throw new UsageError(
        "give either one nodewire:// URL or host:port addresses, not both",
      );
    }
    const config = asUsage(() => parseConnectionString(url, "url"));
    if (config.password !== undefined) {
      throw new UsageError(
        "the URL in the arguments holds a password, which every user of the " +
          "machine can read there (ps, /proc): leave it out and pipe it in " +
          `with --password-stdin, or put the URL in ${URL_VARIABLE}`,
      );
    }
    return { config, from: "url" };
  }
  if (positionals.length > 0) {
    // An address may be user:password with its @host forgotten.
    positionals.forEach((h, i) =>
      asUsage(() => parseUnsureHost(h, `host ${i + 1}`))
    );
    return { config: { hosts: positionals }, from: "arguments" };
  }
  const reading = readEnv(URL_VARIABLE);
  if (reading.state === "set") {
    return {
      config: asUsage(() => parseConnectionString(reading.value, URL_VARIABLE)),
      from: "env",
    };
  }
  throw new UsageError(
    `give at least one host:port or a nodewire:// URL, or set ${URL_VARIABLE}` +
      (reading.state === "denied" ? ` (${reading.reason})` : ""),
  );
}

function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * The client configuration the arguments and options describe. The
 * options are checked before the password is read or a file opened; the
 * password comes from standard input only (or from `NODEWIRE_URL`).
 * `readEnv` is for tests.
 */
export async function clientConfig(
  parsed: ParsedArgs,
  out: Output,
  readEnv: EnvReader = readEnvVariable,
): Promise<ConnectionConfig> {
  const { config: base, from } = target(parsed.positionals, readEnv);
  const timeout = optionText(parsed, "timeout") === undefined
    ? undefined
    : durationOption(parsed, "timeout", DEFAULT_TIMEOUT_MS);
  const caFile = optionText(parsed, "ca");
  const serverName = optionText(parsed, "servername");
  const requireTls = hasOption(parsed, "tls") || caFile !== undefined ||
    serverName !== undefined;
  const user = optionText(parsed, "user");
  const fromStdin = hasOption(parsed, "password-stdin");
  if (user !== undefined && !fromStdin) {
    throw new UsageError(
      "--user needs --password-stdin: the password is read from standard " +
        "input, never from the command line",
    );
  }
  const username = user ?? base.username;
  if (fromStdin && username === undefined) {
    throw new UsageError(
      "--password-stdin needs a user: --user <name>, or one in the URL",
    );
  }
  const source = from === "env" ? URL_VARIABLE : "url";
  if (username !== undefined) {
    checkUserName(username, user !== undefined ? "--user" : source);
  }
  // The URL's password, unless the one from standard input replaces it.
  const inUrl = fromStdin ? undefined : base.password;
  if (inUrl !== undefined) {
    checkPassword(
      username ?? "",
      typeof inUrl === "string" ? inUrl : inUrl.reveal(),
      source,
    );
  }
  const ca = caFile === undefined
    ? undefined
    : await readOptionFile("ca", caFile);
  const password = fromStdin
    ? await readPassword(username!, (t) => out.note(t))
    : undefined;
  const merged = mergeConfig(base, {
    username: user,
    password,
    // Options win over the string (docs/CLI.md): --tls over its
    // enableTls=false, --timeout over its requestTimeoutMs too.
    enableTls: requireTls ? true : undefined,
    tlsPolicy: requireTls ? "require" : undefined,
    timeoutMs: timeout,
    requestTimeoutMs: timeout,
  });
  const tlsOn = merged.enableTls === true ||
    merged.tlsPolicy === "require" || merged.tlsPolicy === "prefer";
  const timeoutMs = merged.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    ...merged,
    ...(tlsOn
      ? {
        tls: {
          ...merged.tls,
          ...(ca === undefined ? {} : { ca }),
          ...(serverName === undefined ? {} : { serverName }),
          ...(timeout === undefined ? {} : { handshakeTimeoutMs: timeout }),
        },
      }
      : {}),
    timeoutMs,
    // A command lives seconds: one sweep on demand, no background loop, a
    // node that fails it is unhealthy, and no connections kept in reserve.
    healthConfig: {
      ...merged.healthConfig,
      intervalMs: 0,
      unhealthyThreshold: 1,
      timeoutMs: timeout ?? merged.healthConfig?.timeoutMs ?? timeoutMs,
    },
    poolConfig: {
      ...merged.poolConfig,
      minConnections: 0,
      maxConnections: merged.poolConfig?.maxConnections ?? 8,
    },
  };
}
