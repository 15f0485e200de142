/**
 * Recurring work captured once and replayed (Gpu.capture, Gpu.replay): the
 * first call for a key runs its code and captures the work it records; later
 * calls with that key record the captured work on their own inputs and wrap
 * its outputs in new tensors, without running the code. A training step's
 * forward and backward passes, or an inference batch, cost the host little
 * more than Dawn's own work per dispatch that way.
 *
 * The code must record the same work for the same key: its shapes come from
 * the key and its inputs, and what else it reads (parameters, optimiser
 * state) lives as long as the Replays. When a capture no longer applies (its
 * buffers were trimmed or are in use), the code runs and is captured again;
 * a key that keeps failing is run without capture from then on.
 */
import type { Gpu } from '../gpu/gpu.js';
import type { Program } from '../gpu/program.js';
import { Tensor } from './tensor.js';

/** Captures of one key after which it is run without capture. */
const MAX_CAPTURES = 4;

interface Captured {
  program: Program | null;
  shapes: (readonly number[])[];
  views: Tensor['view'][];
  captures: number;
}

export class Replays {
  private readonly byKey = new Map<string, Captured>();

  constructor(readonly gpu: Gpu) {}

  /**
   * The outputs of `body` on `inputs`: replayed when `key` was captured
   * before, else from running `body` (captured for the next call). `body`
   * returns tensors made inside it that the caller then owns, and must free
   * every other tensor it makes; it must not dispose its inputs.
   */
  run(key: string, inputs: readonly Tensor[], body: () => readonly Tensor[]): Tensor[] {
    if (!this.gpu.replayEnabled) return [...body()];
    const views = inputs.map((t) => t.view);
    let entry = this.byKey.get(key);
    if (entry?.program) {
      const out = this.gpu.replay(entry.program, views);
      if (out) return out.map((pb, i) => new Tensor(this.gpu, entry!.shapes[i]!, entry!.views[i]!, pb));
      this.gpu.disposeProgram(entry.program);
      entry.program = null;
    }
    if (entry && entry.captures >= MAX_CAPTURES) return [...body()];
    const { result, program } = this.gpu.capture(key, views, body, (ts) => ts.map((t) => t.view));
    entry ??= { program: null, shapes: [], views: [], captures: 0 };
    entry.program = program;
    entry.shapes = result.map((t) => [...t.shape]);
    entry.views = result.map((t) => ({ ...t.view }));
    entry.captures++;
    this.byKey.set(key, entry);
    return [...result];
  }

  /** Frees the captured programs. */
  dispose(): void {
    for (const e of this.byKey.values()) if (e.program) this.gpu.disposeProgram(e.program);
    this.byKey.clear();
  }
}
