// For child scripts whose scene reports errors to the process on purpose
// (a throwing listener or sink): they handle them as an application's own
// handler would, and record what was reported.
import process from "node:process";

/**
 * Records the messages of the errors the runtime reports as uncaught (and,
 * with `rejections`, the reasons of unhandled rejections), which then do
 * not end the process: Deno's "error" events on globalThis, cancelled, or
 * process "uncaughtException" on Node and Bun.
 */
export function recordUncaught(rejections = false): string[] {
  const reported: string[] = [];
  const g = globalThis as {
    Deno?: unknown;
    addEventListener?: (type: string, fn: (e: Event) => void) => void;
  };
  if (g.Deno !== undefined) {
    g.addEventListener!("error", (event) => {
      event.preventDefault();
      reported.push(String((event as ErrorEvent).error?.message));
    });
    if (rejections) {
      g.addEventListener!("unhandledrejection", (event) => {
        event.preventDefault();
        reported.push(String((event as PromiseRejectionEvent).reason));
      });
    }
  } else {
    process.on("uncaughtException", (error: Error) => {
      reported.push(error.message);
    });
    if (rejections) {
      process.on("unhandledRejection", (reason: unknown) => {
        reported.push(String(reason));
      });
    }
  }
  return reported;
}

/**
 * The reasons of the rejections nobody handled while `body` ran (and in
 * the 10 ms after it, by when the runtime has told them), on every
 * runtime; they do not end the process.
 */
export async function rejectionsDuring(
  body: () => Promise<void>,
): Promise<unknown[]> {
  const seen: unknown[] = [];
  const g = globalThis as {
    Deno?: unknown;
    addEventListener?: (type: string, fn: (e: Event) => void) => void;
    removeEventListener?: (type: string, fn: (e: Event) => void) => void;
  };
  const onDeno = (event: Event) => {
    event.preventDefault();
    seen.push((event as PromiseRejectionEvent).reason);
  };
  const onNode = (reason: unknown) => seen.push(reason);
  if (g.Deno !== undefined) g.addEventListener!("unhandledrejection", onDeno);
  else process.on("unhandledRejection", onNode);
  try {
    await body();
    // Let a rejection nobody handled be reported.
    await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    if (g.Deno !== undefined) {
      g.removeEventListener!("unhandledrejection", onDeno);
    } else process.off("unhandledRejection", onNode);
  }
  return seen;
}
