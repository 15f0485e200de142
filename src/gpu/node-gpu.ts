/**
 * Getting a Gpu in Node: Dawn through the npm package `webgpu`. Tuning the
 * process for a software adapter is opt-in: src/software/platform.ts.
 */
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

/**
 * Dawn's toggles that expose f16 and the subgroup matrices: NVIDIA's Vulkan
 * driver has f16 hidden unless vulkan_enable_f16_on_nvidia is on, and the
 * subgroup matrices are an experimental feature (allow_unsafe_apis). Dawn
 * takes one enable-dawn-features option, so these join any the caller gives.
 */
export const MIXED_TOGGLES = ['vulkan_enable_f16_on_nvidia', 'allow_unsafe_apis'];

/** `flags` with `toggles` added to its enable-dawn-features option (made when absent). */
export function withEnabledToggles(flags: readonly string[], toggles: readonly string[]): string[] {
  const key = 'enable-dawn-features=';
  const at = flags.findIndex((f) => f.startsWith(key));
  if (at < 0) return [...flags, key + toggles.join(',')];
  const have = flags[at]!.slice(key.length).split(',').filter(Boolean);
  const merged = [...have, ...toggles.filter((t) => !have.includes(t))];
  return flags.map((f, i) => (i === at ? key + merged.join(',') : f));
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
  const flags = withEnabledToggles(opts.dawnOptions ?? [], MIXED_TOGGLES);
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
  const info = describeAdapter(adapter);
  // The software formulations of the convolutions load only where they run.
  if (info.isSoftware) await import('../software/conv.js');
  const device = await requestDevice(adapter);
  return new Gpu(device, info, () => {
    instance = null;
  });
}

