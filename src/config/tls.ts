/**
 * The `tls` section of the configuration: its shape, its defaults and its
 * validation. The upgrade itself lives in `src/handshake/tls.ts`.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { isHostName } from "./host_name.ts";
import type { TlsPolicy } from "../protocol/negotiation.ts";
import {
  bool,
  checked,
  duration,
  oneOf,
  readable,
  section,
} from "./validate.ts";

/**
 * The `tls` section of the configuration: how the client checks nodes'
 * certificates. TLS itself is switched on by `enableTls` or `tlsPolicy`.
 *
 * @example Trusting a private CA
 * ```ts
 * import type { TlsConfig } from "@nodewire/client";
 * const tls: TlsConfig = {
 *   ca: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
 *   serverName: "db.internal",
 * };
 * ```
 */
export interface TlsConfig {
  /**
   * PEM certificate(s) of the CA(s) that sign the nodes' certificates; one
   * string may hold several. Default: the system's trusted roots. On Deno
   * the given CAs are trusted besides its root store, which it cannot
   * leave out; on Node and Bun instead of the system roots.
   */
  ca?: string | string[];
  /**
   * The name every node's certificate must be valid for (DNS name or IP).
   * Default: the host name or IP each node is reached at.
   */
  serverName?: string;
  /**
   * Accept any certificate for any name. Unsafe: anyone on the network
   * path can read and change the traffic, passwords excepted (SCRAM never
   * sends them). For tests against throwaway certificates only. Default
   * false.
   */
  dangerouslySkipVerify?: boolean;
  /** Limit for the TLS handshake, in ms. Default 3000. */
  handshakeTimeoutMs?: number;
  /**
   * Speak TLS from the first byte, for nodes that listen with TLS only
   * (no plaintext HELLO). Needs `tlsPolicy: "require"`. Default false:
   * the connection starts in plaintext and is upgraded when negotiation
   * chooses TLS.
   */
  direct?: boolean;
}

/**
 * The `tls` section after validation.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@nodewire/client/core";
 * const { tls } = resolveConfig({ hosts: ["127.0.0.1"], enableTls: true });
 * console.log(tls.handshakeTimeoutMs); // 3000
 * ```
 */
export interface ResolvedTlsConfig {
  /** Trusted CA certificates, one PEM block each; system roots when undefined. */
  ca: string[] | undefined;
  /** Name to verify; each host's own name when undefined. */
  serverName: string | undefined;
  /** Whether certificate checks are off (unsafe). */
  dangerouslySkipVerify: boolean;
  /** Handshake limit, in ms. */
  handshakeTimeoutMs: number;
  /** Whether connections start with TLS. */
  direct: boolean;
}

/**
 * Default `tls.handshakeTimeoutMs`: a TLS 1.3 handshake is one round trip
 * plus a few milliseconds of crypto, so 3 s covers any real network, and
 * it stays under the default connect timeout (5 s) so a stalled handshake
 * is reported as one.
 *
 * @example
 * ```ts
 * import { Client, DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS } from "@nodewire/client";
 * // A slow link: give the TLS handshake twice the default.
 * const client = await Client.connect({
 *   hosts: ["db.example.com:7000"],
 *   enableTls: true,
 *   tls: { handshakeTimeoutMs: 2 * DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS },
 * });
 * await client.disconnect();
 * ```
 */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 3000;

/** What an absent `tls` section, or an absent field of it, means. */
export const TLS_DEFAULTS: Readonly<ResolvedTlsConfig> = Object.freeze({
  ca: undefined,
  serverName: undefined,
  dangerouslySkipVerify: false,
  handshakeTimeoutMs: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  direct: false,
});

const CERTIFICATE_BLOCK =
  /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Validates the `tls` section against the TLS policy in force.
 *
 * @throws {ConfigError} naming the field. A value that looks like a
 *   private key is never echoed.
 * @example
 * ```ts
 * import { resolveTlsConfig } from "@nodewire/client/core";
 * resolveTlsConfig({ serverName: "db.internal" }, "require").serverName; // "db.internal"
 * ```
 */
export function resolveTlsConfig(
  value: unknown,
  tlsPolicy: TlsPolicy,
): ResolvedTlsConfig {
  // An unknown policy would pass for "prefer" in the checks below.
  checked("tlsPolicy", tlsPolicy, TLS_POLICY);
  if (value === undefined) return { ...TLS_DEFAULTS };
  return readable("tls", value, () => resolveTls(value, tlsPolicy));
}

