/**
 * Resolution of the outlier ejection section and the panic threshold:
 * checked field by field, completed with the defaults. Apart from
 * `resolve.ts` so that the section's rules sit in one small place.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import {
  DEFAULT_OUTLIER_EJECTION,
  DEFAULT_PANIC_THRESHOLD,
} from "./defaults.ts";
import type { OutlierEjectionConfig } from "./shapes.ts";
import { integer, ms, numberIn, optional, section } from "./validate.ts";

/** A share: a finite number in 0–1. */
const share = numberIn(0, 1);

/**
 * Validates outlier ejection and fills in defaults; `false` turns it off
 * (undefined), `true` or nothing is the defaults.
 *
 * @throws {ConfigError} naming the first wrong field.
 */
export function resolveOutlierEjection(
  value: boolean | Partial<OutlierEjectionConfig> | undefined,
): OutlierEjectionConfig | undefined {
  if (value === false) return undefined;
  const resolved = section(
    "outlierEjection",
    value === true ? undefined : value,
    DEFAULT_OUTLIER_EJECTION,
    {
      consecutiveFailures: integer(0, 1_000_000),
      intervalMs: ms,
      baseEjectionTimeMs: ms,
      maxEjectionTimeMs: ms,
      maxEjectedShare: share,
      successRateMinNodes: integer(0, 1_000_000),
      successRateMinRequests: integer(1, 1_000_000_000),
      successRateStdevFactor: numberIn(0, 100),
      successRateMinGap: share,
    },
  );
  if (resolved.successRateMinNodes === 1) {
    throw new ConfigError(
      "outlierEjection.successRateMinNodes",
      1,
      "expected 0 (off) or at least 2: a node's success rate is compared " +
        "with its peers'",
    );
  }
  if (resolved.maxEjectionTimeMs < resolved.baseEjectionTimeMs) {
    throw new ConfigError(
      "outlierEjection.maxEjectionTimeMs",
      resolved.maxEjectionTimeMs,
      "must be at least outlierEjection.baseEjectionTimeMs " +
        `(${resolved.baseEjectionTimeMs})`,
    );
  }
  return resolved;
}

/**
 * Validates the panic threshold against the policy for no healthy node: a
 * threshold above 0 spreads requests over every node when none is healthy,
 * so an explicit `whenNoHealthyNodes: "fail"` beside it is a contradiction.
 *
 * @throws {ConfigError} naming `panicThreshold`.
 */
export function resolvePanicThreshold(
  value: unknown,
  whenNoHealthyNodes: unknown,
): number {
  const threshold = optional(
    "panicThreshold",
    value,
    share,
    DEFAULT_PANIC_THRESHOLD,
  );
  if (threshold > 0 && whenNoHealthyNodes === "fail") {
    throw new ConfigError(
      "panicThreshold",
      threshold,
      "spreads requests over every node when too few (or none) are " +
        'healthy, so whenNoHealthyNodes cannot be "fail" beside it',
    );
  }
  return threshold;
}
