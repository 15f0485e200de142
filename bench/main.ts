/**
 * `npm run bench`: our kernels and training step against tfjs, in one run:
 * tfjs-backend-webgpu on the same adapter (with the same limits), and
 * tfjs-backend-wasm and tfjs-backend-cpu on this machine's CPU. Prints a
 * table (ms, rate, ratio against each peer, share of the adapter's measured
 * FMA ceiling), and writes JSON, an SVG chart and a Markdown summary on request.
 *
 * Timing: wall time from recording a kernel to the GPU reporting the work
 * done (queue.onSubmittedWorkDone) for both WebGPU engines; the CPU backends
 * compute synchronously, so their time is the call itself. Median, minimum
 * and maximum of --reps runs after one warm-up run (which also compiles the
 * pipelines); Dawn's polls for the GPU are paced alike for both WebGPU
 * engines (paceDawnPolling). Ours and tfjs-webgpu run in alternation, and
 * the ratio against tfjs-webgpu is the median of the per-pair ratios: on a
 * shared machine a load that comes and goes then slows both runs of a pair,
 * not one side of the comparison.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Gpu, describeAdapter, formatAdapter, requestDevice } from '../src/gpu/gpu.js';
import { GPU_OPTIONS, parseArgs, usage, UsageError } from '../src/cli/args.js';
import { MIXED_TOGGLES, withEnabledToggles, NoAdapterError } from '../src/gpu/node-gpu.js';
import { PACE_AFTER_MS, POLL_NAP_MS, POLL_TIMER_SLACK_NS, paceDawnPolling, tuneForSoftwareAdapter } from '../src/software/platform.js';
import { type Case, UNET_CONV_SHAPES, caseFilter, UNET_UP_SHAPES, adamCase, convCases, convTransposeCases, diceCase, memoryBoundCases } from './cases.js';
import { type Peer, type Sample, type Timing, gpuTimeRatio, ratioToOurs, sample, table, timeIt, timePaired } from './harness.js';
import { type StepProfile, benchInference, benchOurStep, benchTrainingStep } from './step.js';
import { measureCeiling } from './ceiling.js';
import { type MmaCeiling, formatMmaCeiling, measureMmaCeiling } from './mma-ceiling.js';
import { TUNED, mmaTileChoices, mmaTileOverrides } from './mma-tiles.js';
import { chartSvg } from './chart.js';
import { GpuTimer } from '../src/gpu/timer.js';
import { markdownReport } from './report.js';
import { type ConvOverrides, type Precision, type TuneReport, canRunMixed, convFormulation, setConvOverrides, setPrecision, setTunedConvolutions } from '../src/ops/conv/index.js';

const SPEC = {
  ...GPU_OPTIONS,
  suite: { type: 'string' as const, help: 'kernels, step, or all', default: 'all' },
  quick: { type: 'boolean' as const, help: 'a short subset: batch 8, two shapes per convolution, tfjs-webgpu only' },
  batches: { type: 'string' as const, help: 'comma-separated batch sizes for the kernels', default: '1,8,32' },
  peers: { type: 'string' as const, help: 'comma-separated: webgpu, wasm, cpu', default: 'webgpu,wasm,cpu' },
  reps: { type: 'number' as const, help: 'timed runs per case', default: 3 },
  cases: { type: 'string' as const, help: 'only the kernel cases whose "op shape" matches this regular expression (e.g. "conv_transpose_forward|8x96x96")' },
  'step-batch': { type: 'number' as const, help: 'batch of the training-step benchmark', default: 8 },
  'step-width': { type: 'number' as const, help: 'base width of the U-Net in the training-step benchmark', default: 32 },
  'step-chain': { type: 'number' as const, help: 'also time this many training steps back to back with one wait at the end (default 10 on GPUs, off on software adapters)' },
  'step-size': { type: 'number' as const, help: 'input size of the U-Net in the training-step benchmark', default: 96 },
  json: { type: 'string' as const, help: 'write every sample, the adapter and versions to this JSON file' },
  svg: { type: 'string' as const, help: 'write a chart of ours against tfjs-webgpu per kernel' },
  markdown: { type: 'string' as const, help: 'write the results as a Markdown report (bench/README.md)' },
  variant: { type: 'string' as const, help: 'convolution formulation to use instead of the planner\'s: tiled, rows or direct' },
  precision: { type: 'string' as const, help: 'training step and inference of ours in each of these precisions (comma-separated: fp32, mixed; default both where the adapter has f16 subgroup matrices, else fp32)' },
  storage: { type: 'string' as const, help: 'time the mixed-precision step with activations stored in each of these (comma-separated: f16, f32; default f16, mixed precision\'s own)' },
  'mma-tiles': { type: 'string' as const, help: 'time the mixed-precision step with each of these tiles (comma-separated; auto: a tile per GEMM by its shape; tuned: each GEMM in the configuration it ran fastest in, measured before the step is timed; +prefetch after one: the next k step fetched while the current multiplies; +tall: 4 rows of result matrices a subgroup instead of 2; +wide: 4 columns instead of 2 (+tall+wide: 4 × 4); +db: two pairs of staged tiles, one multiplied while the next step is staged into the other; +perquad: each quad decodes its own k where one decode could serve the step; +splitk: forward and ∂input reductions split across workgroups where C has few tiles; all: every tile and auto, with and without prefetching; default the planner\'s choice)' },
  'step-ours-only': { type: 'boolean' as const, help: 'time our training step and inference only, without tfjs-layers beside them' },
  'dawn-toggles': { type: 'string' as const, help: 'more Dawn toggles to enable for this run (comma-separated; e.g. disable_robustness: every shader without the bounds clamps Dawn adds to its array accesses), ours and the peers\' alike' },
  'peer-budget': { type: 'number' as const, help: 'skip a CPU peer (wasm, cpu) on a case whose run, estimated from the same case at a smaller batch, would take longer than this many seconds', default: 120 },
};

const PEER_NAMES: Record<string, string> = { webgpu: 'tfjs-webgpu', wasm: 'tfjs-wasm', cpu: 'tfjs-cpu' };

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) return void console.log(usage('bench', 'Benchmarks our kernels and training step against tfjs in one run.', SPEC));
  const { options } = parseArgs(argv, SPEC);
  const quick = options.quick === true;
  const suite = options.suite as string;
  if (!['kernels', 'step', 'all'].includes(suite)) throw new UsageError(`--suite must be kernels, step or all, got "${suite}"`);
  const batches = (quick ? '8' : (options.batches as string)).split(',').map(Number);
  if (batches.some((b) => !Number.isInteger(b) || b < 1)) throw new UsageError(`--batches must be positive integers, got "${options.batches}"`);
  const peerKeys = (quick ? 'webgpu' : (options.peers as string)).split(',');
  for (const p of peerKeys) if (!PEER_NAMES[p]) throw new UsageError(`unknown peer "${p}": use webgpu, wasm, cpu`);
  const reps = options.reps as number;
  const only = caseFilter(options.cases as string | undefined);

  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  paceDawnPolling(); // both engines wait through the same binding
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals); // tfjs-backend-webgpu uses the WebGPU globals
  // Timestamps at full resolution (Dawn rounds them to tens of microseconds by default).
  // And f16 with the subgroup matrices, where the adapter has them (node-gpu.ts).
  const extraToggles = ((options['dawn-toggles'] as string | undefined) ?? '').split(',').filter(Boolean);
  for (const t of extraToggles) if (!/^[a-z0-9_]+$/.test(t)) throw new UsageError(`--dawn-toggles takes Dawn toggle names (lower case, digits, underscores), not "${t}"`);
  const flags: string[] = withEnabledToggles(['disable-dawn-features=timestamp_quantization'], [...MIXED_TOGGLES, ...extraToggles]);
  if (extraToggles.length) console.log(`Dawn toggles enabled beyond the usual: ${extraToggles.join(', ')}`);
  if (options.backend) flags.push(`backend=${options.backend}`);
  if (options.adapter) flags.push(`adapter=${options.adapter}`);
  const instance = create(flags);
  const adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoAdapterError('');
  const info = describeAdapter(adapter);
  console.log(`adapter: ${formatAdapter(info)}`);
  // The software formulations of the convolutions, as createNodeGpu loads them.
  if (info.isSoftware) await import('../src/software/conv.js');
  const gpu = new Gpu(await requestDevice(adapter), info);
  // What sizes the mixed-precision tiles that fit (plan.ts's mmaConstants): in the log and the results.
  const limits = { maxComputeWorkgroupStorageSize: gpu.limits.maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup: gpu.limits.maxComputeInvocationsPerWorkgroup };
  console.log(`device limits: ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory, ${limits.maxComputeInvocationsPerWorkgroup} invocations a workgroup`);
  const precisions = ((options.precision as string | undefined) ?? (canRunMixed(gpu) ? 'fp32,mixed' : 'fp32')).split(',') as Precision[];
  for (const p of precisions) if (p !== 'fp32' && p !== 'mixed') throw new UsageError(`--precision takes fp32 and mixed, not "${p}"`);
  if (precisions.includes('mixed')) setPrecision(gpu, 'mixed'); // refuses an adapter without the features, saying why
  setPrecision(gpu, 'fp32');
  const mmaTiles = mmaTileChoices(options['mma-tiles'] as string | undefined);
  const storages = ((options.storage as string | undefined) ?? 'f16').split(',');
  for (const st of storages) if (st !== 'f16' && st !== 'f32') throw new UsageError(`--storage takes f16 and f32, not "${st}"`);
  const precisionRuns: { precision: Precision; tile: string | null; storage?: string; peakLiveBytes: number; poolBytes: number; profile?: StepProfile; tuning?: TuneReport }[] = [];
  if (options.variant) setConvOverrides(gpu, { formulation: options.variant as ConvOverrides['formulation'] });
  console.log(`convolutions: the ${convFormulation(gpu)} formulation${options.variant ? ' (--variant)' : ''}`);

  // tfjs gets its own device on the same adapter (an adapter makes one device), with the same limits.
  const peerAdapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  if (!peerAdapter || describeAdapter(peerAdapter).description !== info.description) throw new Error('could not open the same adapter a second time for tfjs');
  const peerDevice = await requestDevice(peerAdapter);
  const nav = (globalThis as { navigator?: object }).navigator;
  Object.defineProperty(globalThis, 'navigator', { value: { ...(nav ?? {}), gpu: instance }, configurable: true, writable: true });
  const tf = await import('@tensorflow/tfjs-core');
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  await import('@tensorflow/tfjs-backend-cpu');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(`${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const backend = new WebGPUBackend(peerDevice, peerAdapter.info);
  // tfjs's kernels are registered under the name 'webgpu': replace its factory
  // (which would request a device of its own) with ours.
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => backend, 10);
  const internals = backend as unknown as { commandEncoder: GPUCommandEncoder | null; endComputePassEncoder(): void };
  const peers: Peer[] = peerKeys.map((k) => ({
    key: k,
    name: PEER_NAMES[k]!,
    backend: k,
    // tfjs-webgpu keeps a compute pass open between ops: end it and submit, as
    // its own readback path does, then wait for the GPU. The CPU backends have
    // finished when the call returns.
    finish:
      k === 'webgpu'
        ? async () => {
            if (internals.commandEncoder) {
              internals.endComputePassEncoder();
              backend.submitQueue();
            }
            await peerDevice.queue.onSubmittedWorkDone();
          }
        : async () => {},
  }));

  console.log(
    `timing: wall time to queue.onSubmittedWorkDone (WebGPU engines) or of the call (CPU backends), median of ${reps} after 1 warm-up; ` +
      'kernels: ours and tfjs-webgpu alternated, ratio = median of the per-pair ratios; ' +
      `tfjs ${tf.version_core}, WEBGPU_CPU_FORWARD=false, tfjs-webgpu on the same adapter with the same limits; ` +
      `Dawn's polls paced after ${PACE_AFTER_MS} ms of a wait (a timer tick each, both engines); ` +
      (gpu.hasTimestamps ? 'our GPU time also by timestamp queries (unquantised)' : 'no timestamp queries on this adapter'),
  );
  const samples: Sample[] = [];
  const missing: { op: string; peer: string; kernels: string[] }[] = [];
  const skipped: Skipped[] = [];
  const unfitTiles: { tile: string | null; reason: string }[] = [];
  const budgetMs = (options['peer-budget'] as number) * 1000;
  let memory: { peakLiveBytes: number; poolBytes: number } | undefined;
  let stepProfile: StepProfile | undefined;
  let ceiling = 0;
  let mmaCeiling: MmaCeiling | null = null;
  let yielded = false;
  try {
    const cases: Case[] = [];
    if (suite !== 'step') {
      for (const b of batches) {
        cases.push(...convCases(b, quick ? UNET_CONV_SHAPES.slice(0, 2) : UNET_CONV_SHAPES));
        cases.push(...convTransposeCases(b, quick ? UNET_UP_SHAPES.slice(-1) : UNET_UP_SHAPES));
        cases.push(...memoryBoundCases(b), diceCase(b));
      }
      cases.push(adamCase());
    }
    const chosen = cases.filter((c) => only(`${c.op} ${c.shape}`));
    if (suite !== 'step' && chosen.length === 0) throw new UsageError(`--cases "${options.cases}" matches none of the ${cases.length} kernel cases`);
    // tfjs-wasm and tfjs-cpu compute on this very thread: they are timed
    // first, every case, while the thread has its normal priority; then
    // (after both devices exist, so that both engines' adapter threads keep
    // theirs) the thread yields the CPU to a software adapter's threads for
    // everything timed on the GPU, ceiling included.
    const cpuPeers = peers.filter((p) => p.key !== 'webgpu');
    const cpuSamples: Sample[] = [];
    const cpuResults = new Map<Case, PeerResult[]>();
    if (cpuPeers.length && chosen.length) console.error('CPU peers first (this thread at its normal priority):');
    for (const c of chosen) {
      const results: PeerResult[] = [];
      for (const peer of cpuPeers) {
        const r = await timePeer(c, tf, peer, reps, cpuSamples, missing, { budgetMs, skipped });
        if (r.sample) cpuSamples.push(r.sample);
        results.push(r);
      }
      cpuResults.set(c, results);
      if (cpuPeers.length) console.error(`  ${c.op} ${c.shape}: ${results.map((r) => r.note ?? `${r.sample!.impl} ${r.sample!.median_ms.toFixed(1)} ms`).join(', ')}`);
    }
    yielded = tuneForSoftwareAdapter(gpu);
    if (yielded) console.log(`software adapter: the JavaScript thread runs at a lower priority than the adapter's threads, and Dawn's polls nap ${POLL_NAP_MS} ms between tries, the thread's timer slack at ${POLL_TIMER_SLACK_NS} ns (both engines)`);
    ceiling = await measureCeiling(gpu, reps);
    console.log(`adapter ceiling (pure FMA shader): ${ceiling.toFixed(1)} GFLOP/s`);
    // The mixed-precision step's yardstick, where it is timed.
    if (suite !== 'kernels' && precisions.includes('mixed')) {
      mmaCeiling = await measureMmaCeiling(gpu, reps);
      if (mmaCeiling) console.log(formatMmaCeiling(mmaCeiling));
    }
    const gpuPeers = peers.filter((p) => p.key === 'webgpu');
    for (const c of chosen) await runCase(c, gpu, tf, gpuPeers, reps, samples, missing, { budgetMs, skipped }, cpuResults.get(c) ?? []);
    if (suite !== 'kernels') {
      await tf.setBackend('webgpu');
      const chain = (options['step-chain'] as number | undefined) ?? (info.isSoftware ? 1 : 10);
      const stepOpts = { batch: options['step-batch'] as number, reps, baseWidth: options['step-width'] as number, size: options['step-size'] as number, chain };
      const webgpuPeer = peers.find((p) => p.key === 'webgpu') ?? { key: 'webgpu', name: 'tfjs-webgpu', backend: 'webgpu', finish: async () => {} };
      if (!options['step-ours-only']) {
        const step = await benchTrainingStep(gpu, { tf, finish: webgpuPeer.finish }, stepOpts);
        samples.push(...step.samples);
        memory = { peakLiveBytes: step.peakLiveBytes, poolBytes: step.poolBytes };
        stepProfile = step.profile;
        samples.push(...(await benchInference(gpu, { tf, finish: webgpuPeer.finish }, stepOpts)));
      }
      for (const precision of precisions) {
        for (const storage of precision === 'mixed' ? storages : [undefined]) {
          for (const tile of precision === 'mixed' ? mmaTiles : [null]) {
            setPrecision(gpu, precision);
            try {
              setConvOverrides(gpu, { ...mmaTileOverrides(tile), storage: storage as 'f16' | 'f32' | undefined });
            } catch (e) {
              // A configuration this device's limits do not hold (double-buffered tiles, say): noted, and the others still timed.
              const reason = (e as Error).message;
              console.log(`tile ${tile}: not timed: ${reason}`);
              unfitTiles.push({ tile, reason });
              continue;
            }
            const tag = [tile && `tile ${tile}`, storage === 'f32' && 'f32 activations'].filter(Boolean).join(', ') || undefined;
            const tune = tile === TUNED ? { onProgress: (done: number, total: number, name?: string) => name && console.error(`    tuning: ${name} timed (${done} of ${total})`) } : undefined;
            const ours = await benchOurStep(gpu, precision, { ...stepOpts, chain: Math.max(chain, 1), tag, tune });
            setTunedConvolutions(gpu, null);
            samples.push(...ours.samples);
            precisionRuns.push({ precision, tile, storage, peakLiveBytes: ours.peakLiveBytes, poolBytes: ours.poolBytes, profile: ours.profile, ...(ours.tuning ? { tuning: ours.tuning } : {}) });
          }
        }
      }
      setPrecision(gpu, 'fp32');
      setConvOverrides(gpu, { ...mmaTileOverrides(null), storage: undefined });
    }
  } finally {
    backend.dispose();
    peerDevice.destroy();
    await gpu.close();
    delete (globalThis as { navigator?: unknown }).navigator;
  }

  const report = { adapter: info, limits, ...(extraToggles.length ? { dawnToggles: extraToggles } : {}), ...(precisionRuns.length ? { precisionRuns } : {}), date: new Date().toISOString(), versions: { tfjs: tf.version_core, node: process.version }, timing: `wall time; Dawn's polls paced after ${PACE_AFTER_MS} ms${yielded ? `, napping ${POLL_NAP_MS} ms before that with a timer slack of ${POLL_TIMER_SLACK_NS} ns, the JavaScript thread at a lower priority (software adapter)` : ''}; kernels alternated with tfjs-webgpu, paired_ratio = median of per-pair ratios; see bench/main.ts`, ceilingGflops: ceiling, ...(mmaCeiling ? { mmaCeiling } : {}), memory, missing, skipped, ...(unfitTiles.length ? { unfitTiles } : {}), peerBudgetS: budgetMs / 1000, samples, ...(stepProfile ? { stepProfile } : {}) };
  console.log(printTable(samples, peers.map((p) => p.name), ceiling, skipped));
  for (const m of missing) console.log(`${m.peer} cannot run ${m.op}: it has no ${m.kernels.join(', ')} kernel`);
  if (memory) console.log(`training step, ours: peak live GPU memory ${(memory.peakLiveBytes / 2 ** 20).toFixed(1)} MiB; buffer pool after the step ${(memory.poolBytes / 2 ** 20).toFixed(1)} MiB`);
  if (options.json) writeOut(options.json as string, JSON.stringify(report, null, 2));
  if (options.svg) writeOut(options.svg as string, chartSvg(samples, info.description));
  if (options.markdown) writeOut(options.markdown as string, markdownReport(report, peers.map((p) => p.name)));
}

function writeOut(path: string, text: string): void {
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}

export interface Skipped {
  op: string;
  shape: string;
  peer: string;
  /** Seconds one run would take, scaled from the same case at a smaller batch. */
  estimated_s: number;
  from: string;
}

