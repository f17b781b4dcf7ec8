/**
 * `promise`'s outcome, or a failure naming `what` once `ms` of real time
 * went by without one: a test that meets a hang fails instead of hanging.
 * The timer is cleared either way, so it keeps no process alive.
 */
export async function within<T>(
  ms: number,
  what: string,
  promise: Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: nothing within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
