/**
 * Getting a Gpu in Node: Dawn through the npm package `webgpu`.
 * The only Node-specific part of the engine besides file access in src/cli.
 */
import { setPriority } from 'node:os';
import { Gpu, describeAdapter, requestDevice } from './gpu.js';

export interface NodeGpuOptions {
  /** Dawn backend: vulkan, metal, d3d12, d3d11, opengl, opengles, null. */
  backend?: string;
  /** Adapter name as Dawn lists it (an unknown name makes Dawn list them). */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Extra Dawn toggles, e.g. `disable-dawn-features=timestamp_quantization`. */
  dawnOptions?: string[];
}

export const NO_ADAPTER_HELP = [
  'No WebGPU adapter was found.',
  'Install a GPU driver with Vulkan support, or the software Vulkan driver (Mesa lavapipe):',
  '  Debian 12:  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
  '              apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1',
  '  (Mesa 23 or later is needed: Debian 12\'s own Mesa 22.3 is too old for Dawn.)',
  '  Ubuntu 24.04 and later: apt-get install mesa-vulkan-drivers libvulkan1',
].join('\n');

export class NoAdapterError extends Error {
  constructor(detail: string) {
    super(detail ? `${NO_ADAPTER_HELP}\nDawn said: ${detail}` : NO_ADAPTER_HELP);
    this.name = 'NoAdapterError';
  }
}

/** The requested backend or adapter does not exist; the message lists what does. */
export class AdapterSelectionError extends Error {
  override name = 'AdapterSelectionError';
}

export async function createNodeGpu(opts: NodeGpuOptions = {}): Promise<Gpu> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp'; // Mesa warns without it
  const { create } = await import('webgpu');
  const flags = [...(opts.dawnOptions ?? [])];
  if (opts.backend) flags.push(`backend=${opts.backend}`);
  if (opts.adapter) flags.push(`adapter=${opts.adapter}`);
  // Holding `instance` keeps Dawn (and so the event loop) alive: it is
  // dropped in onDestroy so the process can end by itself.
  let instance: GPU | null = create(flags);
  let adapter: GPUAdapter | null;
  try {
    adapter = await instance.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : {});
  } catch (e) {
    instance = null;
    const msg = e instanceof Error ? e.message : String(e);
    if (/unrecognised backend|Available adapters/i.test(msg)) {
      const what = [opts.backend && `backend "${opts.backend}"`, opts.adapter && `adapter "${opts.adapter}"`].filter(Boolean).join(' and ');
      throw new AdapterSelectionError(`cannot use ${what || 'the default adapter'}: ${msg}`);
    }
    throw new NoAdapterError(msg);
  }
  if (!adapter) {
    instance = null;
    throw new NoAdapterError('');
  }
  const device = await requestDevice(adapter);
  return new Gpu(device, describeAdapter(adapter), () => {
    instance = null;
  });
}

/**
 * On a software adapter (lavapipe), lowers the priority of the calling thread
 * so that the adapter's own threads get the CPU. There the GPU's work runs on
 * this machine's cores, and while any GPU operation is pending Dawn's Node
 * binding polls for it on the JavaScript thread without sleeping: on two
 * cores the poll took about 70 % of one from the shader threads (five
 * convolutions: 0.54 s of the JavaScript thread's CPU time in 0.69–0.85 s),
 * and with the thread lowered the same work ran 1.3–1.45× faster. Recording
 * still gets the CPU whenever the adapter is idle.
 *
 * Linux only, where priorities are per thread: the adapter's threads keep
 * theirs, but threads and processes started afterwards by this one (a device
 * made later, a worker, a child process) inherit the lower one, so call this
 * after creating every device the process will compare and after any work
 * handed to workers (the CLI's train calls it after its data step). It
 * cannot be undone without privileges. Returns whether it lowered it.
 */
export function yieldCpuToSoftwareAdapter(gpu: Gpu): boolean {
  if (!gpu.adapterInfo.isSoftware || process.platform !== 'linux') return false;
  try {
    setPriority(0, 19);
    return true;
  } catch {
    return false;
  }
}