/** The batch of a case's shape ("32x96x96 32->32" → 32), and the rest of it. */
function splitBatch(shape: string): { batch: number; rest: string } | null {
  const m = /^(\d+)x(.*)$/.exec(shape);
  return m ? { batch: Number(m[1]), rest: m[2]! } : null;
}

/**
 * How long one run of a CPU peer would take on case c, from its median on the
 * same op and shape at the largest smaller batch already measured (time grows
 * with the batch), or null without such a measurement.
 */
function estimateMs(c: Case, peer: string, samples: Sample[]): { ms: number; from: string } | null {
  const here = splitBatch(c.shape);
  if (!here) return null;
  let best: { ms: number; from: string; batch: number } | null = null;
  for (const s of samples) {
    if (s.op !== c.op || s.impl !== peer) continue;
    const there = splitBatch(s.shape);
    if (!there || there.rest !== here.rest || there.batch >= here.batch) continue;
    if (!best || there.batch > best.batch) best = { ms: (s.median_ms * here.batch) / there.batch, from: s.shape, batch: there.batch };
  }
  return best && { ms: best.ms, from: best.from };
}

/** One peer's timing of a case, or why there is none (`note`). */
interface PeerResult {
  sample?: Sample;
  note?: string;
}

/**
 * Times a peer on case c, in alternation with `pairWith` (ours) where given:
 * records a missing kernel or a skip over the budget (estimated from
 * `estimateFrom`) instead where that applies.
 */
