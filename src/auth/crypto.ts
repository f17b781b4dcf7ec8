/**
 * The SCRAM-SHA-256 primitives (RFC 5802 section 2.2) on Web Crypto, which
 * Deno, Bun and Node all provide as `crypto.subtle`: H is SHA-256, HMAC is
 * HMAC-SHA-256 and Hi is PBKDF2-HMAC-SHA-256.
 *
 * @module
 */

const encoder = new TextEncoder();

// TypeScript 5.7+ types a plain Uint8Array as possibly backed by a
// SharedArrayBuffer, which Web Crypto's BufferSource excludes. Every array
// here is backed by an ordinary ArrayBuffer.
const source = (bytes: Uint8Array) => bytes as BufferSource;

/** The keys SCRAM derives from a password, a salt and an iteration count. */
export interface ScramKeys {
  /** HMAC(SaltedPassword, "Client Key"): only the client ever holds it. */
  clientKey: Uint8Array;
  /** H(ClientKey): what the server stores to check a proof. */
  storedKey: Uint8Array;
  /** HMAC(SaltedPassword, "Server Key"): signs the server's final message. */
  serverKey: Uint8Array;
}

/** SHA-256 of `data`. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", source(data)));
}

/** HMAC-SHA-256 of `data` (bytes or UTF-8 text) under `key`. */
export async function hmacSha256(
  key: Uint8Array,
  data: Uint8Array | string,
): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    source(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, source(bytes)));
}

/**
 * Hi(password, salt, i): PBKDF2-HMAC-SHA-256 with a 32-byte output, the
 * SaltedPassword. `password` is the SASLprep'd password.
 */
export async function hi(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    source(encoder.encode(password)),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: source(salt), iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** Derives ClientKey, StoredKey and ServerKey from a prepared password. */
export async function deriveScramKeys(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<ScramKeys> {
  const salted = await hi(password, salt, iterations);
  const [clientKey, serverKey] = await Promise.all([
    hmacSha256(salted, "Client Key"),
    hmacSha256(salted, "Server Key"),
  ]);
  salted.fill(0);
  return { clientKey, storedKey: await sha256(clientKey), serverKey };
}

/** `a XOR b`, for two arrays of the same length. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength !== b.byteLength) {
    throw new RangeError(`xor of ${a.byteLength} and ${b.byteLength} bytes`);
  }
  const out = new Uint8Array(a.byteLength);
  for (let i = 0; i < out.byteLength; i++) out[i] = a[i] ^ b[i];
  return out;
}

/**
 * Compares two byte arrays in time that depends only on their lengths, so
 * a forger learns nothing from how long a rejection took.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * A fresh nonce: `bytes` random bytes from `crypto.getRandomValues`, as
 * base64 (printable and free of commas, as SCRAM requires).
 */
export function randomNonce(bytes = 18): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  let binary = "";
  for (const b of raw) binary += String.fromCharCode(b);
  return btoa(binary);
}
