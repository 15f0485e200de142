/**
 * TIFF decoding on worker threads for the data step: `decode` has the
 * contract of BuildCachesOptions.decode (the same GrayImage as decodeTiff, a
 * DataError for a bad file). Each worker decodes one file at a time; requests
 * go to the worker with the fewest in flight. Where no worker can be started
 * from this module (the TypeScript sources under a test runner), there is no
 * pool and the data layer decodes on its own thread.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { DataError } from '../data/errors.js';
import { type GrayImage, decodeTiff } from '../data/tiff.js';
import { workerScript, workerThreads } from './workers.js';

/** The `task` of a decoding worker (src/cli/main.ts dispatches on it). */
export const TIFF_WORKER_TASK = 'tiff-decode';

type Request = { id: number; path: string; bytes: Uint8Array };
type Reply = { id: number; width: number; height: number; data: Uint8Array; morePages?: boolean } | { id: number; error: string; dataError: boolean };

export interface TiffPool {
  readonly workers: number;
  decode(bytes: Uint8Array, path: string): Promise<GrayImage>;
  close(): Promise<void>;
}

/** A pool of one decoding worker per core (up to 8), or null where workers cannot run this module. */
export function openTiffPool(): TiffPool | null {
  const self = workerScript(import.meta.url);
  const count = workerThreads();
  if (self === null || count < 2) return null;
  const waiting = new Map<number, { resolve: (image: GrayImage) => void; reject: (error: Error) => void }>();
  const load = new Array<number>(count).fill(0);
  const owner = new Map<number, number>();
  let nextId = 0;
  let failed: Error | null = null;
  const workers = Array.from({ length: count }, (_, k) => {
    const w = new Worker(self, { workerData: { task: TIFF_WORKER_TASK } });
    w.on('message', (m: Reply) => {
      const job = waiting.get(m.id);
      if (!job) return;
      waiting.delete(m.id);
      load[k]!--;
      owner.delete(m.id);
      if ('error' in m) job.reject(m.dataError ? new DataError(m.error) : new Error(m.error));
      else job.resolve({ width: m.width, height: m.height, data: m.data, ...(m.morePages ? { morePages: true } : {}) });
    });
    w.on('error', (error) => {
      failed = error;
      for (const [id, job] of waiting) if (owner.get(id) === k) job.reject(error);
    });
    return w;
  });
  return {
    workers: count,
    decode(bytes, path) {
      if (failed) return Promise.reject(failed);
      const k = load.indexOf(Math.min(...load));
      const id = nextId++;
      load[k]!++;
      owner.set(id, k);
      return new Promise<GrayImage>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        // A copy the worker can own: `bytes` may be a view of a shared Node buffer.
        const own = new Uint8Array(bytes);
        workers[k]!.postMessage({ id, path, bytes: own } satisfies Request, [own.buffer]);
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** The body of a decoding worker. */
export function runTiffWorker(): void {
  parentPort!.on('message', (m: Request) => {
    try {
      const image = decodeTiff(m.bytes, m.path);
      // A fresh buffer to hand over whole: image.data may be a view of a larger one.
      const data = new Uint8Array(image.data);
      parentPort!.postMessage({ id: m.id, width: image.width, height: image.height, data, ...(image.morePages ? { morePages: true } : {}) } satisfies Reply, [data.buffer]);
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      parentPort!.postMessage({ id: m.id, error: e.message, dataError: e instanceof DataError } satisfies Reply);
    }
  });
}

/** Whether this thread is a decoding worker. */
export function isTiffWorker(): boolean {
  return (workerData as { task?: string } | null)?.task === TIFF_WORKER_TASK;
}