async function timePeer(
  c: Case,
  tf: typeof import('@tensorflow/tfjs-core'),
  peer: Peer,
  reps: number,
  estimateFrom: Sample[],
  missing: { op: string; peer: string; kernels: string[] }[],
  budget: { budgetMs: number; skipped: Skipped[] },
  pairWith?: () => Promise<void>,
  gpuTime = false,
): Promise<PeerResult & { ours?: Timing; runs?: number }> {
  await tf.setBackend(peer.backend);
  const absent = c.tfKernels.filter((k) => !tf.getKernel(k, peer.backend));
  if (absent.length) {
    missing.push({ op: c.op, peer: peer.name, kernels: absent });
    return { note: `${peer.name} n/a` };
  }
  const estimate = peer.key === 'webgpu' ? null : estimateMs(c, peer.name, estimateFrom);
  if (estimate && estimate.ms > budget.budgetMs) {
    budget.skipped.push({ op: c.op, shape: c.shape, peer: peer.name, estimated_s: estimate.ms / 1000, from: estimate.from });
    return { note: `${peer.name} skipped (about ${(estimate.ms / 1000).toFixed(0)} s a run, from ${estimate.from})` };
  }
  const theirs = c.theirs(tf);
  // Slow CPU peers at large shapes: one timed run when a run takes over 5 s.
  let first = 0;
  const once = async () => {
    const t0 = performance.now();
    const r = theirs.run();
    await peer.finish();
    tf.dispose(r);
    first = first || performance.now() - t0;
  };
  await once();
  const runs = first > 5000 ? 1 : reps;
  let t: Timing;
  let ours: Timing | undefined;
  let paired: number | undefined;
  if (pairWith) {
    const p = await timePaired(pairWith, once, runs, 0);
    ours = p.a;
    t = p.b;
    paired = p.ratio;
  } else {
    t = await timeIt(once, runs, 0);
  }
  // tfjs-webgpu's own GPU time, by timestamp queries on each of its programs (tf.time), beside ours (gpuTime).
  let theirGpuMs: number | undefined;
  if (gpuTime && peer.key === 'webgpu') {
    let out: ReturnType<typeof theirs.run> | undefined;
    const info = await tf.time(() => {
      out = theirs.run();
    });
    await peer.finish();
    if (out) tf.dispose(out);
    if (typeof info.kernelMs === 'number' && info.kernelMs > 0) theirGpuMs = info.kernelMs;
  }
  theirs.dispose();
  const s = sample(c.op, c.shape, peer.name, c.flops ?? 0, t, runs, c.bytes);
  if (theirGpuMs !== undefined) s.gpu_ms = theirGpuMs;
  if (paired !== undefined) s.paired_ratio = paired;
  return { sample: s, ours, runs };
}

