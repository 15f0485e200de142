/**
 * Tuning the mixed-precision convolutions by measurement, as a framework's
 * "benchmark mode" does: a step of the caller's (a training step, say) is
 * recorded under each candidate configuration of conv_mma.wgsl (tile,
 * result matrices a subgroup, prefetching, split reductions), every GEMM's
 * passes timed by GPU timestamps; each GEMM then keeps the configuration it
 * ran fastest in, as the planner's table (setTunedConvolutions). The
 * planner stays the one place that plans a GEMM: it reads the table first.
 */
import { type Gpu, formatAdapter } from '../../gpu/gpu.js';
import { GpuTimer } from '../../gpu/timer.js';
import { capsOf, convOverrides, precisionOf, setConvOverrides, setGemmMarker, setTunedConvolutions, tunedConvolutions } from './device.js';
import { type ConvCaps, MMA_TILES, type MmaChoice, type MmaTile, fittingMmaTile, mmaConstants } from './plan.js';

const FLAGS = ['prefetch', 'tall', 'wide', 'db', 'perquad', 'splitk', 'directb'] as const;

/**
 * The configuration a name stands for: a tile of MMA_TILES (or `auto`, a
 * tile per GEMM by its shape) with optional flags: `+prefetch` (the next k
 * step fetched while the current multiplies), `+tall` and `+wide` (4 rows,
 * 4 columns of result matrices a subgroup instead of 2), `+db` (two pairs
 * of staged tiles, one multiplied while the other is staged), `+perquad` (each
 * quad decodes its own k) and `+splitk` (forward and ∂input reductions
 * split where C has few tiles).
 */
export function mmaChoice(name: string): Omit<MmaChoice, 'mmaTile'> & { mmaTile: MmaTile | 'auto' } {
  const [base, ...flags] = name.split('+');
  const known = ([...MMA_TILES, 'auto'] as string[]).includes(base!);
  if (!known || flags.some((f, i) => !(FLAGS as readonly string[]).includes(f) || flags.indexOf(f) !== i)) {
    throw new Error(`unknown mixed-precision configuration "${name}": use ${MMA_TILES.join(', ')} or auto, each optionally with ${FLAGS.map((f) => `+${f}`).join(', ')}`);
  }
  return {
    mmaTile: base as MmaTile | 'auto',
    mmaPrefetch: flags.includes('prefetch') || undefined,
    mmaTall: flags.includes('tall') || undefined,
    mmaWide: flags.includes('wide') || undefined,
    mmaDoubleBuffer: flags.includes('db') || undefined,
    mmaStepDecode: flags.includes('perquad') ? false : undefined,
    splitK: flags.includes('splitk') || undefined,
    mmaDirectB: flags.includes('directb') || undefined,
  };
}

/**
 * What the tuner tries besides the planner's own choice: tiles, larger
 * subgroup tiles, prefetching, split reductions, double-buffered tiles,
 * weight gradients' B loaded unstaged. The
 * last two (TUNE_CANDIDATES_48K) need more than 32 KiB of workgroup memory:
 * a device with less lists them as unfit, untimed.
 */
export const TUNE_CANDIDATES_48K: readonly string[] = ['128x64x32+db', '128x128x32+tall+db'];
export const TUNE_CANDIDATES: readonly string[] = [
  '128x64x32', '64x64x32', '64x128x32', '128x32x32', '64x32x32', '32x64x32',
  '128x64x32+tall', '128x64x32+wide', '128x128x32+tall', '128x128x32+tall+wide',
  '128x64x32+prefetch', '64x64x32+prefetch', '128x64x32+splitk', '64x64x32+splitk',
  '128x64x16+db', '128x128x16+tall+db', '64x64x32+db',
  '128x64x32+directb', '64x128x32+directb', '128x32x32+directb',
  ...TUNE_CANDIDATES_48K,
];

export interface TuneOptions {
  /**
   * Configurations to try (names as mmaChoice reads them; `auto` is not
   * one; the planner's own is timed anyway, not twice); default
   * TUNE_CANDIDATES.
   */
  candidates?: readonly string[];
  /** Timed runs of the step per configuration, after one to build its pipelines; each GEMM keeps its fastest. Default 3. */
  reps?: number;
  /** Called before the first configuration (done 0) and after each, with the one just timed. */
  onProgress?: (done: number, total: number, name?: string) => void;
  /** Asked before each configuration: true stops tuning with a TuningStoppedError, nothing given to the planner. */
  shouldStop?: () => boolean;
}

