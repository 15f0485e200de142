/**
 * Getting a Gpu in Node: Dawn through the npm package `webgpu`.
 * The only Node-specific part of the engine besides file access in src/cli.
 */
import { writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { Gpu, describeAdapter, requestDevice } from './gpu.js';

export interface NodeGpuOptions {
  /** Dawn backend: vulkan, metal, d3d12, d3d11, opengl, opengles, null. */
  backend?: string;
  /** Adapter name as Dawn lists it (an unknown name makes Dawn list them). */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Extra Dawn toggles, e.g. `disable-dawn-features=timestamp_quantization`. */
  dawnOptions?: string[];
}

/**
 * Dawn's toggles that expose f16 and the subgroup matrices: NVIDIA's Vulkan
 * driver has f16 hidden unless vulkan_enable_f16_on_nvidia is on, and the
 * subgroup matrices are an experimental feature (allow_unsafe_apis). Dawn
 * takes one enable-dawn-features option, so these join any the caller gives.
 */
export const MIXED_TOGGLES = ['vulkan_enable_f16_on_nvidia', 'allow_unsafe_apis'];

/** `flags` with `toggles` added to its enable-dawn-features option (made when absent). */
export function withEnabledToggles(flags: readonly string[], toggles: readonly string[]): string[] {
  const key = 'enable-dawn-features=';
  const at = flags.findIndex((f) => f.startsWith(key));
  if (at < 0) return [...flags, key + toggles.join(',')];
  const have = flags[at]!.slice(key.length).split(',').filter(Boolean);
  const merged = [...have, ...toggles.filter((t) => !have.includes(t))];
  return flags.map((f, i) => (i === at ? key + merged.join(',') : f));
}

export const NO_ADAPTER_HELP = [
  'No WebGPU adapter was found.',
  'Install a GPU driver with Vulkan support, or the software Vulkan driver (Mesa lavapipe):',
  '  Debian 12:  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
  '              apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1',
  '  (Mesa 23 or later is needed: Debian 12\'s own Mesa 22.3 is too old for Dawn.)',
  '  Ubuntu 24.04 and later: apt-get install mesa-vulkan-drivers libvulkan1',
].join('\n');

export class NoAdapterError extends Error {
  constructor(detail: string) {
    super(detail ? `${NO_ADAPTER_HELP}\nDawn said: ${detail}` : NO_ADAPTER_HELP);
    this.name = 'NoAdapterError';
  }
}

/** The requested backend or adapter does not exist; the message lists what does. */
export class AdapterSelectionError extends Error {
  override name = 'AdapterSelectionError';
}

/**
 * Dawn's Node binding waits for the GPU (onSubmittedWorkDone, mapAsync) by
 * polling: each poll schedules the next through the global setImmediate, so a
 * wait runs tens of thousands of polls a second, and each leaves some garbage.
 * On lavapipe a 160 ms convolution (32 × 96 × 96, 32 → 32) took about
 * 6,400 polls a run, and runs back to back left 10–20 MB of garbage each: a
 * scavenge every run and a mark-compact every other, whose pauses and helper
 * threads take the CPU from the adapter's threads and can hold up noticing
 * that the work is done.
 *
 * paceDawnPolling replaces the global setImmediate (once; later calls do
 * nothing) with one that sends a native callback (the binding's polls; a
 * JavaScript callback always goes straight through) to a timer instead —
 * about 1 ms — once a wait has lasted PACE_AFTER_MS: shorter waits are
 * noticed as soon as before, longer ones at most about a millisecond late
 * (under 5 %). On lavapipe, runs of that convolution alternated with and
 * without it in one process (16 each, about 100 ms a run): 720 polls a run
 * instead of 3,500, median 99.7 ms against 101.2, slowest 115.6 against
 * 171.5; in the benchmark of that convolution and its ∂input against every
 * peer (`--batches 32`), 16 collections while the GPU engines were timed
 * instead of 45, 2 of them mark-compacts instead of 9. On an H100 the
 * pacing costs nothing measurable, so it holds for every adapter: the U-Net's
 * training step at batch 32, 12 rounds of 10 steps alternating paced and
 * never paced (setPollPacing(Infinity)) in one process, took 20.38 ms
 * against 20.42 waiting for each step, 19.66 against 19.58 back to back.
 *
 * On a software adapter the polls of a wait's first PACE_AFTER_MS also nap
 * (POLL_NAP_MS, set by yieldCpuToSoftwareAdapter): the JavaScript thread
 * sleeps before scheduling the next, so it stops spinning beside the
 * adapter's threads. Interleaved per run on lavapipe (30 runs each, 0.1 ms
 * naps against none): a 96 × 96, 32 → 32 forward at batch 1 took 3.73 ms median
 * (p75 4.17) against 4.53 (p75 6.28); the 6 × 6, 512 → 512 ∂input 5.00
 * (p75 5.30) against 4.84 (p75 8.43); the 12 × 12 ∂input 4.19 against 3.99;
 * at batch 8 the 96 × 96 forward 23.5 against 33.9. Polling by timer from
 * the start instead took 4.44, 5.95 and 23.0 (a timer tick is about 1 ms). A lowered thread that naps wakes when
 * the scheduler gives it the CPU, so a short wait can end a little later;
 * the slow runs of spinning are gone.
 *
 * A nap lasts longer than asked: the kernel may defer the wake-up by the
 * thread's timer slack (50 µs by default) and waking takes its own time (on
 * a 2-core VM any sleep took about 95 µs more than asked: 0.1 ms naps took
 * 195 µs, so a wait was noticed about 0.2–0.4 ms after lavapipe's pass
 * ended). yieldCpuToSoftwareAdapter therefore sets the JavaScript thread's
 * timer slack to POLL_TIMER_SLACK_NS, 1 ns (setTimerSlack), and POLL_NAP_MS
 * is 0.03: naps of about 75 µs. Interleaved per run on lavapipe (60 runs
 * each), against 0.1 ms naps with the default slack: batch-1 6 × 6 transposed forward 1.55 ms median
 * against 1.69, 12 × 12 transposed forward 1.40 against 1.59, the 96 × 96
 * forward 3.92 against 4.00, the 6 × 6 forward and ∂input alike (4.67 /
 * 4.65, 5.34 / 5.37); at batch 8 (16 runs each) alike (96 × 96 forward,
 * 48 × 48 and 6 × 6 ∂input, 12 × 12 and 48 × 48 transposed forward within
 * 1 %). Naps of 0.01 ms were no faster on the short kernels and slower on
 * the 96 × 96 forward (4.47 against 4.26 ms, 40 runs each).
 */
export const PACE_AFTER_MS = 20;
/** How long a poll naps on a software adapter before scheduling the next (ms). */
export const POLL_NAP_MS = 0.03;
/** The JavaScript thread's timer slack on a software adapter (ns), which keeps those naps short. */
export const POLL_TIMER_SLACK_NS = 1;
const PACED = Symbol.for('wgsl-unet.pacedSetImmediate');
let paceAfterMs = PACE_AFTER_MS;
let napMs = 0;
const napCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Makes each poll of a wait after the first (until the pacing takes over) sleep `ms`
 * before scheduling the next, or (0) not; yieldCpuToSoftwareAdapter sets
 * POLL_NAP_MS.
 */
export function setPollNap(ms: number): void {
  if (!(ms >= 0)) throw new Error(`setPollNap: ms must be a number ≥ 0, not ${String(ms)}`);
  napMs = ms;
}

/**
 * Moves a wait's polls to the timer once it has lasted `ms` (PACE_AFTER_MS
 * unless set; Infinity: never).
 */
export function setPollPacing(ms: number): void {
  if (!(ms >= 0)) throw new Error(`setPollPacing: ms must be a number ≥ 0 or Infinity, not ${String(ms)}`);
  paceAfterMs = ms;
}

type Schedule = (callback: () => void) => unknown;

/**
 * The setImmediate paceDawnPolling installs, over the given schedulers: a
 * native callback goes to `immediate` until the wait it belongs to has lasted
 * `after()` ms by `now` (PACE_AFTER_MS unless setPollPacing says otherwise),
 * then to `timer`; anything else goes straight to
 * `immediate`. A poll scheduled while no poll runs starts a wait; one
 * scheduled from inside a poll (the binding's next) continues it, and calls
 * `nap` first while it still goes to `immediate`.
 */
export function pacedSetImmediate(immediate: typeof setImmediate, timer: Schedule, now: () => number = () => performance.now(), nap: () => void = () => {}, after: () => number = () => paceAfterMs): typeof setImmediate {
  let waitStart = 0;
  let inPoll = false;
  const paced = ((callback: (...args: unknown[]) => void, ...args: unknown[]) => {
    if (typeof callback !== 'function' || !Function.prototype.toString.call(callback).includes('[native code]')) return immediate(callback, ...args);
    const t = now();
    if (!inPoll) waitStart = t;
    const poll = () => {
      inPoll = true;
      try {
        callback(...args);
      } finally {
        inPoll = false;
      }
    };
    if (t - waitStart >= after()) return timer(poll);
    if (inPoll) nap();
    return immediate(poll);
  }) as typeof setImmediate;
  return Object.assign(paced, immediate); // util.promisify's custom form, where present
}

export function paceDawnPolling(): void {
  const g = globalThis as unknown as Record<PropertyKey, unknown> & { setImmediate: typeof setImmediate };
  if (g[PACED]) return;
  const nap = () => {
    if (napMs > 0) Atomics.wait(napCell, 0, 0, napMs);
  };
  g.setImmediate = pacedSetImmediate(g.setImmediate, (poll) => setTimeout(poll, 0), () => performance.now(), nap);
  g[PACED] = true;
}

export async function createNodeGpu(opts: NodeGpuOptions = {}): Promise<Gpu> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp'; // Mesa warns without it
  paceDawnPolling();
  const { create } = await import('webgpu');
  const flags = withEnabledToggles(opts.dawnOptions ?? [], MIXED_TOGGLES);
  if (opts.backend) flags.push(`backend=${opts.backend}`);
  if (opts.adapter) flags.push(`adapter=${opts.adapter}`);
  // Holding `instance` keeps Dawn (and so the event loop) alive: it is
  // dropped in onDestroy so the process can end by itself.
  let instance: GPU | null = create(flags);
  let adapter: GPUAdapter | null;
  try {
    adapter = await instance.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : {});
  } catch (e) {
    instance = null;
    const msg = e instanceof Error ? e.message : String(e);
    if (/unrecognised backend|Available adapters/i.test(msg)) {
      const what = [opts.backend && `backend "${opts.backend}"`, opts.adapter && `adapter "${opts.adapter}"`].filter(Boolean).join(' and ');
      throw new AdapterSelectionError(`cannot use ${what || 'the default adapter'}: ${msg}`);
    }
    throw new NoAdapterError(msg);
  }
  if (!adapter) {
    instance = null;
    throw new NoAdapterError('');
  }
  const device = await requestDevice(adapter);
  return new Gpu(device, describeAdapter(adapter), () => {
    instance = null;
  });
}