/**
 * Times ours on case c, in alternation with each GPU peer (tfjs-webgpu),
 * and adds the samples, with `cpu` (the CPU peers' results for c, timed
 * earlier), to `samples`.
 */
async function runCase(
  c: Case,
  gpu: Gpu,
  tf: typeof import('@tensorflow/tfjs-core'),
  gpuPeers: Peer[],
  reps: number,
  samples: Sample[],
  missing: { op: string; peer: string; kernels: string[] }[],
  budget: { budgetMs: number; skipped: Skipped[] },
  cpu: PeerResult[],
): Promise<void> {
  const ours = c.ours(gpu);
  const runOurs = async () => {
    ours.run();
    await gpu.sync();
  };
  await runOurs(); // compiles the pipelines
  // Our GPU time: one run with timestamp queries on every pass.
  let gpuMs: number | undefined;
  if (gpu.hasTimestamps) {
    const timer = new GpuTimer(gpu);
    const ms = await timer.time(() => ours.run());
    gpuMs = timer.overflow ? undefined : ms;
    timer.destroy();
  }
  // Wall time: alternated with tfjs-webgpu's runs where it has the kernels
  // (the ratio the targets are about), otherwise on its own.
  let tOurs: Timing | undefined;
  let oursReps = reps; // fewer when paired with a peer slow enough to get one run
  const results: PeerResult[] = [];
  for (const peer of gpuPeers) {
    const r = await timePeer(c, tf, peer, reps, samples, missing, budget, tOurs ? undefined : runOurs, gpuMs !== undefined);
    if (r.ours) {
      tOurs = r.ours;
      oursReps = r.runs!;
    }
    results.push(r);
  }
  tOurs ??= await timeIt(runOurs, reps, 0);
  ours.dispose();
  results.push(...cpu);
  const mine = sample(c.op, c.shape, 'ours', c.flops ?? 0, tOurs, oursReps, c.bytes);
  if (gpuMs !== undefined) mine.gpu_ms = gpuMs;
  samples.push(mine, ...results.flatMap((r) => (r.sample ? [r.sample] : [])));
  const parts = results.map((r) => {
    if (!r.sample) return r.note!;
    const t = r.sample;
    const paired = t.paired_ratio;
    return (
      `${t.impl} ${t.median_ms.toFixed(1)} ms (×${(paired ?? t.median_ms / tOurs!.median).toFixed(2)}${paired !== undefined ? ', paired' : ''})` +
      (t.gpu_ms !== undefined && gpuMs ? `, GPU ${t.gpu_ms.toFixed(3)} ms against our ${gpuMs.toFixed(3)} (×${(t.gpu_ms / gpuMs).toFixed(2)})` : '')
    );
  });
  parts.unshift(`ours ${tOurs.median.toFixed(1)} ms${gpuMs !== undefined ? ` (GPU ${gpuMs.toFixed(1)} ms by timestamps)` : ''}`);
  console.error(`  ${c.op} ${c.shape}: ${parts.join(', ')}`);
}

