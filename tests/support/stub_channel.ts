import type { ByteChannel } from "../../src/runtime/types.ts";

/**
 * A ByteChannel a test scripts by hand: `parts` (at least where data goes)
 * over defaults that do nothing: writes accepted, drained at once, close
 * and destroy ignored, nothing buffered, no remote address.
 */
export function stubChannel(
  parts: Pick<ByteChannel, "onData"> & Partial<ByteChannel>,
): ByteChannel {
  return {
    onClose: () => {},
    write: () => true,
    drained: () => Promise.resolve(),
    close: () => {},
    destroy: () => {},
    bufferedAmount: 0,
    remoteAddress: undefined,
    ...parts,
  };
}
