/**
 * "Did you mean ...?" for misspelt option names: the known name closest
 * to an unknown one, when it is close enough to be a typo.
 *
 * @module
 */

import { clipped, printable } from "../errors/base.ts";

/** The most characters of an unknown name an error's field path shows. */
const MAX_NAME_SHOWN = 80;

/**
 * An unknown option's name as an error's field path may hold it: clipped
 * and with what a terminal would act on escaped, since the caller's key
 * can be anything (a 100 kB string made a 100 kB message).
 */
export function nameShown(key: string): string {
  return printable(clipped(key, MAX_NAME_SHOWN));
}

/**
 * The name in `known` that `key` most likely misspells, or `undefined`:
 * one that differs only in case (`timeoutMS`), or within two edits (one
 * for names of four letters or fewer), a swap of neighbours counting as
 * one (`idempotnet`).
 */
export function closestName(
  key: string,
  known: Iterable<string>,
): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    if (name.toLowerCase() === lower) return name;
    const limit = Math.min(name.length, key.length) <= 4 ? 1 : 2;
    const distance = editDistance(lower, name.toLowerCase(), limit);
    if (distance <= limit && distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * The "unknown option" text of an error about `key`: a suggestion when one
 * is close, and the known names.
 */
export function unknownOption(key: string, known: Iterable<string>): string {
  const names = [...known];
  const guess = closestName(key, names);
  return `unknown option${
    guess === undefined ? "" : ` (did you mean "${guess}"?)`
  }; known: ${names.join(", ")}`;
}

/**
 * Optimal string alignment distance (Levenshtein plus swaps of adjacent
 * letters), giving up early once it must exceed `limit`.
 */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, before[j - 2] + 1);
      }
      current.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin > limit) return limit + 1;
    before = previous;
    previous = current;
  }
  return previous[b.length];
}
