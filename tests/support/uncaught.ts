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
