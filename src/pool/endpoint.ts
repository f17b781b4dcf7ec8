/**
 * A pool's address as the endpoint its connection errors name. Apart
 * because both the opener and the wait for a closing pool's closes build
 * such errors.
 *
 * @module
 */

import type { Endpoint } from "../errors.ts";

/** The pool's `host:port` (`[v6]:port`) as the endpoint of its errors. */
export function endpointOf(address: string): Endpoint {
  const at = address.lastIndexOf(":");
  return {
    hostname: address.slice(0, at).replace(/^\[|\]$/g, ""),
    port: +address.slice(at + 1),
  };
}
