/**
 * Strict standard base64 (RFC 4648 section 4, with padding), as SCRAM uses
 * it for salts, proofs and signatures. Strict because `atob` forgives
 * whitespace and missing padding, and a SCRAM peer must not.
 *
 * @module
 */

const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Encodes bytes as standard base64 with padding. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  // Chunked: String.fromCharCode(...big) would overflow the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Decodes standard base64 with padding, or returns `undefined` for text
 * that is not exactly that (whitespace, URL alphabet, missing padding).
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text)) return undefined;
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
