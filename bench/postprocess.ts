/**
 * The post-processing of `submit` in masks per second: the reference path
 * (fullSizeProbabilities, binarize, formatSubmission, one thread), the fused
 * pass on one thread (encodeMasks), and the fused pass on worker threads, in
 * one run on one machine; every path must write the same CSV. No GPU.
 *
 *   node dist/postprocess.js [--masks 2000] [--size 96] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { binarize, encodeMasks, fullSizeProbabilities } from '../src/data/postprocess.js';
import { formatEncodedSubmission, formatSubmission } from '../src/data/submission.js';
import { encodeMasksParallel, isPostprocessWorker, runPostprocessWorker } from '../src/cli/postprocess-workers.js';
import { parseArgs } from '../src/cli/args.js';

const SPEC = {
  masks: { type: 'number' as const, help: 'probability maps to post-process', default: 2000 },
  size: { type: 'number' as const, help: 'side of a map (the model input)', default: 96 },
  json: { type: 'string' as const, help: 'write the results here' },
};

/** Maps like a trained model's: a blob in about 40 % of them, faint noise in the rest. */
function maps(count: number, size: number): Float32Array {
  const probs = new Float32Array(count * size * size);
  let s = 99;
  const random = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let n = 0; n < count; n++) {
    const nerve = random() < 0.4;
    const cx = size * (0.3 + 0.4 * random());
    const cy = size * (0.3 + 0.4 * random());
    const r = size * (0.05 + 0.08 * random());
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const blob = nerve ? Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (r * r)) : 0;
        probs[(n * size + y) * size + x] = Math.min(1, blob + 0.05 * random());
      }
    }
  }
  return probs;
}

async function main(): Promise<void> {
  const { options } = parseArgs(process.argv.slice(2), SPEC);
  const count = options.masks as number;
  const size = options.size as number;
  const probs = maps(count, size);
  const ids = Array.from({ length: count }, (_, n) => n + 1);
  const [threshold, minArea] = [0.5, 10];
  const cores = availableParallelism();
  console.log(`post-processing ${count} maps of ${size} × ${size} → 580 × 420; ${cores} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}`);

  const time = async (run: () => Promise<string> | string): Promise<{ csv: string; seconds: number }> => {
    const t0 = performance.now();
    const csv = await run();
    return { csv, seconds: (performance.now() - t0) / 1000 };
  };
  const rows: { path: string; threads: number; masksPerSecond: number }[] = [];
  const reference = await time(() =>
    formatSubmission(ids.map((id, n) => ({ id, mask: binarize(fullSizeProbabilities(probs.subarray(n * size * size, (n + 1) * size * size), size), threshold, minArea) })), minArea),
  );
  rows.push({ path: 'reference (resize, binarize, encode)', threads: 1, masksPerSecond: count / reference.seconds });
  const fused = await time(() => formatEncodedSubmission(encodeMasks(probs, size, threshold, minArea, 0, count).map((pixels, n) => ({ id: ids[n]!, pixels }))));
  rows.push({ path: 'fused, this thread', threads: 1, masksPerSecond: count / fused.seconds });
  const counts = [...new Set([2, 4, 8, 16, cores].filter((t) => t >= 2 && t <= cores))].sort((a, b) => a - b);
  const results = [reference, fused];
  for (const threads of counts) {
    const run = await time(async () => {
      const { fields } = await encodeMasksParallel(probs, count, size, threshold, minArea, { threads });
      return formatEncodedSubmission(fields.map((pixels, n) => ({ id: ids[n]!, pixels })));
    });
    results.push(run);
    rows.push({ path: 'fused, worker threads', threads, masksPerSecond: count / run.seconds });
  }
  if (results.some((r) => r.csv !== reference.csv)) throw new Error('post-processing paths wrote different CSVs');
  for (const r of rows) console.log(`${r.path.padEnd(38)} ${String(r.threads).padStart(2)} thread(s): ${r.masksPerSecond.toFixed(0).padStart(6)} masks/s (×${(r.masksPerSecond / rows[0]!.masksPerSecond).toFixed(2)} the reference)`);
  if (options.json) {
    writeFileSync(options.json as string, JSON.stringify({ date: new Date().toISOString().slice(0, 10), cores, cpu: cpus()[0]?.model, node: process.version, masks: count, size, rows }, null, 2) + '\n');
    console.log(`wrote ${options.json}`);
  }
}

if (isPostprocessWorker()) runPostprocessWorker();
else main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
