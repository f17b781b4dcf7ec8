/**
 * The command line's grammar: each command declares its options, and
 * anything else (an unknown option, a missing or malformed value, an
 * option given twice, a password in argv) is a {@linkcode UsageError},
 * exit code 2, with a message that says what was expected.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { duration } from "../config/validate.ts";
import { quoted } from "../errors/base.ts";

/** Bad usage: the message says what is wrong; exit code 2. */
export class UsageError extends Error {
  /** The command whose help applies, when one was recognised. */
  readonly command: string | undefined;

  /** Creates a usage error about `command` (when known). */
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** One option of a command. */
export interface OptionSpec {
  /** The value's name in help (`<ms>`); absent for a switch. */
  value?: string;
  /** One line of help. */
  help: string;
}

/** A command's grammar and help. */
export interface CommandSpec {
  /** The command's name. */
  name: string;
  /** Its positional arguments, as help shows them (`<host:port>...`). */
  positional: string;
  /** What it does, one line. */
  summary: string;
  /** Options by name (without the leading `--`). */
  options: Record<string, OptionSpec>;
}

/** A parsed command line for one command. */
export interface ParsedArgs {
  /** Positional arguments, in order. */
  positionals: string[];
  /** Options given: the value, or `true` for a switch. */
  options: Map<string, string | true>;
}

/**
 * Why a password is never an argument: anyone on the machine can read a
 * process's arguments (`ps`), and shells keep them in their history.
 */
const PASSWORD_IN_ARGV =
  "--password is not accepted: a password in the command line is visible to " +
  "every user of the machine (ps, /proc) and stays in shell history. Pipe it " +
  "in with --password-stdin instead, e.g. " +
  "`printf '%s' \"$SECRET\" | nodewire ... --user app --password-stdin`";

/**
 * Parses `args` (after the command name) against `spec`. `--name value`
 * and `--name=value` both work; a switch takes no value; `--` ends the
 * options.
 *
 * @throws {UsageError} for anything the spec does not allow.
 */
export function parseArgs(args: string[], spec: CommandSpec): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  const fail = (message: string) => new UsageError(message, spec.name);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      options.set("help", true);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) {
      throw fail(`unknown option ${optionShown(arg)} for "${spec.name}"`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    // Checked before anything else, and the value is never repeated.
    if (name === "password") throw fail(PASSWORD_IN_ARGV);
    const option = Object.hasOwn(spec.options, name)
      ? spec.options[name]
      : undefined;
    if (option === undefined) {
      throw fail(`unknown option ${quoted(`--${name}`)} for "${spec.name}"`);
    }
    if (options.has(name)) throw fail(`--${name} is given more than once`);
    if (option.value === undefined) {
      if (eq >= 0) throw fail(`--${name} takes no value`);
      options.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
      value = args[++i];
    }
    if (value === undefined || value === "") {
      throw fail(`--${name} needs a value: --${name} ${option.value}`);
    }
    options.set(name, value);
  }
  return { positionals, options };
}

/**
 * An option as a usage error may quote it: its name, never what follows
 * an `=` (`-password=...`, an option before the command), which may be a
 * password.
 */
export function optionShown(arg: string): string {
  const eq = arg.indexOf("=");
  return quoted(eq < 0 ? arg : arg.slice(0, eq));
}

/**
 * A word typed where a command belongs, as a usage error may quote it: an
 * option by {@linkcode optionShown}, a URL by its scheme alone, anything
 * with a user@ not at all, and anything else only up to a colon, since
 * each may hold a password (`nodewire "$NODEWIRE_URL"`, the command
 * forgotten; `user:password` with its `@host` forgotten too).
 */
export function wordShown(word: string): string {
  if (word.startsWith("-")) return optionShown(word);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(word)?.[1];
  if (scheme !== undefined) return quoted(`${scheme}://…`);
  if (word.includes("@")) return quoted("[redacted]");
  const colon = word.indexOf(":");
  return quoted(colon < 0 ? word : `${word.slice(0, colon + 1)}…`);
}

/** The value of a value option, when given. */
export function optionText(
  parsed: ParsedArgs,
  name: string,
): string | undefined {
  const value = parsed.options.get(name);
  return typeof value === "string" ? value : undefined;
}

/** Whether a switch (or any option) was given. */
export function hasOption(parsed: ParsedArgs, name: string): boolean {
  return parsed.options.has(name);
}

const DECIMAL = /^\d+(\.\d+)?$/;

/**
 * A number option within `[min, max]` (an integer when `integer`), or
 * `fallback` when absent. Only plain decimals: `Number()` would take
 * `""`, `0x10` and `1e3`.
 */
export function numberOption(
  parsed: ParsedArgs,
  name: string,
  fallback: number,
  range: { min: number; max: number; integer?: boolean },
): number {
  const text = optionText(parsed, name);
  if (text === undefined) return fallback;
  const value = DECIMAL.test(text) ? Number(text) : NaN;
  if (
    !Number.isFinite(value) || value < range.min || value > range.max ||
    (range.integer && !Number.isInteger(value))
  ) {
    throw new UsageError(
      `--${name} must be ${
        range.integer ? "an integer" : "a number"
      } in ${range.min}–${range.max}, got ${quoted(text)}`,
    );
  }
  return value;
}

/**
 * A duration option in milliseconds, validated by the same rule as every
 * duration of the client's configuration, or `fallback` when absent.
 */
export function durationOption(
  parsed: ParsedArgs,
  name: string,
  fallback: number,
): number {
  const text = optionText(parsed, name);
  if (text === undefined) return fallback;
  try {
    return duration(`--${name}`, DECIMAL.test(text) ? Number(text) : text);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}
