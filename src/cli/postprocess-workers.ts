/**
 * The post-processing of `submit` (src/data/postprocess.ts encodeMasks: each
 * map upsampled to 580 × 420, thresholded, gated by the minimum area and
 * run-length encoded) on every core. The maps go out in chunks to whichever
 * worker is free, and the fields come back in order. Where no worker can be
 * started from this module (the TypeScript sources under a test runner), or
 * on one core, the calling thread does the work, to the same fields.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { encodeMasks } from '../data/postprocess.js';
import { workerScript, workerThreads } from './workers.js';

/** The `task` of a post-processing worker (src/cli/main.ts dispatches on it). */
export const POSTPROCESS_WORKER_TASK = 'postprocess';

/** Maps per message: enough to amortise the message, few enough to balance the cores. */
const CHUNK = 32;

type Request = { from: number; probs: Float32Array; size: number; threshold: number; minArea: number };
type Reply = { from: number; fields: string[] } | { from: number; error: string };

export interface EncodeOptions {
  /** Worker threads to use at most (default: one per core, up to 16; 0 or 1: this thread). */
  threads?: number;
  onProgress?: (done: number) => void;
}

/** encodeMasks over all `count` maps, on worker threads where it can; the fields in map order, and the threads used. */
export async function encodeMasksParallel(
  probs: Float32Array,
  count: number,
  size: number,
  threshold: number,
  minArea: number,
  options: EncodeOptions = {},
): Promise<{ fields: string[]; threads: number }> {
  const script = workerScript(import.meta.url);
  const threads = Math.min(options.threads ?? workerThreads(16), Math.ceil(count / CHUNK));
  if (script === null || threads < 2) {
    const fields: string[] = [];
    for (let from = 0; from < count; from += CHUNK) {
      fields.push(...encodeMasks(probs, size, threshold, minArea, from, Math.min(count, from + CHUNK)));
      options.onProgress?.(fields.length);
    }
    return { fields, threads: 0 };
  }
  const fields: string[] = new Array(count);
  let next = 0;
  let done = 0;
  const pixels = size * size;
  const workers = Array.from({ length: threads }, () => new Worker(script, { workerData: { task: POSTPROCESS_WORKER_TASK } }));
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const send = () => {
              if (next >= count) return resolve();
              const from = next;
              const to = Math.min(count, from + CHUNK);
              next = to;
              // A copy the worker can own, so that nothing is shared between threads.
              const chunk = probs.slice(from * pixels, to * pixels);
              w.postMessage({ from, probs: chunk, size, threshold, minArea } satisfies Request, [chunk.buffer]);
            };
            w.on('message', (m: Reply) => {
              if ('error' in m) return reject(new Error(`post-processing worker: ${m.error}`));
              for (let k = 0; k < m.fields.length; k++) fields[m.from + k] = m.fields[k]!;
              done += m.fields.length;
              options.onProgress?.(done);
              send();
            });
            w.on('error', reject);
            w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`post-processing worker stopped with exit code ${code}`))));
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (done !== count) throw new Error(`post-processing: ${done} of ${count} masks encoded`);
  return { fields, threads };
}

/** The body of a post-processing worker: a chunk of maps in, their fields out. */
export function runPostprocessWorker(): void {
  parentPort!.on('message', (m: Request) => {
    try {
      const count = m.probs.length / (m.size * m.size);
      parentPort!.postMessage({ from: m.from, fields: encodeMasks(m.probs, m.size, m.threshold, m.minArea, 0, count) } satisfies Reply);
    } catch (error) {
      parentPort!.postMessage({ from: m.from, error: error instanceof Error ? error.message : String(error) } satisfies Reply);
    }
  });
}

/** Whether this thread is a post-processing worker. */
export function isPostprocessWorker(): boolean {
  return (workerData as { task?: string } | null)?.task === POSTPROCESS_WORKER_TASK;
}
