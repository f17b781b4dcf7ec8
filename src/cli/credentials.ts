/**
 * Secrets and files named on the command line: the password, read from
 * standard input only, and PEM files. A file that cannot be read is bad
 * usage (the option names it), not a failed operation.
 *
 * @module
 */

import {
  readStdin,
  readTextFile,
  stdinIsTerminal,
} from "../runtime/process_io.ts";
import { passwordProblem, userNameProblem } from "../auth/saslprep.ts";
import { quoted } from "../errors/base.ts";
import { hasOption, optionText, type ParsedArgs, UsageError } from "./args.ts";

/** More than any password; a longer input is a file piped by mistake. */
const MAX_PASSWORD_BYTES = 4096;

/** A user name and its password, from `--user` and `--password-stdin`. */
export interface Credentials {
  /** The user name. */
  username: string;
  /** The password, as read (one trailing newline removed). */
  password: string;
}

/**
 * The credentials the options ask for, or undefined without `--user`.
 * `--user` and `--password-stdin` go together: the CLI takes a password
 * from nowhere else.
 *
 * @throws {UsageError} when one comes without the other, or stdin holds
 *   no password.
 */
export async function readCredentials(
  parsed: ParsedArgs,
  note: (text: string) => void,
): Promise<Credentials | undefined> {
  const username = optionText(parsed, "user");
  const fromStdin = hasOption(parsed, "password-stdin");
  if (username === undefined && !fromStdin) return undefined;
  if (username === undefined) {
    throw new UsageError("--password-stdin needs --user <name>");
  }
  if (!fromStdin) {
    throw new UsageError(
      "--user needs --password-stdin: the password is read from standard " +
        "input, never from the command line",
    );
  }
  checkUserName(username, "--user");
  return { username, password: await readPassword(username, note) };
}

/**
 * Refuses a user name no one could log in as (SASLprep refuses it, say,
 * for a control character), naming `from`, where it was given; before
 * any password is asked for.
 *
 * @throws {UsageError} naming `from` and the problem.
 */
export function checkUserName(name: string, from: string): void {
  const problem = userNameProblem(name);
  if (problem) throw new UsageError(`${from}: ${problem}`);
}

/**
 * Reads `username`'s password from standard input, to its end; one
 * trailing newline (`echo secret |` adds it) is not part of it.
 *
 * @throws {UsageError} when stdin holds no password, far too much, or one
 *   SASLprep refuses (never showing it).
 */
export async function readPassword(
  username: string,
  note: (text: string) => void,
): Promise<string> {
  if (stdinIsTerminal()) {
    note(`password for ${username} (then Enter and Ctrl-D):`);
  }
  let text: string;
  try {
    text = await readStdin(MAX_PASSWORD_BYTES);
  } catch (error) {
    throw new UsageError(
      `--password-stdin: ${error instanceof Error ? error.message : error}`,
    );
  }
  const password = text.replace(/\r?\n$/, "");
  if (password === "") {
    throw new UsageError("--password-stdin read an empty password");
  }
  checkPassword(username, password, "--password-stdin");
  return password;
}

/**
 * Refuses a password no one could log in with (SASLprep refuses it, or
 * leaves nothing of it), naming `from`, where it was given, and showing
 * nothing of it: no character, no position.
 *
 * @throws {UsageError} naming `from` and the user.
 */
export function checkPassword(
  username: string,
  password: string,
  from: string,
): void {
  const problem = passwordProblem(username, password);
  if (problem) throw new UsageError(`${from}: ${problem}`);
}

/**
 * Far more than any certificate, key or CA bundle (a system's whole
 * bundle is some 200 KB); a longer file is a mistake, or a device.
 */
const MAX_PEM_FILE_BYTES = 4 << 20;

/**
 * Reads the text file an option names.
 *
 * @throws {UsageError} naming the option when it cannot be read, or
 *   holds more than {@linkcode MAX_PEM_FILE_BYTES}.
 */
export async function readOptionFile(
  option: string,
  path: string,
): Promise<string> {
  try {
    return await readTextFile(path, MAX_PEM_FILE_BYTES);
  } catch (error) {
    const reason = (error as { code?: string }).code ??
      (error instanceof Error ? error.message : String(error));
    throw new UsageError(
      `--${option}: cannot read ${quoted(path)} (${reason})`,
    );
  }
}
