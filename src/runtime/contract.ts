/**
 * What a custom runtime adapter hands the client is checked against its
 * contract before it is used: a value that is not what the adapter's type
 * says gets a typed error naming what is missing, not a TypeError from
 * deep inside the first call made on it.
 *
 * @module
 */

/** Why a value breaks the contract, and what threw while checking it. */
export interface ContractProblem {
  /** What is wrong, as a clause: "it has no write() method". */
  readonly wrong: string;
  /** What a getter or a proxy's trap threw, if that is why. */
  readonly cause?: unknown;
}

/**
 * Why `value` is not an object with every method in `names`, or undefined
 * when it is. Each name is read once; a read that throws is the problem.
 */
export function missingMethod(
  value: unknown,
  names: readonly string[],
): ContractProblem | undefined {
  if (typeof value !== "object" || value === null) {
    return { wrong: "it is no object" };
  }
  for (const name of names) {
    try {
      if (typeof (value as Record<string, unknown>)[name] !== "function") {
        return { wrong: `it has no ${name}() method` };
      }
    } catch (cause) {
      return { wrong: `its ${name} could not be read`, cause };
    }
  }
  return undefined;
}
