/**
 * Which plaintext channels are switching to TLS: known to the switch
 * (which refuses a second one) and to the close (which must write
 * nothing into the handshake).
 *
 * @module
 */

import type { ByteChannel } from "../runtime/types.ts";

/** The plaintext channels whose switch to TLS is under way. */
export const switching: WeakSet<ByteChannel> = new WeakSet<ByteChannel>();
