/**
 * The GPU runtime every kernel shares: one device, a pipeline cache keyed by
 * shader and constants, a buffer pool, uploads and readbacks, uniform blocks
 * kept by content and bind groups kept by their bindings (so a repeated
 * training step creates almost none), and a command encoder that collects
 * dispatches (consecutive ones in one compute pass) and is submitted every
 * few dispatches and before any readback.
 *
 * Nothing here knows about tensors or gradients; the ops' declared kernels
 * (kernel.ts) call `kernel()` for a pipeline and `dispatch()` to record work.
 */
import { BufferPool, type PooledBuffer, type PoolStats } from './buffer-pool.js';
import { GpuError } from './errors.js';
import { type CapturedCommand, type Program, type ProgramCommand, type ProgramRange, rangeOf, resolve } from './program.js';

// Numeric WebGPU flags, so the runtime does not depend on browser globals in Node.
export const BufferUsage = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  QUERY_RESOLVE: 0x0200,
} as const;
const MAP_MODE_READ = 0x0001;

/** A byte range of a GPU buffer: what a kernel binds. */
export interface BufferView {
  readonly buffer: GPUBuffer;
  /** Byte offset; a multiple of the device's minStorageBufferOffsetAlignment (256). */
  readonly offset: number;
  /** Byte length. */
  readonly size: number;
}

export interface AdapterDescription {
  description: string;
  vendor: string;
  architecture: string;
  device: string;
  /** A CPU implementation (lavapipe / llvmpipe, SwiftShader, WARP). */
  isSoftware: boolean;
  features: string[];
  /** Smallest subgroup the adapter may run (0 where it does not say). */
  subgroupMinSize: number;
  /** Largest subgroup the adapter may run (0 where it does not say). */
  subgroupMaxSize: number;
  /**
   * The subgroup-matrix shapes with f16 operands and f32 results the adapter
   * offers (chromium-experimental-subgroup-matrix): the tensor cores on NVIDIA.
   */
  matrixConfigs: MatrixConfig[];
}

/** One subgroup-matrix product shape: an M × K left matrix times a K × N right matrix. */
export interface MatrixConfig {
  M: number;
  N: number;
  K: number;
}