/** Tuning stopped on request (TuneOptions.shouldStop) before it was done; the planner's table is as it was. */
export class TuningStoppedError extends Error {
  constructor(done: number, total: number) {
    super(`tuning stopped after ${done} of ${total} configurations`);
    this.name = 'TuningStoppedError';
  }
}

/** What tuning measured: per GEMM, milliseconds a step in each configuration and the fastest. */
export interface TuneReport {
  /** 'planner' (the planner's own choice) and the candidates timed, in order. */
  configurations: string[];
  /** Candidates left out: they do not fit this device's matrices and limits. */
  unfit: string[];
  /** Candidates whose step failed (a shader this driver does not compile, say), with the error. */
  failed: { name: string; error: string }[];
  gemms: { key: string; label: string; ms: Record<string, number>; best: string }[];
  /** The step's GEMM time (their passes summed) on the planner's choices, and on each GEMM's fastest. */
  plannerMs: number;
  tunedMs: number;
  seconds: number;
}

/**
 * Times `run` (recording one step of work; it is run (2 + reps) × the
 * configurations' count, so it should be one the caller can repeat: a
 * throwaway model's step, or a benchmark's) in the planner's configuration
 * and in each candidate, and gives the planner the table of every GEMM
 * whose fastest configuration is not the planner's. Needs mixed precision
 * and timestamp queries. The device's overrides are as before afterwards,
 * and so is its table where tuning fails or is stopped.
 */
export async function tuneConvolutions(gpu: Gpu, run: () => void | Promise<void>, opts: TuneOptions = {}): Promise<TuneReport> {
  if (precisionOf(gpu) !== 'mixed') throw new Error('tuning the convolutions needs mixed precision: its GEMMs are the ones with configurations to choose from');
  if (!gpu.hasTimestamps) throw new Error(`tuning the convolutions needs timestamp queries, which adapter ${gpu.adapterInfo.description} does not offer`);
  const reps = opts.reps ?? 3;
  if (!(Number.isInteger(reps) && reps >= 1)) throw new Error(`reps must be a whole number ≥ 1, not ${String(reps)}`);
  const started = performance.now();
  const saved = { ...convOverrides(gpu) };
  const caps = capsOf(gpu);
  const names = opts.candidates ?? TUNE_CANDIDATES;
  const choices = new Map<string, MmaChoice>();
  const unfit: string[] = [];
  // The planner's own configuration, which is timed first as 'planner' and not again as a candidate.
  const own = saved.mmaTile === 'auto' ? null : normalForm({ ...saved, mmaTile: saved.mmaTile ?? fittingMmaTile(caps) ?? undefined });
  for (const name of names) {
    const c = mmaChoice(name);
    if (c.mmaTile === 'auto') throw new Error('auto is not a configuration to tune: it picks a tile per GEMM by rule, where tuning picks by measurement');
    if (normalForm(c) === own) continue;
    if (fits(caps, c)) choices.set(name, c as MmaChoice);
    else unfit.push(name);
  }
  // Every key a choice may set, cleared first, so that no candidate inherits another's.
  const cleared = { mmaTile: undefined, mmaPrefetch: undefined, mmaTall: undefined, mmaWide: undefined, mmaDoubleBuffer: undefined, mmaStepDecode: undefined, splitK: undefined, mmaDirectB: undefined };
  const configurations: [string, Partial<MmaChoice> | null][] = [['planner', null], ...choices];
  const times = new Map<string, Map<string, number>>(); // gemm key → configuration → ms
  const labels = new Map<string, string>();
  const marker = { key: null as string | null };
  const timed: string[] = [];
  const failed: TuneReport['failed'] = [];
  const replay = gpu.replayEnabled;
  // The table as it was, restored where tuning does not finish.
  const before = tunedConvolutions(gpu);
  let finished = false;
  setTunedConvolutions(gpu, null);
  // Traced, not replayed: runGemm marks each GEMM's dispatches only while its code runs.
  gpu.replayEnabled = false;
  setGemmMarker(gpu, marker);
  try {
    opts.onProgress?.(0, configurations.length);
    for (const [i, [name, choice]] of configurations.entries()) {
      if (opts.shouldStop?.()) throw new TuningStoppedError(i, configurations.length);
      setConvOverrides(gpu, choice ? { ...cleared, ...choice } : saved);
      let ms: Map<string, number>;
      try {
        ms = await timeGemms(gpu, run, reps, marker, labels);
      } catch (e) {
        // A candidate this driver cannot run is left out; the planner's own choice must run.
        if (!choice) throw e;
        failed.push({ name, error: (e as Error).message });
        opts.onProgress?.(i + 1, configurations.length, name);
        continue;
      }
      for (const [key, t] of ms) {
        if (!times.has(key)) times.set(key, new Map());
        times.get(key)!.set(name, t);
      }
      timed.push(name);
      opts.onProgress?.(i + 1, configurations.length, name);
    }
    finished = true;
  } finally {
    setGemmMarker(gpu, null);
    gpu.replayEnabled = replay;
    setConvOverrides(gpu, { ...cleared, ...saved });
    if (!finished) setTunedConvolutions(gpu, before);
  }
  const { table, gemms, plannerMs, tunedMs } = fastest(times, choices, labels);
  setTunedConvolutions(gpu, table);
  return { configurations: timed, unfit, failed, gemms, plannerMs, tunedMs, seconds: (performance.now() - started) / 1000 };
}

