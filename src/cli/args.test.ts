import { describe, expect, it } from 'vitest';
import { type OptionSpec, parseArgs } from './args.js';

const SPEC: Record<string, OptionSpec> = {
  data: { type: 'string', help: '', default: 'data' },
  seeds: { type: 'number', help: '', default: 1 },
  tta: { type: 'string', help: '' },
  compare: { type: 'boolean', help: '' },
};

describe('parseArgs', () => {
  it('fills defaults, reads values after the option or after =, and keeps positional words apart', () => {
    const { options, positional } = parseArgs(['--tta', 'shift', 'extra', '--seeds=3', '--compare', '--data', '-odd'], SPEC);
    expect(options).toEqual({ data: '-odd', seeds: 3, tta: 'shift', compare: true });
    expect(positional).toEqual(['extra']);
    expect(parseArgs(['--compare=no'], SPEC).options.compare).toBe(false);
  });

  it('names what is wrong: an unknown option, a missing value, a value that is the next option, a number that is not one', () => {
    expect(() => parseArgs(['--fold'], SPEC)).toThrow(/unknown option --fold; known: --data --seeds --tta --compare/);
    expect(() => parseArgs(['--tta'], SPEC)).toThrow('--tta needs a value');
    expect(() => parseArgs(['--tta', '--seeds', '3'], SPEC)).toThrow('--tta needs a value before --seeds');
    expect(() => parseArgs(['--seeds', 'three'], SPEC)).toThrow('--seeds must be a number, got "three"');
  });
});
