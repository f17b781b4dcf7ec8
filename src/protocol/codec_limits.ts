/**
 * The codec's settings, checked: the largest payload a codec takes
 * (`maxFrameSize`) and the size below which it copies a payload instead
 * of handing out a view (`copyBelow`), each an integer in its range. Apart
 * from codec.ts because a connection checks its channel's `copyBelow` by
 * the same rule before any codec takes it.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";

// The largest `copyBelow`: copying is for small payloads, where it beats
// making a view; a larger copy only costs.
const MAX_COPY_BELOW = 1024;

/**
 * `value` as a `MessageCodec.copyBelow`: an integer from 0 to
 * 1024. Anything else throws an InvalidArgumentError naming `copyBelow`
 * (and `method`, whose value it was, when given).
 */
export function checkCopyBelow(value: unknown, method?: string): number {
  return integerIn("copyBelow", value, MAX_COPY_BELOW, method);
}

/**
 * `value` as an integer from 0 to `max`; anything else throws an
 * InvalidArgumentError naming `argument` (and `method`, when given).
 */
export function integerIn(
  argument: string,
  value: unknown,
  max: number,
  method?: string,
): number {
  if (
    !Number.isInteger(value) || (value as number) < 0 || (value as number) > max
  ) {
    throw new InvalidArgumentError(
      argument,
      value,
      `expected an integer from 0 to ${max}`,
      { method },
    );
  }
  return value as number;
}