/** Whether a configuration's tile and subgroup tiles fit the device's matrices and limits (auto, a rule, is no configuration). */
function fits(caps: ConvCaps, c: ReturnType<typeof mmaChoice>): boolean {
  return c.mmaTile !== 'auto' && !!(caps.matrix && caps.subgroups && mmaConstants(caps.matrix, caps.subgroups.max, c.mmaTile, caps.limits, c));
}

/** A configuration as a string, flags that are off (undefined or false; mmaStepDecode's default is on) alike. */
function normalForm(c: Partial<MmaChoice>): string {
  return [c.mmaTile, !!c.mmaPrefetch, !!c.mmaTall, !!c.mmaWide, !!c.mmaDoubleBuffer, c.mmaStepDecode !== false, !!c.splitK, !!c.mmaDirectB].join(' ');
}

/**
 * Each GEMM's milliseconds in one configuration: `run` once to build its
 * pipelines, then `reps` times with a timestamp on every pass recorded while
 * the marker names a GEMM (summed per GEMM), the least of the runs.
 */
async function timeGemms(gpu: Gpu, run: () => void | Promise<void>, reps: number, marker: { key: string | null }, labels: Map<string, string>): Promise<Map<string, number>> {
  await run();
  await gpu.sync();
  const best = new Map<string, number>();
  const timer = new GpuTimer(gpu);
  try {
    for (let r = 0; r < reps; r++) {
      const passes = await timer.passesOf(run, (label) => {
        // The op's label, without the plan runGemm adds ("[mma 128×64, GEMM …]").
        if (marker.key !== null && !labels.has(marker.key)) labels.set(marker.key, label.replace(/ \[[^\]]*GEMM [^\]]*\]$/, ''));
        return marker.key;
      });
      if (timer.overflow) throw new Error('the step has more GEMM passes than the timer holds');
      const sums = new Map<string, number>();
      for (const p of passes) sums.set(p.label, (sums.get(p.label) ?? 0) + p.ms);
      for (const [key, ms] of sums) best.set(key, Math.min(best.get(key) ?? Infinity, ms));
    }
  } finally {
    timer.destroy();
  }
  return best;
}

/**
 * Each GEMM's fastest configuration from its times (configuration → ms; a
 * configuration it was not timed in counts as never fastest), ties going to
 * the earlier (the planner's first); the table holds the GEMMs whose fastest
 * is not the planner's.
 */
export function fastest(times: ReadonlyMap<string, ReadonlyMap<string, number>>, choices: ReadonlyMap<string, MmaChoice>, labels: ReadonlyMap<string, string> = new Map()) {
  const table = new Map<string, MmaChoice>();
  const gemms: TuneReport['gemms'] = [];
  let plannerMs = 0;
  let tunedMs = 0;
  for (const [key, byName] of times) {
    let best = 'planner';
    let bestMs = byName.get('planner') ?? Infinity;
    for (const [name, ms] of byName) {
      if (ms < bestMs) {
        best = name;
        bestMs = ms;
      }
    }
    if (best !== 'planner') table.set(key, choices.get(best)!);
    plannerMs += byName.get('planner') ?? 0;
    tunedMs += bestMs;
    gemms.push({ key, label: labels.get(key) ?? key, ms: Object.fromEntries(byName), best });
  }
  return { table, gemms, plannerMs, tunedMs };
}

/** A line for logs: how many GEMMs changed configuration and what the step's GEMMs take before and after, in the passes timed. */
export function describeTuning(r: TuneReport): string {
  const changed = r.gemms.filter((g) => g.best !== 'planner').length;
  const tally = new Map<string, number>();
  for (const g of r.gemms) if (g.best !== 'planner') tally.set(g.best, (tally.get(g.best) ?? 0) + 1);
  const picks = [...tally].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ×${c}`).join(', ');
  const failed = r.failed.length ? `; left out, failing: ${r.failed.map((f) => `${f.name} (${f.error.split('\n')[0]})`).join(', ')}` : '';
  return `tuned ${r.gemms.length} GEMMs over ${r.configurations.length} configurations in ${r.seconds.toFixed(1)} s: ${changed} changed${picks ? ` (${picks})` : ''}; their GPU time a step ${r.plannerMs.toFixed(3)} ms on the planner's choices, ${r.tunedMs.toFixed(3)} ms tuned${failed}`;
}

