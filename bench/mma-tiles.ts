/**
 * `bench --mma-tiles`: which configurations of the mixed-precision shader
 * the step suite times. A choice is a tile of MMA_TILES or `auto`, each with
 * optional flags: `+prefetch` (the shader's PREFETCH), `+tall` (4 rows
 * of result matrices a subgroup instead of 2), `+wide` (4 columns of them
 * instead of 2; `+tall+wide`: 4 × 4), `+perquad` (each quad decodes its own k:
 * STEP_TAP and STEP_PIXEL off) and `+splitk` (forward and ∂input
 * reductions split where C has few tiles); `all` is every tile and auto,
 * with and without prefetching.
 */
import { UsageError } from '../src/cli/args.js';
import { type ConvOverrides, MMA_TILES, type MmaTile } from '../src/ops/conv/plan.js';

const FLAGS = ['prefetch', 'tall', 'wide', 'perquad', 'splitk'] as const;

/** The choices `spec` names, in order; [null] (the planner's own) without one. */
export function mmaTileChoices(spec: string | undefined): (string | null)[] {
  if (spec === undefined) return [null];
  const choices = spec === 'all' ? [...MMA_TILES, 'auto'].flatMap((t) => [t, `${t}+prefetch`]) : spec.split(',');
  for (const c of choices) mmaTileOverrides(c);
  return choices;
}

/** The convolution overrides a choice stands for; null, or a key the choice leaves alone, is undefined: the planner's. */
export function mmaTileOverrides(choice: string | null): Pick<ConvOverrides, 'mmaTile' | 'mmaPrefetch' | 'mmaTall' | 'mmaWide' | 'mmaStepDecode' | 'splitK'> {
  if (choice === null) return { mmaTile: undefined, mmaPrefetch: undefined, mmaTall: undefined, mmaWide: undefined, mmaStepDecode: undefined, splitK: undefined };
  const [base, ...flags] = choice.split('+');
  const known = ([...MMA_TILES, 'auto'] as string[]).includes(base!);
  if (!known || flags.some((f, i) => !(FLAGS as readonly string[]).includes(f) || flags.indexOf(f) !== i)) {
    throw new UsageError(`unknown mixed-precision tile "${choice}": use ${MMA_TILES.join(', ')} or auto, each optionally with ${FLAGS.map((f) => `+${f}`).join(', ')}, or all`);
  }
  return {
    mmaTile: base as MmaTile | 'auto',
    mmaPrefetch: flags.includes('prefetch') || undefined,
    mmaTall: flags.includes('tall') || undefined,
    mmaWide: flags.includes('wide') || undefined,
    mmaStepDecode: flags.includes('perquad') ? false : undefined,
    splitK: flags.includes('splitk') || undefined,
  };
}