/** The TLS policies, checked alike in the config and by resolveTlsConfig. */
export const TLS_POLICY = oneOf(["require", "prefer", "disable"]);

function resolveTls(value: unknown, tlsPolicy: TlsPolicy): ResolvedTlsConfig {
  const tls = section<TlsConfig>("tls", value as TlsConfig, TLS_DEFAULTS);
  if (tlsPolicy === "disable") {
    throw new ConfigError(
      "tls",
      "an object",
      'is set but TLS is off: set enableTls: true or a tlsPolicy of "require" or "prefer"',
    );
  }
  const direct: boolean = checked("tls.direct", tls.direct, bool);
  if (direct && tlsPolicy !== "require") {
    throw new ConfigError(
      "tls.direct",
      true,
      `needs tlsPolicy "require" (a direct-TLS node cannot fall back; tlsPolicy is "${tlsPolicy}")`,
    );
  }
  const handshakeTimeoutMs = duration(
    "tls.handshakeTimeoutMs",
    tls.handshakeTimeoutMs,
  );
  return {
    ca: resolveCa(tls.ca),
    serverName: resolveServerName(tls.serverName),
    dangerouslySkipVerify: checked(
      "tls.dangerouslySkipVerify",
      tls.dangerouslySkipVerify,
      bool,
    ),
    handshakeTimeoutMs,
    direct,
  };
}

function resolveCa(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(
      "tls.ca",
      value,
      "expected a PEM string or a non-empty array of them" +
        // readFileSync(path) without "utf8" gives a Buffer.
        (value instanceof Uint8Array ? " (read the file as text)" : ""),
    );
  }
  const certificates: string[] = [];
  // A loop, not forEach, which skips a hole: [, pem] is a mistake.
  for (let i = 0; i < list.length; i++) {
    const pem: unknown = list[i];
    const field = typeof value === "string" ? "tls.ca" : `tls.ca[${i}]`;
    if (typeof pem !== "string") {
      throw new ConfigError(field, pem, "expected a PEM string");
    }
    // A key pasted by mistake must not end up in an error message or log.
    if (/PRIVATE KEY-----/.test(pem)) {
      throw new ConfigError(
        field,
        "[redacted]",
        "holds a private key; expected only CA certificates",
      );
    }
    const blocks = pem.match(CERTIFICATE_BLOCK);
    if (blocks === null) {
      throw new ConfigError(
        field,
        `(${pem.length} characters)`,
        'expected at least one "-----BEGIN CERTIFICATE-----" block (the ' +
          "file's text, not its path)",
      );
    }
    // A block that is not base64 DER (a PEM with literal "\n"s from an
    // environment variable, a truncated paste) fails each runtime
    // differently at connect: Deno retries it as a lost connection.
    blocks.forEach((block, j) => {
      if (!isDer(block)) {
        throw new ConfigError(
          field,
          `(certificate ${j + 1} of ${blocks.length})`,
          "expected base64 DER between the BEGIN and END lines",
        );
      }
    });
    certificates.push(...blocks.map((block) => block + "\n"));
  }
  return certificates;
}

function isDer(block: string): boolean {
  try {
    // The first byte of a DER certificate: a SEQUENCE.
    return atob(block.slice(27, -25).replace(/\s+/g, "")).charCodeAt(0) ===
      0x30;
  } catch {
    return false;
  }
}

function resolveServerName(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  // "[::1]" names the IPv6 address ::1.
  const bracketed = typeof value === "string" && value.startsWith("[") &&
    value.endsWith("]");
  const name = bracketed ? value.slice(1, -1) : value;
  // A name as hosts are checked: no "*" (a pattern, not a name), no port
  // ("db:7000" is no IPv6 address), nothing a runtime's TLS would refuse
  // at every connect (a control character, a name too long, "a:b:c");
  // brackets only around an IPv6 address.
  if (
    typeof name !== "string" || !isHostName(name) ||
    (bracketed && !name.includes(":"))
  ) {
    throw new ConfigError(
      "tls.serverName",
      value,
      "expected a DNS name or an IP address, without a port",
    );
  }
  return name;
}