export interface Kernel {
  /** Shader, entry point and constants, for labels and messages. */
  readonly name: string;
  /** Unique per pipeline (the cache's key). */
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

export interface Dispatch {
  kernel: Kernel;
  /** What runs on what: kernel name and shapes. Appears in GPU error messages. */
  label: string;
  /** Uniform block for @binding(0); omit for kernels without uniforms. */
  uniforms?: ArrayBufferView;
  /** Storage buffers for @binding(1), @binding(2), … in order. */
  storage: readonly BufferView[];
  workgroups: readonly [number, number?, number?];
}

/**
 * When recorded dispatches are submitted on their own. After the host has
 * waited for the GPU (sync), the first FIRST_FLUSH go at once, so that the
 * GPU starts on the first layers while later ones are recorded; each later
 * submission waits for twice as many as the one before, up to MAX_FLUSH.
 * Each submission is a queue submit with its fence and bookkeeping in the
 * driver, so a replayed step, recorded faster than the GPU runs it, is
 * submitted a few times rather than once every FIRST_FLUSH dispatches.
 */
const FIRST_FLUSH = 16;
const MAX_FLUSH = 256;

/** Timing hooks, set by the benchmark: called for every dispatch recorded. */
export interface DispatchObserver {
  timestampWrites(label: string): GPUComputePassTimestampWrites | undefined;
}

const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment on every adapter we know
const UNIFORM_CHUNK_SLOTS = 256;
/** Uniform chunks kept at most (4 × 256 slots × 256 bytes = 256 KiB). */
const MAX_UNIFORM_CHUNKS = 4;
/**
 * Bind groups kept for reuse. A training step binds the same kernels to the
 * same pooled buffers and uniform slots every time, and creating a bind group
 * costs tens of microseconds on the host (Dawn validates it) — about 60 % of
 * recording a dispatch — so steps after the first find theirs here. Cleared
 * when it fills and whenever pooled buffers are destroyed.
 */
const MAX_BIND_GROUPS = 8192;

export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = adapter.info;
  const text = `${info.description} ${info.vendor} ${info.architecture} ${info.device}`;
  const isFallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return {
    description: info.description || info.device || '(no description)',
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    isSoftware: isFallback || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader|warp/i.test(text),
    features: [...adapter.features].sort(),
    subgroupMinSize: (info as GPUAdapterInfo & { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    subgroupMaxSize: (info as GPUAdapterInfo & { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
    matrixConfigs: adapter.features.has('chromium-experimental-subgroup-matrix' as GPUFeatureName) ? f16MatrixConfigs(info) : [],
  };
}

interface RawMatrixConfig {
  M: number;
  N: number;
  K: number;
  componentType: string;
  resultComponentType: string;
}

/** The f16 → f32 configs, largest first; the objects are read field by field (they do not serialise). */
function f16MatrixConfigs(info: GPUAdapterInfo): MatrixConfig[] {
  const raw = [...((info as GPUAdapterInfo & { subgroupMatrixConfigs?: Iterable<RawMatrixConfig> }).subgroupMatrixConfigs ?? [])];
  return raw
    .filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32')
    .map((c) => ({ M: c.M, N: c.N, K: c.K }))
    .sort((a, b) => b.M * b.N * b.K - a.M * a.N * a.K);
}

/** Features a device is asked for where the adapter has them. */
const WANTED_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16', 'chromium-experimental-subgroup-matrix'] as const;

export function formatAdapter(a: AdapterDescription): string {
  const f16 = a.features.includes('shader-f16') ? ', f16' : '';
  const mma = a.matrixConfigs?.length ? `, subgroup matrices ${a.matrixConfigs.map((c) => `${c.M}×${c.N}×${c.K}`).join(' ')}` : '';
  return `${a.description} (vendor ${a.vendor || '?'}, architecture ${a.architecture || '?'}${a.isSoftware ? ', software' : ''}${f16}${mma})`;
}

/** Limits worth asking for: Dawn's defaults are far below what adapters offer. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Asks the adapter for a device with its full limits and the features the engine can use. */
export async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  return adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'wgsl-unet' });
}

export class Gpu {
  readonly adapterInfo: AdapterDescription;
  readonly limits: GPUSupportedLimits;
  readonly hasTimestamps: boolean;
  /** The device runs shaders that `enable subgroups`. */
  readonly hasSubgroups: boolean;
  /**
   * The subgroup-matrix shape mixed-precision kernels use (f16 operands, f32
   * results), or null where the device lacks shader-f16, subgroup matrices
   * or a subgroup size fixed at one value (the kernels size workgroups in
   * whole subgroups).
   */
  readonly matrix: MatrixConfig | null;
  private readonly storagePool: BufferPool;
  private readonly readPool: BufferPool;
  /** Shader modules by source, each with a number that names it in the pipeline cache. */
  private readonly shaderModules = new Map<string, { module: GPUShaderModule; id: number }>();
  private readonly kernels = new Map<string, Kernel>();

  private encoder: GPUCommandEncoder | null = null;
  /** The compute pass consecutive dispatches share, open until a copy, a clear or the submit. */
  private pass: GPUComputePassEncoder | null = null;
  private recorded: string[] = [];
  /** The labels of the last batch submitted: what a device lost while working was most likely running. */
  private lastSubmitted: string[] = [];
  /**
   * When encode() submits: `first` dispatches after a sync, then twice as
   * many each time, up to `max`. { first: 16, max: 16 } submits every 16, as
   * the benchmark compares.
   */
  submitSchedule: { readonly first: number; readonly max: number } = { first: FIRST_FLUSH, max: MAX_FLUSH };
  /** Dispatches the encoder takes before encode() submits it. */
  private flushAfter = FIRST_FLUSH;
  /** Uniform blocks by content (see uniformRange), in chunks of UNIFORM_CHUNK_SLOTS slots. */
  private uniformChunks: GPUBuffer[] = [];
  private readonly uniformSlots = new Map<string, BufferView>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;
  /** Bumped by invalidatePrograms: programs captured before do not replay. */
  private generation = 0;
  /** What Gpu.capture is collecting, while it runs. */
  private capturing: { commands: CapturedCommand[]; acquired: PooledBuffer[]; seen: Set<PooledBuffer>; startBytes: number; peakDelta: number } | null = null;
  private failure: GpuError | null = null;
  private readonly pendingChecks = new Set<Promise<void>>();
  private destroyed = false;
  /** Dispatches recorded since creation; the benchmark and tests read it. */
  dispatchCount = 0;
  observer: DispatchObserver | null = null;
  /**
   * Whether recurring work (training steps, forward passes) is captured once
   * and replayed (src/autograd/replay.ts); off, every call records its work
   * from scratch. Tests and the benchmark compare the two.
   */
  replayEnabled = true;

