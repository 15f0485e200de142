/**
 * WGSL put together from parts: enable directives first (WGSL wants them
 * before any declaration), then the integer constants a planner chose, then
 * the parts in order. A constant set here is declared nowhere else, so the
 * TypeScript that sizes grids and the shader read the same number.
 */
export function composeShader(parts: readonly string[], opts: { enables?: readonly string[]; defines?: Readonly<Record<string, number>> } = {}): string {
  const enables = (opts.enables ?? []).map((e) => `enable ${e};`);
  const defines = Object.entries(opts.defines ?? {}).map(([name, value]) => {
    if (!Number.isInteger(value) || value < 0) throw new Error(`shader constant ${name} must be an integer ≥ 0, not ${value}`);
    return `const ${name}: u32 = ${value}u;`;
  });
  return [...enables, ...defines, ...parts].join('\n');
}
