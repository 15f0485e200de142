/**
 * Who owns new tensors, and whether ops record for backward.
 *
 * Tensors made by ops join the innermost open collector (a Tape or a scope),
 * which disposes them when it closes, so GPU memory is returned at a known
 * point and never left to the garbage collector.
 */
export interface Disposable {
  dispose(): void;
}

export interface Collector {
  adopt(t: Disposable): void;
  /** Tapes record ops; plain scopes do not. */
  readonly records: boolean;
}

const collectors: Collector[] = [];
let noGradDepth = 0;

export function pushCollector(c: Collector): void {
  collectors.push(c);
}

export function popCollector(c: Collector): void {
  const top = collectors.pop();
  if (top !== c) throw new Error('autograd: scopes and tapes must close in the order they were opened');
}

export function adopt(t: Disposable): void {
  collectors.at(-1)?.adopt(t);
}

/** The innermost collector if it is a recording tape and gradients are on. */
export function recordingCollector(): Collector | null {
  if (noGradDepth > 0) return null;
  for (let i = collectors.length - 1; i >= 0; i--) if (collectors[i]!.records) return collectors[i]!;
  return null;
}

/** Runs `fn` without recording anything for backward (inference, metrics). */
export function noGrad<T>(fn: () => T): T {
  noGradDepth++;
  try {
    return fn();
  } finally {
    noGradDepth--;
  }
}

export function isGradEnabled(): boolean {
  return noGradDepth === 0;
}

/**
 * Runs `fn` and disposes every tensor created inside it, except `keep` and
 * whatever it returns (a tensor, or an array or object of tensors).
 */
export function scope<T>(fn: () => T, keep: Disposable[] = []): T {
  const made: Disposable[] = [];
  const c: Collector = { adopt: (t) => void made.push(t), records: false };
  pushCollector(c);
  let out: T;
  try {
    out = fn();
  } finally {
    popCollector(c);
  }
  const kept = new Set<unknown>(keep);
  if (out && typeof out === 'object') {
    const values = Array.isArray(out) ? out : Object.values(out as object);
    for (const v of [out, ...values]) kept.add(v);
  }
  for (const t of made) {
    if (kept.has(t)) adopt(t); // hand survivors to the enclosing collector
    else t.dispose();
  }
  return out;
}
