/**
 * Process tuning for a software adapter in Node, opt-in
 * (tuneForSoftwareAdapter). A software adapter runs the GPU's work on this
 * machine's cores, and Dawn's Node binding waits for it by polling on the
 * JavaScript thread: each poll schedules the next through the global
 * setImmediate, tens of thousands a second, each leaving garbage. Pacing
 * those polls, napping between them and lowering the thread's priority give
 * the adapter's threads the CPU. On a GPU none of this changes anything, so
 * nothing here runs unless asked.
 */
import { writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Gpu } from '../gpu/gpu.js';

/** A wait's polls go to a timer (about 1 ms each) once the wait has lasted this long (ms). */
export const PACE_AFTER_MS = 20;
/** How long a poll naps before scheduling the next on a software adapter (ms). */
export const POLL_NAP_MS = 0.03;
/** The JavaScript thread's timer slack on a software adapter (ns), which keeps those naps short. */
export const POLL_TIMER_SLACK_NS = 1;

const PACED = Symbol.for('wgsl-unet.pacedSetImmediate');
let paceAfterMs = PACE_AFTER_MS;
let napMs = 0;
const napCell = new Int32Array(new SharedArrayBuffer(4));

/** Makes each poll of a wait after the first (until pacing takes over) sleep `ms` first, or (0) not. */
export function setPollNap(ms: number): void {
  if (!(ms >= 0)) throw new Error(`setPollNap: ms must be a number ≥ 0, not ${String(ms)}`);
  napMs = ms;
}

/** Moves a wait's polls to the timer once it has lasted `ms` (PACE_AFTER_MS unless set; Infinity: never). */
export function setPollPacing(ms: number): void {
  if (!(ms >= 0)) throw new Error(`setPollPacing: ms must be a number ≥ 0 or Infinity, not ${String(ms)}`);
  paceAfterMs = ms;
}

type Schedule = (callback: () => void) => unknown;

/**
 * The setImmediate paceDawnPolling installs, over the given schedulers: a
 * native callback (the binding's poll) goes to `immediate` until the wait it
 * belongs to has lasted `after()` ms by `now`, then to `timer`; JavaScript
 * callbacks always go straight to `immediate`. A poll scheduled while no
 * poll runs starts a wait; one scheduled from inside a poll continues it,
 * and calls `nap` first while it still goes to `immediate`.
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

/** Replaces the global setImmediate with the paced one (once; later calls do nothing). */
export function paceDawnPolling(): void {
  const g = globalThis as unknown as Record<PropertyKey, unknown> & { setImmediate: typeof setImmediate };
  if (g[PACED]) return;
  const nap = () => {
    if (napMs > 0) Atomics.wait(napCell, 0, 0, napMs);
  };
  g.setImmediate = pacedSetImmediate(g.setImmediate, (poll) => setTimeout(poll, 0), () => performance.now(), nap);
  g[PACED] = true;
}

/**
 * On a software adapter under Linux: paces Dawn's polls, makes them nap
 * POLL_NAP_MS with the thread's timer slack at POLL_TIMER_SLACK_NS, and
 * lowers the JavaScript thread's priority so the adapter's threads get the
 * CPU. Threads and processes started afterwards inherit the lower priority,
 * so call it after creating every device and worker the process needs; it
 * cannot be undone without privileges. Returns whether it applied.
 */
export function tuneForSoftwareAdapter(gpu: Gpu): boolean {
  if (!gpu.adapterInfo.isSoftware || process.platform !== 'linux') return false;
  paceDawnPolling();
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
 * Sets the calling thread's timer slack (Linux): how far the kernel may defer
 * its timed wake-ups. Returns whether it was set (false elsewhere or where
 * /proc refuses the write).
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
