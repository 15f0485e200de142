/** A small, strict command-line parser: --name value, --name=value, --flag. */

export interface OptionSpec {
  type: 'string' | 'number' | 'boolean';
  help: string;
  default?: string | number | boolean;
}

export type Parsed = Record<string, string | number | boolean | undefined>;

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseArgs(argv: readonly string[], spec: Record<string, OptionSpec>): { options: Parsed; positional: string[] } {
  const options: Parsed = {};
  const positional: string[] = [];
  for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) options[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}; known: ${Object.keys(spec).map((k) => `--${k}`).join(' ')}`);
    if (s.type === 'boolean') {
      options[name] = eq < 0 ? true : !/^(false|0|no)$/i.test(arg.slice(eq + 1));
      continue;
    }
    const raw = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    // "--tta --seeds 3": the next word is an option, not the value left out.
    if (eq < 0 && raw.startsWith('--') && spec[raw.slice(2).split('=')[0]!]) throw new UsageError(`--${name} needs a value before ${raw}`);
    if (s.type === 'number') {
      const v = Number(raw);
      if (!Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
      options[name] = v;
    } else options[name] = raw;
  }
  return { options, positional };
}

export function usage(command: string, summary: string, spec: Record<string, OptionSpec>): string {
  const lines = Object.entries(spec).map(([k, s]) => {
    const arg = s.type === 'boolean' ? `--${k}` : `--${k} <${s.type}>`;
    const def = s.default !== undefined && s.type !== 'boolean' ? ` (default ${s.default})` : '';
    return `  ${arg.padEnd(28)} ${s.help}${def}`;
  });
  return `usage: wgsl-unet ${command} [options]\n${summary}\n\n${lines.join('\n')}`;
}

/** Options every GPU command takes. */
export const GPU_OPTIONS: Record<string, OptionSpec> = {
  backend: { type: 'string', help: 'Dawn backend: vulkan, metal, d3d12, opengl, … (default: Dawn picks)' },
  adapter: { type: 'string', help: 'adapter name as Dawn lists it; a wrong name prints the list' },
  'power-preference': { type: 'string', help: 'high-performance or low-power' },
};
