/**
 * What the data step's worker threads share: the script they run (the built
 * dist/cli.js, whose entry dispatches on workerData.task) and how many to start.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * The script a worker started from module `moduleUrl` (its import.meta.url)
 * runs: the built bundle, or null from the TypeScript sources (under a test
 * runner), where the caller does the work on its own thread.
 */
export function workerScript(moduleUrl: string): string | null {
  const path = fileURLToPath(moduleUrl);
  return path.endsWith('.js') ? path : null;
}

/** Worker threads for CPU-bound data work: one per core, up to `max` (8 for file work, where the disk also limits). */
export function workerThreads(max = 8): number {
  return Math.min(availableParallelism(), max);
}