/** What a tuning file holds (train --tune writes one into its run folder): where and when it was measured, and what. */
export interface TuningRecord {
  format: typeof TUNING_FORMAT;
  /** formatAdapter of the adapter measured on: driver, features and matrix shapes. */
  adapter: string;
  /** What was tuned for, as the caller names it (train: the U-Net's base width, input size and batch); GEMMs of other shapes find no entry. */
  workload?: Record<string, string | number>;
  measuredAt: string;
  report: TuneReport;
}

export const TUNING_FORMAT = 'wgsl-unet-tuning/1';

/** A tuning report as a file records it. */
export function tuningRecord(gpu: Gpu, report: TuneReport, workload?: Record<string, string | number>): TuningRecord {
  return { format: TUNING_FORMAT, adapter: formatAdapter(gpu.adapterInfo), ...(workload ? { workload } : {}), measuredAt: new Date().toISOString(), report };
}

/**
 * Reads a tuning file's text (`source` names it in errors): JSON of
 * TuningRecord's form whose every GEMM names 'planner' or a configuration
 * mmaChoice reads.
 */
export function parseTuning(text: string, source: string): TuningRecord {
  let r: TuningRecord;
  try {
    r = JSON.parse(text) as TuningRecord;
  } catch (e) {
    throw new Error(`${source} is not a tuning record: ${(e as Error).message}`);
  }
  if (r === null || typeof r !== 'object' || r.format !== TUNING_FORMAT) throw new Error(`${source} is not a tuning record: its format is not "${TUNING_FORMAT}"`);
  if (typeof r.adapter !== 'string' || !Array.isArray(r.report?.gemms)) throw new Error(`${source} is not a tuning record: it lacks the adapter or the GEMMs`);
  if (r.workload !== undefined && (r.workload === null || typeof r.workload !== 'object' || Object.values(r.workload).some((v) => typeof v !== 'string' && typeof v !== 'number'))) {
    throw new Error(`${source} is not a tuning record: its workload is not a list of names and values`);
  }
  for (const g of r.report.gemms) {
    if (typeof g?.key !== 'string' || typeof g.best !== 'string') throw new Error(`${source}: a GEMM without a key or a best configuration`);
    if (g.best === 'planner') continue;
    try {
      if (mmaChoice(g.best).mmaTile === 'auto') throw new Error('auto picks by rule, not a configuration');
    } catch (e) {
      throw new Error(`${source}: GEMM "${g.key}": ${(e as Error).message}`);
    }
  }
  return r;
}

/**
 * Gives the planner a recorded tuning's table, as tuneConvolutions does
 * after measuring, where the record was measured on this adapter (the same
 * formatAdapter: driver, features, matrices) and, given a workload, for
 * that one; otherwise it sets nothing and returns why. Needs mixed
 * precision.
 */
export function applyTuning(gpu: Gpu, record: TuningRecord, workload?: Record<string, string | number>): { gemms: number; changed: number } | { mismatch: string } {
  if (precisionOf(gpu) !== 'mixed') throw new Error('a tuning applies to mixed precision: its GEMMs are the ones with configurations to choose from');
  const here = formatAdapter(gpu.adapterInfo);
  if (record.adapter !== here) return { mismatch: `measured on ${record.adapter}, not on this adapter, ${here}` };
  if (workload && describeWorkload(record.workload ?? {}) !== describeWorkload(workload)) {
    return { mismatch: `measured for ${describeWorkload(record.workload ?? {}) || 'a workload it does not name'}, not for ${describeWorkload(workload)}` };
  }
  const caps = capsOf(gpu);
  const table = new Map<string, MmaChoice>();
  for (const g of record.report.gemms) {
    if (g.best === 'planner') continue;
    const c = mmaChoice(g.best);
    if (!fits(caps, c)) throw new Error(`the tuning's configuration ${g.best} does not fit this device's matrices and limits`);
    table.set(g.key, c as MmaChoice);
  }
  setTunedConvolutions(gpu, table);
  return { gemms: record.report.gemms.length, changed: table.size };
}

/** A workload as words, its keys sorted: "baseWidth 32, batch 32, inputSize 96". */
function describeWorkload(w: Record<string, string | number>): string {
  return Object.keys(w).sort().map((k) => `${k} ${w[k]}`).join(', ');
}
