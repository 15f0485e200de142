/**
 * The tape: ops run inside `tape.run()` are recorded in execution order,
 * which is a topological order of the graph. `backward()` walks it once in
 * reverse; a tensor used by several ops (a U-Net skip) receives the sum of
 * their gradients through accumulating writes, and no subgraph is visited
 * twice.
 */
import type { Gpu } from '../gpu/gpu.js';
import { fill } from '../ops/elementwise/kernel.js';
import { ShapeError, shapeStr } from '../gpu/errors.js';
import { type Collector, type Disposable, popCollector, pushCollector, recordingCollector } from './context.js';
import { Tensor, type GradSink, type TapeNode } from './tensor.js';

export class Tape implements Collector {
  readonly records = true;
  private readonly nodes: TapeNode[] = [];
  private readonly owned = new Set<Disposable>();
  private closed = false;

  constructor(readonly gpu: Gpu) {}

  adopt(t: Disposable): void {
    this.owned.add(t);
  }

  /** Runs the forward pass, recording ops; tensors made inside belong to the tape. */
  run<T>(fn: () => T): T {
    if (this.closed) throw new Error('Tape.run: the tape was disposed');
    pushCollector(this);
    try {
      return fn();
    } finally {
      popCollector(this);
    }
  }

  record(node: TapeNode): void {
    this.nodes.push(node);
    node.output.creator = node;
  }

  get length(): number {
    return this.nodes.length;
  }

  /**
   * Computes ∂loss/∂t for every tensor that requires grad and was made outside
   * the tape (parameters, inputs: the leaves); `loss` must have one element
   * unless `seed` (∂L/∂loss) is given.
   *
   * Memory is returned as the walk goes: the gradient of a recorded tensor is
   * complete once every op that used it has run its backward, and is dead
   * once its own op has, so it goes back to the pool there (its `grad` is
   * null afterwards). With `releaseActivations` the recorded tensor itself
   * goes too (except `loss`), for callers that read nothing the forward pass
   * made but the loss — a training step.
   */
  backward(loss: Tensor, seed?: Tensor, opts: { releaseActivations?: boolean } = {}): void {
    if (!loss.requiresGrad) throw new Error('backward: the loss does not depend on any tensor that requires grad');
    if (!seed && loss.size !== 1) throw new ShapeError('backward', `loss must be a single value, got shape ${shapeStr(loss.shape)}; pass a seed gradient otherwise`);
    pushCollector(this);
    try {
      // Temporaries of the op being processed, released after its backward.
      const temps: Tensor[] = [];
      // The gradient handed to the op being processed.
      let handed: Tensor | null = null;
      // Tensors whose gradient, as written so far, is ∂L/∂z of their activation already.
      const applied = new Set<Tensor>();
      const recorded = new Set<TapeNode>(this.nodes);
      // How many times each tensor is an input of a recorded op.
      const uses = new Map<Tensor, number>();
      for (const n of this.nodes) for (const t of n.inputs) uses.set(t, (uses.get(t) ?? 0) + 1);
      const sink: GradSink = {
        target: (t) => {
          applied.delete(t);
          if (t.grad) return { grad: t.grad, accumulate: true };
          // A gradient is stored as its tensor is (f16 activations get f16 gradients).
          t.grad = Tensor.empty(this.gpu, t.shape, false, t.dtype);
          return { grad: t.grad, accumulate: false };
        },
        consumable: (t) => t === handed && this.owned.has(t),
        foldableActivation: (t) => {
          const act = t.creator?.activation;
          if (!act || !recorded.has(t.creator!)) return null;
          return act === 'relu' || uses.get(t) === 1 ? act : null;
        },
        markActivationApplied: (t) => applied.add(t),
        activationApplied: (t) => applied.has(t),
        temp: (shape, dtype) => {
          const t = Tensor.empty(this.gpu, shape, false, dtype);
          temps.push(t);
          return t;
        },
      };
      const start = sink.target(loss);
      if (seed) {
        if (seed.size !== loss.size) throw new ShapeError('backward', `seed ${shapeStr(seed.shape)} does not match loss ${shapeStr(loss.shape)}`);
        this.gpu.copy(seed.view, start.grad.view, loss.size * 4);
      } else {
        fill(this.gpu, loss, start.grad, { alpha: 0, beta: 1 }); // ∂L/∂L = 1, recorded with the rest
      }
      for (let i = this.nodes.length - 1; i >= 0; i--) {
        const node = this.nodes[i]!;
        const out = node.output;
        const g = out.grad;
        if (!g) continue; // does not lead to the loss
        handed = g;
        node.backward(g, sink);
        handed = null;
        // Released after this op's backward is recorded: the pool hands the
        // buffers only to work recorded later on the same queue.
        for (const t of temps.splice(0)) this.release(t);
        if (this.owned.has(g)) {
          out.grad = null;
          this.release(g);
        }
        if (opts.releaseActivations && out !== loss && this.owned.has(out)) this.release(out);
      }
    } finally {
      popCollector(this);
    }
  }

  /** Hands `t`, made on this tape, to the caller: dispose() no longer frees it. */
  detach(t: Tensor): Tensor {
    if (!this.owned.delete(t)) throw new Error('Tape.detach: the tensor does not belong to this tape');
    return t;
  }

  private release(t: Tensor): void {
    this.owned.delete(t);
    t.dispose();
  }

  /** Frees every tensor the tape made (activations, saved values, gradients of non-parameters). */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const n of this.nodes) {
      n.output.creator = null;
      for (const t of n.inputs) if (t.grad && !t.grad.isDisposed && this.owned.has(t.grad)) t.grad = null;
    }
    for (const t of this.owned) t.dispose();
    this.nodes.length = 0;
    this.owned.clear();
  }
}

/** The tape ops should record on, or null (no tape, or inside noGrad). */
export function activeTape(inputs: readonly Tensor[]): Tape | null {
  if (!inputs.some((t) => t.requiresGrad)) return null;
  const c = recordingCollector();
  return c instanceof Tape ? c : null;
}
