/**
 * Reading one environment variable the way each runtime allows: Deno only
 * with the `env` permission (asked for without prompting), Bun and Node
 * through `process.env`. A runtime with neither (a worker, a browser) has
 * no environment.
 *
 * @module
 */

/**
 * What reading a variable gave: its value, that it is unset (or empty), or
 * that the runtime does not let this program read it (Deno without
 * `--allow-env`, or a runtime with no environment at all).
 */
export type EnvReading =
  | { readonly state: "set"; readonly value: string }
  | { readonly state: "unset" }
  | { readonly state: "denied"; readonly reason: string };

/** Reads one variable; for tests, a stand-in for {@linkcode readEnvVariable}. */
export type EnvReader = (name: string) => EnvReading;

interface DenoEnv {
  permissions?: {
    querySync?(descriptor: { name: "env"; variable: string }): {
      state: string;
    };
  };
  env: { get(name: string): string | undefined };
}

interface EnvGlobals {
  Deno?: DenoEnv;
  process?: { env?: Record<string, string | undefined> };
}

/**
 * Reads the environment variable `name`. On Deno the permission is queried
 * first (`Deno.permissions.querySync`), and the variable is read only when
 * it is granted: `Deno.env.get` without the permission would prompt on a
 * terminal, and a library must never stop a program to ask. An empty value
 * counts as unset, as `NAME=` in a shell usually means "not configured".
 * `globals` is for tests; it defaults to `globalThis`.
 */
export function readEnvVariable(
  name: string,
  globals: EnvGlobals = globalThis as EnvGlobals,
): EnvReading {
  let value: string | undefined;
  const deno = globals.Deno;
  if (typeof deno === "object" && deno !== null) {
    let state: string;
    try {
      state = deno.permissions?.querySync?.({ name: "env", variable: name })
        .state ?? "unknown";
    } catch {
      state = "unknown";
    }
    if (state !== "granted") {
      return {
        state: "denied",
        reason:
          `Deno has no permission to read ${name} (run with --allow-env=${name})`,
      };
    }
    try {
      value = deno.env.get(name);
    } catch {
      return {
        state: "denied",
        reason: `Deno refused to read ${name} (run with --allow-env=${name})`,
      };
    }
  } else {
    const env = globals.process?.env;
    if (typeof env !== "object" || env === null) {
      return {
        state: "denied",
        reason: "this runtime has no environment variables",
      };
    }
    value = env[name];
  }
  return typeof value === "string" && value !== ""
    ? { state: "set", value }
    : { state: "unset" };
}