/**
 * On a software adapter (lavapipe), lowers the priority of the calling thread
 * so that the adapter's own threads get the CPU. There the GPU's work runs on
 * this machine's cores, and while any GPU operation is pending Dawn's Node
 * binding polls for it on the JavaScript thread without sleeping: on two
 * cores the poll took about 70 % of one from the shader threads (five
 * convolutions: 0.54 s of the JavaScript thread's CPU time in 0.69–0.85 s),
 * and with the thread lowered the same work ran 1.3–1.45× faster. Recording
 * still gets the CPU whenever the adapter is idle. It also makes the
 * binding's polls nap between tries (setPollNap(POLL_NAP_MS), where
 * paceDawnPolling is installed, with the thread's timer slack at
 * POLL_TIMER_SLACK_NS: see
 * there).
 *
 * Linux only, where priorities are per thread: the adapter's threads keep
 * theirs, but threads and processes started afterwards by this one (a device
 * made later, a worker, a child process) inherit the lower one, so call this
 * after creating every device the process will compare and after any work
 * handed to workers (the CLI's train calls it after its data step). It
 * cannot be undone without privileges. Returns whether it lowered it.
 */
export function yieldCpuToSoftwareAdapter(gpu: Gpu): boolean {
  if (!gpu.adapterInfo.isSoftware || process.platform !== 'linux') return false;
  setPollNap(POLL_NAP_MS);
  setTimerSlack(POLL_TIMER_SLACK_NS);
  try {
    setPriority(0, 19);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sets the timer slack of the process's main thread (Linux; the JavaScript
 * thread when called from it): how far the kernel may defer that thread's
 * timed wake-ups to group them. Returns whether it was set (false elsewhere
 * or where /proc refuses the write).
 */
export function setTimerSlack(ns: number): boolean {
  if (!Number.isInteger(ns) || ns < 1) throw new Error(`setTimerSlack: ns must be an integer ≥ 1, not ${String(ns)}`);
  if (process.platform !== 'linux') return false;
  try {
    writeFileSync('/proc/self/timerslack_ns', String(ns));
    return true;
  } catch {
    return false;
  }
}
