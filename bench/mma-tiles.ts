/**
 * `bench --mma-tiles`: which configurations of the mixed-precision shader
 * the step suite times. A choice is a configuration as mmaChoice
 * (src/ops/conv/tune.ts) names it: a tile of MMA_TILES or `auto`, each with
 * optional flags (`+prefetch`, `+tall`, `+wide`, `+db`, `+perquad`, `+splitk`, `+directb`);
 * `tuned`: each GEMM in the configuration it ran fastest in, measured
 * (tuneConvolutions) before the step is timed; `all` is every tile and
 * auto, with and without prefetching.
 */
import { UsageError } from '../src/cli/args.js';
import { type ConvOverrides, MMA_TILES } from '../src/ops/conv/plan.js';
import { mmaChoice } from '../src/ops/conv/tune.js';

export const TUNED = 'tuned';

/** The choices `spec` names, in order; [null] (the planner's own) without one. */
export function mmaTileChoices(spec: string | undefined): (string | null)[] {
  if (spec === undefined) return [null];
  const choices = spec === 'all' ? [...MMA_TILES, 'auto'].flatMap((t) => [t, `${t}+prefetch`]) : spec.split(',');
  for (const c of choices) mmaTileOverrides(c);
  return choices;
}

/**
 * The convolution overrides a choice stands for; null, `tuned` (whose
 * choices are the tuner's table), or a key the choice leaves alone, is
 * undefined: the planner's.
 */
export function mmaTileOverrides(choice: string | null): Pick<ConvOverrides, 'mmaTile' | 'mmaPrefetch' | 'mmaTall' | 'mmaWide' | 'mmaDoubleBuffer' | 'mmaStepDecode' | 'splitK' | 'mmaDirectB'> {
  if (choice === null || choice === TUNED) return { mmaTile: undefined, mmaPrefetch: undefined, mmaTall: undefined, mmaWide: undefined, mmaDoubleBuffer: undefined, mmaStepDecode: undefined, splitK: undefined, mmaDirectB: undefined };
  try {
    return mmaChoice(choice);
  } catch (e) {
    throw new UsageError(`${(e as Error).message}, or ${TUNED}, or all`);
  }
}
