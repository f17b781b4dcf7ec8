/**
 * Authentication: the SCRAM-SHA-256 client the handshake runs, its key
 * cache, and SASLprep. The server side, for tests, is in
 * `@nodewire/client/testing`.
 *
 * @example Preparing a user name
 * ```ts
 * import { saslprep } from "@nodewire/client/auth";
 * console.log(saslprep("I\u00ADX")); // "IX"
 * ```
 *
 * @module
 */

export {
  SCRAM_MAX_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
  SCRAM_SHA_256,
  ScramClient,
  type ScramClientOptions,
  ScramKeyCache,
} from "./src/auth/scram.ts";
export { saslprep } from "./src/auth/saslprep.ts";