  constructor(
    readonly device: GPUDevice,
    adapter: AdapterDescription,
    private readonly onDestroy: () => void = () => {},
  ) {
    this.adapterInfo = adapter;
    this.limits = device.limits;
    this.hasTimestamps = device.features.has('timestamp-query');
    this.hasSubgroups = device.features.has('subgroups');
    const fixedSubgroup = adapter.subgroupMinSize > 0 && adapter.subgroupMinSize === adapter.subgroupMaxSize;
    const mixed = this.hasSubgroups && fixedSubgroup && device.features.has('shader-f16') && device.features.has('chromium-experimental-subgroup-matrix' as GPUFeatureName);
    this.matrix = mixed ? (adapter.matrixConfigs ?? [])[0] ?? null : null;
    const makeBuffer = (label: string) => (size: number, usage: number) =>
      this.guarded(`allocating ${size} bytes (${label})`, () => device.createBuffer({ size, usage, label }));
    this.storagePool = new BufferPool(
      makeBuffer('storage'),
      BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
    );
    this.readPool = new BufferPool(makeBuffer('readback'), BufferUsage.MAP_READ | BufferUsage.COPY_DST);
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.fail(new GpuError(`GPU error outside any recorded work: ${err.message}`, errorKind(err)));
    });
    void device.lost.then((info) => {
      if (this.destroyed) return;
      const work = this.recorded.length ? this.recorded : this.lastSubmitted;
      const hit = work.length ? `; the work in flight: ${work.slice(0, 3).join('; ')}${work.length > 3 ? ` and ${work.length - 3} more` : ''}` : '';
      this.fail(new GpuError(`GPU device lost (${info.reason}): ${info.message}${hit}`, 'device-lost', [...work]));
    });
  }

  // ---- pipelines -------------------------------------------------------

  /**
   * A compute pipeline for `source` (entry point `main` unless given),
   * specialised with `override` constants. Modules are cached by source and
   * pipelines by module, entry point and constants; `name` labels them.
   */
  kernel(name: string, source: string, constants: Record<string, number> = {}, entryPoint = 'main'): Kernel {
    let module = this.shaderModules.get(source);
    if (!module) {
      const m = this.guarded(`compiling shader ${name}`, () => this.device.createShaderModule({ code: source, label: name }));
      module = { module: m, id: this.shaderModules.size };
      this.shaderModules.set(source, module);
      this.track(
        m.getCompilationInfo().then((info) => {
          const errors = info.messages.filter((msg) => msg.type === 'error');
          if (errors.length) {
            const text = errors.map((e) => `  ${name}.wgsl:${e.lineNum}:${e.linePos}: ${e.message}`).join('\n');
            this.fail(new GpuError(`WGSL compilation failed for shader ${name}:\n${text}`, 'validation', [name]));
          }
        }),
      );
    }
    const keys = Object.keys(constants).sort();
    const key = `${module.id}|${entryPoint}|${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    const hit = this.kernels.get(key);
    if (hit) return hit;
    const label = `${name}|${entryPoint}|${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    const pipeline = this.guarded(`creating pipeline ${label}`, () =>
      this.device.createComputePipeline({
        label,
        layout: 'auto',
        compute: { module: module.module, entryPoint, constants },
      }),
    );
    const kernel: Kernel = { name: label, key, pipeline, layout: pipeline.getBindGroupLayout(0) };
    this.kernels.set(key, kernel);
    return kernel;
  }

  // ---- memory ----------------------------------------------------------

  /** A pooled storage buffer of at least `bytes` bytes; give it back with `release`. */
  acquire(bytes: number): PooledBuffer {
    this.throwIfFailed();
    if (bytes > this.limits.maxStorageBufferBindingSize) {
      throw new GpuError(
        `cannot allocate ${bytes} bytes: the adapter binds at most ${this.limits.maxStorageBufferBindingSize} bytes per storage buffer`,
        'out-of-memory',
      );
    }
    const pb = this.storagePool.acquire(bytes);
    const c = this.capturing;
    if (c) {
      if (!c.seen.has(pb)) {
        c.seen.add(pb);
        c.acquired.push(pb);
      }
      c.peakDelta = Math.max(c.peakDelta, this.storagePool.liveBytes - c.startBytes);
    }
    return pb;
  }

  release(pb: PooledBuffer): void {
    this.storagePool.release(pb);
  }

  /** The pooled storage buffer behind a GPU buffer, if the pool made it. */
  findPooled(buffer: GPUBuffer): PooledBuffer | undefined {
    return this.storagePool.find(buffer);
  }

  memory(): PoolStats {
    return this.storagePool.snapshot();
  }

  resetPeakMemory(): void {
    this.storagePool.resetPeak();
  }

  /**
   * Marks the start of a step that repeats the one before, such as a training
   * step (ParameterStore.zeroGrads calls it): its requests for storage buffers
   * get, in order, the buffers the previous step's got (BufferPool.beginStep),
   * so a loop of identical steps creates buffers in its first step only.
   */
  beginStep(): void {
    this.storagePool.beginStep();
  }

  /** Destroys pooled buffers nobody holds. */
  trimPool(): void {
    this.refuseWhileCapturing('trimPool');
    this.submit();
    // Cached bind groups may name the buffers about to be destroyed.
    this.bindGroups.clear();
    this.storagePool.trim();
    this.readPool.trim();
  }

  /** Copies host data into a buffer range (ordered after everything recorded so far). */
  upload(dst: BufferView, data: ArrayBufferView, dstByteOffset = 0): void {
    if (data.byteLength + dstByteOffset > dst.size) {
      throw new Error(`upload: ${data.byteLength} bytes do not fit a ${dst.size}-byte buffer at offset ${dstByteOffset}`);
    }
    this.refuseWhileCapturing('upload');
    // queue.writeBuffer runs before any command still sitting in the encoder,
    // so submit those first: they may read a buffer this write reuses.
    this.submit();
    this.device.queue.writeBuffer(dst.buffer, dst.offset + dstByteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Records a zero fill of a buffer range. */
  clear(dst: BufferView): void {
    this.capturing?.commands.push({ kind: 'clear', view: dst });
    this.recorder().clearBuffer(dst.buffer, dst.offset, dst.size);
  }

  /** Records a copy between buffer ranges. */
  copy(src: BufferView, dst: BufferView, bytes = Math.min(src.size, dst.size)): void {
    this.capturing?.commands.push({ kind: 'copy', src, dst, bytes });
    this.recorder().copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, bytes);
  }

  /** Reads a buffer range back to the host; submits what was recorded first. */
  async read(src: BufferView, bytes = src.size): Promise<ArrayBuffer> {
    this.throwIfFailed();
    this.refuseWhileCapturing('read');
    const staging = this.readPool.acquire(bytes);
    try {
      this.recorder().copyBufferToBuffer(src.buffer, src.offset, staging.buffer, 0, Math.ceil(bytes / 4) * 4);
      this.submit();
      await staging.buffer.mapAsync(MAP_MODE_READ, 0, Math.ceil(bytes / 4) * 4);
      const out = staging.buffer.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
      staging.buffer.unmap();
      await this.settle();
      return out;
    } catch (e) {
      await this.settle();
      throw e;
    } finally {
      this.readPool.release(staging);
    }
  }

  async readFloat32(src: BufferView, count = src.size / 4): Promise<Float32Array> {
    return new Float32Array(await this.read(src, count * 4));
  }

  // ---- recording and submission -----------------------------------------

  /** Records one compute dispatch into the open command encoder. */
  dispatch(d: Dispatch): void {
    this.throwIfFailed();
    const [x, y = 1, z = 1] = d.workgroups;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new GpuError(`${d.label}: ${x}×${y}×${z} workgroups exceed the adapter's ${maxGroups} per dimension`, 'validation', [d.label]);
    }
    if (x === 0 || y === 0 || z === 0) return; // nothing to do for empty tensors
    this.capturing?.commands.push({ kind: 'dispatch', kernel: d.kernel, label: d.label, uniforms: d.uniforms && copyBytes(d.uniforms), storage: d.storage, workgroups: [x, y, z] });
    // The encoder, and with it the error scopes, exist before the uniform
    // block is placed and the bind group made, so an error in either is
    // reported with this batch's dispatches. Placing the block may submit
    // the batch (when every slot is taken): then a new encoder is opened.
    this.openEncoder();
    const uniforms = d.uniforms && this.uniformRange(d.uniforms);
    this.openEncoder();
    this.encode(d.kernel.pipeline, this.bindGroup(d.kernel, uniforms, d.storage, d.label), x, y, z, d.label);
  }

  /** Records a dispatch whose bind group is made; submits once `flushAfter` dispatches are recorded. */
  private encode(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number, label: string): void {
    const enc = this.openEncoder();
    // Consecutive dispatches share one compute pass (WebGPU orders their
    // storage accesses within it); a timed dispatch gets a pass of its own,
    // since timestamps are written per pass.
    const timestampWrites = this.observer?.timestampWrites(label);
    let pass: GPUComputePassEncoder;
    if (timestampWrites) {
      this.endPass();
      pass = enc.beginComputePass({ label, timestampWrites });
    } else {
      this.pass ??= enc.beginComputePass({ label: 'wgsl-unet dispatches' });
      pass = this.pass;
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (timestampWrites) pass.end();
    this.recorded.push(label);
    this.dispatchCount++;
    // Hand the GPU what is recorded so far, so that it computes while the
    // rest of a step is still being recorded (FIRST_FLUSH, MAX_FLUSH).
    if (this.recorded.length >= this.flushAfter) {
      this.submit();
      this.flushAfter = Math.min(2 * this.flushAfter, this.submitSchedule.max);
    }
  }

  /** The open command encoder (for copies and clears between dispatches), with no compute pass open. */
  recorder(): GPUCommandEncoder {
    this.endPass();
    return this.openEncoder();
  }

  /** The open command encoder, made (inside a validation and an out-of-memory error scope) if there is none. */
  private openEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder({ label: 'wgsl-unet batch' });
    }
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Submits everything recorded since the last submit, as one command buffer. */
  submit(): void {
    if (!this.encoder) return;
    const enc = this.recorder();
    const labels = this.recorded;
    this.encoder = null;
    this.recorded = [];
    this.lastSubmitted = labels;
    this.device.queue.submit([enc.finish()]);
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope();
    this.track(
      Promise.all([oom, validation]).then(([o, v]) => {
        const err = o ?? v;
        if (err) this.fail(new GpuError(describeFailure(err, labels), errorKind(err), labels));
      }),
    );
  }

  // ---- capture and replay (program.ts) ----------------------------------

  /**
   * Runs `fn`, recording its work as usual, and returns its result with a
   * Program that `replay` records again without running `fn`. `inputs` are
   * the ranges a replay may swap for others of the same sizes; `outputsOf`
   * names the ranges of the result the caller keeps: pooled buffers `fn`
   * acquired and still holds. Every other buffer `fn` acquires must be
   * released by the time it returns. Uploads and readbacks are refused
   * inside `fn`: they are host work a replay would not repeat.
   */
  capture<T>(name: string, inputs: readonly BufferView[], fn: () => T, outputsOf: (result: T) => readonly BufferView[]): { result: T; program: Program } {
    this.throwIfFailed();
    this.refuseWhileCapturing('capture');
    const c = { commands: [] as CapturedCommand[], acquired: [] as PooledBuffer[], seen: new Set<PooledBuffer>(), startBytes: this.storagePool.liveBytes, peakDelta: 0 };
    this.capturing = c;
    let result: T;
    try {
      result = fn();
    } finally {
      this.capturing = null;
    }
    const outputs = outputsOf(result).map((v, i) => {
      const pb = this.storagePool.find(v.buffer);
      if (!pb || !c.seen.has(pb) || !pb.live) throw new Error(`Gpu.capture(${name}): output ${i} is not a buffer acquired inside the capture and still held`);
      return pb;
    });
    const held = c.acquired.filter((pb) => pb.live && !outputs.includes(pb));
    if (held.length) throw new Error(`Gpu.capture(${name}): ${held.length} buffer(s) acquired inside the capture are still held but are not outputs`);
    return { result, program: this.buildProgram(name, c, inputs, outputs) };
  }

  private buildProgram(name: string, c: { commands: CapturedCommand[]; acquired: PooledBuffer[]; seen: Set<PooledBuffer>; peakDelta: number }, inputs: readonly BufferView[], outputs: PooledBuffer[]): Program {
    const blocks = c.commands.filter((cmd) => cmd.kind === 'dispatch' && cmd.uniforms).length;
    const uniformBuffer = blocks
      ? this.guarded(`allocating the uniforms of ${name}`, () =>
          this.device.createBuffer({ size: blocks * UNIFORM_SLOT, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST, label: `uniforms of ${name}` }),
        )
      : null;
    const external = new Set<PooledBuffer>();
    const range = (view: BufferView, what: string): ProgramRange => {
      const r = rangeOf(view, inputs, what);
      const pb = r.input === null ? this.storagePool.find(view.buffer) : undefined;
      if (pb && !c.seen.has(pb)) external.add(pb);
      return r;
    };
    let slot = 0;
    const commands = c.commands.map((cmd): ProgramCommand => {
      if (cmd.kind === 'clear') return { kind: 'clear', range: range(cmd.view, 'a clear') };
      if (cmd.kind === 'copy') return { kind: 'copy', src: range(cmd.src, 'a copy'), dst: range(cmd.dst, 'a copy'), bytes: cmd.bytes };
      const ranges: ProgramRange[] = [];
      if (cmd.uniforms) {
        const block = new Uint8Array(Math.ceil(cmd.uniforms.byteLength / 16) * 16);
        block.set(cmd.uniforms);
        const view = { buffer: uniformBuffer!, offset: slot++ * UNIFORM_SLOT, size: block.byteLength };
        this.device.queue.writeBuffer(view.buffer, view.offset, block);
        ranges.push({ view, input: null, delta: 0 });
      }
      for (const v of cmd.storage) ranges.push(range(v, cmd.label));
      const uniform = cmd.uniforms !== undefined;
      return {
        kind: 'dispatch',
        kernel: cmd.kernel,
        label: cmd.label,
        workgroups: cmd.workgroups,
        ranges,
        uniform,
        bindGroup: this.makeBindGroup(cmd.kernel, ranges.map((r) => r.view), uniform, cmd.label),
        readsInputs: ranges.some((r) => r.input !== null),
      };
    });
    return {
      name,
      commands,
      dispatches: commands.filter((cmd) => cmd.kind === 'dispatch').length,
      inputs: inputs.map((v) => ({ ...v })),
      claimed: [...c.acquired],
      outputs,
      external: [...external],
      peakDelta: c.peakDelta,
      uniformBuffer,
      variants: new Map(),
      generation: this.generation,
      disposed: false,
    };
  }

  /**
   * Records `program`'s work again on `inputs` (ranges of the captured
   * inputs' sizes) and returns its outputs' pooled buffers, now the
   * caller's. Returns null, recording nothing, when the program no longer
   * applies: a buffer it acquired is in use or was destroyed, or one it
   * names has been released. Capture again then.
   */
  replay(program: Program, inputs: readonly BufferView[]): PooledBuffer[] | null {
    this.throwIfFailed();
    this.refuseWhileCapturing('replay');
    if (program.disposed || program.generation !== this.generation) return null;
    if (inputs.length !== program.inputs.length || inputs.some((v, i) => v.size !== program.inputs[i]!.size)) {
      throw new Error(`Gpu.replay(${program.name}): inputs of ${inputs.map((v) => v.size).join(', ')} bytes given for inputs of ${program.inputs.map((v) => v.size).join(', ')}`);
    }
    if (program.external.some((pb) => !pb.live)) return null;
    if (!this.storagePool.claim(program.claimed, program.peakDelta)) return null;
    const groups = inputs.every((v, i) => sameView(v, program.inputs[i]!)) ? null : this.inputBindGroups(program, inputs);
    let d = 0;
    for (const cmd of program.commands) {
      if (cmd.kind === 'dispatch') {
        const [x, y, z] = cmd.workgroups;
        this.encode(cmd.kernel.pipeline, groups?.[d] ?? cmd.bindGroup, x, y, z, cmd.label);
        d++;
      } else if (cmd.kind === 'clear') {
        const v = resolve(cmd.range, inputs);
        this.recorder().clearBuffer(v.buffer, v.offset, v.size);
      } else {
        const src = resolve(cmd.src, inputs);
        const dst = resolve(cmd.dst, inputs);
        this.recorder().copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, cmd.bytes);
      }
    }
    // Released once their work is recorded: later work on the queue may reuse them.
    for (const pb of program.claimed) if (!program.outputs.includes(pb)) this.storagePool.release(pb);
    return [...program.outputs];
  }

  /**
   * Makes every program captured so far refuse to replay: called when a
   * setting changes what the same code would record (the convolutions'
   * precision or their forced formulations).
   */
  invalidatePrograms(): void {
    this.generation++;
  }

  /** Frees what a program holds of its own (its uniform blocks); a disposed program does not replay. */
  disposeProgram(program: Program): void {
    if (program.disposed) return;
    program.disposed = true;
    // Work recorded from it may still sit in the encoder: submitted first, it keeps its buffers.
    this.submit();
    program.uniformBuffer?.destroy();
    program.variants.clear();
  }

  /** The bind groups of a program's dispatches that read its inputs, for inputs other than the captured ones. */
  private inputBindGroups(program: Program, inputs: readonly BufferView[]): GPUBindGroup[] {
    const key = inputs.map((v) => `${this.bufferId(v.buffer)}:${v.offset}`).join('|');
    let groups = program.variants.get(key);
    if (!groups) {
      groups = [];
      for (const cmd of program.commands) {
        if (cmd.kind !== 'dispatch') continue;
        groups.push(cmd.readsInputs ? this.makeBindGroup(cmd.kernel, cmd.ranges.map((r) => resolve(r, inputs)), cmd.uniform, cmd.label) : cmd.bindGroup);
      }
      // A trainer alternates between a few input buffers; anything beyond is dropped.
      if (program.variants.size >= 8) program.variants.clear();
      program.variants.set(key, groups);
    }
    return groups;
  }

  private refuseWhileCapturing(what: string): void {
    if (this.capturing) throw new Error(`Gpu.${what} inside Gpu.capture: captured work cannot include host work or another capture`);
  }

  /** Submits, waits for the GPU to finish, and throws any GPU error raised meanwhile. */
  async sync(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    // The GPU is idle now: the next work goes to it after few dispatches.
    this.flushAfter = this.submitSchedule.first;
    await this.settle();
  }

  /**
   * Waits for submitted work, then destroys the device. Prefer this at the
   * end of a program: destroying a device that Dawn is still setting up can
   * crash the process on exit.
   */
  async close(): Promise<void> {
    if (this.destroyed) return;
    try {
      this.submit();
      await this.device.queue.onSubmittedWorkDone();
    } catch {
      // closing anyway
    }
    this.destroy();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pass = null;
    this.encoder = null;
    this.device.destroy();
    this.onDestroy();
  }

  // ---- internals --------------------------------------------------------

  /** A dispatch's bind group: uniforms at @binding(0), storage from @binding(1); reused where one with the same bindings exists. */
  private bindGroup(kernel: Kernel, uniforms: BufferView | undefined, storage: readonly BufferView[], label: string): GPUBindGroup {
    const ranges = uniforms ? [uniforms, ...storage] : storage;
    let key = kernel.key;
    for (const r of ranges) key += `|${this.bufferId(r.buffer)}:${r.offset}:${r.size}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      group = this.makeBindGroup(kernel, ranges, uniforms !== undefined, label);
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      this.bindGroups.set(key, group);
    }
    return group;
  }

  /** A bind group of `ranges` from @binding(0) when the first is a uniform block, else from @binding(1). */
  private makeBindGroup(kernel: Kernel, ranges: readonly BufferView[], uniform: boolean, label: string): GPUBindGroup {
    const first = uniform ? 0 : 1;
    const entries = ranges.map((r, i) => ({ binding: first + i, resource: { buffer: r.buffer, offset: r.offset, size: r.size } }));
    return this.device.createBindGroup({ layout: kernel.layout, entries, label });
  }

  /** A number that stands for a buffer in bind-group keys (buffers are objects, keys strings). */
  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) this.bufferIds.set(buffer, (id = this.nextBufferId++));
    return id;
  }

  /**
   * Where a uniform block lives. Blocks are kept by content and written once:
   * a training step passes the same shapes every time, so its dispatches find
   * their blocks (and then their bind groups) from the second step on, and
   * only blocks that change (Adam's step size) take new slots. Each block is
   * written with queue.writeBuffer when first seen, which the queue orders
   * before the submission that reads it. When every slot is taken, what is
   * recorded is submitted first (it may read the old contents, and queue
   * order puts those reads before the new writes), then slots are reused.
   */
  private uniformRange(data: ArrayBufferView): BufferView {
    if (data.byteLength > UNIFORM_SLOT) throw new Error(`uniform block of ${data.byteLength} bytes exceeds ${UNIFORM_SLOT}`);
    const size = Math.ceil(data.byteLength / 16) * 16;
    const block = new Uint8Array(size);
    block.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const key = new Uint32Array(block.buffer).join(',');
    let range = this.uniformSlots.get(key);
    if (range) return range;
    if (this.uniformSlots.size === MAX_UNIFORM_CHUNKS * UNIFORM_CHUNK_SLOTS) {
      if (this.encoder) this.submit();
      // Bind groups name slots, not their contents: those cached stay valid.
      this.uniformSlots.clear();
    }
    const slot = this.uniformSlots.size;
    const chunk = Math.floor(slot / UNIFORM_CHUNK_SLOTS);
    if (chunk === this.uniformChunks.length) {
      this.uniformChunks.push(
        this.device.createBuffer({
          size: UNIFORM_SLOT * UNIFORM_CHUNK_SLOTS,
          usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
          label: `uniforms ${chunk}`,
        }),
      );
    }
    range = { buffer: this.uniformChunks[chunk]!, offset: (slot % UNIFORM_CHUNK_SLOTS) * UNIFORM_SLOT, size };
    this.device.queue.writeBuffer(range.buffer, range.offset, block);
    this.uniformSlots.set(key, range);
    return range;
  }

  /** Runs a device call inside its own error scopes and reports failures with `what`. */
  private guarded<T>(what: string, f: () => T): T {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    const out = f();
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope();
    this.track(
      Promise.all([oom, validation]).then(([o, v]) => {
        const err = o ?? v;
        if (err) this.fail(new GpuError(`${what}: ${err.message}`, errorKind(err), [what]));
      }),
    );
    return out;
  }

  private track(p: Promise<void>): void {
    const q = p.catch((e: unknown) => this.fail(new GpuError(String(e), 'internal'))).finally(() => this.pendingChecks.delete(q));
    this.pendingChecks.add(q);
  }

  private fail(e: GpuError): void {
    if (!this.failure) this.failure = e;
  }

  private async settle(): Promise<void> {
    while (this.pendingChecks.size) await Promise.all([...this.pendingChecks]);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.destroyed) throw new GpuError('the GPU device was destroyed', 'device-lost');
    if (this.failure) throw this.failure;
  }
}

function sameView(a: BufferView, b: BufferView): boolean {
  return a.buffer === b.buffer && a.offset === b.offset && a.size === b.size;
}

/** A copy of a view's bytes (a captured uniform block must not change with its source). */
function copyBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
}

function errorKind(err: GPUError): string {
  const n = err.constructor?.name ?? '';
  if (/OutOfMemory/i.test(n)) return 'out-of-memory';
  if (/Internal/i.test(n)) return 'internal';
  return 'validation';
}

function describeFailure(err: GPUError, labels: readonly string[]): string {
  const kind = errorKind(err);
  const shown = labels.slice(-8).join('\n  ');
  return `GPU ${kind} error while running ${labels.length} dispatch(es)${labels.length ? `; last recorded:\n  ${shown}` : ''}\n${err.message}`;
}
