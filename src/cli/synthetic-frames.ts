/**
 * Writes the frames of a synthetic set (TIFFs in the Kaggle layout) on every
 * core. A frame depends only on (subject, frame, seed), so worker k of W
 * renders and encodes frames k, k + W, …, writes them, and sends back each
 * frame's row of train_masks.csv / test_masks.csv; the rows are put back in
 * the layout's order. Where no worker can be started from this module (the
 * TypeScript sources under a test runner, rather than the built dist/cli.js),
 * the frames are written on the calling thread, in the same order, to the
 * same bytes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { FRAME_HEIGHT, FRAME_WIDTH, maskCsvRow, syntheticLayout, type SyntheticEntry, type SyntheticLayout, type SyntheticLayoutOptions } from '../data/synthetic.js';
import { encodeTiffGray8 } from '../data/tiff.js';
import { workerScript, workerThreads } from './workers.js';

/** The `task` of a worker started by writeSyntheticFrames (src/cli/main.ts dispatches on it). */
export const FRAME_WORKER_TASK = 'synthetic-frames';

interface Job {
  task: typeof FRAME_WORKER_TASK;
  raw: string;
  options: SyntheticLayoutOptions;
  worker: number;
  workers: number;
}

type Message = { index: number; kind: SyntheticEntry['kind']; row: string } | { done: true };

/** Renders one frame, writes its image (and mask) and returns its CSV row. */
function writeFrame(raw: string, layout: SyntheticLayout, entry: SyntheticEntry): string {
  const { image, mask } = layout.render(entry);
  writeFileSync(join(raw, entry.image), encodeTiffGray8(FRAME_WIDTH, FRAME_HEIGHT, image, { compression: 'lzw' }));
  if (entry.mask !== undefined) writeFileSync(join(raw, entry.mask), encodeTiffGray8(FRAME_WIDTH, FRAME_HEIGHT, mask, { compression: 'lzw' }));
  return maskCsvRow(entry, mask);
}

/**
 * Writes every frame of the set into `raw` (train/ and test/ must exist) and
 * returns the rows of train_masks.csv and test_masks.csv in the layout's
 * order and how many worker threads wrote them (0: this thread);
 * `progress(done)` after each frame.
 */
export async function writeSyntheticFrames(raw: string, options: SyntheticLayoutOptions, progress: (done: number) => void): Promise<{ train: string[]; test: string[]; workers: number }> {
  const layout = syntheticLayout(options);
  const total = layout.trainCount + layout.testCount;
  const rows: { kind: SyntheticEntry['kind']; row: string }[] = new Array(total);
  const workers = Math.min(workerThreads(), Math.ceil(total / 16));
  const script = workers >= 2 ? workerScript(import.meta.url) : null;
  let done = 0;
  if (script === null) {
    let index = 0;
    for (const entry of layout.entries()) {
      rows[index++] = { kind: entry.kind, row: writeFrame(raw, layout, entry) };
      progress(++done);
    }
  } else {
    await Promise.all(
      Array.from({ length: workers }, (_, worker) => {
        const job: Job = { task: FRAME_WORKER_TASK, raw, options, worker, workers };
        const w = new Worker(script, { workerData: job });
        return new Promise<void>((resolve, reject) => {
          w.on('message', (m: Message) => {
            if ('done' in m) return;
            rows[m.index] = { kind: m.kind, row: m.row };
            progress(++done);
          });
          w.on('error', reject);
          w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`synthetic frame worker ${worker} stopped with exit code ${code}`))));
        });
      }),
    );
  }
  if (done !== total) throw new Error(`synthetic set: ${done} of ${total} frames written`);
  return { train: rows.filter((r) => r.kind === 'train').map((r) => r.row), test: rows.filter((r) => r.kind !== 'train').map((r) => r.row), workers: script === null ? 0 : workers };
}

/** The body of a frame worker: its share of the frames, a message per frame. */
export function runFrameWorker(): void {
  const job = workerData as Job;
  const layout = syntheticLayout(job.options);
  let index = 0;
  for (const entry of layout.entries()) {
    if (index % job.workers === job.worker) parentPort!.postMessage({ index, kind: entry.kind, row: writeFrame(job.raw, layout, entry) } satisfies Message);
    index++;
  }
  parentPort!.postMessage({ done: true } satisfies Message);
}

/** Whether this thread was started by writeSyntheticFrames. */
export function isFrameWorker(): boolean {
  return (workerData as Partial<Job> | null)?.task === FRAME_WORKER_TASK;
}
