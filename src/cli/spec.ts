/**
 * The commands, their options and their help: one table that both the
 * parser and `--help` read, so an option cannot exist without help.
 *
 * @module
 */

import type { CommandSpec, OptionSpec } from "./args.ts";

/** Exit codes, as docs/CLI.md documents them. */
export const ExitCode = {
  /** Everything asked for worked. */
  Ok: 0,
  /** The operation failed: a node unreachable or unhealthy, requests failed, a port taken. */
  Failed: 1,
  /** Bad usage: unknown command or option, missing or bad value, `--password`, an unreadable file. */
  Usage: 2,
  /** Refused: authentication, TLS verification or protocol negotiation failed; retrying will not help. */
  Refused: 3,
} as const;

/** The default limit of the client commands, in ms. */
export const DEFAULT_TIMEOUT_MS = 3000;

const JSON_OPTION: OptionSpec = {
  help: "print one JSON document on stdout (messages go to stderr)",
};
const HELP_OPTION: OptionSpec = { help: "this text" };

const USER_OPTIONS: Record<string, OptionSpec> = {
  user: { value: "<name>", help: "authenticate as this user (SCRAM-SHA-256)" },
  "password-stdin": {
    help:
      "read the password from standard input (never give it as an argument)",
  },
};

const CLIENT_OPTIONS: Record<string, OptionSpec> = {
  json: JSON_OPTION,
  timeout: {
    value: "<ms>",
    help: `connect and request limit per node (default ${DEFAULT_TIMEOUT_MS})`,
  },
  ...USER_OPTIONS,
  tls: { help: "require TLS" },
  ca: {
    value: "<file>",
    help: "trust the CA certificate(s) in this PEM file (implies --tls)",
  },
  servername: {
    value: "<name>",
    help: "the name node certificates must be valid for (implies --tls)",
  },
  help: HELP_OPTION,
};

const SERVE_OPTIONS: Record<string, OptionSpec> = {
  host: { value: "<address>", help: "address to bind (default 127.0.0.1)" },
  user: {
    value: "<name>",
    help: "require authentication as this user (SCRAM-SHA-256)",
  },
  "password-stdin": {
    help: "read that user's password from standard input (needs --user)",
  },
  tls: {
    help:
      "serve TLS only (a throwaway self-signed certificate unless --tls-cert)",
  },
  "tls-cert": {
    value: "<file>",
    help: "the certificate (PEM) to serve (implies --tls; needs --tls-key)",
  },
  "tls-key": { value: "<file>", help: "its private key (PEM)" },
  "ca-out": {
    value: "<file>",
    help:
      "write the throwaway certificate here for clients (default: a temp file, removed at exit)",
  },
  json: JSON_OPTION,
  help: HELP_OPTION,
};

/** What the client commands connect to. */
const NODES = "[<host:port>... | <url>]";

/** Every command, in the order help lists them. */
export const COMMANDS: Record<string, CommandSpec> = {
  ping: {
    name: "ping",
    positional: NODES,
    summary: "round trip per node, with its id and protocol",
    options: CLIENT_OPTIONS,
  },
  health: {
    name: "health",
    positional: NODES,
    summary: "health table of a cluster",
    options: CLIENT_OPTIONS,
  },
  bench: {
    name: "bench",
    positional: NODES,
    summary: "a bounded ECHO load, progress on stderr, then a summary",
    options: {
      duration: { value: "<s>", help: "how long, in seconds (default 5)" },
      concurrency: {
        value: "<n>",
        help: "requests in flight at once (default 64)",
      },
      size: { value: "<bytes>", help: "payload size (default 16)" },
      ...CLIENT_OPTIONS,
    },
  },
  node: {
    name: "node",
    positional: "",
    summary: "run a reference node until SIGINT (Ctrl-C) or SIGTERM",
    options: {
      port: {
        value: "<n>",
        help: "port to listen on (default 7000; 0 picks a free one)",
      },
      id: { value: "<name>", help: "the node's id (default node-<port>)" },
      ...SERVE_OPTIONS,
    },
  },
  cluster: {
    name: "cluster",
    positional: "",
    summary: "run local reference nodes, print their URL, until SIGINT/SIGTERM",
    options: {
      nodes: { value: "<n>", help: "how many nodes (default 3)" },
      port: {
        value: "<n>",
        help:
          "the first node's port, the others follow (default 7000; 0: free ports)",
      },
      ...SERVE_OPTIONS,
    },
  },
};

const EXIT_CODES = `exit codes:
  0  ok
  1  the operation failed: a node unreachable or unhealthy, requests failed, a port taken
  2  bad usage: unknown command or option, missing or bad value, --password, an unreadable file
  3  refused: authentication, TLS verification or protocol negotiation failed (retrying will not help)`;

/** The overview `nodewire --help` prints. */
export function overview(): string {
  const lines = Object.values(COMMANDS).map((c) =>
    `  nodewire ${`${c.name} ${c.positional}`.trim().padEnd(36)} ${c.summary}`
  );
  return `nodewire — talk to nodewire database nodes, or run local ones

usage:
${lines.join("\n")}
  nodewire help [command]                       this text, or a command's options

ping, health and bench take the nodes as host:port addresses or one
nodewire:// URL (without a password), or read NODEWIRE_URL when given none;
options win over the URL. Every command takes --json (one JSON document on
stdout) and --help.

${EXIT_CODES}`;
}

/** The help of one command: usage line, summary, options. */
export function commandHelp(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([name, option]) => {
    const flag = name === "help" ? "-h, --help" : `--${name}`;
    return `  ${
      `${flag} ${option.value ?? ""}`.trimEnd().padEnd(24)
    } ${option.help}`;
  });
  return `usage: nodewire ${spec.name} ${
    spec.positional ? `${spec.positional} ` : ""
  }[options]

${spec.summary}

options:
${rows.join("\n")}

${EXIT_CODES}`;
}
