/**
 * SASLprep (RFC 4013), the string preparation SCRAM applies to user names
 * and passwords so that two spellings of the same text (a no-break space,
 * a full-width letter, a soft hyphen) authenticate alike.
 *
 * What is exact and what is approximate:
 * - mapping (non-ASCII spaces to U+0020, "commonly mapped to nothing"
 *   characters removed; U+200B, in both tables, is removed), NFKC
 *   normalisation and every prohibited table (RFC 3454 C.1.2 to C.9) are
 *   implemented exactly;
 * - the bidirectional rule uses RFC 3454's table D.1 exactly for
 *   right-to-left characters, but approximates table D.2 (left-to-right)
 *   as "any letter or spacing mark outside the right-to-left scripts",
 *   because JavaScript exposes no Bidi_Class property;
 * - unassigned code points are allowed (RFC 4013 "queries"), and NFKC
 *   comes from the runtime's Unicode version rather than Unicode 3.2. The
 *   two differ only for characters assigned after 2002.
 *
 * Plain ASCII without control characters passes through unchanged, which
 * is what interoperating with any other SCRAM implementation needs.
 *
 * @module
 */

import { InvalidArgumentError, SaslprepError } from "../errors.ts";
import { quoted } from "../errors/base.ts";

/** `[from, to]` code point ranges, inclusive. */
type Ranges = readonly (readonly [number, number])[];

// RFC 3454 C.1.2: non-ASCII space characters, mapped to U+0020.
const NON_ASCII_SPACE: Ranges = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

// RFC 3454 B.1: commonly mapped to nothing.
const MAPPED_TO_NOTHING: Ranges = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

// RFC 3454 C.1.2 and C.2.1 to C.9: prohibited after mapping and NFKC.
const PROHIBITED: Ranges = [
  ...NON_ASCII_SPACE,
  [0x0000, 0x001f], // C.2.1 ASCII control
  [0x007f, 0x007f],
  [0x0080, 0x009f], // C.2.2 non-ASCII control
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x180e, 0x180e],
  [0x200c, 0x200d],
  [0x2028, 0x2029],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0xfeff, 0xfeff],
  [0xfff9, 0xfffc],
  [0x1d173, 0x1d17a],
  [0xe000, 0xf8ff], // C.3 private use
  [0xf0000, 0xffffd],
  [0x100000, 0x10fffd],
  [0xfdd0, 0xfdef], // C.4 non-characters (plane ends are checked below)
  [0xd800, 0xdfff], // C.5 surrogates
  [0xfff9, 0xfffd], // C.6 inappropriate for plain text
  [0x2ff0, 0x2ffb], // C.7 inappropriate for canonical representation
  [0x0340, 0x0341], // C.8 change display properties or deprecated
  [0x200e, 0x200f],
  [0x202a, 0x202e],
  [0xe0001, 0xe0001], // C.9 tagging
  [0xe0020, 0xe007f],
];

// RFC 3454 D.1: characters with bidirectional property R or AL.
const RAND_AL: Ranges = [
  [0x05be, 0x05be],
  [0x05c0, 0x05c0],
  [0x05c3, 0x05c3],
  [0x05d0, 0x05ea],
  [0x05f0, 0x05f4],
  [0x061b, 0x061b],
  [0x061f, 0x061f],
  [0x0621, 0x063a],
  [0x0640, 0x064a],
  [0x066d, 0x066f],
  [0x0671, 0x06d5],
  [0x06dd, 0x06dd],
  [0x06e5, 0x06e6],
  [0x06fa, 0x06fe],
  [0x0700, 0x070d],
  [0x0710, 0x0710],
  [0x0712, 0x072c],
  [0x0780, 0x07a5],
  [0x07b1, 0x07b1],
  [0x200f, 0x200f],
  [0xfb1d, 0xfb1d],
  [0xfb1f, 0xfb28],
  [0xfb2a, 0xfb36],
  [0xfb38, 0xfb3c],
  [0xfb3e, 0xfb3e],
  [0xfb40, 0xfb41],
  [0xfb43, 0xfb44],
  [0xfb46, 0xfbb1],
  [0xfbd3, 0xfd3d],
  [0xfd50, 0xfd8f],
  [0xfd92, 0xfdc7],
  [0xfdf0, 0xfdfc],
  [0xfe70, 0xfe74],
  [0xfe76, 0xfefc],
];

