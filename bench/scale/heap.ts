/**
 * Heap readings that mean the same on Deno, Bun and Node: the JavaScript
 * heap (objects, closures, promises) apart from the memory behind
 * ArrayBuffers, which V8 keeps outside its heap and JSC counts inside.
 *
 * @module
 */

interface Usage {
  heapUsed: number;
  external: number;
  arrayBuffers?: number;
}

interface Globals {
  gc?: () => void;
  Bun?: { gc(force: boolean): void };
  Deno?: { memoryUsage(): Usage };
  process?: { memoryUsage(): Usage };
}

const g = globalThis as unknown as Globals;

/** One reading, in bytes. */
export interface HeapReading {
  /** JavaScript heap in use, without ArrayBuffer backing stores. */
  js: number;
  /** ArrayBuffer backing stores and other memory outside the JS heap. */
  external: number;
}

/**
 * Whether a full collection can be forced: `node --expose-gc`,
 * `deno run --v8-flags=--expose-gc`, or Bun (always).
 */
export function canCollect(): boolean {
  return typeof g.gc === "function" || g.Bun !== undefined;
}

/**
 * Forces full collections (several: V8 may need more than one to free
 * what weak references and finalizers held), then lets pending callbacks
 * run, and collects again.
 */
export async function collect(): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 3; i++) {
      if (g.Bun) g.Bun.gc(true);
      else g.gc?.();
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Reads the heap now (call {@linkcode collect} first for a clean figure). */
export function readHeap(): HeapReading {
  if (g.Deno) {
    const m = g.Deno.memoryUsage();
    return { js: m.heapUsed, external: m.external };
  }
  const m = g.process!.memoryUsage();
  // JSC counts ArrayBuffer memory in heapUsed and reports it as external.
  if (g.Bun) return { js: m.heapUsed - m.external, external: m.external };
  return { js: m.heapUsed, external: m.arrayBuffers ?? m.external };
}

/** Collects, then reads. */
export async function settledHeap(): Promise<HeapReading> {
  await collect();
  return readHeap();
}
