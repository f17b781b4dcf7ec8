/**
 * A throwaway self-signed TLS certificate, made with Web Crypto and a few
 * lines of DER, so that `nodewire node --tls` serves TLS on a machine with
 * no certificate and no openssl. The key lives only in memory: when the
 * process ends, nobody can use the certificate again.
 *
 * The certificate is an end-entity one (CA:FALSE, serverAuth) that clients
 * trust by giving it as their CA: Deno's rustls, Bun's BoringSSL and Node's
 * OpenSSL all accept a self-signed leaf as its own trust anchor, while
 * rustls refuses a leaf marked CA:TRUE.
 *
 * @module
 */

/** A generated certificate and its key, both PEM. */
export interface SelfSignedCertificate {
  /** The certificate; clients trust it as their CA. */
  cert: string;
  /** The PKCS#8 private key. Never written to disk by the CLI. */
  key: string;
  /** The names it is valid for (DNS names and IP addresses). */
  names: string[];
}

/** Options of {@linkcode selfSignedCertificate}. */
export interface SelfSignedOptions {
  /** Names besides localhost, 127.0.0.1 and ::1 (a bound host, say). */
  extraNames?: string[];
  /** Validity in days from now. Default 365. */
  days?: number;
  /** The time it is made, for tests. Default now. */
  now?: Date;
}

const LOOPBACK = ["localhost", "127.0.0.1", "::1"];
const encoder = new TextEncoder();

/**
 * Generates an ECDSA P-256 key and a self-signed certificate for the
 * loopback names and `extraNames`, valid from an hour ago (clock skew)
 * for `days`.
 */
export async function selfSignedCertificate(
  options: SelfSignedOptions = {},
): Promise<SelfSignedCertificate> {
  const names = [...new Set([...LOOPBACK, ...(options.extraNames ?? [])])];
  const now = options.now ?? new Date();
  const days = options.days ?? 365;
  const keys = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const spki = new Uint8Array(
    await crypto.subtle.exportKey("spki", keys.publicKey),
  );
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0] & 0x3f) | 0x40; // positive, no leading zero
  const name = seq(set(seq(oid("2.5.4.3"), utf8("nodewire throwaway node"))));
  const tbs = seq(
    explicit(0, int(new Uint8Array([2]))), // v3
    int(serial),
    ECDSA_SHA256,
    name,
    seq(
      time(new Date(now.getTime() - 3_600_000)),
      time(new Date(now.getTime() + days * 86_400_000)),
    ),
    name,
    spki,
    explicit(
      3,
      seq(
        extension("2.5.29.19", true, seq()), // basicConstraints: not a CA
        extension("2.5.29.15", true, der(0x03, new Uint8Array([7, 0x80]))), // keyUsage: digitalSignature
        extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage: serverAuth
        extension("2.5.29.17", false, seq(...names.map(generalName))), // subjectAltName
      ),
    ),
  );
  const signature = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      tbs,
    ),
  );
  const cert = seq(tbs, ECDSA_SHA256, bitString(ecdsaDer(signature)));
  const pkcs8 = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", keys.privateKey),
  );
  return {
    cert: pem("CERTIFICATE", cert),
    key: pem("PRIVATE KEY", pkcs8),
    names,
  };
}

/** One DER element: tag, definite length, content. */
function der(tag: number, content: Uint8Array): Uint8Array<ArrayBuffer> {
  const n = content.byteLength;
  const length = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : [0x82, n >>> 8, n & 0xff];
  const out = new Uint8Array(1 + length.length + n);
  out[0] = tag;
  out.set(length, 1);
  out.set(content, 1 + length.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

const seq = (...parts: Uint8Array[]) => der(0x30, concat(parts));
const set = (...parts: Uint8Array[]) => der(0x31, concat(parts));
const utf8 = (text: string) => der(0x0c, encoder.encode(text));
const explicit = (n: number, content: Uint8Array) => der(0xa0 + n, content);
const bitString = (bytes: Uint8Array) =>
  der(0x03, concat([new Uint8Array([0]), bytes]));

/** A non-negative INTEGER from big-endian bytes, minimally encoded. */
function int(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return der(
    0x02,
    trimmed[0] & 0x80 ? concat([new Uint8Array([0]), trimmed]) : trimmed,
  );
}

function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const base128 = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) base128.unshift(0x80 | (v & 0x7f));
    out.push(...base128);
  }
  return der(0x06, new Uint8Array(out));
}

/** UTCTime, which X.509 requires for dates before 2050. */
function time(date: Date): Uint8Array {
  const two = (n: number) => String(n).padStart(2, "0");
  const text = two(date.getUTCFullYear() % 100) + two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) + two(date.getUTCHours()) +
    two(date.getUTCMinutes()) + two(date.getUTCSeconds()) + "Z";
  return der(0x17, encoder.encode(text));
}

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));

function extension(id: string, critical: boolean, value: Uint8Array) {
  return seq(
    oid(id),
    ...(critical ? [new Uint8Array([0x01, 0x01, 0xff])] : []),
    der(0x04, value),
  );
}

/** A subjectAltName entry: iPAddress [7] or dNSName [2]. */
function generalName(name: string): Uint8Array {
  const ip = ipBytes(name);
  return ip ? der(0x87, ip) : der(0x82, encoder.encode(name));
}

/** The bytes of an IPv4 or IPv6 literal; undefined for anything else. */
function ipBytes(text: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    return parts.every((p) => p < 256) ? new Uint8Array(parts) : undefined;
  }
  if (!/^[0-9a-fA-F:]+$/.test(text) || !text.includes(":")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [
    ...head,
    ...Array(halves.length === 2 ? missing : 0).fill("0"),
    ...tail,
  ];
  if (all.some((g) => g.length === 0 || g.length > 4)) return undefined;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** Web Crypto signs ECDSA as r‖s; X.509 wants SEQUENCE { r, s }. */
function ecdsaDer(signature: Uint8Array): Uint8Array {
  const half = signature.byteLength / 2;
  return seq(int(signature.subarray(0, half)), int(signature.subarray(half)));
}

function pem(label: string, bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${
    lines.join("\n")
  }\n-----END ${label}-----\n`;
}