function printTable(samples: Sample[], peerNames: string[], ceiling: number, skipped: Skipped[]): string {
  const rate = (s: Sample) =>
    s.images_per_s !== undefined
      ? `${s.images_per_s!.toFixed(2)} img/s`
      : s.gbps !== undefined
        ? `${s.gbps.toFixed(2)} GB/s`
        : `${s.gflops.toFixed(2)} GFLOP/s`;
  const ourSamples = samples.filter((s) => s.impl === 'ours');
  const withGpu = ourSamples.some((o) => gpuTimeRatio(samples, o) !== null);
  const header = ['op', 'shape', 'ours ms', 'ours rate', '% ceiling', ...peerNames.flatMap((p) => [`${p} ms`, `× ${p}`]), ...(withGpu ? ['× tfjs-webgpu, GPU time'] : [])];
  const rows = [header];
  for (const o of ourSamples) {
    const row = [o.op, o.shape, o.median_ms.toFixed(1), rate(o), o.gflops > 0 ? `${((100 * o.gflops) / ceiling).toFixed(0)} %` : '-'];
    for (const p of peerNames) {
      const t = samples.find((s) => s.op === o.op && s.shape === o.shape && s.impl.startsWith(p));
      const skip = !t && skipped.some((k) => k.op === o.op && k.shape === o.shape && k.peer.startsWith(p));
      row.push(t ? t.median_ms.toFixed(1) : skip ? 'skipped' : 'n/a', t ? `×${ratioToOurs(t, o).toFixed(2)}` : '-');
    }
    if (withGpu) {
      const r = gpuTimeRatio(samples, o);
      row.push(r === null ? '-' : `×${r.toFixed(2)}`);
    }
    rows.push(row);
  }
  return table(rows);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error && e.name !== 'Error' ? `error: ${e.message}` : e);
  process.exitCode = 1;
});
