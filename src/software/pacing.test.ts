import { setImmediate as nodeSetImmediate } from 'node:timers';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { PACE_AFTER_MS, paceDawnPolling, pacedSetImmediate, setPollNap, setPollPacing, setTimerSlack } from './platform.js';
import { testGpu } from '../../test/helpers/gpu.js';

/** A paced setImmediate over recording schedulers and a clock the test sets. */
function harness() {
  const clock = { t: 0 };
  const naps: number[] = [];
  const queued: { via: 'immediate' | 'timer'; run: () => void }[] = [];
  const immediate = ((cb: (...a: unknown[]) => void, ...args: unknown[]) => {
    queued.push({ via: 'immediate', run: () => cb(...args) });
    return undefined;
  }) as unknown as typeof setImmediate;
  const paced = pacedSetImmediate(immediate, (poll) => queued.push({ via: 'timer', run: poll }), () => clock.t, () => naps.push(clock.t));
  /** Runs the oldest queued callback; returns how it was scheduled. */
  const step = () => {
    const q = queued.shift()!;
    q.run();
    return q.via;
  };
  return { clock, queued, paced, step, naps };
}

describe("pacing Dawn's polls", () => {
  it('sends JavaScript callbacks straight through, with their arguments', () => {
    const { paced, queued, step, clock, naps } = harness();
    const seen: unknown[] = [];
    clock.t = 1000;
    paced((a: unknown, b: unknown) => seen.push(a, b), 1, 'x');
    expect(queued.map((q) => q.via)).toEqual(['immediate']);
    step();
    expect(seen).toEqual([1, 'x']);
    paced(() => paced(() => {}));
    step();
    expect(naps).toEqual([]); // JavaScript callbacks never nap
  });

  it('moves a wait of native polls to the timer once it has lasted PACE_AFTER_MS, and starts each wait afresh', () => {
    const { paced, queued, step, clock, naps } = harness();
    let polls = 0;
    // A bound function prints as native code, like the binding's callbacks;
    // each poll schedules the next from inside itself, as the binding does.
    const poll = function (this: null, stopAt: number) {
      polls++;
      if (polls < stopAt) paced(poll, stopAt);
    }.bind(null);
    clock.t = 5;
    paced(poll, 6);
    const via: string[] = [];
    for (const t of [5, 10, 5 + PACE_AFTER_MS - 1, 5 + PACE_AFTER_MS, 40, 41]) {
      clock.t = t;
      via.push(step());
    }
    // The first was scheduled at 5 and the others by the poll before them,
    // at 5, 10, 24: immediate; at 25 and 40: timer. The sixth poll schedules none.
    expect(via).toEqual(['immediate', 'immediate', 'immediate', 'immediate', 'timer', 'timer']);
    expect(queued).toHaveLength(0);
    // The polls scheduled from inside a poll napped first, while they went to
    // `immediate` (at 5, 10, 24); the first of the wait and the timer's did not.
    expect(naps).toEqual([5, 10, 5 + PACE_AFTER_MS - 1]);
    // A poll scheduled from outside any poll starts a new wait, however soon.
    clock.t = 42;
    polls = 0;
    paced(poll, 2);
    expect(step()).toBe('immediate');
    clock.t = 43;
    expect(step()).toBe('immediate');
    expect(naps).toHaveLength(4);
  });

  it('moves polls to the timer after the threshold setPollPacing gives (never for Infinity)', () => {
    const run = (after: number) => {
      const { paced, step, clock } = harness();
      setPollPacing(after);
      try {
        let left = 4;
        const poll = function () {
          if (--left > 0) paced(poll);
        }.bind(null);
        paced(poll);
        const via: string[] = [];
        for (const t of [0, 4, 5, 1000]) {
          clock.t = t;
          via.push(step());
        }
        return via;
      } finally {
        setPollPacing(PACE_AFTER_MS);
      }
    };
    // Scheduled at 0, 0, 4, 5: the third and fourth have waited 4 and 5 ms.
    expect(run(5)).toEqual(['immediate', 'immediate', 'immediate', 'timer']);
    expect(run(4)).toEqual(['immediate', 'immediate', 'timer', 'timer']);
    expect(run(Infinity)).toEqual(['immediate', 'immediate', 'immediate', 'immediate']);
    expect(() => setPollPacing(-1)).toThrow('setPollPacing: ms must be a number ≥ 0 or Infinity, not -1');
    expect(() => setPollPacing(NaN)).toThrow('not NaN');
  });

  it('ends a poll that throws (the next poll from outside starts a new wait)', () => {
    const { paced, queued, step, clock } = harness();
    const boom = function () {
      throw new Error('boom');
    }.bind(null);
    paced(boom);
    clock.t = 100;
    expect(() => step()).toThrow('boom');
    clock.t = 200;
    paced(boom);
    expect(queued[0]!.via).toBe('immediate');
    // Had the throw left the wait open, this one would have gone to the timer.
  });

  it('is installed once, and a device still answers through it', async () => {
    const gpu = await testGpu(); // the test helper installs it
    const installed = globalThis.setImmediate;
    paceDawnPolling();
    expect(globalThis.setImmediate).toBe(installed);
    expect(installed).not.toBe(nodeSetImmediate);
    await gpu.sync();
    const v = await new Promise<string>((resolve) => setImmediate(resolve, 'through'));
    expect(v).toBe('through');
    setPollNap(0.1); // what tuneForSoftwareAdapter sets: the device still answers
    try {
      await gpu.sync();
    } finally {
      setPollNap(0);
    }
    expect(() => setPollNap(-1)).toThrow('setPollNap: ms must be a number ≥ 0, not -1');
  });

  it.runIf(process.platform === 'linux')('sets the main thread\'s timer slack (what tuneForSoftwareAdapter does for the naps)', () => {
    const path = '/proc/self/timerslack_ns';
    const before = readFileSync(path, 'utf8').trim();
    try {
      expect(setTimerSlack(1)).toBe(true);
      expect(readFileSync(path, 'utf8').trim()).toBe('1');
      expect(setTimerSlack(20000)).toBe(true);
      expect(readFileSync(path, 'utf8').trim()).toBe('20000');
    } finally {
      setTimerSlack(Number(before));
    }
    expect(() => setTimerSlack(0)).toThrow('setTimerSlack: ns must be an integer ≥ 1, not 0');
    expect(() => setTimerSlack(0.5)).toThrow('not 0.5');
  });
});