// Approximates RFC 3454 D.2 (see the module note).
const LEFT_TO_RIGHT = /^[\p{L}\p{Mc}]$/u;
const RTL_SCRIPT =
  /^[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}]$/u;

function inRanges(cp: number, ranges: Ranges): boolean {
  for (const [from, to] of ranges) {
    if (cp >= from && cp <= to) return true;
  }
  return false;
}

function isNonCharacter(cp: number): boolean {
  // C.4: U+FDD0–FDEF and the last two code points of every plane.
  return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
}

/**
 * What SASLprep refuses, in words that show nothing of the input: said for
 * a refused password, whose SaslprepError would name the character and
 * where it is.
 */
export const SASLPREP_REFUSES =
  "a control, private-use or non-character code point, or mixed-direction text";

/**
 * Why no one could log in as `name`, or undefined: SASLprep refuses it or
 * leaves nothing of it.
 */
export function userNameProblem(name: string): string | undefined {
  try {
    if (saslprep(name) === "") return "a user name is empty";
  } catch (error) {
    return `the user name ${quoted(name)} is not allowed by ` +
      `SASLprep: ${(error as Error).message}`;
  }
}

/**
 * Why no one could log in as `name` with `password`, or undefined, in
 * words that show nothing of the password, not even a character.
 */
export function passwordProblem(
  name: string,
  password: string,
): string | undefined {
  const shown = quoted(name);
  try {
    if (saslprep(password) === "") return `the password of ${shown} is empty`;
  } catch {
    return `the password of ${shown} is not allowed by SASLprep (${SASLPREP_REFUSES})`;
  }
}

/**
 * Prepares a user name or password with SASLprep (RFC 4013): maps
 * non-ASCII spaces to U+0020 and removes "mapped to nothing" characters,
 * normalises to NFKC, then rejects prohibited characters and text that
 * breaks the bidirectional rule.
 *
 * @throws {SaslprepError} for prohibited characters or bad bidi. The
 *   message never contains the input, but names a prohibited character's
 *   code point and position: a caller preparing a password shows a
 *   message of its own instead (the client and the test kit do).
 * @throws {InvalidArgumentError} for an input that is no string.
 * @example
 * ```ts
 * import { saslprep } from "@nodewire/client/auth";
 * saslprep("I\u00ADX"); // "IX"
 * saslprep("pass\u200Bword"); // "password"
 * saslprep("\u2168"); // "IX"
 * saslprep("user"); // "user"
 * ```
 */
export function saslprep(input: string): string {
  // A number passed the fast path's test as its digits, and came back as
  // it was. Its value is not shown: it may be a password.
  if (typeof input !== "string") {
    throw new InvalidArgumentError("input", undefined, "expected a string", {
      method: "saslprep",
    });
  }
  // Fast path: printable ASCII is already prepared.
  if (/^[\x20-\x7e]*$/.test(input)) return input;
  let mapped = "";
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    // B.1 before C.1.2: U+200B ZERO WIDTH SPACE is in both tables, and a
    // zero-width character is one a user cannot see they typed; mapped to
    // a space, "pass\u200Bword" became "pass word", another password.
    if (inRanges(cp, MAPPED_TO_NOTHING)) continue;
    mapped += inRanges(cp, NON_ASCII_SPACE) ? " " : ch;
  }
  const normalized = mapped.normalize("NFKC");
  let hasRandAL = false;
  let hasL = false;
  let position = 0;
  for (const ch of normalized) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, PROHIBITED) || isNonCharacter(cp)) {
      throw new SaslprepError(
        `prohibited character U+${hex(cp)} at position ${position}`,
      );
    }
    if (inRanges(cp, RAND_AL)) hasRandAL = true;
    else if (LEFT_TO_RIGHT.test(ch) && !RTL_SCRIPT.test(ch)) hasL = true;
    position++;
  }
  if (hasRandAL) {
    const chars = [...normalized];
    const first = chars[0].codePointAt(0)!;
    const last = chars[chars.length - 1].codePointAt(0)!;
    if (hasL) {
      throw new SaslprepError(
        "mixes right-to-left and left-to-right characters",
      );
    }
    if (!inRanges(first, RAND_AL) || !inRanges(last, RAND_AL)) {
      throw new SaslprepError(
        "right-to-left text must start and end with a right-to-left character",
      );
    }
  }
  return normalized;
}

function hex(cp: number): string {
  return cp.toString(16).toUpperCase().padStart(4, "0");
}
